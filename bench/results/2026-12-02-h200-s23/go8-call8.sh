#!/usr/bin/env bash
# call 8: softmax rows of up to 8,192 held by a block; maps beside PyTorch; then the whole GPU suite (with the interop
# models) at this code
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
"$B/run.sh" test --select-class dev.kiln.cuda.SoftmaxGpuTest > $R/softmax-test.txt 2>&1; echo "softmax test exit $?"
grep -E "tests (successful|failed)|✘|=>" $R/softmax-test.txt | head -20
"$B/run.sh" bench maps > $R/maps.txt 2>&1; echo "maps exit $?"; grep -v WARN $R/maps.txt | grep -E "softmax|scalar"
python3 "$B/ref/torch_maps.py" > $R/torch-maps.txt 2>&1; cat $R/torch-maps.txt
python3 "$B/ref/resnet_interop.py" /tmp/kiln-interop > $R/interop.txt 2>&1 || echo "resnet_interop.py failed"
NCCL_NVLS_ENABLE=0 KILN_INTEROP_DIR=/tmp/kiln-interop "$B/run.sh" test --select-package dev.kiln.cuda --select-class dev.kiln.train.TrainerGraphGpuTest > $R/gpu-tests.txt 2>&1; echo "gpu tests exit $?"
grep -E "tests (successful|failed|skipped|aborted)|✘" $R/gpu-tests.txt | head -30
