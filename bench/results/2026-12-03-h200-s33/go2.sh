#!/usr/bin/env bash
# session 33 call 2: gemm_tc32 variants alone against PyTorch's float32 product: the split by masks (cvt0) or cvt.rna
# (cvt1), the three products in three passes; 128 x 128 blocks of 8 warps (bn128) or 128 x 64 of 4 warps, two a
# multiprocessor (bn64)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
cd $B/probe && timeout 60 python3 mma_peak.py > $R/mma_peak.txt 2>&1; cat $R/mma_peak.txt
for v in bn128_cvt0:128 bn128_cvt1:128 bn64_cvt0:64 bn128_perm:128 bn64_perm:64; do
  echo "== ${v%%:*}"; timeout 90 python3 tc32_probe.py tc32_${v%%:*}.cubin ${v##*:}
done > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"
cat $R/probe.txt
# what the split and the products compile to (the toolkit's disassembler, where the machine has one)
D=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
echo "cuobjdump: $D"
if [ -n "$D" ]; then
  for c in tc32_bn128_cvt1 tc32_bn128_perm; do
    $D -sass -fun gemm_tc32_tn $B/probe/$c.cubin > $R/sass_$c.txt 2>&1
    echo "== $c: opcode counts"; grep -oE '^\s+/\*[0-9a-f]{4}\*/\s+[A-Z0-9_.]+' $R/sass_$c.txt | awk '{print $2}' | sort | uniq -c | sort -rn | head -16
  done
  grep -nE 'HMMA' $R/sass_tc32_bn128_perm.txt | head -60 > $R/hmma_order.txt
fi
cd $R && tar czf all.tgz --exclude='*.tgz' *
