#!/usr/bin/env bash
# session 29 call 3: the small rows of WORKLOADS.md at main's code (most not rerun since the sixth/seventh sessions):
# kiln bench (eager and graphed) beside torch_ref.py --compiled in one command, PyTorch's groups in order of the time
# left; and where a fresh kiln train process's first epoch goes
CAP=${CAP:-565}; T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
[ -d "$B/fmnist" ] || tar -C "$B" -xJf "$B/fmnist.tar.xz"
mkdir -p /tmp/fmnist-gz && for f in "$B"/fmnist/*-ubyte; do gzip -1 -c "$f" > /tmp/fmnist-gz/$(basename "$f").gz; done   # torch_ref.py reads .gz
"$B/run.sh" kiln bench --device cuda --cuda-graphs --json --only mlp,cnn_b,cifar_cnn,lstm,gemm,conv_seed,fmnist --data "$B/fmnist" > $R/kiln.json 2> $R/kiln.log; echo "kiln exit $? at $(( $(date +%s)-T0 ))s"
(cd $R && tar czf first.tgz --exclude='*.tgz' *)
# where a fresh process's first epoch goes (debug log, each line stamped with seconds since the start); the second run
# finds cuDNN's choices cached
for k in 1 2; do
"$B/run.sh" kiln train --log-level debug --model cnn --device cuda --data "$B/fmnist" --precision bf16 --batch-size 512 --epochs 2 --out /tmp/startup$k 2>&1 \
  | python3 -c "import sys,time; t0=time.time(); [print('%8.3f %s' % (time.time()-t0, l.rstrip()), flush=True) for l in sys.stdin]" > $R/startup$k.txt
done
grep -v "cudnn:\|cuBLASLt" $R/startup2.txt | head -12; echo "startup done at $(( $(date +%s)-T0 ))s"
for g in cnn_b128 mlp_b128 fmnist cifar_cnn_b128 gemm,conv_seed lstm cnn_b1024 mlp_b1024 cifar_cnn_b1024; do
    L=$(( CAP - ($(date +%s) - T0) )); [ $L -lt 40 ] && { echo "no time left for $g"; break; }
    timeout $L python3 "$B/ref/torch_ref.py" --only $g --compiled --fmnist /tmp/fmnist-gz > $R/torch-${g%%,*}.json 2> $R/torch-${g%%,*}.log; echo "torch $g exit $? at $(( $(date +%s)-T0 ))s"
done
python3 - $R <<'PY'
import json, sys, glob, os
r = sys.argv[1]; out = {}
for f in sorted(glob.glob(os.path.join(r, "torch-*.json"))):
    try: out.update(json.load(open(f)))
    except Exception as e: print("unreadable", f, e)
json.dump(out, open(os.path.join(r, "torch.json"), "w"), indent=1)
PY
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls | head -3
