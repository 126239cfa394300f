#!/usr/bin/env bash
# session 33 call 3: the peak of TF32 mma.sync; gemm_tc32 variants alone against PyTorch's float32 product (the split by
# masks (cvt0) or cvt.rna (cvt1), three passes of products; 128 x 128 blocks of 8 warps (bn128) or 128 x 64 of 4 warps,
# two a multiprocessor (bn64); perm: float2 reads of k-contiguous operands); then Kiln with the faster of bn128_perm and
# bn64_perm (two builds carried): MatmulGpuTest, AttentionGpuTest; GPT, LSTM and CNN fp32 rows beside torch.compile.
# v1: call 1's kernel (cvt.rna, the three products of a fragment one after another)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
cd $B/probe && timeout 60 python3 mma_peak.py > $R/mma_peak.txt 2>&1; cat $R/mma_peak.txt
for v in bn128_perm:128 bn64_perm:64 bn128_cvt0:128 bn128_cvt1:128 bn64_cvt0:64 v1:128; do
  echo "== ${v%%:*}"; timeout 60 python3 tc32_probe.py tc32_${v%%:*}.cubin ${v##*:}
done > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"; cd $B
cat $R/probe.txt
# the GPT's twelve shapes: total ms of each build's kernel
PICK=$(python3 - $R/probe.txt <<'PY'
import sys, re
tot, cur = {}, None
for l in open(sys.argv[1]):
    if l.startswith('== '): cur = l[3:].strip(); tot[cur] = 0.0; continue
    m = re.match(r'(tn|nn|nt) (\d+)x(\d+)x(\d+) s=\d+: tc32 ([0-9.]+) ms', l)
    if m and cur and ('16384' in l):
        tot[cur] += float(m.group(5))
print(' '.join(f'{k}={v:.3f}' for k, v in tot.items()), file=sys.stderr)
print('bn64' if tot.get('bn64_perm', 1e9) < tot.get('bn128_perm', 1e9) else 'bn128')
PY
)
echo "picked $PICK"; [ "$PICK" = bn64 ] && cp $B/alt/kiln-core-0.1.0-SNAPSHOT.jar $B/lib/
timeout 150 "$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.AttentionGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32,cnn_b1024_fp32,cifar_cnn_b1024_fp32
KILN_LOG_LEVEL=debug timeout 150 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep gemm_tc32 $R/kiln-debug.log | sed 's/.*Tc32Key\[//' | sort | uniq -c | head -40; grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 200 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
D=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1); echo "cuobjdump: $D"
if [ -n "$D" ]; then
  for c in tc32_v1 tc32_bn128_cvt1 tc32_bn128_perm; do
    $D -sass -fun gemm_tc32_tn $B/probe/$c.cubin > $R/sass_$c.txt 2>&1
    echo "== $c: opcode counts"; grep -oE '^\s+/\*[0-9a-f]{4}\*/\s+[A-Z0-9_.]+' $R/sass_$c.txt | awk '{print $2}' | sort | uniq -c | sort -rn | head -12
  done
fi
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
