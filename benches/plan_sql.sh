#!/usr/bin/env bash
# The SQL of /v1/plan on 1,000,000 generated orders in a real PostgreSQL 15 (own cluster in a temp
# dir, fsync off, a free loopback port), with indexes on owner_id and legal_entity_id: EXPLAIN
# ANALYZE of the fragment `legate plan` generates for C-1 acting for LE-1, and its execution time
# against the hand-written equivalent, interleaved ROUNDS times, medians printed.
#
# Usage: bash benches/plan_sql.sh [ROUNDS] [LEGATE_BINARY]   (default: 15 rounds, target/release/legate)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-15}
bin=${2:-target/release/legate}
[[ -x $bin ]] || cargo build --release --quiet
pgbin=/usr/lib/postgresql/15/bin
[[ -x $pgbin/initdb ]] || { echo "PostgreSQL 15 is not installed (bash .ci/run installs it)" >&2; exit 1; }
work=$(mktemp -d)
as_pg=()
if [[ $(id -u) == 0 ]]; then chown postgres: "$work"; as_pg=(runuser -u postgres --); fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$pgbin/initdb" -D "$work/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -l "$work/log" -w \
  -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work -c fsync=off -c synchronous_commit=off" start >/dev/null
trap '"${as_pg[@]}" "$pgbin/pg_ctl" -D "$work/data" -m immediate stop >/dev/null; rm -rf "$work"' EXIT
psql=(psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1)

# 10,000 customers, 1,000 legal entities (a fifth of the orders have none), five statuses.
"${psql[@]}" <<'SQL'
CREATE TABLE orders (id bigint PRIMARY KEY, owner_id text NOT NULL, legal_entity_id text, status text);
INSERT INTO orders
SELECT i, 'C-' || (i * 7919 % 10000),
       CASE WHEN i % 5 = 0 THEN NULL ELSE 'LE-' || (i * 104729 % 1000) END,
       (ARRAY['open','shipped','cancelled','returned','open-late'])[1 + i % 5]
FROM generate_series(1::bigint, 1000000) AS i;
CREATE INDEX orders_owner ON orders (owner_id);
CREATE INDEX orders_legal_entity ON orders (legal_entity_id);
VACUUM ANALYZE orders;
SQL

answer=$("$bin" --config examples/legate.toml plan --claims '{"sub":"C-1","legalEntityId":"LE-1"}' \
  --action listOrders --type Order policies)
where=$(jq -r .sql.where <<<"$answer")
params=$(jq -r '.sql.params | map("'"'"'" + . + "'"'"'") | join(", ")' <<<"$answer")
echo "generated fragment: $where"
echo "params: $params"
hand="owner_id = 'C-1' OR legal_entity_id = 'LE-1'"

prep="PREPARE generated AS SELECT id FROM orders WHERE $where;"
run_gen="EXPLAIN (ANALYZE, TIMING OFF) EXECUTE generated($params);"
run_hand="EXPLAIN (ANALYZE, TIMING OFF) SELECT id FROM orders WHERE $hand;"

echo; echo "== EXPLAIN ANALYZE, generated fragment"
"${psql[@]}" -c "SET plan_cache_mode = force_custom_plan;" -c "$prep" -c "EXPLAIN (ANALYZE, BUFFERS) EXECUTE generated($params);"
echo "== EXPLAIN ANALYZE, hand-written: WHERE $hand"
"${psql[@]}" -c "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM orders WHERE $hand;"
rows_gen=$("${psql[@]}" -At -c "$prep" -c "EXECUTE generated($params);" | wc -l)
rows_hand=$("${psql[@]}" -At -c "SELECT id FROM orders WHERE $hand;" | wc -l)
echo "rows: generated $rows_gen, hand-written $rows_hand"

exec_ms() { grep -o 'Execution Time: [0-9.]*' | awk '{print $3}'; }
gen=(); hnd=()
for ((r = 0; r < rounds; r++)); do
  gen+=("$("${psql[@]}" -At -c "SET plan_cache_mode = force_custom_plan;" -c "$prep" -c "$run_gen" | exec_ms)")
  hnd+=("$("${psql[@]}" -At -c "$run_hand" | exec_ms)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo; echo "execution time over $rounds interleaved rounds, medians: generated $(median "${gen[@]}") ms, hand-written $(median "${hnd[@]}") ms"
uptime
