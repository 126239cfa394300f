#!/usr/bin/env bash
# Call 2: the radix sort as one pass a launch (decoupled look-back): the sorting tests, then sorting beside PyTorch
# (the default threshold, radix only, bitonic wherever rows fit a block).
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
"$B/run.sh" test --select-class dev.kiln.cuda.SortingGpuTest > "$O/sorting-tests.txt" 2>&1; echo "sorting tests exit $?"
grep -E "tests (successful|failed)|✘|expected" "$O/sorting-tests.txt" | head -20
{
for m in default 0 100000000; do
  echo "== kiln.sort.small.max=$m"
  if [ $m = default ]; then "$B/run.sh" bench sorting; else "$B/run.sh" java -Dkiln.sort.small.max=$m dev.kiln.cuda.CudaBench sorting; fi 2>&1 | grep -E "argsort|topk|cumsum|Exception|at dev"
done
echo "== PyTorch"; python3 "$B/ref/torch_sorting.py" 2>&1
} > "$O/sorting-bench.txt"; cat "$O/sorting-bench.txt"
