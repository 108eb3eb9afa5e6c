#!/usr/bin/env bash
# Writes a policy directory: the shipped policies/ plus N generated per-customer policies
# (`permit (principal == Shop::Customer::"C-i", action == Shop::Action::"viewOrder", resource)
# when { resource.owner == principal };`) spread over FILES files (default 1: the one-big-file shape
# of policies generated from a customer database). Usage: bash benches/gen_policies.sh N DIR [FILES]
set -euo pipefail
n=$1; dir=$2; files=${3:-1}
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$dir"
find "$root/policies" -maxdepth 1 -type f -exec cp {} "$dir/" \;
[ "$n" -gt 0 ] || exit 0
awk -v n="$n" -v files="$files" -v dir="$dir" 'BEGIN {
  per = int((n + files - 1) / files)
  for (i = 0; i < n; i++) {
    f = sprintf("%s/generated-%d.cedar", dir, int(i / per))
    printf "@id(\"gen-%d\")\npermit (principal == Shop::Customer::\"C-%d\", action == Shop::Action::\"viewOrder\", resource)\nwhen { resource.owner == principal };\n", i, i > f
  }
}'
