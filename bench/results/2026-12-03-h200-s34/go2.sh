#!/usr/bin/env bash
# session 34 call 2: gemm_wg32 (three TF32 wgmma products a k step, tiles split once in shared memory) beside gemm_tc32
# and cuBLAS's float32 product: error and time on the GPT's shapes; v0 as written, v2 pipelined (the next tile split while the products run; two raw stages, two split sets), swap with the descriptor's two
# strides exchanged (in case the no-swizzle K-major layout reads them the other way)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
cd $B/probe
PYTHONUNBUFFERED=1 timeout 200 python3 wg32_probe.py v0=v0.cubin swap=swap.cubin v2=v2.cubin 2>&1 | tee $R/probe.txt; echo "probe exit $? at $(el)s"
/usr/local/cuda/bin/cuobjdump -sass -fun gemm_wg32_tn v0.cubin > $R/wg32_tn.sass 2>&1; grep -cE "^\s+/\*[0-9a-f]{4}\*/" $R/wg32_tn.sass
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
