#!/usr/bin/env bash
# Twentieth session, call 2: CpuBench quant on the Xeon after the per-thread buffers (16 and 2 threads, both widths),
# and one Flight Recording of the 16-thread run at 512 bits (int8 cnn batch 256 scaled worse than float32 in call 1).
B=$(cd "$1" && pwd); O=${OUT:-/tmp/o}/r; mkdir -p "$O"
rm -rf /tmp/kiln-jre; JRE=/tmp/kiln-jre/bin/java   # this bundle's runtime (it has jdk.jfr), not one left from a call before
"$B/run.sh" java -version 2>&1 | head -1
TCP="$B/kiln-tests.jar:$B/kiln-onnx-tests.jar:$B/kiln.jar$(printf ':%s' "$B"/lib/*.jar)"
F="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xms4g -Xmx4g -XX:+AlwaysPreTouch"
for w in 512 256; do
  X=""; [ $w = 256 ] && X="-XX:UseAVX=2"
  for t in 16 2; do
    timeout 100 $JRE $F $X -Dkiln.cpu.threads=$t -cp "$TCP" dev.kiln.bench.CpuBench quant > "$O/quant-$w-t$t.txt" 2>&1
    echo "== $w bits, $t threads"; grep -E "inference" "$O/quant-$w-t$t.txt"
  done
done
timeout 100 $JRE $F -XX:StartFlightRecording=filename=$O/xeon16.jfr,settings=profile -Dkiln.cpu.threads=16 -cp "$TCP" dev.kiln.bench.CpuBench quant > "$O/quant-jfr.txt" 2>&1
grep inference "$O/quant-jfr.txt"; ls -la $O
