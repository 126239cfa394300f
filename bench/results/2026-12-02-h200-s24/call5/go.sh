#!/usr/bin/env bash
# call 5: which kernels cuDNN runs for Kiln's attention graphs and for PyTorch's (d 128 and the GPT shape), by Nsight Compute
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
NCU="/usr/local/cuda/bin/ncu --clock-control none --cache-control none --metrics gpu__time_duration.sum --csv"
for k in attention_b8_h16_t1024_d128_bf16_fwd_bwd_ms attention_b64_h6_t256_d64_bf16_fwd_bwd_ms; do
  timeout 200 $NCU --launch-skip 300 --launch-count 40 "$B/run.sh" kiln bench --device cuda --json --only $k > $R/ncu-kiln-$k.csv 2> $R/ncu-kiln-$k.log; echo "ncu kiln $k exit $?"
  python3 - $R/ncu-kiln-$k.csv <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10][1:]
for r in rows[:24]: print(f"{float(r[-1].replace(',', '')) / 1000:9.1f} us  {r[4][:100]}")
PY
done
timeout 120 $NCU --launch-skip 20 --launch-count 30 python3 $B/att128.py > $R/ncu-torch-d128.csv 2> $R/ncu-torch.log; echo "ncu torch exit $?"
python3 - $R/ncu-torch-d128.csv <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10][1:]
for r in rows[:24]: print(f"{float(r[-1].replace(',', '')) / 1000:9.1f} us  {r[4][:100]}")
PY
cd $R && tar czf ncu.tgz *.csv && rm -f *.csv
