#!/usr/bin/env bash
# session 41 call 2: where the CPU GPT and LSTM steps go now on the host's 16 cores (kiln bench's op tables beside
# PyTorch 2.11's torch.profiler tables), and one more alternating GPT pair against the session's first kiln-core
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
timeout 100 "$B/run.sh" kiln bench --device cpu --only gpt,lstm --profile $R/prof --json > $R/kiln-prof.json 2> $R/kiln-prof.log; echo "kiln profile exit $? at $(el)s: $(tr -d '\n ' < $R/kiln-prof.json)"
cat $R/prof/*.txt
PYTHONUNBUFFERED=1 timeout 120 python3 bench/torch_cpu_ref.py seq --profile > $R/torch-seq.txt 2>&1; echo "torch seq exit $? at $(el)s"; grep -E "tok_s" $R/torch-seq.txt
timeout 80 "$B/kiln-with.sh" "$B/old/kiln-core-old.jar" bench --device cpu --only gpt --json > $R/old.json 2> $R/old.log; echo "gpt old exit $? at $(el)s: $(tr -d '\n ' < $R/old.json)"
timeout 80 "$B/run.sh" kiln bench --device cpu --only gpt --json > $R/new.json 2> $R/new.log; echo "gpt new exit $? at $(el)s: $(tr -d '\n ' < $R/new.json)"
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
