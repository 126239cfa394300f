#!/usr/bin/env bash
# Call 4: the select's passes cut to each type's bits: the sorting tests, then sorting beside PyTorch.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
"$B/run.sh" test --select-class dev.kiln.cuda.SortingGpuTest > "$O/sorting-tests.txt" 2>&1; echo "sorting tests exit $?"
grep -E "tests (successful|failed)|✘" "$O/sorting-tests.txt" | head -10
"$B/run.sh" bench sorting > "$O/kiln-sorting.txt" 2>&1; echo "kiln bench exit $?"; tail -7 "$O/kiln-sorting.txt"
python3 "$B/ref/torch_sorting.py" > "$O/torch-sorting.txt" 2>&1; echo "torch exit $?"; cat "$O/torch-sorting.txt"
