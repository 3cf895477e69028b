#!/usr/bin/env bash
# A suite whose tests come from a generated N-row CSV (default 100,000)
# through `promptgauge run`: wall time, CPU time and peak RSS
# (BENCHMARKS.md). The suite uses a file:// prompt, three __expected
# columns per row and a templated defaultTest assertion.
#
#   bash benches/compare/large-csv.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100000}
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$n" "$work" <<'PY'
import csv, sys
n, work = int(sys.argv[1]), sys.argv[2]
cities = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Quito", "Hanoi", "Dakar"]
with open(f"{work}/tests.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["id", "city", "answer", "__expected", "__expected2", "__expected3", "__description"])
    for i in range(n):
        c = cities[i % len(cities)]
        last = "is-json" if i % 5 else "equals:never"
        w.writerow([i, c, f"ans-{i:06d}", f"contains:{c}", "regex:ans-\\d{6}", last, f"row {i}"])
with open(f"{work}/prompt.txt", "w") as f:
    f.write('{"id": {{id}}, "city": "{{city}}", "answer": "{{answer}}"}\n')
with open(f"{work}/suite.yaml", "w") as f:
    f.write("description: large CSV\nprompts: [file://prompt.txt]\nproviders: [echo]\n"
            "defaultTest:\n  assert:\n    - {type: icontains, value: '{{ city | upper }}'}\n"
            "tests: file://tests.csv\n")
PY
echo "$n CSV rows ($(du -h "$work/tests.csv" | cut -f1)), $(nproc) cores, $(date -u +%Y-%m-%d)"
/usr/bin/time -f "%e %U %S %M" -o "$work/time" env DATABASE_PATH="$work/pg.db" CI=1 \
  target/release/promptgauge run "$work/suite.yaml" >"$work/log" 2>&1 || true
grep -E "^execution" "$work/log" || tail -5 "$work/log"
read -r wall user sys rss < <(tail -n 1 "$work/time")
awk -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" \
  'BEGIN { printf "promptgauge run: %.2f s wall, %.2f s CPU, %d MB peak RSS\n", w, u + s, r / 1024 }'
