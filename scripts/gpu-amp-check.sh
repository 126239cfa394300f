#!/usr/bin/env bash
# Copy into a bundle folder (scripts/gpu-bundle.sh DEST, Fashion-MNIST in DEST/fmnist) and run there.
# The mixed-precision checks on a GPU machine: AmpGpuTest, kiln train --precision fp32/bf16/fp16 on Fashion-MNIST
# (cnn, 1 epoch), and the bench's fp32/bf16 training keys. Logs under $OUT.
H=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-/tmp/amp-out}
mkdir -p "$OUT"
nvidia-smi -L > "$OUT/gpu.txt" 2>&1
timeout ${TEST_S:-120} "$H/run.sh" test --include-classname '.*AmpGpuTest' > "$OUT/test.log" 2>&1; echo "rc $?" >> "$OUT/test.log"
tail -25 "$OUT/test.log"
for p in ${PRECISIONS:-fp32 bf16 fp16}; do
    timeout 60 "$H/run.sh" kiln train --device cuda --precision $p --epochs 1 --data "$H/fmnist" --out /tmp/run-$p --json > "$OUT/train-$p.log" 2>&1
    echo "rc $?" >> "$OUT/train-$p.log"
    tail -4 "$OUT/train-$p.log"
done
timeout ${BENCH_S:-70} "$H/run.sh" kiln bench --device cuda --only ${BENCH_ONLY:-mlp,cnn,cifar} --json > "$OUT/bench.log" 2>&1; echo "rc $?" >> "$OUT/bench.log"
tail -5 "$OUT/bench.log"
