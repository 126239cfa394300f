#!/usr/bin/env bash
# session 40 call 12: call 11's CPU LSTM pair read low for both builds (19,200 / 17,841): two more pairs, old first
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
for round in 1 2; do
  timeout 60 "$B/kiln-with.sh" "$B/old/kiln-core-old.jar" bench --device cpu --only lstm --json > $R/old$round.json 2> $R/old$round.log; echo "lstm old $round exit $? at $(el)s: $(tr -d '\n ' < $R/old$round.json)"
  timeout 60 "$B/run.sh" kiln bench --device cpu --only lstm --json > $R/new$round.json 2> $R/new$round.log; echo "lstm new $round exit $? at $(el)s: $(tr -d '\n ' < $R/new$round.json)"
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
