#!/usr/bin/env bash
# Twentieth session, call 4: why the int8 cnn scales worse than float32 on 16 threads. The same per-layer bench with the
# machine code off (int8 through the float GEMM: no downcalls), with Parallel GC, and with safepoint logging.
B=$(cd "$1" && pwd); O=${OUT:-/tmp/o}/r; mkdir -p "$O"
rm -rf /tmp/kiln-jre; "$B/run.sh" java -version 2>&1 | head -1; JRE=/tmp/kiln-jre/bin/java
TCP="$B/kiln-tests.jar:$B/kiln-onnx-tests.jar:$B/kiln.jar$(printf ':%s' "$B"/lib/*.jar)"
F="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xms8g -Xmx8g -XX:+AlwaysPreTouch -Dkiln.cpu.threads=16"
run() { name=$1; shift; timeout 150 $JRE $F "$@" -cp "$TCP" dev.kiln.bench.CpuBench quant > "$O/$name.txt" 2>&1; echo "== $name"; grep -A4 "inference cnn  batch 256" "$O/$name.txt" | grep -E "inference|layer  [02]"; }
run asm-off -Dkiln.cpu.asm=off
run parallel-gc -XX:+UseParallelGC
run safepoints -Xlog:safepoint:file=$O/safepoints.log
grep -c "Safepoint" $O/safepoints.log; awk '/Total/ {print}' $O/safepoints.log | sort -t, -k4 | tail -3
grep -o "Reaching safepoint: [0-9]* ns" $O/safepoints.log | awk '{s+=$3; if ($3>m) m=$3} END {print "time to safepoint total", s/1e6, "ms, max", m/1e6, "ms over", NR}'
grep -o "At safepoint: [0-9]* ns" $O/safepoints.log | awk '{s+=$3} END {print "at safepoint total", s/1e6, "ms"}'
