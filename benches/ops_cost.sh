#!/usr/bin/env bash
# What operations cost: the server's own CPU time per request (user + sys from /proc/PID/stat, so a
# loaded machine shifts it less than wall-clock throughput), for /v1/authorize (one check) and
# /v1/authorize/batch (100 viewProduct checks), with the decision log off, to a file, and to stderr.
# Each variant serves on its own while wrk (2 threads, 8 connections) drives it for 5 s; variants are
# interleaved ROUNDS times and medians printed.
#
# Usage: bash benches/ops_cost.sh [ROUNDS] [BINARY...]   (default: 5 rounds, target/release/legate)
# Give two binaries (e.g. a build of main and of a branch) to compare them in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
shift || true
bins=("$@")
if ((${#bins[@]} == 0)); then
  cargo build --release --quiet
  bins=(target/release/legate)
fi
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

export TOKEN
TOKEN=$("${bins[0]}" --config examples/legate.toml token --key examples/keys/idp-dev-private.pem \
  --sub C-1 --legal-entity LE-1 --ttl-secs 7200)
cat > "$work/one.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-2"},"legalEntity":{"type":"LegalEntity","id":"LE-1"}}}}'
LUA
python3 - "$work/batch.lua" <<'PY'
import json, sys
segs = [[], [{"type": "Segment", "id": "wholesale"}], [{"type": "Segment", "id": "retail"}]]
checks = [{"action": "viewProduct", "resource": {"type": "Product", "id": f"P-{i}", "attrs": {"segments": segs[i % 3]}}}
          for i in range(100)]
open(sys.argv[1], "w").write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    'wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")\nwrk.body = [[' + json.dumps({"checks": checks}) + ']]\n')
PY

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }   # clock ticks
: > "$work/results"
for _ in $(seq "$rounds"); do
  for bin in "${bins[@]}"; do
    for decisions in off "$work/decisions.jsonl" stderr; do
      LEGATE_LOG=warn LEGATE_LOG__DECISIONS="$decisions" "$bin" --config examples/legate.toml serve \
        --listen "127.0.0.1:$port" 2>"$work/stderr" &
      pid=$!
      for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
      for kind in one batch; do
        path=/v1/authorize
        [ "$kind" = batch ] && path=/v1/authorize/batch
        wrk -t1 -c4 -d1s -s "$work/$kind.lua" "http://127.0.0.1:$port$path" >/dev/null
        before=$(cpu "$pid")
        done_=$(wrk -t2 -c8 -d5s -s "$work/$kind.lua" "http://127.0.0.1:$port$path" | awk '/requests in/ {print $1}')
        after=$(cpu "$pid")
        label="$bin decisions=$([ "$decisions" = off ] || [ "$decisions" = stderr ] && echo "$decisions" || echo file)"
        echo "$kind|$label|$before|$after|$done_" >> "$work/results"
      done
      kill -TERM "$pid"
      wait "$pid" || true
      rm -f "$work/decisions.jsonl"
    done
  done
done
python3 - "$work/results" "$(getconf CLK_TCK)" <<'PY'
import collections, statistics, sys
tick = 1e6 / int(sys.argv[2])
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    kind, label, before, after, n = line.strip().split("|")
    runs[(kind, label)].append((int(after) - int(before)) * tick / int(n))
for kind in ("one", "batch"):
    print(f"== /v1/authorize{'' if kind == 'one' else '/batch (100 checks)'}: server CPU per request, median")
    for (k, label), xs in runs.items():
        if k == kind:
            print(f"  {label:60} {statistics.median(xs):9.1f} us   runs {[round(x) for x in xs]}")
PY
