#!/usr/bin/env bash
# call 9: softmax rows cut into segments, where of periodic operands, softmax helpers: the kernels' tests and the
# model tests that reach them (transformers, language models, AMP, graphs); maps beside PyTorch; kiln bench attention
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
S=""; for c in Softmax Elementwise Attention Losses Transformer Dropout; do S="$S --select-class dev.kiln.cuda.${c}GpuTest"; done
"$B/run.sh" test $S > $R/tests.txt 2>&1; echo "test exit $?"
grep -E "tests (successful|failed)|✘|=>" $R/tests.txt | head -30
"$B/run.sh" bench maps > $R/maps.txt 2>&1; echo "maps exit $?"; grep -v WARN $R/maps.txt | grep -E "softmax|scalar|masked"
python3 "$B/ref/torch_maps.py" > $R/torch-maps.txt 2>&1; cat $R/torch-maps.txt
"$B/run.sh" kiln bench --device cuda --json --only attention > $R/kiln-att.json 2> $R/kiln-att.log; echo "bench exit $?"; grep "bench:" $R/kiln-att.log
python3 "$B/ref/torch_attention.py" > $R/torch-att.json 2>&1; cat $R/torch-att.json
