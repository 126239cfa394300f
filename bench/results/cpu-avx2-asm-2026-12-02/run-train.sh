#!/bin/bash
# training half of issue13b.sh
cd /work/main
echo "== $(date -u) load $(cut -d' ' -f1-3 /proc/loadavg) commit $(git rev-parse --short HEAD)"
for width in 256 512; do
  if [ $width = 256 ]; then AVX="-XX:UseAVX=2"; export OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2;
  else AVX=""; unset OPENBLAS_CORETYPE ATEN_CPU_CAPABILITY DNNL_MAX_CPU_ISA; fi
  for model in mlp cnn; do
    limit=$([ $model = mlp ] && echo 60000 || echo 6400)
    echo "-- $width-bit: kiln $model (limit $limit)"
    KILN_JAVA_OPTS="$AVX" ./kiln train --device cpu --model $model --epochs 2 --limit $limit --data /usr/share/datasets/fashion-mnist --out /tmp/gh2/run-$model --overwrite 2>&1 | grep -E "epoch|samples|rror"
    echo "-- $width-bit: torch $model"
    /usr/bin/python3 bench/torch_cpu_ref.py train --model $model --limit $limit 2>&1 | grep -E "timed|torch"
  done
done
echo "== $(date -u) load $(cut -d' ' -f1-3 /proc/loadavg)"
