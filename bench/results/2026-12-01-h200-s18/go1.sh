#!/usr/bin/env bash
# Session 18: the whole GPU suite on this session's main, and kiln bench's --only check on CUDA, beside torch_ref.py
B=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p $R
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
(cd $B && tar -xJf fmnist.tar.xz)
python3 $B/ref/resnet_interop.py /tmp/kiln-interop > $R/interop.txt 2>&1 || echo "interop failed"
KILN_INTEROP_DIR=/tmp/kiln-interop timeout 420 $B/run.sh test --select-package dev.kiln.cuda --select-class dev.kiln.train.TrainerGraphGpuTest > $R/gpu-tests.txt 2>&1; echo "gpu tests exit $?"
grep -E "tests (successful|failed|skipped|aborted)" $R/gpu-tests.txt
grep -E "MethodSource|=>" $R/gpu-tests.txt | head -20
$B/run.sh kiln bench --device cuda --only nothing > $R/only-nothing.txt 2>&1; echo "bench --only nothing exit $? (expect non-zero)"; grep -v "^WARNING" $R/only-nothing.txt | cut -c1-200
timeout 100 $B/run.sh kiln bench --device cuda --cuda-graphs --only mlp_b128,cnn_b128 --json --data $B/fmnist 2>$R/kiln-bench.log | grep -v '^bench:' > $R/kiln.json; echo "bench exit $?"
timeout 100 python3 $B/ref/torch_ref.py --only mlp_b128,cnn_b128 > $R/torch.json 2>$R/torch.log; echo "torch exit $?"
python3 $B/ref/compare.py $R/kiln.json $R/torch.json | tee $R/compare.txt
tar -C $OUT -czf $OUT/r.tgz r
