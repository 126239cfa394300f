#!/usr/bin/env bash
# session 40 call 1: the attention output held to its rounding bound (AttentionGpuTest, three runs), ConvPlan's three
# directions through one call path (the convolution, pooling and normalization GPU tests); then where the CPU LSTM's
# step goes on the host's 16 cores: kiln bench's op table and a Flight Recorder sampling, PyTorch 2.11's op table
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
lscpu > $R/lscpu.txt
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
for r in 1 2 3; do
  timeout 100 "$B/run.sh" test --select-class dev.kiln.cuda.AttentionGpuTest > $R/attn$r.txt 2>&1; echo "attention run $r exit $? at $(el)s"
  grep -E "tests (successful|failed)" $R/attn$r.txt; grep -A8 "✘" $R/attn$r.txt | grep -E "Exception|expected|Error|=>|✘" | head -8
done
timeout 150 "$B/run.sh" test $(sel dev.kiln.cuda.ConvolutionGpuTest dev.kiln.cuda.PoolingGpuTest dev.kiln.cuda.NormalizationGpuTest dev.kiln.cuda.CudaBackendGpuTest dev.kiln.cuda.AmpGpuTest) > $R/conv.txt 2>&1; echo "conv tests exit $? at $(el)s"
grep -E "tests (successful|failed|skipped)" $R/conv.txt; grep -A8 "✘" $R/conv.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
timeout 70 "$B/run.sh" kiln bench --device cpu --only lstm --profile $R/prof --json > $R/kiln-lstm-prof.json 2> $R/kiln-lstm-prof.log; echo "kiln lstm profile exit $? at $(el)s"; cat $R/prof/*.txt
JAVA_TOOL_OPTIONS="-XX:StartFlightRecording=filename=$R/lstm.jfr,settings=profile" timeout 70 "$B/run.sh" kiln bench --device cpu --only lstm --json > $R/kiln-lstm.json 2> $R/kiln-lstm.log; echo "kiln lstm jfr exit $? at $(el)s"; tr -d '\n ' < $R/kiln-lstm.json; echo
PYTHONUNBUFFERED=1 timeout 90 python3 bench/torch_cpu_ref.py seq --profile > $R/torch-seq.txt 2>&1; echo "torch seq exit $? at $(el)s"; grep -E "tok_s|mkldnn|torch " $R/torch-seq.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
