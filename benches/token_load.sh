#!/usr/bin/env bash
# Load run for legal-entity switching, against the release binary on loopback (needs wrk and
# redis-server; build first with `cargo build --release`). Prints wrk's requests/s and latency for:
#   authorize-memory   /v1/authorize with a legate access token, family checked in the memory store
#   authorize-redis    the same, family checked in Redis (one GET per request)
#   authorize-idp      /v1/authorize with the identity provider's RS256 token (reference)
#   exchange-memory    /v1/token/refresh, IdP bearer -> new token pair (verify, selectLegalEntity, 2 signatures)
#   exchange-redis     the same with the Redis store (one SET per new family)
# Usage: benches/token_load.sh [rounds=3] [seconds=10] [connections=16]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} secs=${2:-10} conns=${3:-16}
bin=target/release/legate
work=$(mktemp -d)
# start() runs in a command substitution (a subshell), so every server's pid goes to a file that
# the trap reads (a shell array filled inside $(...) would stay empty out here).
cleanup() { [ -f "$work/pids" ] && while read -r p; do kill "$p" 2>/dev/null || true; done <"$work/pids"; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >/dev/null &
echo $! >>"$work/pids"

start() { # name store-kind -> prints base URL
  local port cfg
  port=$(free_port); cfg="$work/$1.toml"
  cat > "$cfg" <<TOML
public_url = "http://127.0.0.1:8181"
[policies]
dir = "policies"
[[trust]]
issuer = "https://idp.example.com"
audience = ["storefront"]
jwks = "examples/keys/idp-dev-jwks.json"
[issue]
keys = ["examples/keys/legate-dev.pem"]
[store]
kind = "$2"
url = "redis://127.0.0.1:$rport"
[log]
decisions = "off"
TOML
  "$bin" --config "$cfg" serve --listen "127.0.0.1:$port" >"$work/$1.log" 2>&1 &
  echo $! >>"$work/pids"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  echo "http://127.0.0.1:$port"
}
mem=$(start mem memory)
red=$(start red redis)

idp=$("$bin" --config examples/legate.toml token --key examples/keys/idp-dev-private.pem --sub C-1 --legal-entity LE-1)
exchange() { curl -sf "$1/v1/token/refresh" -H "Authorization: Bearer $idp" -H 'Content-Type: application/json' \
  -d '{"legal_entity_id":"LE-1"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
at_mem=$(exchange "$mem"); at_red=$(exchange "$red")

cat > "$work/authorize.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-9"},"legalEntity":{"type":"LegalEntity","id":"LE-1"}}}}'
LUA
cat > "$work/exchange.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"legal_entity_id":"LE-2"}'
LUA

run() { # label base token script
  local out
  out=$(TOKEN=$3 wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/$4.lua" "$2$5")
  printf '%-18s %s  p50 %s  p99 %s  non2xx %s\n' "$1" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(awk '/Non-2xx/ {print $NF}' <<<"$out" | grep . || echo 0)"
}
for r in $(seq "$rounds"); do
  echo "--- round $r (req/s)"
  run authorize-memory "$mem" "$at_mem" authorize /v1/authorize
  run authorize-redis "$red" "$at_red" authorize /v1/authorize
  run authorize-idp "$mem" "$idp" authorize /v1/authorize
  run exchange-memory "$mem" "$idp" exchange /v1/token/refresh
  run exchange-redis "$red" "$idp" exchange /v1/token/refresh
done
