#!/usr/bin/env bash
# Soak run (issue 11; not CI): the release binary for MINUTES at FRACTION of the maximum rate this
# machine gives it (measured first with wrk on the same request mix), while
#   - the policies reload every 2 s, alternating between two valid sets whose answers differ
#     (benches/soak/driver.py: set A permits cancelling one's own order, set B forbids it and
#     hides archived orders);
#   - the identity provider's JWKS, served over HTTP by the driver, rotates every minute (a key is
#     published 40 s before tokens signed by it are sent, removed 20 s after they stop);
#   - refresh races run against a real redis-server (two simultaneous refreshes of one token);
#   - the customer-management service (the HTTP entity source, a double in the driver) is up
#     20 s, then down 10 s (alternately refusing connections and answering 503).
# The load is examples/soak_load.rs (open loop, fixed rate, 32 connections). Afterwards
# benches/soak/check.py checks every answer against the snapshot that served it (the decision
# log's policy_hash, joined on x-request-id) and writes the per-minute series to
# benches/plots/soak.csv; benches/plot_soak.gp draws benches/plots/soak.png.
# legate is pinned to core 0, the load generator and the world around legate (driver, Redis) to
# core 1; legate and the load run at nice -15 (you need root for that; otherwise at nice 0).
# Before the soak the same load runs CONTROL_SECS (default 60) with nothing else going on, as the
# machine's latency floor to compare the soak's per-minute p99 with.
# Usage: bash benches/soak.sh [minutes=10] [fraction=0.7]    (KEEP=1 keeps the work directory)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
fraction=${2:-0.7}
customers=20
conns=32
for tool in wrk taskset curl python3 redis-server; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: bash .ci/run installs it" >&2; exit 1; }
done
python3 -c 'import cryptography' 2>/dev/null || { echo "python3-cryptography is missing" >&2; exit 1; }
nice -n 10 cargo build --release --locked --quiet --bin legate --example soak_load
bin=$PWD/target/release/legate
load_bin=$PWD/target/release/examples/soak_load
work=$(mktemp -d /tmp/legate-soak.XXXXXX)
pids=()
# Every server is started by this shell (never inside $(...)), so its pid is in `pids` here.
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
load() { uptime | sed 's/.*load average: //'; }
hi=(nice -n -15)
[ "$(id -u)" = 0 ] || hi=()
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

lport=$(free_port); jport=$(free_port); eport=$(free_port); rport=$(free_port)
url="http://127.0.0.1:$lport"
echo "load average before: $(load)"

taskset -c 1 redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
python3 benches/soak/driver.py prepare "$work" $((minutes + 2)) "$customers"
"$load_bin" bodies "$customers" >"$work/bodies.txt"
taskset -c 1 python3 benches/soak/driver.py serve "$work" "$jport" "$eport" >"$work/driver.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -f "$work/driver.ready" ] && break; sleep 0.1; done
[ -f "$work/driver.ready" ] || { echo "driver did not start:"; cat "$work/driver.log"; exit 1; }
for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done

cat >"$work/legate.toml" <<TOML
public_url = "$url"
[policies]
dir = "$work/policies"
[[trust]]
issuer = "https://idp.soak.test"
audience = ["storefront"]
jwks = "http://127.0.0.1:$jport/jwks.json"
algorithms = ["RS256"]
[issue]
keys = ["examples/keys/legate-dev.pem"]
[entities]
source = "http"
url = "http://127.0.0.1:$eport/customers/{customer}/legal-entities"
cache_ttl_secs = 2
timeout_ms = 500
[store]
kind = "redis"
url = "redis://127.0.0.1:$rport"
[log]
level = "warn"
decisions = "$work/decisions.log"
allow_sample_rate = 1.0
TOML
taskset -c 0 "${hi[@]}" "$bin" --config "$work/legate.toml" serve --listen "127.0.0.1:$lport" >"$work/legate.log" 2>&1 &
legate_pid=$!
pids+=("$legate_pid")
for _ in $(seq 200); do curl -sf "$url/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
curl -sf "$url/readyz" >/dev/null || { echo "legate not ready:"; cat "$work/legate.log"; exit 1; }
python3 benches/soak/driver.py hashes "$work" "$url" >/dev/null

