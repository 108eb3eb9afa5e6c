#!/usr/bin/env bash
# Where the memory of a policy load goes (BENCHMARKS.md, "Decision fast path", load memory): the
# release binary serving +N generated per-customer policies in one file. For each N it prints the
# RSS once ready and the RSS after `malloc_trim(0)` (called through gdb): the difference is memory
# freed after the load that glibc kept. Then the same with MALLOC_ARENA_MAX=1 and, when heaptrack
# is installed, heaptrack's peak heap of `legate validate` (the same load) and its largest
# consumers at that peak (KEEP=1 keeps heaptrack's whole report in benches/plots/).
# Usage: [BIN=path] bash benches/load_memory.sh [N ...]   (default: 10000)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("${@:-10000}")
for tool in gdb curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: bash .ci/run installs it" >&2; exit 1; }
done
# BIN=<a legate binary> measures that one (e.g. an earlier commit's) instead of building.
if [ -z "${BIN:-}" ]; then cargo build --release --quiet --bin legate; fi
bin=${BIN:-$PWD/target/release/legate}
work=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

for n in "${sizes[@]}"; do
  d="$work/p$n"
  rm -rf "$d"; bash benches/gen_policies.sh "$n" "$d" 1
  for arenas in default 1; do
    port=$(free_port)
    if [ "$arenas" = default ]; then
      LEGATE_LOG=warn LEGATE_POLICIES__DIR="$d" "$bin" --config examples/legate.toml serve --listen "127.0.0.1:$port" > /dev/null 2>&1 &
    else
      MALLOC_ARENA_MAX=1 LEGATE_LOG=warn LEGATE_POLICIES__DIR="$d" "$bin" --config examples/legate.toml serve --listen "127.0.0.1:$port" > /dev/null 2>&1 &
    fi
    pid=$!
    for _ in $(seq 1200); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
    sleep 0.5
    r0=$(rss "$pid")
    gdb -p "$pid" -batch -ex 'call (int)malloc_trim(0)' > /dev/null 2>&1
    r1=$(rss "$pid")
    echo "+$n policies, arenas $arenas: RSS $r0 KiB; RSS after malloc_trim(0) $r1 KiB (load $(uptime | sed 's/.*load average: //'))"
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  done
  if command -v heaptrack >/dev/null; then
    heaptrack -o "$work/ht" "$bin" validate "$d" > /dev/null 2>&1 || true
    heaptrack_print -f "$work/ht.zst" --print-peaks 1 --print-allocators 0 --print-temporary 0 \
      --print-leaks 0 --peak-limit 8 --sub-peak-limit 6 > "$work/ht.txt" 2>/dev/null || true
    echo "heaptrack, legate validate +$n: $(grep 'peak heap memory' "$work/ht.txt")"
    grep -E '^ *[0-9.]+[KMG]? consumed over' "$work/ht.txt" | head -6 | sed 's/^/  /'
    [ -n "${KEEP:-}" ] && mkdir -p benches/plots && cp "$work/ht.txt" "benches/plots/heaptrack-validate-$n.txt"
    rm -f "$work/ht.zst"
  fi
  rm -rf "$d"
done
