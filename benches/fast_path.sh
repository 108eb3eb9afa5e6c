#!/usr/bin/env bash
# The decision fast path from outside (BENCHMARKS.md, "Decision fast path"). Release build, loopback;
# every server pinned to core 0 (`taskset -c 0`), every load generator to core 1, rounds interleaved,
# medians printed. Sections (all by default; pick with SECTIONS="ratio rate"):
#   ratio    POST /v1/authorize req/s, wrk -t1 -c64, legate vs the hello-world axum baseline
#            (examples/hello_baseline.rs) answering the same request; prints legate/baseline.
#   rate     latency at a fixed 5,000 req/s (examples/openloop.rs, open loop, 16 connections),
#            legate and the baseline (the harness's own floor).
#   batch    single-request latency at 1,000 req/s while 1,000-check batches run (wrk -c2), and
#            without them.
#   policies p50 at one connection with +N generated per-customer policies in one file
#            (N = 0 1000 10000 100000), start-up time and RSS after load, `legate validate` time and
#            max RSS; writes benches/plots/policies-after.dat. With BEFORE_BIN=<legate binary of an
#            earlier commit> also the "before" curve for N = 0 500 1000 2000 (larger sets took minutes
#            and gigabytes there) into policies-before.dat.
# Usage: bash benches/fast_path.sh [rounds] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-5}
sections=${SECTIONS:-ratio rate batch policies}
for tool in wrk taskset curl python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: bash .ci/run installs it" >&2; exit 1; }
done
cargo build --release --quiet --bin legate --example hello_baseline --example openloop
bin=$PWD/target/release/legate
hello=$PWD/target/release/examples/hello_baseline
openloop=$PWD/target/release/examples/openloop
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
load() { uptime | sed 's/.*load average: //'; }
wait_ready() { for _ in $(seq 600); do curl -sf "http://127.0.0.1:$1$2" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "server on $1 not ready" >&2; return 1; }

TOKEN=$("$bin" --config examples/legate.toml token --key examples/keys/idp-dev-private.pem --sub C-1 --legal-entity LE-1 --ttl-secs 7200)
export TOKEN
body='{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-1"},"legalEntity":{"type":"LegalEntity","id":"LE-1"}}}}'
printf '%s' "$body" > "$work/body.json"
cat > "$work/authorize.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '$body'
LUA

start_legate() { # port policy-dir [binary]; sets $last_pid
  LEGATE_LOG=warn LEGATE_LOG__DECISIONS=off LEGATE_POLICIES__DIR="$2" taskset -c 0 "${3:-$bin}" --config examples/legate.toml serve --listen "127.0.0.1:$1" > /dev/null &
  last_pid=$!
  pids+=("$last_pid")
}
wrk_rps() { # port connections seconds [extra wrk args]
  local port=$1 c=$2 s=$3; shift 3
  taskset -c 1 wrk -t1 -c"$c" -d"${s}s" --latency -s "$work/authorize.lua" "$@" "http://127.0.0.1:$port/v1/authorize"
}

if [[ " $sections " == *" ratio "* || " $sections " == *" rate "* ]]; then
  lport=$(free_port); hport=$(free_port)
  start_legate "$lport" "$PWD/policies"
  taskset -c 0 "$hello" "127.0.0.1:$hport" > /dev/null 2>&1 &
  pids+=($!)
  wait_ready "$lport" /readyz
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$hport/" && break; sleep 0.05; done
  sleep 0.5
  curl -s "http://127.0.0.1:$lport/v1/authorize" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d "$body" | grep -q '"allow"'
fi

if [[ " $sections " == *" ratio "* ]]; then
  echo "== ratio: POST /v1/authorize, wrk -t1 -c64 ${secs}s, $rounds interleaved rounds (load average $(load))"
  : > "$work/l"; : > "$work/h"
  for r in $(seq "$rounds"); do
    h=$(wrk_rps "$hport" 64 "$secs" | awk '/Requests\/sec/ {print $2}')
    l=$(wrk_rps "$lport" 64 "$secs" | awk '/Requests\/sec/ {print $2}')
    echo "round $r: baseline $h req/s, legate $l req/s, ratio $(awk -v a="$l" -v b="$h" 'BEGIN {printf "%.3f", a/b}') (load $(load))"
    echo "$h" >> "$work/h"; echo "$l" >> "$work/l"
  done
  mh=$(median < "$work/h"); ml=$(median < "$work/l")
  echo "median: baseline $mh req/s, legate $ml req/s, legate/baseline = $(awk -v a="$ml" -v b="$mh" 'BEGIN {printf "%.3f", a/b}')"
fi

if [[ " $sections " == *" rate "* ]]; then
  echo "== rate: fixed 5000 req/s, open loop, 16 connections, ${secs}s, $rounds interleaved rounds (load average $(load))"
  : > "$work/lp99"; : > "$work/hp99"; : > "$work/lp50"
  for r in $(seq "$rounds"); do
    ho=$(taskset -c 1 "$openloop" "127.0.0.1:$hport" /v1/authorize 5000 "$secs" 16 "$work/body.json" "$TOKEN")
    lo=$(taskset -c 1 "$openloop" "127.0.0.1:$lport" /v1/authorize 5000 "$secs" 16 "$work/body.json" "$TOKEN")
    echo "round $r baseline: $ho"
    echo "round $r legate:   $lo (load $(load))"
    echo "$ho" | sed 's/.*p99 \([0-9.]*\).*/\1/' >> "$work/hp99"
    echo "$lo" | sed 's/.*p99 \([0-9.]*\).*/\1/' >> "$work/lp99"
    echo "$lo" | sed 's/.*p50 \([0-9.]*\).*/\1/' >> "$work/lp50"
  done
  echo "median: legate p50 $(median < "$work/lp50") ms, p99 $(median < "$work/lp99") ms; baseline p99 $(median < "$work/hp99") ms"
