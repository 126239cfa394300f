#!/usr/bin/env bash
# session 42 call 1: the CPU image models on the host's 16 cores, Kiln (kiln bench --device cpu) beside PyTorch 2.11
# (bench/torch_cpu_ref.py images: the same models, batch, steps), and their convolutions one by one (CpuBench conv,
# torch_cpu_ref.py conv): where Kiln's CPU CNNs stand before this session's convolution work
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
lscpu | grep -E 'Model name|^CPU\(s\)|Flags' | cut -c1-160 > $R/lscpu.txt; cat $R/lscpu.txt | head -2
timeout 200 "$B/run.sh" kiln bench --device cpu --only mlp_b,cnn_b,cifar_cnn_b,resnet_small_b --json > $R/kiln-img.json 2> $R/kiln-img.log; echo "kiln images exit $? at $(el)s: $(tr -d '\n ' < $R/kiln-img.json)"
PYTHONUNBUFFERED=1 timeout 200 python3 bench/torch_cpu_ref.py images > $R/torch-img.txt 2>&1; echo "torch images exit $? at $(el)s"; cat $R/torch-img.txt
timeout 120 "$B/run.sh" java dev.kiln.bench.CpuBench conv > $R/kiln-conv.txt 2>&1; echo "kiln conv exit $? at $(el)s"; cat $R/kiln-conv.txt
PYTHONUNBUFFERED=1 timeout 120 python3 bench/torch_cpu_ref.py conv > $R/torch-conv.txt 2>&1; echo "torch conv exit $? at $(el)s"; cat $R/torch-conv.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
