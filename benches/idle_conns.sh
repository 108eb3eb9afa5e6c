#!/usr/bin/env bash
# Idle keep-alive connections and legate's memory (issue 11, finding 1): the release binary with
# examples/legate.toml (decision log off), CONNS keep-alive connections that each send one
# POST /v1/authorize and then stay idle (benches/idle_conns.py, one asyncio process). Scenarios:
#   close   RSS and fds before, with them open, after the client closes them; twice
#   idle    the same with idle_timeout_secs = 15: legate closes them
#   cap     max_connections = CAP (default 1000): the rest wait in the listen backlog
# Each scenario runs on a fresh legate, once with glibc's default malloc and once with
# MALLOC_ARENA_MAX=1 (fewer arenas), and for `close` also with a malloc_trim(0) called into the
# process through gdb afterwards when gdb is there (what a trim would give back).
# Usage: bash benches/idle_conns.sh [conns=5000] [cap=1000]   (SCENARIOS="close arena idle cap")
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-5000}
cap=${2:-1000}
for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: bash .ci/run installs it" >&2; exit 1; }
done
# with an example, as benches/soak.sh and fast_path.sh build: dev-dependency features unify only
# then, and building the binary alone would recompile cedar with a different feature set
nice -n 10 cargo build --release --locked --quiet --bin legate --example soak_load
bin=$PWD/target/release/legate
ulimit -n $((conns * 2 + 1024)) 2>/dev/null || { echo "cannot raise ulimit -n to $((conns * 2 + 1024))" >&2; exit 1; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
token=$("$bin" --config examples/legate.toml token --key examples/keys/idp-dev-private.pem --sub C-1 --legal-entity LE-1 --ttl-secs 3600)

run() { # label mode [env VAR=value ...] -- extra env for legate
  local label=$1 mode=$2; shift 2
  local port; port=$(free_port)
  env LEGATE_LOG__DECISIONS=off LEGATE_LOG__LEVEL=warn "$@" "$bin" --config examples/legate.toml serve --listen "127.0.0.1:$port" >/dev/null 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.05; done
  echo "=== $label (load average $(uptime | sed 's/.*load average: //'))"
  case $mode in
    close) python3 benches/idle_conns.py "$port" "$pid" "$token" "$conns" close
           if command -v gdb >/dev/null; then
             gdb -p "$pid" -batch -ex 'call (int) malloc_trim(0)' >/dev/null 2>&1 || true
             printf '%-48s RSS %7.1f MiB\n' "after malloc_trim(0) (gdb)" "$(awk '/VmRSS/ {print $2/1024}' "/proc/$pid/status")"
           fi ;;
    idle)  python3 benches/idle_conns.py "$port" "$pid" "$token" "$conns" idle 15 ;;
    cap)   python3 benches/idle_conns.py "$port" "$pid" "$token" "$conns" cap "$cap" ;;
  esac
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

scenarios=${SCENARIOS:-close arena idle cap}
[[ " $scenarios " == *" close "* ]] && run "close, glibc malloc defaults" close
[[ " $scenarios " == *" arena "* ]] && run "close, MALLOC_ARENA_MAX=1" close MALLOC_ARENA_MAX=1
[[ " $scenarios " == *" idle "* ]] && run "idle timeout 15 s" idle LEGATE_LIMITS__IDLE_TIMEOUT_SECS=15
[[ " $scenarios " == *" cap "* ]] && run "max_connections $cap" cap LEGATE_LIMITS__MAX_CONNECTIONS="$cap"
true
