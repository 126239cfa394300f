#!/bin/bash
# nineteenth session, call 5: block sizes on the Xeon's 2 MB L2s (a temporary -Dkc/-Dnc switch in the kernels' constructors)
B=$(cd "$(dirname "$0")" && pwd)
R=$OUT/r; mkdir -p $R
JAVA=/tmp/kiln-jre/bin/java
[ -x $JAVA ] || $B/run.sh java -version > /dev/null 2>&1
cat /sys/devices/system/cpu/cpu0/cache/index*/size /sys/devices/system/cpu/cpu0/cache/index*/level 2>&1 | tr '\n' ' ' > $R/caches.txt; cat $R/caches.txt; echo
TCP="$B/kiln-tests.jar:$B/kiln-onnx-tests.jar:$B/kiln.jar$(printf ':%s' "$B"/lib/*.jar)"
FL="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xms8g -Xmx8g -XX:+AlwaysPreTouch"
for round in 1 2; do
for cfg in "2 16 512" "2 16 1024" "2 1 512" "2 1 1024" "512 16 512" "512 16 1024"; do
  set -- $cfg
  if [ $1 = 2 ]; then AVX="-XX:UseAVX=2"; CORE="OPENBLAS_CORETYPE=Haswell"; else AVX=""; CORE=""; fi
  echo "-- round $round UseAVX=$1 threads $2 nc $3"
  env OPENBLAS_THREAD_TIMEOUT=4 $CORE timeout 60 $JAVA $FL $AVX -Dkiln.cpu.threads=$2 -Dnc=$3 -cp "$TCP" dev.kiln.bench.CpuBench blas 2>&1 | grep -E "gemm (1024|2048)"
done
done > $R/blas-xeon-nc.txt 2>&1
sed -E 's/blas: gemm +//' $R/blas-xeon-nc.txt | cut -c1-175
tar -C $OUT -czf $OUT/r.tgz r
