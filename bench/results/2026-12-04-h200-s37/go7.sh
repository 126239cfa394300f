#!/usr/bin/env bash
# session 37 call 7: the image rows at the current code beside torch.compile in one call (GEMM, MLP, the small CNNs,
# ResNet-18/50): README's table had them from sessions 30-32
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
W=gemm,mlp,cnn,cifar_cnn,resnet18,resnet50
timeout 200 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln.log; echo "kiln bench exit $? at $(el)s"
PYTHONUNBUFFERED=1 timeout $(( 560 - $(date +%s) + T0 )) python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
