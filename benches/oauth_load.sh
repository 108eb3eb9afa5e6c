#!/usr/bin/env bash
# Load run for OAuth conformance (issue 12), against the release binary on loopback (needs wrk and
# openssl; build first with `cargo build --release`). Token exchange at POST /oauth2/token with an
# identity provider's RS256 token, in three set-ups that differ in one thing each:
#   es256-public     P-256 issuing key (the new default), no [[clients]]
#   eddsa-public     Ed25519 issuing key (the old default), no [[clients]]
#   es256-basic      P-256 key, one [[clients]] entry, client_secret_basic on every request
# plus /v1/authorize with an access token of each key (verification of legate's own tokens).
# Rounds are interleaved; compare medians within one run.
# Usage: benches/oauth_load.sh [rounds=3] [seconds=8] [connections=16]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} secs=${2:-8} conns=${3:-16}
bin=target/release/legate
work=$(mktemp -d)
# start() runs in a command substitution (a subshell), so the servers' pids go to a file.
cleanup() { [ -f "$work/pids" ] && while read -r p; do kill "$p" 2>/dev/null || true; done <"$work/pids"; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

openssl genpkey -algorithm ED25519 -out "$work/ed.pem" 2>/dev/null
secret=bench-secret
hash=$(printf %s "$secret" | sha256sum | cut -d' ' -f1)

start() { # name key clients(yes|no) -> prints base URL
  local port cfg
  port=$(free_port); cfg="$work/$1.toml"
  cat > "$cfg" <<TOML
public_url = "http://127.0.0.1:$port"
[policies]
dir = "policies"
[[trust]]
issuer = "https://idp.example.com"
audience = ["storefront"]
jwks = "examples/keys/idp-dev-jwks.json"
[issue]
keys = ["$2"]
[log]
decisions = "off"
level = "warn"
TOML
  if [ "$3" = yes ]; then printf '[[clients]]\nid = "shop"\nsecret_sha256 = "%s"\n' "$hash" >> "$cfg"; fi
  "$bin" --config "$cfg" serve --listen "127.0.0.1:$port" >"$work/$1.log" 2>&1 &
  echo $! >>"$work/pids"
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  echo "http://127.0.0.1:$port"
}
es=$(start es examples/keys/legate-dev.pem no)
ed=$(start ed "$work/ed.pem" no)
basic=$(start basic examples/keys/legate-dev.pem yes)

idp=$("$bin" --config examples/legate.toml token --key examples/keys/idp-dev-private.pem --sub C-1 --legal-entity LE-1)
at() { curl -sf "$1/oauth2/token" -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
  -d subject_token_type=urn:ietf:params:oauth:token-type:access_token -d "subject_token=$idp" | \
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
at_es=$(at "$es"); at_ed=$(at "$ed")

cat > "$work/exchange.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
if os.getenv("BASIC") ~= "" then wrk.headers["Authorization"] = "Basic " .. os.getenv("BASIC") end
wrk.body = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange" ..
  "&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token" ..
  "&legal_entity_id=LE-2&subject_token=" .. os.getenv("TOKEN")
LUA
cat > "$work/authorize.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
wrk.body = '{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-9"},"legalEntity":{"type":"LegalEntity","id":"LE-1"}}}}'
LUA

run() { # label base token script path [basic]
  local out
  out=$(TOKEN=$3 BASIC=${6:-} wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$work/$4.lua" "$2$5")
  printf '%-18s %s  p50 %s  p99 %s  non2xx %s\n' "$1" \
    "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(awk '/Non-2xx/ {print $NF}' <<<"$out" | grep . || echo 0)"
}
b64=$(printf 'shop:%s' "$secret" | base64)
for r in $(seq "$rounds"); do
  echo "--- round $r (req/s)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
  run es256-public "$es" "$idp" exchange /oauth2/token
  run eddsa-public "$ed" "$idp" exchange /oauth2/token
  run es256-basic "$basic" "$idp" exchange /oauth2/token "$b64"
  run authorize-es256 "$es" "$at_es" authorize /v1/authorize
  run authorize-eddsa "$ed" "$at_ed" authorize /v1/authorize
done
