#!/usr/bin/env bash
# call 6: cuDNN attention forward (P in the 16-bit type), gradients in their inputs' layout: tests, rows beside PyTorch, GPT, ncu
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
"$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest --select-class dev.kiln.cuda.TransformerGpuTest --select-class dev.kiln.cuda.Gpt2InteropGpuTest --select-class dev.kiln.train.TrainerGraphGpuTest > $R/tests.txt 2>&1; echo "test exit $?"
grep -E "tests (successful|failed)|✘|cuDNN took|failed:" $R/tests.txt | head -20
for i in 1; do
"$B/run.sh" kiln bench --device cuda --json --only attention > $R/kiln-att-$i.json 2> $R/kiln-att.log; echo "bench exit $?"; grep -E "bench:" $R/kiln-att.log
KILN_CUDNN=0 "$B/run.sh" kiln bench --device cuda --json --only attention_b > $R/kiln-att-kernels-$i.json 2> $R/kiln-att-k.log; grep "bench:.*bf16_fwd" $R/kiln-att-k.log
python3 "$B/ref/torch_attention.py" > $R/torch-att-$i.json 2>&1; cat $R/torch-att-$i.json
done
K=gpt_6L384_T256_b64_bf16
"$B/run.sh" kiln bench --device cuda --only $K --cuda-graphs --json --profile $R/kiln-prof > $R/kiln-gpt.json 2> $R/kiln-gpt.log; echo "kiln gpt exit $?"
python3 "$B/ref/torch_ref.py" --only $K --compiled > $R/torch-gpt.json 2> $R/torch-gpt.log; echo "torch exit $?"
python3 "$B/ref/compare.py" $R/kiln-gpt.json $R/torch-gpt.json | tee $R/compare-gpt.txt
timeout 150 /usr/local/cuda/bin/ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv --launch-skip 300 --launch-count 16 \
  "$B/run.sh" kiln bench --device cuda --json --only attention_b8_h16_t1024_d128_bf16_fwd_bwd_ms > $R/ncu-d128.csv 2>/dev/null
python3 - $R/ncu-d128.csv <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10][1:]
for r in rows[:16]: print(f"{float(r[-1].replace(',', '')) / 1000:9.1f} us  {r[4][:100]}")
PY
cd $R && tar czf all.tgz * && ls
