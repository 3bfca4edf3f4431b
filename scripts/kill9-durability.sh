#!/usr/bin/env bash
# Durability under kill -9: submit IAQs while the server runs, kill -9 it mid-load, restart,
# and show that every acknowledged query id is present and processed. Synthetic data only.
#
# Usage: scripts/kill9-durability.sh      (PEOPLE=20000 SECONDS_BEFORE_KILL=8 WORKERS=8)
# Env:   PEOPLE, DATA, PORT, VERITY (binary; default target/release/verity, built),
#        SECONDS_BEFORE_KILL, WORKERS (concurrent curl clients).
# Exit status 0 only when no acknowledged query is missing or unprocessed.
set -euo pipefail
cd "$(dirname "$0")/.."

PEOPLE=${PEOPLE:-20000}
DATA=${DATA:-/tmp/verity-kill9-$PEOPLE}
PORT=${PORT:-18081}
VERITY=${VERITY:-target/release/verity}
KILL_AFTER=${SECONDS_BEFORE_KILL:-8}
WORKERS=${WORKERS:-8}
ADDR=127.0.0.1:$PORT
LOG="$DATA.log"

if [[ "$VERITY" == target/release/verity ]]; then
  cargo build --release -q -p verity
fi
mkdir -p "$DATA"

start() {
  "$VERITY" up --data "$DATA" --demo-people "$PEOPLE" --addr "$ADDR" >>"$LOG" 2>&1 &
  PID=$!
  until curl -sf "http://$ADDR/healthz" >/dev/null; do
    kill -0 $PID 2>/dev/null || { echo "server died; see $LOG" >&2; exit 1; }
    sleep 1
  done
}

echo "== first start (data $DATA); log $LOG"
start
ORI=$("$VERITY" agency list --data "$DATA" | head -1 | awk '{print $1}')
KEY=$("$VERITY" agency key --data "$DATA" --ori "$ORI" | awk '{print $NF}')
QUERIES="$DATA/demo-world/queries/iaq.jsonl"
if [[ ! -s "$QUERIES" ]]; then
  # Older data dirs lack the query set: generate it for the same world (seed 1).
  "$VERITY" synth --people "$PEOPLE" --seed 1 --queries 2000 --query-seed 2026 --quiet --out "$DATA/query-world"
  QUERIES="$DATA/query-world/queries/iaq.jsonl"
fi
RUN=$(date +%s)
ACKS=$(mktemp)
WORK=$(mktemp -d)

# Each worker sends queries one after another; every acknowledged id (HTTP 200/202 with a
# query_id) is appended to ACKS the moment the acknowledgement arrives.
worker() {
  local w=$1 n=0
  while :; do
    n=$((n + 1))
    local body
    body=$(sed -n "$(( (n * WORKERS + w) % 2000 + 1 ))p" "$QUERIES" \
      | sed -E "s/\"message_id\":\"[^\"]*\"/\"message_id\":\"k9-$RUN-$w-$n\"/")
    local out
    out=$(curl -s -m 10 -w '\n%{http_code}' -u "$ORI:$KEY" -H 'Content-Type: application/json' \
      --data-binary "$body" "http://$ADDR/v1/iaq") || return 0
    local code=${out##*$'\n'}
    if [[ "$code" == 200 || "$code" == 202 ]]; then
      printf '%s\n' "$(printf '%s' "${out%$'\n'*}" | jq -r .query_id)" >>"$ACKS"
    fi
  done
}
for w in $(seq 1 "$WORKERS"); do worker "$w" & done
sleep "$KILL_AFTER"
echo "== kill -9 $PID after ${KILL_AFTER} s with $(wc -l <"$ACKS") acknowledgements"
kill -9 "$PID"
wait "$PID" 2>/dev/null || true
sleep 1
jobs -p | xargs -r kill 2>/dev/null || true
wait 2>/dev/null || true
ACKED=$(sort -u "$ACKS" | grep -c . || true)
echo "== restart"
start
missing=0; unprocessed=0
while read -r id; do
  [[ -z "$id" ]] && continue
  st=$(curl -s -u "$ORI:$KEY" "http://$ADDR/v1/iaq/$id" | jq -r '.state // "missing"')
  case "$st" in
    answered|in_review) ;;
    received) unprocessed=$((unprocessed + 1)); echo "unprocessed: $id" ;;
    *) missing=$((missing + 1)); echo "missing: $id" ;;
  esac
done < <(sort -u "$ACKS")
echo "== acknowledged: $ACKED; missing after restart: $missing; still unprocessed: $unprocessed"
grep -E "acknowledged before the last stop" "$LOG" | tail -1 || true
kill "$PID"
rm -rf "$ACKS" "$WORK"
[[ $missing -eq 0 && $unprocessed -eq 0 ]]
