#!/bin/bash
# nineteenth session, call 2: DataParallelOneGpuTest at the final code; the AVX2 machine-code GEMM kernel on this host's CPU
B=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p $R
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $R/gpu.txt 2>&1
lscpu > $R/lscpu.txt 2>&1
grep -o -w -E "avx2|fma|avx512f" /proc/cpuinfo | sort | uniq -c >> $R/lscpu.txt
( time $B/run.sh test --select-class dev.kiln.cuda.DataParallelOneGpuTest ) > $R/dp-one-gpu.txt 2>&1
grep -E "\[dp\]|tests (successful|failed)" $R/dp-one-gpu.txt
JAVA=/tmp/kiln-jre/bin/java
TCP="$B/kiln-tests.jar:$B/kiln-onnx-tests.jar:$B/kiln.jar$(printf ':%s' "$B"/lib/*.jar)"
FL="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx16g"
for avx in "-XX:UseAVX=2" ""; do
  echo "-- MatmulCpuTest $avx" >> $R/cpu-tests.txt
  timeout 120 $JAVA $FL $avx -jar $B/junit-platform-console-standalone-*.jar execute --class-path "$TCP" --select-class dev.kiln.cpu.MatmulCpuTest --details=tree --disable-banner >> $R/cpu-tests.txt 2>&1
done
grep -E "^--|everyKernel|machineCode|tests (successful|failed)|\[[0-9]\] " $R/cpu-tests.txt | sed 's/\x1b\[[0-9;]*m//g'
for t in 16 1; do
  for asm in true false; do
    echo "-- CpuBench gemm UseAVX=2 threads $t kiln.cpu.asm=$asm"
    timeout 100 $JAVA $FL -XX:UseAVX=2 -Xms4g -XX:+AlwaysPreTouch -Dkiln.cpu.threads=$t -Dkiln.cpu.asm=$asm -cp "$TCP" dev.kiln.bench.CpuBench gemm 2>&1 | grep -v WARN
  done
done > $R/cpubench.txt 2>&1
cat $R/cpubench.txt
ldconfig -p | grep -i -E "openblas|libblas" | head -3 > $R/blas-libs.txt
cat $R/blas-libs.txt
tar -C $OUT -czf $OUT/r.tgz r
