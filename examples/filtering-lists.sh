#!/usr/bin/env bash
# Filtering lists with one query: ask legate for the plan (POST /v1/plan), then put its SQL fragment
# into the service's own query. Orders list and product list of C-1 acting for LE-1, against a real
# PostgreSQL with the tables of examples/filtering-lists.sql.
#
# Start legate first (from the repository root):  cargo run --release -- serve --config examples/legate.toml
# then:  PLAN_PG="host=127.0.0.1 port=5432 user=postgres dbname=postgres" bash examples/filtering-lists.sh
#
# Settings (not LEGATE_*: those are legate's config keys):
#   PLAN_URL     where legate listens          (default http://127.0.0.1:8181)
#   PLAN_LEGATE  the legate binary, for a token (default target/release/legate)
#   PLAN_PG      a libpq connection string     (default: psql's defaults)
# Needs curl, jq and psql.
set -euo pipefail
cd "$(dirname "$0")/.."
URL=${PLAN_URL:-http://127.0.0.1:8181}
LEGATE=${PLAN_LEGATE:-target/release/legate}
psql=(psql -X -q -v ON_ERROR_STOP=1 ${PLAN_PG:+"$PLAN_PG"})

"${psql[@]}" -f examples/filtering-lists.sql

# A development token from the example identity provider (never use the dev keys in production).
TOKEN=$("$LEGATE" --config examples/legate.toml token --key examples/keys/idp-dev-private.pem \
  --sub C-1 --legal-entity LE-1)

# list TYPE ACTION TABLE: plan, then one query. The fragment only names columns; the values travel
# as parameters: psql's :'pN' variables quote them, a driver binds them ($1, $2, ...).
list() {
  local type=$1 action=$2 table=$3 plan where n args=() vars=()
  plan=$(curl -sf "$URL/v1/plan" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"action\": \"$action\", \"resource\": {\"type\": \"$type\"}}")
  echo "== $action: kind $(jq -r .kind <<<"$plan"), policies $(jq -c .policies <<<"$plan"), errors $(jq -c .errors <<<"$plan")"
  echo "   filter: $(jq -c .filter <<<"$plan")"
  where=$(jq -r .sql.where <<<"$plan")
  echo "   WHERE $where   params $(jq -c .sql.params <<<"$plan")"
  n=$(jq '.sql.params | length' <<<"$plan")
  for ((i = 0; i < n; i++)); do
    # Arrays (text[] columns) become PostgreSQL array literals, every element quoted.
    vars+=(-v "p$((i + 1))=$(jq -r --argjson i "$i" '.sql.params[$i]
      | if type == "array" then "{" + (map("\"" + (tostring | gsub("\\\\"; "\\\\") | gsub("\""; "\\\"")) + "\"") | join(",")) + "}"
        else tostring end' <<<"$plan")")
    args+=(":'p$((i + 1))'")
  done
  local execute="EXECUTE q"
  ((n > 0)) && execute+="($(IFS=,; echo "${args[*]}"))"
  "${psql[@]}" "${vars[@]}" <<SQL
PREPARE q AS SELECT * FROM $table WHERE $where ORDER BY id;
$execute;
SQL
}

list Order listOrders orders
list Product viewProduct products
