#!/usr/bin/env bash
# Call 8 (final code): NormalizationGpuTest with the lattice kept off each channel's mean, and the sorting tests.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
"$B/run.sh" test --select-class dev.kiln.cuda.NormalizationGpuTest --select-class dev.kiln.cuda.SortingGpuTest > "$O/norm-sorting-tests.txt" 2>&1; echo "tests exit $?"
grep -E "tests (successful|failed)|✘" "$O/norm-sorting-tests.txt" | head -20
