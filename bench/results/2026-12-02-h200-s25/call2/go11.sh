#!/usr/bin/env bash
# session 25 call 2: GELU's input gradient from cuBLASLt's DGELU epilogue - the tests that cover it first, the GPT bf16
# workload beside torch_ref.py --compiled, Nsight Compute over one eager step, then the whole GPU suite in the time left
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R; K=gpt_6L384_T256_b64_bf16
left() { echo $(( 570 - ($(date +%s) - T0) )); }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.TransformerGpuTest > $R/tests-first.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed)|✘|DGELU|refused" $R/tests-first.txt | head -20
"$B/run.sh" kiln bench --device cuda --only $K --cuda-graphs --json > $R/kiln-gpt.json 2> $R/kiln-gpt.log; echo "kiln gpt exit $?"
python3 "$B/ref/torch_ref.py" --only $K --compiled > $R/torch-gpt.json 2> $R/torch-gpt.log; echo "torch exit $?"
python3 "$B/ref/compare.py" $R/kiln-gpt.json $R/torch-gpt.json | tee $R/compare-gpt.txt; echo "at $(( $(date +%s)-T0 ))s"
(cd $R && tar czf first.tgz --exclude='*.tgz' *)
timeout 170 /usr/local/cuda/bin/ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum \
  --launch-skip 3000 --launch-count 1400 --csv "$B/run.sh" kiln bench --device cuda --only $K --json > $R/ncu.csv 2> $R/ncu.log
echo "ncu exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ncu_step.py" $R/ncu.csv "Kiln $K eager (s25 call 2)" > $R/ncu-step.txt 2>&1; head -25 $R/ncu-step.txt; gzip $R/ncu.csv
(cd $R && tar czf second.tgz --exclude='*.tgz' *)
python3 "$B/ref/resnet_interop.py" /tmp/kiln-interop > $R/interop.txt 2>&1; echo "interop exit $?"
L=$(left); echo "suite gets ${L}s"
NCCL_NVLS_ENABLE=0 KILN_INTEROP_DIR=/tmp/kiln-interop timeout $L "$B/run.sh" test --select-package dev.kiln.cuda --select-class dev.kiln.train.TrainerGraphGpuTest > $R/tests.txt 2>&1; echo "test exit $?"
grep -E "tests (successful|failed|aborted|skipped)|✘" $R/tests.txt | head -30
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
