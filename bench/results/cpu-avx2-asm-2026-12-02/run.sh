#!/bin/bash
# Issue 13's figures at the final code: Kiln beside OpenBLAS (in process) and PyTorch 1.13 + OpenBLAS, at 256 bits
# (-XX:UseAVX=2 against OpenBLAS's Haswell kernels: AVX2 emulated on this AVX-512 EPYC) and at the machine's 512
cd /work/main
J=/usr/lib/jvm/temurin-25-jdk-amd64/bin/java
CP=kiln-core/target/classes:kiln-cli/target/classes
FL="--enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xms4g -Xmx4g -XX:+AlwaysPreTouch"
echo "== $(date -u) load $(cut -d' ' -f1-3 /proc/loadavg) commit $(git rev-parse --short HEAD)"
for width in 256 512; do
  if [ $width = 256 ]; then AVX="-XX:UseAVX=2"; export OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2;
  else AVX=""; unset OPENBLAS_CORETYPE ATEN_CPU_CAPABILITY DNNL_MAX_CPU_ISA; fi
  for t in 2 1; do
    echo "-- $width-bit, $t threads: CpuBench blas"
    OPENBLAS_THREAD_TIMEOUT=4 $J $FL $AVX -Dkiln.cpu.threads=$t -cp $CP dev.kiln.bench.CpuBench blas 2>&1 | grep -v WARN
  done
  echo "-- $width-bit: kiln seed conv (CpuBench conv)"
  $J $FL $AVX -cp $CP dev.kiln.bench.CpuBench conv 2>&1 | grep -E "threads|imagenet"
  echo "-- $width-bit: torch seed conv"
  /usr/bin/python3 bench/torch_cpu_ref.py conv 2>&1 | grep -i -E "seed|torch"
  for model in mlp cnn; do
    limit=$([ $model = mlp ] && echo 60000 || echo 6400)
    echo "-- $width-bit: kiln $model (limit $limit)"
    KILN_JAVA_OPTS="$AVX" ./kiln train --device cpu --model $model --epochs 2 --limit $limit --data /usr/share/datasets/fashion-mnist --out /tmp/gh2/run-$model --overwrite 2>&1 | grep -E "epoch|samples"
    echo "-- $width-bit: torch $model"
    /usr/bin/python3 bench/torch_cpu_ref.py train --model $model --limit $limit 2>&1 | grep -E "timed|torch"
  done
done
echo "== $(date -u) load $(cut -d' ' -f1-3 /proc/loadavg)"
