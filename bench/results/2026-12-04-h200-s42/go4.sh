#!/usr/bin/env bash
# session 42 call 4: the CPU image models on the host's 16 cores with the benchmark's new warm-up floors (at least 2 s of
# warm-up steps, 1 s timed, on both sides), this session's kiln-core alternating with its first (old/kiln-core-s41.jar),
# beside PyTorch 2.11 (bench/torch_cpu_ref.py images)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
for v in new old new; do
  if [ $v = new ]; then timeout 150 "$B/run.sh" kiln bench --device cpu --only mlp_b,cnn_b,cifar_cnn_b,resnet_small_b --json > $R/img-$v-$(el).json 2> /dev/null
  else timeout 150 "$B/kiln-with.sh" "$B/old/kiln-core-s41.jar" bench --device cpu --only mlp_b,cnn_b,cifar_cnn_b,resnet_small_b --json > $R/img-$v-$(el).json 2> /dev/null; fi
  echo "images $v exit $? at $(el)s: $(ls -t $R/img-$v-*.json | head -1 | xargs cat | tr -d '\n ')"
done
PYTHONUNBUFFERED=1 timeout 200 python3 bench/torch_cpu_ref.py images > $R/torch-img.txt 2>&1; echo "torch images exit $? at $(el)s"; grep samples_s $R/torch-img.txt
"$B/run.sh" kiln devices 2>&1 | grep -i '^cpu' | cut -c1-300
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
