#!/usr/bin/env bash
# IAQ load over HTTP on loopback: POST /v1/iaq at a fixed rate for a fixed time against
# `verity up` with a large demo world, with `wrk` (Debian package `wrk`) pacing each connection.
# Synthetic data only.
#
# Usage: scripts/load-iaq.sh            (PEOPLE=1000000 RATE=200 DURATION=60)
# Env:   PEOPLE, RATE (requests/s), DURATION (s), DATA (data dir, reused when it already holds
#        a world of that size), PORT, VERITY (binary; default target/release/verity, built),
#        VERITY_GALLERY_AT_START (default 0 here: the booking fingerprint gallery is built by the
#        first booking, not during this IAQ load; at 1,000,000 people its build takes many CPU
#        minutes that would otherwise share the 2 cores with the measured requests).
# Prints: the wrk summary with latency percentiles and non-2xx count, the server's own
# response-time quantiles for automatically answered queries, outcomes, and RSS before/after.
set -euo pipefail
cd "$(dirname "$0")/.."

PEOPLE=${PEOPLE:-1000000}
RATE=${RATE:-200}
DURATION=${DURATION:-60}
DATA=${DATA:-/tmp/verity-load-$PEOPLE}
PORT=${PORT:-18080}
VERITY=${VERITY:-target/release/verity}
ADDR=127.0.0.1:$PORT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install -y wrk" >&2; exit 1; }
if [[ "$VERITY" == target/release/verity ]]; then
  cargo build --release -q -p verity
fi

LOG="$DATA.log"
mkdir -p "$DATA"
export VERITY_GALLERY_AT_START=${VERITY_GALLERY_AT_START:-0}
echo "== starting verity up (data $DATA, $PEOPLE people); log $LOG"
t0=$(date +%s)
"$VERITY" up --data "$DATA" --demo-people "$PEOPLE" --addr "$ADDR" >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
until curl -sf "http://$ADDR/healthz" >/dev/null; do
  kill -0 $PID 2>/dev/null || { echo "server died; see $LOG" >&2; tail -20 "$LOG" >&2; exit 1; }
  sleep 2
done
echo "== ready after $(( $(date +%s) - t0 )) s"
grep -E "LESC index ready|Demo queries" "$LOG" || true

ORI=$("$VERITY" agency list --data "$DATA" | head -1 | awk '{print $1}')
KEY=$("$VERITY" agency key --data "$DATA" --ori "$ORI" | awk '{print $NF}')
QUERIES="$DATA/demo-world/queries/iaq.jsonl"
if [[ ! -s "$QUERIES" ]]; then
  # Older data dirs lack the query set: generate it for the same world (seed 1).
  "$VERITY" synth --people "$PEOPLE" --seed 1 --queries 2000 --query-seed 2026 --quiet --out "$DATA/query-world"
  QUERIES="$DATA/query-world/queries/iaq.jsonl"
fi

