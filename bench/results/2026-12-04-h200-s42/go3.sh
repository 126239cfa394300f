#!/usr/bin/env bash
# session 42 call 3: where the small steps go on the host's 16 cores: the MLP at batch 128 (Kiln 0.62-0.64x PyTorch in
# call 2) and the small ResNet at batch 128, kiln bench --profile beside torch.profiler's tables
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
timeout 120 "$B/run.sh" kiln bench --device cpu --only mlp_b128,resnet_small_b128 --profile $R/prof --json > $R/kiln-prof.json 2> $R/kiln-prof.log; echo "kiln profile exit $? at $(el)s: $(tr -d '\n ' < $R/kiln-prof.json)"
for f in $R/prof/*.txt; do echo "== $f"; head -25 $f; done
PYTHONUNBUFFERED=1 timeout 150 python3 bench/torch_cpu_ref.py images --model mlp,resnet_small --profile > $R/torch-prof.txt 2>&1; echo "torch exit $? at $(el)s"; grep -A22 'b128' $R/torch-prof.txt | cut -c1-60,100-175
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
