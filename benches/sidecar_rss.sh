#!/usr/bin/env bash
# Memory of the release binary, for sizing the sidecar's requests and limits in
# deploy/kubernetes/deployment.yaml: resident set (VmRSS) and its peak so far (VmHWM) from
# /proc/<pid>/status after start, under wrk load (single checks, 100-check batches, forward-auth),
# while policies reload every 100 ms, and with 100, 300 and 1,000 extra policies loaded by a reload.
# Not 10,000: with this version that took 12 GiB (memory grows with the square of the policy count).
# Decision log as in the manifests (stderr, one allow in ten) sent to /dev/null.
# Usage: bash benches/sidecar_rss.sh [SECONDS_PER_PHASE] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
conns=${2:-16}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q
bin=target/release/legate
work=$(mktemp -d)
pid=""
storm=""
cleanup() {
  [ -n "$storm" ] && kill "$storm" 2>/dev/null || true
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cp -r policies "$work/policies"
rm -rf "$work/policies/tests"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
LEGATE_POLICIES__DIR="$work/policies" LEGATE_LOG__ALLOW_SAMPLE_RATE=0.1 LEGATE_LOG=warn \
  "$bin" --config examples/legate.toml serve --listen "127.0.0.1:$port" 2>/dev/null &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done

mem() {
  awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {printf "RSS %5.1f MiB  peak %5.1f MiB", r/1024, h/1024}' \
    "/proc/$pid/status"
}
say() { printf '%-44s %s\n' "$1" "$(mem)"; }
say "started, idle"

token=$("$bin" --config examples/legate.toml token --key examples/keys/idp-dev-private.pem \
          --sub C-1 --legal-entity LE-1)
check='{"action":"viewOrder","resource":{"type":"Order","id":"O-1","attrs":{"owner":{"type":"Customer","id":"C-2"},"legalEntity":{"type":"LegalEntity","id":"LE-1"}}}}'
batch=$(python3 -c "import sys; c=sys.argv[1]; print('{\"checks\":[' + ','.join([c]*100) + ']}')" "$check")
cat >"$work/authorize.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = '$check'
LUA
cat >"$work/batch.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $token"
wrk.body = '$batch'
LUA
cat >"$work/forward.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $token"
wrk.headers["X-Forwarded-Method"] = "GET"
wrk.headers["X-Forwarded-Uri"] = "/catalog/wholesale/P-1"
LUA

load() {
  local name=$1 script=$2 path=$3 c=$4
  local rps
  rps=$(wrk -t2 -c"$c" -d"${secs}s" -s "$work/$script" "$base$path" | awk '/Requests\/sec/ {print $2}')
  say "$name, $c conns ($rps req/s)"
}
load "/v1/authorize" authorize.lua /v1/authorize "$conns"
load "/v1/authorize/batch (100 checks)" batch.lua /v1/authorize/batch "$conns"
load "/v1/forward-auth" forward.lua /v1/forward-auth "$conns"
load "/v1/authorize" authorize.lua /v1/authorize 64

# Reload storm: orders.cedar rewritten every 100 ms between two valid versions, under load.
cp "$work/policies/orders.cedar" "$work/orders.a"
{ cat "$work/orders.a"; echo "// b"; } >"$work/orders.b"
(
  while true; do
    cp "$work/orders.b" "$work/policies/orders.cedar"; sleep 0.1
    cp "$work/orders.a" "$work/policies/orders.cedar"; sleep 0.1
  done
) &
storm=$!
load "/v1/authorize during reloads" authorize.lua /v1/authorize "$conns"
kill "$storm"; storm=""

# Larger policy sets, loaded by a reload while the old set still serves.
for n in 100 300 1000; do
  python3 - "$n" >"$work/policies/many.cedar" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f'@id("many-{i}")\npermit (principal == Shop::Customer::"X-{i}", action == Shop::Action::"viewOrder", resource is Shop::Order);')
PY
  want=$((n + 5))
  for _ in $(seq 600); do
    got=$(curl -sf "$base/v1/policies" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["policies"]))' || echo 0)
    [ "$got" = "$want" ] && break
    sleep 0.1
  done
  say "$n extra policies loaded ($got in all)"
  load "/v1/authorize with $n extra policies" authorize.lua /v1/authorize "$conns"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