CONNS=$(( RATE / 5 + 2 ))
# Each connection waits DELAY ms between requests: CONNS * 1000 / DELAY ~ RATE + 10%. A
# connection's period is DELAY plus the response time, so DELAY is kept long (~190 ms at 200/s)
# next to the expected response times: with 100 ms, a 14 ms mean response already capped the
# offered rate at 193/s.
DELAY=$(( CONNS * 1000 / (RATE + RATE / 10) ))
LUA=$(mktemp --suffix .lua)
cat >"$LUA" <<LUA
local bodies = {}
for line in io.lines("$QUERIES") do bodies[#bodies + 1] = line end
local auth = "Basic " .. "$(printf '%s:%s' "$ORI" "$KEY" | base64 -w0)"
-- Globals, not locals: thread:set() writes each thread's own tid.
counter, tid = 0, 0
local threads = {}
function setup(thread)
  tid = tid + 1
  thread:set("tid", tid)
  table.insert(threads, thread)
end
function init(args)
  answered, review, other = 0, 0, 0
end
function delay() return $DELAY end
function request()
  counter = counter + 1
  local b = bodies[(counter % #bodies) + 1]
  b = b:gsub('"message_id":"[^"]*"', '"message_id":"load-' .. tid .. '-' .. counter .. '-' .. os.time() .. '"', 1)
  return wrk.format("POST", "/v1/iaq", {["Content-Type"] = "application/json", ["Authorization"] = auth}, b)
end
function response(status, headers, body)
  if status == 200 then answered = answered + 1
  elseif status == 202 then review = review + 1
  else other = other + 1 end
end
function done(summary, latency, requests)
  local a, r, o = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("answered"); r = r + t:get("review"); o = o + t:get("other")
  end
  io.write(string.format("outcomes: %d answered at once (200), %d queued for review (202), %d other\n", a, r, o))
end
LUA

rss() { awk '/VmRSS/ {print $2 " kB"}' /proc/$PID/status; }
# The server's CPU time (user + system, clock ticks): CPU per request does not depend on how
# busy the rest of the machine is, unlike response times.
cpu_ticks() { awk '{print $14 + $15}' /proc/$PID/stat; }
echo "== load average before: $(uptime)"
echo "== RSS before: $(rss)"
echo "== wrk: $CONNS connections, ${DELAY} ms pause each, ${DURATION} s, target $RATE IAQ/s"
WRK_OUT=$(mktemp)
ticks0=$(cpu_ticks)
wrk -t2 -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency -s "$LUA" "http://$ADDR" | tee "$WRK_OUT"
ticks1=$(cpu_ticks)
echo "== RSS after: $(rss)"
echo "== load average after: $(uptime)"
HZ=$(getconf CLK_TCK)
REQS=$(awk '/requests in/ {print $1}' "$WRK_OUT")
awk -v t=$((ticks1 - ticks0)) -v hz="$HZ" -v n="${REQS:-0}" -v d="$DURATION" 'BEGIN {
  printf "== server CPU during the run: %.1f s (%.2f cores of 2); %.2f ms CPU per request\n", t / hz, t / hz / d, (n > 0 ? 1000 * t / hz / n : 0) }'
rm -f "$WRK_OUT"
echo "== server-side time from receipt to answer (seconds), automatic answers:"
curl -s "http://$ADDR/metrics" | grep -E '^verity_iaq_response_seconds_(bucket|count|sum)\{mode="automatic"' || true
# Bucket upper bounds at which half and 99% of the automatic answers had been given.
curl -s "http://$ADDR/metrics" \
  | grep -E '^verity_iaq_response_seconds_bucket\{mode="automatic"' \
  | sed -E 's/.*le="([^"]*)"\} ([0-9.e+]+).*/\1 \2/' \
  | awk '{ b[++k] = $1; n[k] = $2 }
    END { if (k == 0) exit; total = n[k]; p50 = ""; p99 = "";
          for (i = 1; i <= k; i++) { if (p50 == "" && n[i] >= 0.5 * total) p50 = b[i]; if (p99 == "" && n[i] >= 0.99 * total) p99 = b[i] }
          printf "automatic answers: %d; p50 <= %s s, p99 <= %s s (bucket bounds)\n", total, p50, p99 }' || true
curl -s "http://$ADDR/metrics" | grep -E '^verity_iaq_total' || true
# Where intakes spent their time (histogram verity_iaq_phase_seconds; servers that have it),
# and how many took longer than 50 ms (each is logged with its phases in $LOG, target
# verity::slow_iaq).
curl -s "http://$ADDR/metrics" | grep -E '^verity_iaq_phase_seconds_(sum|count)' \
  | sed -E 's/.*phase="([^"]*)"\} ([0-9.e+-]+)/\1 \2/; s/^verity_iaq_phase_seconds_(sum|count)//' \
  | paste - - | awk 'NF == 4 && $4 > 0 { printf "phase %-20s mean %7.2f ms over %d intakes\n", $1, 1000 * $2 / $4, $4 }' || true
curl -s "http://$ADDR/metrics" | grep -E '^verity_iaq_slow_total' || true
rm -f "$LUA"
