#!/usr/bin/env bash
# session 39 call 6: the final code (Settings for the CPU's threads, 8-row panels of a transposed A by vector moves):
# the GPU tests whose CPU references multiply (matmul, transformer, language model, recurrent, attention, convolution),
# the CPU tests on the host, the probe, one more round of Kiln's and PyTorch's CPU steps
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 150 "$B/run.sh" test $(sel dev.kiln.cuda.MatmulGpuTest dev.kiln.cuda.TransformerGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.RecurrentGpuTest dev.kiln.cuda.ConvolutionGpuTest dev.kiln.cuda.NormalizationGpuTest dev.kiln.cuda.PoolingGpuTest dev.kiln.cpu.MatmulCpuTest dev.kiln.cpu.ParallelTest dev.kiln.cpu.FloatArraysTest dev.kiln.cpu.LayerNormF32Test dev.kiln.cpu.RecurrentCpuTest dev.kiln.SettingsTest dev.kiln.ops.MatmulGradTest dev.kiln.cpu.JitTierDeterminismTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
timeout 50 "$B/run.sh" java dev.kiln.cpu.ManyCoreProbe > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"; grep -v WARN $R/probe.txt
timeout 70 "$B/run.sh" kiln bench --device cpu --only gpt,lstm --json > $R/kiln-cpu5.json 2> $R/kiln-cpu5.log; echo "kiln cpu exit $? at $(el)s"; tr -d '\n ' < $R/kiln-cpu5.json; echo
PYTHONUNBUFFERED=1 timeout 60 python3 bench/torch_cpu_ref.py seq > $R/torch-seq5.txt 2>&1; echo "torch seq exit $? at $(el)s"; cat $R/torch-seq5.txt
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
