#!/usr/bin/env bash
# session 33 call 4: gemm_tc32 restructured (B split first, one A fragment at a time, a tile's first product writes its
# sums: r_perm1 with float2 reads of k-contiguous operands, r_perm0 without) against call 3's kernel (bn128_perm) and the
# unpermuted one (bn128_cvt0), alone beside PyTorch's float32 product; then Kiln with the faster r build (two carried):
# the GPU tests of the products, attention, transformer, LSTM and graphed training; GPT and LSTM fp32 beside torch.compile
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
cd $B/probe
for v in r_perm1 r_perm0 bn128_perm bn128_cvt0; do
  echo "== $v"; timeout 60 python3 tc32_probe.py tc32_$v.cubin 128
done > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"; cd $B
grep -v 'nan ms' $R/probe.txt | cut -c1-112
PICK=$(python3 - $R/probe.txt <<'PY'
import sys, re
tot, cur = {}, None
for l in open(sys.argv[1]):
    if l.startswith('== '): cur = l[3:].strip(); tot[cur] = 0.0; continue
    m = re.match(r'(tn|nn|nt) (\d+)x(\d+)x(\d+) s=\d+: tc32 ([0-9.]+) ms', l)
    if m and cur and ('16384' in l):
        tot[cur] += float(m.group(5))
print(' '.join(f'{k}={v:.3f}' for k, v in tot.items()), file=sys.stderr)
print('perm0' if tot.get('r_perm0', 1e9) < tot.get('r_perm1', 1e9) else 'perm1')
PY
)
echo "picked $PICK"; [ "$PICK" = perm0 ] && cp $B/alt/kiln-core-0.1.0-SNAPSHOT.jar $B/lib/
C=dev.kiln.cuda
NCCL_NVLS_ENABLE=0 timeout 260 "$B/run.sh" test --select-class $C.MatmulGpuTest --select-class $C.AttentionGpuTest --select-class $C.TransformerGpuTest \
  --select-class $C.RecurrentGpuTest --select-class dev.kiln.train.TrainerGraphGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32
KILN_LOG_LEVEL=debug timeout 120 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep gemm_tc32 $R/kiln-debug.log | sed 's/.*Tc32Key\[//' | sort | uniq -c | head -40; grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 150 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
/usr/local/cuda/bin/cuobjdump -sass -fun gemm_tc32_tn $B/probe/tc32_r_perm1.cubin > $R/sass_r_perm1.txt 2>&1
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
