#!/usr/bin/env bash
# p99 latency of POST /v1/authorize while policies reload continuously, against idle, in one run:
# the release binary on loopback, wrk as the client. Phases alternate ROUNDS times: idle; control
# (a file outside the policy directory rewritten every 50 ms: the shell loop's own cost); storm
# (orders.cedar rewritten in place every 50 ms, alternating two valid versions).
# Usage: bash benches/reload_storm.sh [SECONDS_PER_PHASE] [CONNECTIONS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
conns=${2:-8}
rounds=${3:-3}
cargo build --release -q
bin=target/release/legate
work=$(mktemp -d)
pid=""
storm=""
cleanup() {
  [ -n "$storm" ] && kill "$storm" 2>/dev/null || true
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cp -r policies "$work/policies"
LEGATE_POLICIES__DIR="$work/policies" LEGATE_LOG__DECISIONS=off LEGATE_LOG=info \
  "$bin" --config examples/legate.toml serve --listen 127.0.0.1:0 2>"$work/legate.log" &
pid=$!
addr=""
for _ in $(seq 100); do
  addr=$(grep -o 'address=[0-9.:]*' "$work/legate.log" | head -1 | cut -d= -f2 || true)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/legate.log"; exit 1; }

token=$("$bin" --config examples/legate.toml token --key examples/keys/idp-dev-private.pem \
          --sub C-1 --legal-entity LE-1)
cat >"$work/authorize.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = '{"action": "viewOrder", "resource": {"type": "Order", "id": "O-9", "attrs": {"owner": {"type": "Customer", "id": "C-2"}, "legalEntity": {"type": "LegalEntity", "id": "LE-1"}}}}'
LUA

run() {
  wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/authorize.lua" "http://$addr/v1/authorize" \
    | awk -v phase="$1" '/Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2}
                         /Non-2xx/ {bad=$NF} END {printf "%-7s req/s %s  p50 %s  p99 %s  non-2xx %s\n", phase, rps, p50, p99, bad+0}'
}

curl -s -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d '{}' "http://$addr/v1/authorize" || true
a="$work/policies/orders.cedar"
cp "$a" "$work/orders.a"
grep -v '^//' "$a" | sed 's/entity-orders/entity-orders-v2/' >"$work/orders.b"
# storm_on FILE: rewrite FILE every 50 ms. On orders.cedar that is a reload storm; on a file outside
# the policy directory it is the same shell and disk work without reloads (the control phase).
storm_on() {
  (
    while true; do
      cat "$work/orders.b" >"$1"; sleep 0.05
      cat "$work/orders.a" >"$1"; sleep 0.05
    done
  ) &
  storm=$!
}
storm_off() {
  kill "$storm"; wait "$storm" 2>/dev/null || true; storm=""
  cat "$work/orders.a" >"$a"
  sleep 1 # let the last reload land before the next idle phase
}

# Alternate the phases so that drift in the machine's load hits both alike.
for round in $(seq "$rounds"); do
  run idle
  storm_on "$work/control.cedar"
  run control
  storm_off
  before=$(grep -c 'policies reloaded' "$work/legate.log" || true)
  storm_on "$a"
  run storm
  storm_off
  after=$(grep -c 'policies reloaded' "$work/legate.log" || true)
  echo "        ($((after - before)) reloads swapped in during the storm phase)"
done
