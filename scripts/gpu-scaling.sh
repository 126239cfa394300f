#!/usr/bin/env bash
# Data-parallel scaling in one command (issue 12 on 2 GPUs with N=2, issue 18 on 4 or 8): correctness at N ranks, then
# Kiln and PyTorch DDP (torch_ddp.py under torchrun) at N and 1 GPUs. Bundle: scripts/gpu-check.sh --prepare DIR.
set -u
B=$(cd "$(dirname "$0")" && pwd); O=${OUT:-/tmp/kiln-out}; mkdir -p "$O"
export NCCL_NVLS_ENABLE=0
N=${N:-4}
t0=$(date +%s); st() { echo "[$(( $(date +%s) - t0 ))s] $*"; }
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader | tee "$O/gpus.txt"; nvidia-smi topo -m > "$O/topo.txt" 2>&1
st tests
timeout 240 "$B/run.sh" test --select-method dev.kiln.cuda.DataParallelGpuTest#everyGpuTrainsAsOne --select-method dev.kiln.cuda.DataParallelGpuTest#aDeadRankEndsTheJob > "$O/dist-tests.txt" 2>&1; echo "tests exit $?"
grep -E "\[dp\]|tests (successful|failed|skipped|aborted)" "$O/dist-tests.txt"
st kiln w$N
timeout 200 "$B/run.sh" kiln bench --gpus $N --cuda-graphs --json > "$O/kiln-w$N.json" 2> "$O/kiln-w$N.log"; echo "kiln w$N exit $?"; cat "$O/kiln-w$N.json"
st torch w$N
timeout 150 torchrun --standalone --nproc_per_node=$N "$B/ref/torch_ddp.py" > "$O/torch-w$N.json" 2> "$O/torch-w$N.log"; echo "torch w$N exit $?"; cat "$O/torch-w$N.json"
st kiln w1
timeout 120 "$B/run.sh" kiln bench --data-parallel --cuda-graphs --json > "$O/kiln-w1.json" 2> "$O/kiln-w1.log"; echo "kiln w1 exit $?"; cat "$O/kiln-w1.json"
st torch w1
timeout 90 python3 "$B/ref/torch_ddp.py" > "$O/torch-w1.json" 2> "$O/torch-w1.log"; echo "torch w1 exit $?"; cat "$O/torch-w1.json"
# where the scaling goes (after the figures above, so a short lease still gets them): the reductions' stream at the
# highest priority, and an eager profile of the GPT bf16 step per rank (how much of each collective ran beside compute)
st kiln w$N high-priority
KILN_DP_COMM_HIGH_PRIORITY=on timeout 150 "$B/run.sh" kiln bench --gpus $N --cuda-graphs --json --only gpt,resnet18 > "$O/kiln-w$N-high.json" 2> "$O/kiln-w$N-high.log"; echo "kiln w$N high exit $?"; cat "$O/kiln-w$N-high.json"
st kiln w$N profile
timeout 150 "$B/run.sh" kiln bench --gpus $N --json --only gpt_6L384_T256_b64_bf16 --profile "$O/prof" > "$O/kiln-w$N-prof.json" 2> "$O/kiln-w$N-prof.log"; echo "kiln w$N profile exit $?"
for f in "$O"/prof/*.txt; do echo "== $f"; head -30 "$f"; done
st done
cd "$O" && tar czf all.tgz *.txt *.json *.log prof 2>/dev/null; ls
