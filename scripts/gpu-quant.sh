#!/usr/bin/env bash
# Issue 17's table rows of one model on the GPU: fp32, bf16, int8, FP8, 50% pruned and 2:4 (accuracy on all 10,000 test
# images, size on disk, batch 1 / 256 inference), the pipeline of bench/results/quant-2026-12-01.md, in one call:
#   prepare here:      scripts/gpu-check.sh --prepare DIR   (copies this script into DIR)
#   on the GPU:        DIR/gpu-quant.sh DIR [MODEL] [EPOCHS]     (default resnet-small 1; results under $OUT)
# With RUNS=DIR holding fp32/, pruned50/ and 2of4/ run folders (model.safetensors each, e.g. the checkpoints the CPU rows
# used, copied into the bundle), it quantizes and measures those instead of training: the GPU and CPU rows then share models.
set -u
B=$(cd "${1:?usage: gpu-quant.sh BUNDLE_DIR [MODEL] [EPOCHS]}" && pwd)
M=${2:-resnet-small}
E=${3:-1}
O=${OUT:-/tmp/kiln-out}
W=/tmp/kiln-quant/$M
mkdir -p "$O" "$W"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$O/gpu.txt"
K="$B/run.sh kiln"
[ -d "$B/fmnist" ] || tar -C "$B" -xJf "$B/fmnist.tar.xz"
if [ -n "${RUNS:-}" ]; then
    for v in fp32 pruned50 2of4; do rm -rf "$W/$v"; cp -r "$RUNS/$v" "$W/$v"; done
else
    rm -rf "$W/fp32" "$W/pruned50" "$W/2of4"
    $K train --device cuda --model "$M" --epochs "$E" --data "$B/fmnist" --out "$W/fp32" --json > "$O/$M-train.txt" 2>&1
    echo "train exit $?"; tail -1 "$O/$M-train.txt"
    $K prune "$W/fp32" --amount 0.5 --scope global --finetune-epochs 1 --out "$W/pruned50" > "$O/$M-prune50.txt" 2>&1
    echo "prune 50% exit $?"; tail -1 "$O/$M-prune50.txt"
    $K prune "$W/fp32" --amount 0.5 --structured 2:4 --finetune-epochs 1 --out "$W/2of4" > "$O/$M-prune24.txt" 2>&1
    echo "prune 2:4 exit $?"; tail -1 "$O/$M-prune24.txt"
fi
for f in int8 fp8; do
    $K quantize "$W/fp32" --$f --calibrate 8 --data "$B/fmnist" > "$O/$M-quantize-$f.txt" 2>&1
    echo "quantize $f exit $?"; tail -1 "$O/$M-quantize-$f.txt"
    $K eval "$W/fp32/model-$f.safetensors" --device cuda --data "$B/fmnist" --json > "$O/$M-eval-cuda-$f.txt" 2>&1
    echo "eval cuda $f exit $?"; tail -1 "$O/$M-eval-cuda-$f.txt"
done
"$B/run.sh" java dev.kiln.bench.QuantBench --device cuda --data "$B/fmnist" --label "$M" fp32="$W/fp32/model.safetensors" \
    int8="$W/fp32/model-int8.safetensors" fp8="$W/fp32/model-fp8.safetensors" pruned50="$W/pruned50/model.safetensors" \
    2:4="$W/2of4/model.safetensors" > "$O/bench-$M.txt" 2> "$O/bench-$M.log"
echo "QuantBench exit $?"; cat "$O/bench-$M.txt"
tar -C /tmp/kiln-quant -czf "$O/$M-checkpoints.tar.gz" "$M"