# The maximum: wrk on the same mix (key K0, entity source up, no reloads), 3 x 8 s, median.
cat >"$work/mix.lua" <<'LUA'
local work = os.getenv("SOAK_WORK")
local tokens, bodies = {}, {}
for l in io.lines(work .. "/tokens/K0.txt") do tokens[#tokens + 1] = l end
for l in io.lines(work .. "/bodies.txt") do bodies[#bodies + 1] = l end
local n, customers = 0, #tokens
request = function()
  local kind, cust = n % 7, math.floor(n / 7) % customers
  n = n + 1
  return wrk.format("POST", "/v1/authorize",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[cust + 1]},
    bodies[kind * customers + cust + 1])
end
LUA
rates=()
for r in 1 2 3; do
  out=$(SOAK_WORK=$work taskset -c 1 "${hi[@]}" wrk -t1 -c"$conns" -d8s -s "$work/mix.lua" "$url/v1/authorize")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out" | grep . || echo 0)
  echo "max round $r: $rps req/s, non-2xx $non2xx (load average $(load))"
  rates+=("$rps")
done
max=$(printf '%s\n' "${rates[@]}" | sort -g | sed -n 2p)
rate=$(python3 -c "print(round($max * $fraction))")
seconds=$((minutes * 60))
echo "maximum (median of 3) $max req/s; soak at $rate req/s for $seconds s; load average $(load)"

# Control: the same load for CONTROL_SECS with nothing else going on (no reloads, no rotation, no
# flaps, no races), to tell the machine's own latency floor from what the soak adds.
control=${CONTROL_SECS:-60}
if [ "$control" -gt 0 ]; then
  taskset -c 1 "${hi[@]}" "$load_bin" "127.0.0.1:$lport" "$rate" "$control" "$conns" "$work" "$work/control.txt" >/dev/null
  python3 - "$work/control.txt" "$(load)" <<'PY'
import sys
f = open(sys.argv[1]); f.readline()
rows = [l.split() for l in f]
lat = sorted(int(r[2]) / 1e3 for r in rows)
bad = sum(r[3] != "200" for r in rows)
print(f"control (no chaos): {len(lat)} requests, non-200 {bad}, latency ms p50 {lat[len(lat)//2]:.3f} "
      f"p99 {lat[int(len(lat)*0.99)]:.3f} max {lat[-1]:.3f}; load average {sys.argv[2]}")
PY
fi
sleep 3
: >"$work/decisions.log"
t0=$(python3 -c 'import time; print(time.time() + 0.3)')
cat >"$work/go" <<JSON
{"t0": $t0, "seconds": $seconds, "rate": $rate, "max": $max, "url": "$url", "pid": $legate_pid,
 "customers": $customers, "reload_secs": 2, "up_secs": 20, "down_secs": 10, "sample_secs": 5}
JSON
taskset -c 1 "${hi[@]}" "$load_bin" "127.0.0.1:$lport" "$rate" "$seconds" "$conns" "$work" "$work/records.txt"
for _ in $(seq 100); do [ -f "$work/driver.done" ] && break; sleep 0.2; done
echo "load average at the end: $(load)"
curl -s "$url/metrics" | grep -E '^legate_(decision_log_dropped|token_rejections|jwks_fetches|policy_reloads|entity_source_calls|tokens_issued|token_refusals)_total' >"$work/metrics.txt" || true
kill -TERM "$legate_pid"
wait "$legate_pid" 2>/dev/null || true
mkdir -p benches/plots
python3 benches/soak/check.py "$work" benches/plots/soak.csv benches/plots/soak-samples.csv
cat "$work/metrics.txt"
if command -v gnuplot >/dev/null; then gnuplot benches/plot_soak.gp && echo "plot: benches/plots/soak.png"; fi
