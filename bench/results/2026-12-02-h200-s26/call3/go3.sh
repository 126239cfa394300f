#!/usr/bin/env bash
# session 26 call 3: the ResNet rows of README's table at main's code, beside torch_ref.py --compiled in one command
T0=$(date +%s); B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
"$B/run.sh" kiln bench --device cuda --only resnet18_224_b64,resnet50_224_b128 --cuda-graphs --json > $R/kiln-resnet.json 2> $R/kiln-resnet.log; echo "kiln exit $? at $(( $(date +%s)-T0 ))s"
timeout $(( 560 - ($(date +%s) - T0) )) python3 "$B/ref/torch_ref.py" --only resnet18_224_b64,resnet50_224_b128 --compiled > $R/torch-resnet.json 2> $R/torch-resnet.log; echo "torch exit $? at $(( $(date +%s)-T0 ))s"
python3 "$B/ref/compare.py" $R/kiln-resnet.json $R/torch-resnet.json | tee $R/compare-resnet.txt
cd $R && tar czf all.tgz --exclude='*.tgz' * && ls
