#!/usr/bin/env bash
# session 26 call 1: linear's bias gradient by Kiln's 16-byte column sums instead of cuBLASLt's BGRADB epilogue - the
# tests that cover it, CudaBench bias-grad, the GPT rows beside torch_ref.py --compiled, Nsight Compute over one bf16 step
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" test --select-class dev.kiln.cuda.ReductionsGpuTest --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.TransformerGpuTest \
  --select-class dev.kiln.cuda.ConvolutionGpuTest --select-class dev.kiln.cuda.AmpGpuTest > $R/tests-first.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed)|✘|refused" $R/tests-first.txt | head -20
"$B/run.sh" bench bias-grad > $R/bias-grad.txt 2>&1; echo "bench exit $?"; grep -E " ms " $R/bias-grad.txt
for P in bf16 fp32; do K=gpt_6L384_T256_b64_$P
  "$B/run.sh" kiln bench --device cuda --only $K --cuda-graphs --json > $R/kiln-$P.json 2> $R/kiln-$P.log; echo "kiln $P exit $?"
done
python3 "$B/ref/torch_ref.py" --only gpt_6L384_T256_b64 --compiled > $R/torch-gpt.json 2> $R/torch-gpt.log; echo "torch exit $? at $(( $(date +%s)-T0 ))s"
python3 - $R/kiln-bf16.json $R/kiln-fp32.json > $R/kiln-gpt.json <<'PY'
import json, sys
d = {}
for f in sys.argv[1:]: d.update(json.load(open(f)))
print(json.dumps(d))
PY
python3 "$B/ref/compare.py" $R/kiln-gpt.json $R/torch-gpt.json | tee $R/compare-gpt.txt
(cd $R && tar czf first.tgz --exclude='*.tgz' *)
K=gpt_6L384_T256_b64_bf16
timeout 170 /usr/local/cuda/bin/ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum \
  --launch-skip 3000 --launch-count 1400 --csv "$B/run.sh" kiln bench --device cuda --only $K --json > $R/ncu.csv 2> $R/ncu.log
echo "ncu exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ncu_step.py" $R/ncu.csv "Kiln $K eager (s26 call 1)" > $R/ncu-step.txt 2>&1; head -25 $R/ncu-step.txt; gzip $R/ncu.csv
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
