#!/usr/bin/env bash
# Call 6: ConvolutionGpuTest (transposed convolution, upsample + pad) and SortingGpuTest at the last code.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
"$B/run.sh" test --select-class dev.kiln.cuda.ConvolutionGpuTest --select-class dev.kiln.cuda.SortingGpuTest > "$O/tests.txt" 2>&1; echo "tests exit $?"
grep -E "tests (successful|failed)|✘" "$O/tests.txt" | head -10
