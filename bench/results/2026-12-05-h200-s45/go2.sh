#!/usr/bin/env bash
# session 45 call 2: batch-1 inference and generation on the GPU host's 16-core CPU (session 44's work, measured on two
# cores only), this code ("new") and session 44's first kiln-core ("old", 9b6dcfd) under the same CLI, beside
# torch_cpu_ref.py infer and generate (PyTorch 2.11, oneDNN), two alternating rounds
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
lscpu | grep -E "Model name|^CPU\(s\)|Thread" | tee $R/cpu.txt
W=infer_resnet18,infer_resnet50,infer_gpt_generate,infer_lstm_generate
for round in 1 2; do
  timeout 100 "$B/run.sh" kiln bench --device cpu --only $W --json > $R/new$round.json 2> $R/new$round.log; echo "new $round exit $? at $(el)s: $(tr -d '\n ' < $R/new$round.json)"
  timeout 100 "$B/kiln-with.sh" "$B/old/kiln-core-old.jar" bench --device cpu --only $W --json > $R/old$round.json 2> $R/old$round.log; echo "old $round exit $? at $(el)s: $(tr -d '\n ' < $R/old$round.json)"
  PYTHONUNBUFFERED=1 timeout 100 python3 "$B/ref/torch_cpu_ref.py" infer > $R/torch-infer$round.txt 2>&1; echo "torch infer $round exit $? at $(el)s"; grep -E "^torch|infer_" $R/torch-infer$round.txt
  PYTHONUNBUFFERED=1 timeout 40 python3 "$B/ref/torch_cpu_ref.py" generate > $R/torch-gen$round.txt 2>&1; echo "torch generate $round exit $? at $(el)s"; grep -E "infer_" $R/torch-gen$round.txt
  PYTHONUNBUFFERED=1 timeout 40 python3 "$B/ref/torch_cpu_ref.py" generate --threads 1 > $R/torch-gen1t$round.txt 2>&1; echo "torch generate 1 thread $round exit $? at $(el)s"; grep -E "infer_" $R/torch-gen1t$round.txt
  [ $(( $(date +%s) - T0 )) -gt 300 ] && break
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
