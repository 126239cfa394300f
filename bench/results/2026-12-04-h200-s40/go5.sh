#!/usr/bin/env bash
# session 40 call 5: call 4 read the eager GPU LSTM 21-25% slower with this code than with call 1's kiln-core (graphed
# the same), new first and old second: alternate them three times (the eager rows are bound by the host's launches),
# then two more CPU GPT / LSTM pairs on 16 cores
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
for round in 1 2 3; do
  timeout 45 "$B/kiln-with.sh" "$B/old/kiln-core-old.jar" bench --device cuda --only lstm --cuda-graphs --json > $R/gpu-old$round.json 2> $R/gpu-old$round.log; echo "gpu old $round exit $? at $(el)s: $(tr -d '\n ' < $R/gpu-old$round.json)"
  timeout 45 "$B/run.sh" kiln bench --device cuda --only lstm --cuda-graphs --json > $R/gpu-new$round.json 2> $R/gpu-new$round.log; echo "gpu new $round exit $? at $(el)s: $(tr -d '\n ' < $R/gpu-new$round.json)"
done
for round in 2 3; do
  timeout 60 "$B/kiln-with.sh" "$B/old/kiln-core-old.jar" bench --device cpu --only gpt,lstm --json > $R/cpu-old$round.json 2> $R/cpu-old$round.log; echo "cpu old $round exit $? at $(el)s: $(tr -d '\n ' < $R/cpu-old$round.json)"
  timeout 60 "$B/run.sh" kiln bench --device cpu --only gpt,lstm --json > $R/cpu-new$round.json 2> $R/cpu-new$round.log; echo "cpu new $round exit $? at $(el)s: $(tr -d '\n ' < $R/cpu-new$round.json)"
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
