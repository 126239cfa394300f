#!/usr/bin/env bash
# session 39 call 5: the final code again: AttentionGpuTest (call 4's one failure, a bfloat16 cuDNN attention output
# 2.16% from the CPU's against a 2% tolerance on fresh random inputs), then two more rounds of Kiln's and PyTorch's
# CPU GPT / LSTM steps on the host's 16 cores (the host moved 10-30% between rounds)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
timeout 120 "$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest > $R/tests.txt 2>&1; echo "attention tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
for round in 3 4; do
  timeout 70 "$B/run.sh" kiln bench --device cpu --only gpt,lstm --json > $R/kiln-cpu$round.json 2> $R/kiln-cpu$round.log; echo "kiln cpu $round exit $? at $(el)s"; tr -d '\n ' < $R/kiln-cpu$round.json; echo
  PYTHONUNBUFFERED=1 timeout 60 python3 bench/torch_cpu_ref.py seq > $R/torch-seq$round.txt 2>&1; echo "torch seq $round exit $? at $(el)s"; cat $R/torch-seq$round.txt
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
