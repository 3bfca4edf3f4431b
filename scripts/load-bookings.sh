#!/usr/bin/env bash
# Booking throughput end to end over HTTP on loopback (POST /v1/bookings: parse, durable store,
# 1:N search, IAQ stored) against a synthetic enrolled gallery. Synthetic people only.
#
# Usage: scripts/load-bookings.sh [ENROLLED=10000] [BOOKINGS=1000] [CONNECTIONS=4]
# Half of the bookings are enrolled people (new impressions), half strangers.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release -q -p verity-server --example load_bookings -- "${1:-10000}" "${2:-1000}" "${3:-4}"
