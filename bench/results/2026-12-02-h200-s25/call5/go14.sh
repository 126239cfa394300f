#!/usr/bin/env bash
# session 25 call 5 (review): gradientFor reduced to contiguous-or-heads; AttentionGpuTest + TransformerGpuTest, attention rows
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest --select-class dev.kiln.cuda.TransformerGpuTest > $R/att-tests.txt 2>&1; echo "tests exit $?"
grep -E "tests (successful|failed)|✘" $R/att-tests.txt | head -20
"$B/run.sh" kiln bench --device cuda --json --only attention_b > $R/kiln-att.json 2> $R/kiln-att.log; grep "bench:.*bf16_fwd" $R/kiln-att.log
