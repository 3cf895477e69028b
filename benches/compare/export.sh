#!/usr/bin/env bash
# Whole-execution exports (CSV, JSONL) of N-result executions through the
# HTTP API, to show they are linear: each N is stored once by
# `promptgauge run` (N echo tests; cached under target/tmp/bench/), then a
# release `promptgauge serve` answers GET .../results?format=csv|jsonl,
# timed by curl, best of three (BENCHMARKS.md).
#
#   bash benches/compare/export.sh [N ...]      (default: 100000 1000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000 1000000)
cargo build --release --quiet
cache=target/tmp/bench
mkdir -p "$cache"
echo "$(nproc) cores, $(date -u +%Y-%m-%d)"
for n in "${sizes[@]}"; do
  db="$cache/export-$n.db"
  if [ ! -s "$db" ]; then
    work=$(mktemp -d)
    python3 - "$n" "$work" <<'PY'
import json, sys
n, work = int(sys.argv[1]), sys.argv[2]
outer = n // 1000
suite = {"description": f"export {n}", "prompts": ["Item {{a}}-{{b}}"], "providers": ["echo"],
         "tests": [{"vars": {"a": [str(i) for i in range(1000)], "b": [str(j) for j in range(outer)]},
                    "assert": [{"type": "contains", "value": "Item"}, {"type": "regex", "value": "\\d+-\\d+"}]}]}
json.dump(suite, open(f"{work}/suite.json", "w"))
PY
    rm -f "$db" "$db-wal" "$db-shm"
    env DATABASE_PATH="$db" CI=1 MAX_CONCURRENT_TESTS=200 \
      target/release/promptgauge run "$work/suite.json" -j 200 >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  env DATABASE_PATH="$db" PORT="$port" RUST_LOG=warn PERFORMANCE_MONITORING_INTERVAL=3600000 \
    target/release/promptgauge serve >/dev/null 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -sf "127.0.0.1:$port/api/performance/health" >/dev/null && break; sleep 0.1; done
  id=$(curl -s "127.0.0.1:$port/api/executions?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
  for format in csv jsonl; do
    best=""
    for _ in 1 2 3; do
      t=$(curl -s -o "$cache/export.out" -w '%{time_total}' "127.0.0.1:$port/api/executions/$id/results?format=$format")
      best=$(python3 -c "print(min(float('$t'), float('${best:-inf}')))")
    done
    rows=$(wc -l <"$cache/export.out")
    size=$(du -h "$cache/export.out" | cut -f1)
    printf '%s results, %s: %.2f s (%s lines, %s)\n' "$n" "$format" "$best" "$rows" "$size"
  done
  rm -f "$cache/export.out"
  kill "$server"; wait "$server" 2>/dev/null || true
done
