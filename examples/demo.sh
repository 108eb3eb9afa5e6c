#!/usr/bin/env bash
# The story of the example data, from a newcomer's shell:
#   log in at the identity provider -> ask legate who I am -> select a legal entity -> see its orders
#   -> switch to another entity with the refresh token -> see the product list change.
#
# Start legate first, from the repository root, in another shell:
#   cargo run --release -- serve --config examples/legate.toml
# then run:
#   bash examples/demo.sh
#
# Needs curl, and jq or python3 to read JSON. Settings (not LEGATE_*: those are legate's config keys):
#   DEMO_URL     where legate listens   (default http://127.0.0.1:8181)
#   DEMO_LEGATE  the legate binary      (default: target/release/legate, else `cargo run -q --release --`)
set -euo pipefail
cd "$(dirname "$0")/.."

URL=${DEMO_URL:-http://127.0.0.1:8181}
CONFIG=examples/legate.toml

if [ -n "${DEMO_LEGATE:-}" ]; then
  legate() { "$DEMO_LEGATE" "$@"; }
elif [ -x target/release/legate ]; then
  legate() { target/release/legate "$@"; }
else
  legate() { cargo run -q --release -- "$@"; }
fi

# json FIELD: reads JSON on stdin and prints FIELD (a top-level key) as plain text.
if command -v jq >/dev/null; then
  json() { jq -rc ".$1"; }
  pretty() { jq .; }
elif command -v python3 >/dev/null; then
  json() { python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print(v if isinstance(v,str) else json.dumps(v))' "$1"; }
  pretty() { python3 -m json.tool; }
else
  echo "demo.sh needs jq or python3 to read JSON" >&2
  exit 1
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say() { printf '   %s\n' "$*"; }

# call METHOD PATH TOKEN [BODY]: prints the response body; fails loudly on an unexpected status.
call() {
  local method=$1 path=$2 token=$3 body=${4:-} out status
  local args=(-s -o /tmp/legate-demo.$$ -w '%{http_code}' -X "$method" "$URL$path")
  [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' -d "$body")
  status=$(curl "${args[@]}")
  out=$(cat /tmp/legate-demo.$$)
  rm -f /tmp/legate-demo.$$
  if [ "${EXPECT_STATUS:-200}" != "$status" ]; then
    echo "$method $path answered $status, expected ${EXPECT_STATUS:-200}:" >&2
    echo "$out" >&2
    exit 1
  fi
  echo "$out"
}

curl -sf "$URL/healthz" >/dev/null || {
  echo "legate is not answering at $URL; start it with:" >&2
  echo "  cargo run --release -- serve --config $CONFIG" >&2
  exit 1
}

order() { # order ID OWNER LEGAL_ENTITY
  echo "{\"action\": \"viewOrder\", \"resource\": {\"type\": \"Order\", \"id\": \"$1\", \"attrs\": {\"owner\": {\"type\": \"Customer\", \"id\": \"$2\"}, \"legalEntity\": {\"type\": \"LegalEntity\", \"id\": \"$3\"}}}}"
}
product() { # product ID SEGMENT...  (no segment: public)
  local id=$1 segs="" s
  shift
  for s in "$@"; do segs="$segs${segs:+, }{\"type\": \"Segment\", \"id\": \"$s\"}"; done
  echo "{\"action\": \"viewProduct\", \"resource\": {\"type\": \"Product\", \"id\": \"$id\", \"attrs\": {\"segments\": [$segs]}}}"
}
CATALOGUE="{\"checks\": [$(product P-1), $(product P-2 wholesale), $(product P-3 retail), $(product P-4 wholesale retail)]}"
show_products() { # show_products TOKEN
  local answer
  answer=$(call POST /v1/authorize/batch "$1" "$CATALOGUE")
  echo "$answer" | json results | {
    if command -v jq >/dev/null; then jq -r 'to_entries[] | "\(.key) \(.value.decision) \(.value.policies | join(","))"'
    else python3 -c 'import json,sys; [print(i, r["decision"], ",".join(r["policies"])) for i, r in enumerate(json.load(sys.stdin))]'
    fi
  } | while read -r i decision why; do
    name=("P-1 (public)" "P-2 (wholesale)" "P-3 (retail)" "P-4 (wholesale+retail)")
    say "${name[$i]}: $decision${why:+  by $why}"
  done
}

step "1. Log in at the identity provider: customer C-1, no legal entity chosen yet"
say "(the pretend IdP's DEV key signs it: examples/keys/idp-dev-private.pem)"
LOGIN=$(legate --config "$CONFIG" token --key examples/keys/idp-dev-private.pem --sub C-1)
say "token: ${LOGIN:0:40}..."

step "2. GET /v1/me: who am I, and which legal entities may I act for?"
call GET /v1/me "$LOGIN" | pretty

step "3. POST /v1/token/refresh with the login token: select LE-1 (Acme Wholesale)"
SELECTED=$(call POST /v1/token/refresh "$LOGIN" '{"legal_entity_id": "LE-1"}')
ACCESS=$(echo "$SELECTED" | json access_token)
REFRESH=$(echo "$SELECTED" | json refresh_token)
say "legal_entity_id: $(echo "$SELECTED" | json legal_entity_id), expires_in: $(echo "$SELECTED" | json expires_in)s"
say "the new access token carries legalEntityId = LE-1; /v1/me now says:"
call GET /v1/me "$ACCESS" | json legal_entity_id | sed 's/^/   legal_entity_id: /'

step "4. POST /v1/authorize: orders, as C-1 acting for LE-1"
for o in "O-100 C-2 LE-1" "O-200 C-2 LE-2" "O-300 C-1 LE-3"; do
  set -- $o
  a=$(call POST /v1/authorize "$ACCESS" "$(order "$1" "$2" "$3")")
  say "order $1 (owner $2, entity $3): $(echo "$a" | json decision) $(echo "$a" | json policies)"
done
say "O-100 is LE-1's (entity-orders); O-200 is LE-2's, not selected; O-300 is C-1's own (own-orders)"

step "5. POST /v1/authorize/batch: the product list for LE-1 (segment wholesale)"
show_products "$ACCESS"

step "6. Switch to LE-2 (Acme Retail) with the refresh token: no new login"
SWITCHED=$(call POST /v1/token/refresh "" "{\"refresh_token\": \"$REFRESH\", \"legal_entity_id\": \"LE-2\"}")
ACCESS2=$(echo "$SWITCHED" | json access_token)
say "legal_entity_id: $(echo "$SWITCHED" | json legal_entity_id)"

step "7. The product list for LE-2 (segment retail) has changed"
show_products "$ACCESS2"

step "8. What legate refuses"
say "the used refresh token again (rotation: each is good once; reuse revokes the family):"
EXPECT_STATUS=400 call POST /v1/token/refresh "" "{\"refresh_token\": \"$REFRESH\", \"legal_entity_id\": \"LE-1\"}" | sed 's/^/   /'
say "an entity C-1 is not assigned to (LE-3, Globex):"
EXPECT_STATUS=403 call POST /v1/token/refresh "$LOGIN" '{"legal_entity_id": "LE-3"}' | sed 's/^/   /'
say "a forged token:"
EXPECT_STATUS=401 call POST /v1/authorize "${LOGIN%.*}.AAAA" "$(order O-100 C-2 LE-1)" | sed 's/^/   /'

step "Done. Metrics of what just happened: $URL/metrics (legate_decisions_total, legate_tokens_issued_total, ...)"
