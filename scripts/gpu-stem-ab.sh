#!/usr/bin/env bash
# TEMPORARY (branch gpu-experiments): one GPU call for the stem tail's fused backward. Prepare with
#   scripts/gpu-check.sh --prepare .gpu-run && cp scripts/gpu-stem-ab.sh .gpu-run/
# then run `bash .gpu-run/gpu-stem-ab.sh` with .gpu-run carried. Results under $OUT/r (and $OUT/r.tgz).
B=$(cd "$(dirname "$0")" && pwd); R=${OUT:-/tmp/kiln-out}/r; mkdir -p "$R"
pack() { tar -C "$(dirname "$R")" -czf "$(dirname "$R")/r.tgz" r; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$R/gpu.txt"
(cd "$B" && tar -xJf fmnist.tar.xz)
timeout 200 "$B/run.sh" test --select-class dev.kiln.cuda.NormalizationGpuTest --select-class dev.kiln.cuda.PoolingGpuTest \
    --select-class dev.kiln.cuda.GraphGpuTest --select-class dev.kiln.cuda.OptimGpuTest \
    --select-class dev.kiln.train.TrainerGraphGpuTest > "$R/tests.txt" 2>&1; echo "tests exit $? at ${SECONDS}s"
grep -E "tests (successful|failed|skipped|aborted)|MethodSource|=>" "$R/tests.txt" | head -30; pack
W=resnet18_224_b64_fp32,resnet18_224_b64_bf16,resnet50
for v in fused ops; do
    KILN_STEM_BACKWARD=$v timeout 120 "$B/run.sh" kiln bench --device cuda --cuda-graphs --only $W --json --data "$B/fmnist" 2>/dev/null \
        | grep -v '^bench:' > "$R/kiln-$v.json"; grep graphed "$R/kiln-$v.json"; echo "bench $v at ${SECONDS}s"
done
PYTHONUNBUFFERED=1 timeout 200 python3 "$B/ref/torch_ref.py" --only $W --compiled > "$R/torch.json" 2> "$R/torch.log"
echo "torch at ${SECONDS}s"
for v in fused ops; do python3 "$B/ref/compare.py" "$R/kiln-$v.json" "$R/torch.json" | tee "$R/compare-$v.txt"; done; pack
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
timeout 100 "$NCU" --clock-control none --cache-control none --section SpeedOfLight --kernel-name regex:'batch_norm_relu' \
    --launch-skip 6 --launch-count 4 "$B/run.sh" kiln bench --device cuda --only resnet18_224_b64_fp32 --json > "$R/ncu.txt" 2>&1
grep -E "batch_norm_relu|Duration|DRAM Throughput" "$R/ncu.txt"; echo "ncu at ${SECONDS}s"; pack
