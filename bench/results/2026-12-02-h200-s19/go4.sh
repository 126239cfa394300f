#!/bin/bash
# nineteenth session, call 4: B packed once for all threads (rows split) against each thread packing all of B, on the
# GPU host's 16-core Xeon, Kiln's GEMM against the host's OpenBLAS in process (CpuBench blas); MatmulCpuTest there
# -Dnoshare=true: a switch in Sgemm.batched while this ran (each thread packing all of B, as before), removed after
B=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p $R
JAVA=/tmp/kiln-jre/bin/java
[ -x $JAVA ] || $B/run.sh java -version > /dev/null 2>&1
TCP="$B/kiln-tests.jar:$B/kiln-onnx-tests.jar:$B/kiln.jar$(printf ':%s' "$B"/lib/*.jar)"
FL="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xms8g -Xmx8g -XX:+AlwaysPreTouch"
timeout 120 $JAVA --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xmx16g -XX:UseAVX=2 -jar $B/junit-platform-console-standalone-*.jar execute --class-path "$TCP" --select-class dev.kiln.cpu.MatmulCpuTest --details=summary --disable-banner > $R/matmul-avx2.txt 2>&1
grep -E "tests (successful|failed)" $R/matmul-avx2.txt
for round in 1 2; do
for cfg in "2 share" "2 noshare" "512 share" "512 noshare"; do
  set -- $cfg
  if [ $1 = 2 ]; then AVX="-XX:UseAVX=2"; CORE="OPENBLAS_CORETYPE=Haswell"; else AVX=""; CORE=""; fi
  NS=""; [ $2 = noshare ] && NS="-Dnoshare=true"
  echo "-- round $round UseAVX=$1 16 threads $2 $CORE"
  env OPENBLAS_THREAD_TIMEOUT=4 $CORE timeout 100 $JAVA $FL $AVX $NS -cp "$TCP" dev.kiln.bench.CpuBench blas 2>&1 | grep -v WARN | grep -E "gemm (1024|2048)"
done
done > $R/blas-xeon-share.txt 2>&1
sed -E 's/blas: gemm +//' $R/blas-xeon-share.txt | cut -c1-175
tar -C $OUT -czf $OUT/r.tgz r
