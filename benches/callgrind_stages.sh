#!/usr/bin/env bash
# Where the instructions of one POST /v1/authorize go (BENCHMARKS.md, "Decision fast path"): the
# release binary under callgrind, N requests over one keep-alive connection, then inclusive
# instruction counts per stage divided by N. Load-independent, unlike wall-clock figures.
# The same token every time (a token-cache hit, as in steady state); decision log off.
# BATCH=K measures POST /v1/authorize/batch with K viewProduct checks instead (figures per request;
# divide by K for a check).
# Usage: [BATCH=K] [BIN=… EXAMPLES=…] bash benches/callgrind_stages.sh [requests]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
command -v valgrind >/dev/null || { echo "valgrind is missing: bash .ci/run installs it" >&2; exit 1; }
# BIN=<a legate binary> and EXAMPLES=<dir with openloop and hello_baseline> measure those (e.g. an
# earlier commit's) instead of building.
# Built with the `profiling` profile (release without LTO), so the stages keep their own functions.
if [ -z "${BIN:-}" ]; then
  cargo build --profile profiling --quiet --bin legate --example openloop --example hello_baseline
fi
bin=${BIN:-$PWD/target/profiling/legate}
ex=${EXAMPLES:-$PWD/target/profiling/examples}
work=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN=$("$bin" --config examples/legate.toml token --key examples/keys/idp-dev-private.pem --sub C-1 --legal-entity LE-1 --ttl-secs 7200)
path=/v1/authorize
if [ -n "${BATCH:-}" ]; then
  path=/v1/authorize/batch
  python3 -c 'import json,sys; k=int(sys.argv[1]); print(json.dumps({"checks": [{"action": "viewProduct", "resource": {"type": "Product", "id": f"P-{i}", "attrs": {"segments": [{"type": "Segment", "id": ["wholesale", "retail"][i % 2]}]}}} for i in range(k)]}), end="")' "$BATCH" > "$work/body.json"
else
  printf '%s' '{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-1"},"legalEntity":{"type":"LegalEntity","id":"LE-1"}}}}' > "$work/body.json"
fi

rate=400; [ -n "${BATCH:-}" ] && rate=5
measure() { # label server-command...
  local label=$1; shift
  valgrind --tool=callgrind --callgrind-out-file="$work/$label.out" "$@" > /dev/null 2>"$work/$label.err" &
  pid=$!
  for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
  # Warm-up (first-use allocations, the token-cache miss), then the measured requests at a low rate.
  "$ex/openloop" "127.0.0.1:$port" "$path" 50 1 1 "$work/body.json" "$TOKEN" > /dev/null
  callgrind_control -z "$pid" > /dev/null
  "$ex/openloop" "127.0.0.1:$port" "$path" "$rate" "$(awk -v n="$n" -v r="$rate" 'BEGIN {print n/r}')" 1 "$work/body.json" "$TOKEN"
  callgrind_control -d "$pid" > /dev/null
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  # The dump taken right after the measured requests (`-z` zeroed the counters before them).
  local dump; dump=$(ls "$work/$label.out".* | sort -t. -k3 -n | head -1)
  local total; total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
  echo "$label: $(awk -v t="$total" -v n="$n" 'BEGIN {printf "%.0f", t/n}') instructions per request (all threads)"
  echo "$dump" > "$work/$label.path"
}

stage() { # dump pattern label
  local v
  v=$(callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null | { grep -F -- "$2" || true; } | head -1 | awk '{gsub(",","",$1); print $1}')
  printf '  %-44s %8.0f\n' "$3" "$(awk -v t="${v:-0}" -v n="$n" 'BEGIN {print t/n}')"
}

measure hello "$ex/hello_baseline" "127.0.0.1:$port"
LEGATE_LOG=warn LEGATE_LOG__DECISIONS=off measure legate "$bin" --config examples/legate.toml serve --listen "127.0.0.1:$port"
d=$(cat "$work/legate.path")
echo "legate, inclusive per request:"
stage "$d" "legate::server::connection" "whole connection task (HTTP, axum, handler)"
stage "$d" "http/observe.rs:<axum::middleware::from_fn::FromFn" "  observability middleware (incl. inner)"
stage "$d" "legate::http::extract::Verified as axum_core::extract::FromRequestParts" "  token (SHA-256 key, cache hit, revocation)"
stage "$d" "sha2::sha256::compress256" "    SHA-256 of the token (software under valgrind)"
stage "$d" "legate::state::AppState::decider" "  decider: snapshot, entity data, principal"
stage "$d" "legate::request::Base::new" "    request build, shared part (principal)"
stage "$d" "legate::decide::Decider::decide" "  decide (build + evaluate + record)"
stage "$d" "legate::request::Base::build" "    request build, per check"
stage "$d" "legate::policy::evaluate::evaluate" "    evaluate (index + Cedar)"
stage "$d" "cedar_policy::api::Authorizer::is_authorized" "      Cedar is_authorized"
stage "$d" "legate::audit::Audit::decision" "    record (counters, histogram, log)"
stage "$d" "axum::json::Json<T> as axum_core::response::into_response::IntoResponse" "  answer: JSON serialize"
echo "  (the body's JSON parse is inlined into the handler: see criterion stage/body_json)"
