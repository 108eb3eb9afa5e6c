#!/usr/bin/env bash
# Load benchmark: the release binary on loopback, driven by wrk (Debian package `wrk`).
# Measures /healthz and /v1/authorize (RS256 token, cached keys, one Cedar check) in the same run,
# so their ratio is meaningful on a noisy machine. Usage: bash benches/load.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-16}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet
bin=target/release/legate
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

LEGATE_LOG=warn LEGATE_LOG__DECISIONS=off "$bin" --config examples/legate.toml serve --listen "127.0.0.1:$port" &
pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done

export TOKEN
TOKEN=$("$bin" --config examples/legate.toml token --key examples/keys/idp-dev-private.pem --sub C-1 --legal-entity LE-1 --ttl-secs 3600)
cat > "$work/authorize.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-2"},"legalEntity":{"type":"LegalEntity","id":"LE-1"}}}}'
LUA
curl -s "http://127.0.0.1:$port/v1/authorize" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-2"},"legalEntity":{"type":"LegalEntity","id":"LE-1"}}}}' | grep -q '"allow"'

run() {
  local name=$1; shift
  echo "== $name ($secs s, $conns connections, 1 wrk thread)"
  wrk -t1 -c"$conns" -d"${secs}s" --latency "$@" | grep -E "Requests/sec|^ +(50|75|90|99)%|Non-2xx|Socket errors"
}
run "/healthz" "http://127.0.0.1:$port/healthz"
run "/v1/authorize" -s "$work/authorize.lua" "http://127.0.0.1:$port/v1/authorize"
echo "== legate RSS: $(ps -o rss= -p "$pid") KiB"
