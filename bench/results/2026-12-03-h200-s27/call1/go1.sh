#!/usr/bin/env bash
# session 27 call 1: float32 attention with its shared tiles split into TF32 hi/lo once - the standalone harness (HEAD's
# kernels against the new, float64 reference for one head), AttentionGpuTest, the attention rows and the GPT fp32 row
# beside PyTorch, Nsight Compute details of the new kernels
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
for h in old new; do "$B/harness-$h" > $R/harness-$h.txt 2>&1; echo "harness $h exit $?"; cat $R/harness-$h.txt; done
"$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest --select-class dev.kiln.cuda.TransformerGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(( $(date +%s)-T0 ))s"
grep -E "tests (successful|failed)|✘" $R/tests.txt | head -20
"$B/run.sh" kiln bench --device cuda --only attention_b64 --json > $R/kiln-att.json 2> $R/kiln-att.log; echo "kiln att exit $?"; cat $R/kiln-att.json
python3 "$B/ref/torch_attention.py" > $R/torch-att.json 2> $R/torch-att.log; echo "torch att exit $?"; cat $R/torch-att.json
(cd $R && tar czf first.tgz --exclude='*.tgz' *)
K=gpt_6L384_T256_b64_fp32
"$B/run.sh" kiln bench --device cuda --only $K --cuda-graphs --json > $R/kiln-gpt.json 2> $R/kiln-gpt.log; echo "kiln gpt exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ref/torch_ref.py" --only $K --compiled > $R/torch-gpt.json 2> $R/torch-gpt.log; echo "torch exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ref/compare.py" $R/kiln-gpt.json $R/torch-gpt.json | tee $R/compare-gpt.txt
(cd $R && tar czf second.tgz --exclude='*.tgz' *)
NCU=/usr/local/cuda/bin/ncu
timeout 90 $NCU --set full -k regex:attention_mma_.wd_d64_f32 --launch-skip 2 --launch-count 2 "$B/harness-new" 16 > $R/ncu-new.txt 2>&1; echo "ncu new exit $?"
timeout 90 $NCU --set full -k regex:attention_mma_bwd_d64_f32 --launch-skip 2 --launch-count 1 "$B/harness-old" 16 > $R/ncu-old.txt 2>&1; echo "ncu old exit $? at $(( $(date +%s)-T0 ))s"
grep -E "attention_mma|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Compute \(SM\) Throughput|Executed Ipc Active|Issue Slots Busy|Dynamic Shared|Block Limit Reg|Block Limit Shared" $R/ncu-new.txt $R/ncu-old.txt | head -60
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
