#!/usr/bin/env bash
# session 42 call 2: the GPU tests whose reference is the CPU convolution (now Conv3x3's machine code for 3x3 stride-1
# layers), the CPU convolution tests on the host's 16 cores, then the CPU image models alternating with the session's
# first kiln-core (old/kiln-core-s41.jar) beside PyTorch 2.11, and the convolutions one by one
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
S=""; for c in ConvolutionGpuTest AmpGpuTest CudaBackendGpuTest PoolingGpuTest ReluNaNGpuTest PredictorGpuTest QuantizedGpuTest; do S="$S --select-class dev.kiln.cuda.$c"; done
timeout 240 "$B/run.sh" test $S --select-class dev.kiln.cpu.Conv3x3Test --select-class dev.kiln.cpu.ConvolutionCpuTest --select-class dev.kiln.cpu.DirectConvTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"; grep -E "tests (successful|failed|skipped|aborted)" $R/tests.txt; grep -B2 -A8 "✘" $R/tests.txt | head -60
for v in new old new; do
  if [ $v = new ]; then timeout 120 "$B/run.sh" kiln bench --device cpu --only mlp_b,cnn_b,cifar_cnn_b,resnet_small_b --json > $R/img-$v.json 2> $R/img-$v.log
  else timeout 120 "$B/kiln-with.sh" "$B/old/kiln-core-s41.jar" bench --device cpu --only mlp_b,cnn_b,cifar_cnn_b,resnet_small_b --json > $R/img-$v.json 2> $R/img-$v.log; fi
  echo "images $v exit $? at $(el)s: $(tr -d '\n ' < $R/img-$v.json)"; cp $R/img-$v.json $R/img-$v-$(el).json
done
PYTHONUNBUFFERED=1 timeout 150 python3 bench/torch_cpu_ref.py images > $R/torch-img.txt 2>&1; echo "torch images exit $? at $(el)s"; grep samples_s $R/torch-img.txt
timeout 120 "$B/run.sh" java dev.kiln.bench.CpuBench conv > $R/kiln-conv.txt 2>&1; echo "kiln conv exit $? at $(el)s"; grep resnet $R/kiln-conv.txt; grep -E "mnist conv2|cifar conv2" $R/kiln-conv.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
