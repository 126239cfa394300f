#!/usr/bin/env bash
# session 41 call 5: the CPU LSTM on 16 cores, this code against call 1's (the attention change only, before the cells'
# change) and the session's starting code, six alternating rounds, to see the cells' change apart from the host's noise
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
for r in 1 2 3 4 5 6; do
  timeout 40 "$B/run.sh" kiln bench --device cpu --only lstm --json > $R/new$r.json 2> $R/new$r.log
  timeout 40 "$B/kiln-with.sh" "$B/old/kiln-core-attn.jar" bench --device cpu --only lstm --json > $R/attn$r.json 2> $R/attn$r.log
  timeout 40 "$B/kiln-with.sh" "$B/old/kiln-core-old.jar" bench --device cpu --only lstm --json > $R/old$r.json 2> $R/old$r.log
  echo "round $r at $(el)s: new $(grep -o '[0-9]*}' $R/new$r.json) attn $(grep -o '[0-9]*}' $R/attn$r.json) start $(grep -o '[0-9]*}' $R/old$r.json)"
done
PYTHONUNBUFFERED=1 timeout 60 python3 bench/torch_cpu_ref.py seq > $R/torch-seq.txt 2>&1; grep tok_s $R/torch-seq.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
