#!/usr/bin/env bash
# Twentieth session, call 5: the per-layer bench on the Xeon after the outputs are written in place (16 and 4 threads at 512 bits, 16 at 256).
B=$(cd "$1" && pwd); O=${OUT:-/tmp/o}/r; mkdir -p "$O"
rm -rf /tmp/kiln-jre; "$B/run.sh" java -version 2>&1 | head -1; JRE=/tmp/kiln-jre/bin/java
TCP="$B/kiln-tests.jar:$B/kiln-onnx-tests.jar:$B/kiln.jar$(printf ':%s' "$B"/lib/*.jar)"
F="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xms8g -Xmx8g -XX:+AlwaysPreTouch"
for c in "512 16" "512 4" "256 16"; do
  set -- $c; X=""; [ $1 = 256 ] && X="-XX:UseAVX=2"
  timeout 150 $JRE $F $X -Dkiln.cpu.threads=$2 -cp "$TCP" dev.kiln.bench.CpuBench quant > "$O/layers-$1-t$2.txt" 2>&1
  echo "== $1 bits, $2 threads"; grep -A12 "inference cnn  batch 256" "$O/layers-$1-t$2.txt"
done
