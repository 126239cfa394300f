#!/usr/bin/env bash
# CPU int8 against float32 inference (issue 17's table, CPU rows): QuantBench on README's cnn, quantized by
# `kiln quantize RUN --int8 --calibrate 8`; five runs at the machine's width (512 bits: the AVX-512 VNNI kernel) and five
# with -XX:UseAVX=2 (256 bits: the AVX2 kernel, as on an AVX2-only processor). Usage: run.sh RUN_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")/../../.." && pwd)"
J=/usr/lib/jvm/temurin-25-jdk-amd64/bin/java
CP="$here/kiln-cli/target/kiln-cli.jar:$here/kiln-cli/target/lib/*"
R="$1"
for flags in "" "-XX:UseAVX=2"; do
  for i in 1 2 3 4 5; do
    echo "# run $i ${flags:-512 bits}"
    $J $flags --enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xms4g -Xmx4g -cp "$CP" \
      dev.kiln.bench.QuantBench --device cpu --no-bf16 --test-limit 2000 --label cnn \
      fp32="$R/model.safetensors" int8="$R/model-int8.safetensors" 2>&1 | grep -E '^\{|^\| cnn'
  done
done
