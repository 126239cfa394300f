#!/usr/bin/env bash
# call 5: sorting.cu's one block scan (SortingGpuTest, sorting bench beside PyTorch); the kernels of one attention step
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
"$B/run.sh" test --select-class dev.kiln.cuda.SortingGpuTest > $R/sort-test.txt 2>&1; echo "test exit $?"
grep -E "tests (successful|failed)|✘|=>" $R/sort-test.txt | head -20
"$B/run.sh" bench sorting > $R/sort-bench.txt 2>&1; echo "sort bench exit $?"; grep -v WARN $R/sort-bench.txt | tail -12
python3 "$B/ref/torch_sorting.py" > $R/torch-sort.txt 2>&1; tail -12 $R/torch-sort.txt
/usr/local/cuda/bin/ncu --target-processes all --launch-skip 400 --launch-count 40 --metrics gpu__time_duration.sum \
  "$B/run.sh" kiln bench --device cuda --json --only attention_b64_h6_t256_d64_bf16_fwd_bwd_ms > $R/trace.txt 2>&1; echo "trace exit $?"
grep -E "^  [a-zA-Z_].*\(|gpu__time_duration" $R/trace.txt | paste - - | awk '{print $1, $(NF)}' | head -45