fi

if [[ " $sections " == *" batch "* ]]; then
  bport=$(free_port)
  start_legate "$bport" "$PWD/policies"; bpid=$last_pid
  wait_ready "$bport" /readyz
  python3 - "$work/batch.json" <<'PY'
import json, sys
checks = [{"action": "viewProduct", "resource": {"type": "Product", "id": f"P-{i}",
           "attrs": {"segments": [{"type": "Segment", "id": ["wholesale", "retail"][i % 2]}]}}} for i in range(1000)]
json.dump({"checks": checks}, open(sys.argv[1], "w"))
PY
  cat > "$work/batch.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
local f = io.open("$work/batch.json"); wrk.body = f:read("*a"); f:close()
LUA
  python3 - "$work/batch100.json" <<'PY'
import json, sys
checks = [{"action": "viewProduct", "resource": {"type": "Product", "id": f"P-{i}",
           "attrs": {"segments": [{"type": "Segment", "id": ["wholesale", "retail"][i % 2]}]}}} for i in range(100)]
json.dump({"checks": checks}, open(sys.argv[1], "w"))
PY
  sed "s#$work/batch.json#$work/batch100.json#" "$work/batch.lua" > "$work/batch100.lua"
  echo "== batch of 100 viewProduct checks alone: wrk -t1 -c2 ${secs}s, server on one core, $rounds rounds (load average $(load))"
  : > "$work/b100"
  for r in $(seq "$rounds"); do
    b=$(taskset -c 1 wrk -t1 -c2 -d"${secs}s" -s "$work/batch100.lua" "http://127.0.0.1:$bport/v1/authorize/batch" | awk '/Requests\/sec/ {print $2}')
    echo "round $r: $b batches/s = $(awk -v b="$b" 'BEGIN {printf "%.0f", b * 100}') checks/s (load $(load))"
    echo "$b" >> "$work/b100"
  done
  echo "median: $(awk -v b="$(median < "$work/b100")" 'BEGIN {printf "%.1f batches/s = %.0f checks/s", b, b * 100}')"
  echo "== batch: single requests at 1000 req/s (open loop, 8 connections, ${secs}s) with and without 1,000-check batches (wrk -c2) running, $rounds rounds (load average $(load))"
  for r in $(seq "$rounds"); do
    quiet=$(taskset -c 1 "$openloop" "127.0.0.1:$bport" /v1/authorize 1000 "$secs" 8 "$work/body.json" "$TOKEN")
    taskset -c 1 wrk -t1 -c2 -d"$((secs + 2))s" -s "$work/batch.lua" "http://127.0.0.1:$bport/v1/authorize/batch" > "$work/batchwrk" &
    wpid=$!
    sleep 1
    busy=$(taskset -c 1 "$openloop" "127.0.0.1:$bport" /v1/authorize 1000 "$secs" 8 "$work/body.json" "$TOKEN")
    wait "$wpid"
    echo "round $r without batches: $quiet"
    echo "round $r with batches:    $busy; batches: $(awk '/Requests\/sec/ {print $2}' "$work/batchwrk") req/s x 1000 checks (load $(load))"
  done
  kill "$bpid"
fi

if [[ " $sections " == *" policies "* ]]; then
  mkdir -p benches/plots
  sweep() { # label binary sizes...
    local label=$1 b=$2; shift 2
    local out="benches/plots/policies-$label.dat"
    echo "# policies p50_ms startup_s rss_kib validate_s validate_maxrss_kib   ($label, load average $(load))" > "$out"
    for n in "$@"; do
      local d="$work/p$n"
      rm -rf "$d"; bash benches/gen_policies.sh "$n" "$d" 1
      local vt vr
      /usr/bin/time -f "%e %M" -o "$work/vtime" "$b" validate "$d" > /dev/null
      read -r vt vr < "$work/vtime"
      local port; port=$(free_port)
      local t0; t0=$(date +%s.%N)
      start_legate "$port" "$d" "$b"; local pid=$last_pid
      wait_ready "$port" /readyz
      local st; st=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b-a}')
      sleep 0.5
      local rss; rss=$(ps -o rss= -p "$pid" | tr -d ' ')
      : > "$work/p50"
      for r in $(seq "$rounds"); do
        wrk_rps "$port" 1 "$secs" | awk '$1=="50%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' >> "$work/p50"
      done
      local p50; p50=$(median < "$work/p50")
      echo "$label +$n policies: p50 $p50 ms, start-up $st s, RSS $rss KiB, validate $vt s / max RSS $vr KiB (load $(load))"
      echo "$n $p50 $st $rss $vt $vr" >> "$out"
      kill "$pid"; wait "$pid" 2>/dev/null || true
      rm -rf "$d"
    done
  }
  echo "== policies: p50 at 1 connection (wrk, ${secs}s x $rounds rounds, median) vs generated per-customer policies in one file"
  [ -n "${BEFORE_BIN:-}" ] && sweep before "$BEFORE_BIN" 0 500 1000 2000
  sweep after "$bin" 0 1000 10000 100000
  command -v gnuplot >/dev/null && gnuplot benches/plot_policies.gp && echo "wrote benches/plots/policies.png"
fi
