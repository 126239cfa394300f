#!/bin/bash
# nineteenth session, call 3: Kiln's GEMM against the host's OpenBLAS, in process (CpuBench blas), on the GPU host's Xeon
B=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p $R
JAVA=/tmp/kiln-jre/bin/java
[ -x $JAVA ] || $B/run.sh java -version > /dev/null 2>&1
TCP="$B/kiln-tests.jar:$B/kiln-onnx-tests.jar:$B/kiln.jar$(printf ':%s' "$B"/lib/*.jar)"
FL="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xms8g -Xmx8g -XX:+AlwaysPreTouch"
for cfg in "2 16" "2 1" "512 16" "512 1"; do
  set -- $cfg
  if [ $1 = 2 ]; then AVX="-XX:UseAVX=2"; CORE="OPENBLAS_CORETYPE=Haswell"; else AVX=""; CORE=""; fi
  echo "-- UseAVX=$1 threads $2 $CORE"
  env OPENBLAS_THREAD_TIMEOUT=4 $CORE timeout 140 $JAVA $FL $AVX -Dkiln.cpu.threads=$2 -cp "$TCP" dev.kiln.bench.CpuBench blas 2>&1 | grep -v WARN
done > $R/blas-xeon.txt 2>&1
cat $R/blas-xeon.txt
tar -C $OUT -czf $OUT/r.tgz r
