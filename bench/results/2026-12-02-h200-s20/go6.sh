#!/usr/bin/env bash
# Twentieth session, call 6: the final code. QuantizedGpuTest and PoolingGpuTest (the GPU's int8 against the CPU's final
# machine-code outputs; pooling through maxPool2dValues), then the CPU int8 tests on the Xeon under -XX:UseAVX=2
# (the kernels' initialisation order in child JVMs included).
B=$(cd "$1" && pwd); O=${OUT:-/tmp/o}/r; mkdir -p "$O"
rm -rf /tmp/kiln-jre
timeout 200 "$B/run.sh" test --select-class dev.kiln.cuda.QuantizedGpuTest --select-class dev.kiln.cuda.PoolingGpuTest > "$O/gpu-tests.txt" 2>&1
echo "gpu tests rc $?"; grep -E "tests (successful|failed|aborted)" "$O/gpu-tests.txt"
JRE=/tmp/kiln-jre/bin/java
TCP="$B/kiln-tests.jar:$B/kiln-onnx-tests.jar:$B/kiln.jar$(printf ':%s' "$B"/lib/*.jar)"
timeout 150 $JRE --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:UseAVX=2 -Dkiln.test.classpath="$TCP" \
  -jar "$B"/junit-platform-console-standalone-*.jar execute --class-path "$TCP" --select-class dev.kiln.cpu.Int8GemmTest \
  --select-class dev.kiln.quant.QuantizationTest --details=tree --disable-banner > "$O/xeon-cpu-256.txt" 2>&1
echo "xeon cpu 256 rc $?"; grep -E "tests (successful|failed|aborted)" "$O/xeon-cpu-256.txt"
