#!/usr/bin/env bash
# Console end-to-end tests: start `verity up` on a throwaway data dir with a small demo world,
# drive Debian's Chromium with playwright-core (node's test runner), stop the server.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

loud() { printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n!!! %s\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' "$*" >&2; }

if [ ! -x /usr/bin/chromium ]; then
  echo "Installing Debian's chromium for the console tests" >&2
  # An install stopped half-way (a full disk, a killed run) leaves packages unconfigured, and
  # apt refuses to install anything until they are: finish them first.
  DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null 2>&1 || true
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    free="$(df -h --output=avail / 2>/dev/null | tail -n 1 | tr -d ' ')"
    loud "Chromium could not be installed (apt's error above; ${free:-unknown} free on /): console end-to-end tests SKIPPED"
    exit 0
  fi
fi
if ! command -v node >/dev/null 2>&1; then
  loud "Node.js is missing: console end-to-end tests SKIPPED"
  exit 0
fi
(cd "$here" && npm ci --no-audit --no-fund --silent)

cargo build --quiet --locked --bin verity --manifest-path "$root/Cargo.toml"
bin="$root/target/debug/verity"

data="$(mktemp -d)"
port=$((20000 + RANDOM % 20000))
log="$data/server.log"
"$bin" up --data "$data" --addr "127.0.0.1:$port" --demo-people 3000 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$data"' EXIT

# Wait until the server says it is running (it prints the password first), or fails.
for _ in $(seq 1 600); do
  if grep -q "Press Ctrl-C to stop" "$log"; then break; fi
  if ! kill -0 $server 2>/dev/null; then cat "$log" >&2; echo "verity up exited early" >&2; exit 1; fi
  sleep 0.5
done
grep -q "Press Ctrl-C to stop" "$log" || { cat "$log" >&2; echo "verity up did not start" >&2; exit 1; }
password="$(sed -n 's/^  One-time password: //p' "$log" | head -n 1)"
[ -n "$password" ] || { cat "$log" >&2; echo "no one-time password printed" >&2; exit 1; }

export VERITY_E2E_URL="http://127.0.0.1:$port" VERITY_E2E_ADMIN_PASSWORD="$password" \
       VERITY_E2E_DATA="$data" VERITY_BIN="$bin"
cd "$here" && node --test --test-concurrency=1 ./*.test.mjs
