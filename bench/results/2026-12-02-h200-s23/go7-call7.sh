#!/usr/bin/env bash
# call 7: vectorised softmax rows, the one-pass block softmax, the scalar map's own loops: tests, maps beside PyTorch
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
"$B/run.sh" test --select-class dev.kiln.cuda.SoftmaxGpuTest --select-class dev.kiln.cuda.ElementwiseGpuTest --select-class dev.kiln.cuda.LossesGpuTest > $R/tests.txt 2>&1; echo "test exit $?"
grep -E "tests (successful|failed)|✘|=>" $R/tests.txt | head -30
for i in 1 2; do
"$B/run.sh" bench maps > $R/maps-$i.txt 2>&1; echo "maps exit $?"; grep -v WARN $R/maps-$i.txt | grep -E "softmax|scalar"
python3 "$B/ref/torch_maps.py" > $R/torch-maps-$i.txt 2>&1; cat $R/torch-maps-$i.txt
done
