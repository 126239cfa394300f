#!/usr/bin/env bash
# call 3: two-row-tile forward at D = 128: tests, attention rows (RT 2 and the one-tile forward) beside PyTorch, ncu
B=$(cd "$(dirname "$0")" && pwd); R=$OUT/r; mkdir -p $R
"$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest > $R/att-test.txt 2>&1; echo "test exit $?"
grep -E "tests (successful|failed)|✘|=>" $R/att-test.txt | head -30
for i in 1 2; do
"$B/run.sh" kiln bench --device cuda --json --only attention > $R/kiln-rt2-$i.json 2> $R/kiln.log; echo "bench exit $?"; grep "bench:" $R/kiln.log
JDK_JAVA_OPTIONS=-Dkiln.exp.fwd128rt1=true "$B/run.sh" kiln bench --device cuda --json --only attention_b8 > $R/kiln-rt1-$i.json 2> $R/kiln1.log; echo "bench rt1 exit $?"; grep "bench:" $R/kiln1.log
python3 "$B/ref/torch_attention.py" > $R/torch-att-$i.json 2>&1; cat $R/torch-att-$i.json
done
/usr/local/cuda/bin/ncu --target-processes all -k regex:"attention_mma_(fwd|bwd)" --launch-skip 4 --launch-count 2 \
  --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
  "$B/run.sh" kiln bench --device cuda --json --only attention_b8_h16_t1024_d128_bf16_fwd_bwd_ms > $R/ncu.txt 2>&1; echo "ncu exit $?"
grep -E "attention_mma|Duration|Registers Per|Achieved Occupancy|Compute \(SM\) Throughput|Warp Cycles Per Issued|Local" $R/ncu.txt | head -30
