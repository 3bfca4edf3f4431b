#!/usr/bin/env bash
# The whole test suite: formatting, lints, every crate's tests on both stores, and the console's
# end-to-end tests in Chromium. CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

loud() { printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n!!! %s\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' "$*" >&2; }

# --- Disk -----------------------------------------------------------------------------------
# A clean build of the suite takes about 14 GB under target/. A full disk fails the build with
# linker crashes that look like code faults, so say so first.
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ -n "$free_kb" ] && [ "$free_kb" -lt $((20 * 1024 * 1024)) ]; then
  loud "only $((free_kb / 1024)) MB free on $(df -P . | awk 'NR == 2 { print $6 }'): the build needs about 14 GB and may fail for lack of space"
fi

# --- Services -----------------------------------------------------------------------------
# PostgreSQL is the production store: its conformance suite must run, not skip, where it exists.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  export VERITY_REQUIRE_POSTGRES=1
else
  loud "PostgreSQL is NOT reachable at 127.0.0.1:5432: the PostgreSQL store suite will be SKIPPED"
fi
# NATS JetStream carries booking work between processes when Verity is spread over several.
if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  if [ -x /usr/sbin/nats-server ]; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
  else
    loud "NATS is NOT available at 127.0.0.1:4222: the NATS queue tests will be SKIPPED"
  fi
  for _ in $(seq 1 20); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.5; done
fi
if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
  export VERITY_REQUIRE_NATS=1
fi

# pdftotext checks that detainer PDFs carry extractable text.
if ! command -v pdftotext >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null; } \
    || loud "poppler-utils could not be installed: the PDF text test will fail in CI"
fi

# --- Static checks --------------------------------------------------------------------------
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

# --- Tests ----------------------------------------------------------------------------------
cargo test --workspace --locked

# --- Console end to end in Chromium ----------------------------------------------------------
if [ -f tests/e2e/run.sh ]; then
  bash tests/e2e/run.sh
fi
