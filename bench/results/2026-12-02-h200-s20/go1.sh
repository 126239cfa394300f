#!/usr/bin/env bash
# Twentieth session, call 1: the GPU suite at this session's code (the int8 CPU kernels are what QuantizedGpuTest
# compares the GPU against; max pooling without gradient goes through Backend.maxPool2dValues), then the int8 machine
# code on this host's Xeon: its tests at both widths and CpuBench quant (fp32 against int8, random weights).
B=$(cd "$1" && pwd); O=${OUT:-/tmp/o}/r; mkdir -p "$O"
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$O/gpu.txt"
lscpu > "$O/lscpu.txt"; grep -o 'avx512_vnni\|avx_vnni\|amx_int8\|avx512vl' /proc/cpuinfo | sort | uniq -c > "$O/vnni-flags.txt"
"$B/run.sh" kiln devices > "$O/devices.txt" 2>&1
start=$(date +%s)
timeout 360 "$B/run.sh" test --exclude-classname '.*DataParallelOneGpuTest' > "$O/gpu-suite.txt" 2>&1; echo "suite rc $? in $(( $(date +%s) - start )) s" >> "$O/gpu-suite.txt"
tail -25 "$O/gpu-suite.txt"
JRE=/tmp/kiln-jre/bin/java
TCP="$B/kiln-tests.jar:$B/kiln-onnx-tests.jar:$B/kiln.jar$(printf ':%s' "$B"/lib/*.jar)"
F="--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED"
for w in 512 256; do
  X=""; [ $w = 256 ] && X="-XX:UseAVX=2"
  timeout 120 $JRE $F $X -jar "$B"/junit-platform-console-standalone-*.jar execute --class-path "$TCP" \
     --select-class dev.kiln.cpu.Int8GemmTest --select-class dev.kiln.cpu.PoolingCpuTest --select-class dev.kiln.quant.QuantizationTest \
     --details=tree --disable-banner > "$O/cpu-tests-$w.txt" 2>&1; echo "cpu tests $w rc $?" | tee -a "$O/cpu-tests-$w.txt"
  tail -6 "$O/cpu-tests-$w.txt"
  for t in 16 2; do
    timeout 100 $JRE $F $X -Xms4g -Xmx4g -XX:+AlwaysPreTouch -Dkiln.cpu.threads=$t -cp "$TCP" dev.kiln.bench.CpuBench quant > "$O/cpubench-quant-$w-t$t.txt" 2>&1
    echo "== $w bits, $t threads"; grep -E "inference|linear" "$O/cpubench-quant-$w-t$t.txt"
  done
  $JRE $F $X -cp "$TCP" dev.kiln.cli.Main devices 2>&1 | grep -i "cpu" > "$O/devices-$w.txt"
done
