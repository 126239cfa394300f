#!/usr/bin/env bash
# session 28 call 1: where batch-256 ResNet inference goes - Kiln's infer rows beside torch_infer.py (eager and
# torch.compile), Nsight Compute over one Kiln resnet50 b256 prediction, PyTorch's profiler over its forwards; and the
# float32 attention kernels launched heaviest causal tiles of every head first (harness-lpt against harness-new)
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
for h in new lpt; do "$B/harness-$h" > $R/harness-$h.txt 2>&1; echo "harness $h exit $?"; cat $R/harness-$h.txt; done
"$B/run.sh" kiln bench --device cuda --only infer_resnet18,infer_resnet50 --json > $R/kiln-infer.json 2> $R/kiln-infer.log; echo "kiln infer exit $? at $(( $(date +%s)-T0 ))s"; cat $R/kiln-infer.json
python3 "$B/ref/torch_infer.py" --only resnet18,resnet50 --no-ort > $R/torch-infer.json 2> $R/torch-infer.log; echo "torch infer exit $? at $(( $(date +%s)-T0 ))s"; cat $R/torch-infer.json
(cd $R && tar czf first.tgz --exclude='*.tgz' *)
timeout 200 /usr/local/cuda/bin/ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv \
  "$B/run.sh" bench infer-resnet50 > $R/ncu.csv 2> $R/ncu.log; echo "ncu exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ncu_infer.py" $R/ncu.csv "Kiln resnet50 b256 fp32 prediction" > $R/ncu-infer.txt 2>&1; head -40 $R/ncu-infer.txt; gzip $R/ncu.csv
"$B/run.sh" bench infer-resnet50 > $R/bench-infer50.txt 2>&1; grep infer $R/bench-infer50.txt
(cd $R && tar czf second.tgz --exclude='*.tgz' *)
L=$(( 560 - ($(date +%s) - T0) )); echo "torch profile gets ${L}s"
timeout $L python3 "$B/ref/torch_infer_profile.py" --only resnet50,resnet18 > $R/torch-profile.txt 2> $R/torch-profile.log; echo "torch profile exit $?"; cat $R/torch-profile.txt
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
