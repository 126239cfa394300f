#!/usr/bin/env bash
# session 39 call 4: the final code (kept arrays make room past the cap, a finished loop's body cleared): the GPU suite by groups (their
# CPU references changed), the CPU tests on the host, the probe, kiln bench's GPT / LSTM (profiled) and PyTorch's steps
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
n=0
for group in "dev.kiln.cuda.MatmulGpuTest dev.kiln.cuda.ConvolutionGpuTest dev.kiln.cuda.AttentionGpuTest dev.kiln.cuda.CublasLtChoicesGpuTest dev.kiln.cuda.ElementwiseGpuTest" \
    "dev.kiln.cuda.TransformerGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.RecurrentGpuTest dev.kiln.train.TrainerGraphGpuTest" \
    "dev.kiln.cuda.NormalizationGpuTest dev.kiln.cuda.PoolingGpuTest dev.kiln.cuda.OptimGpuTest dev.kiln.cuda.LossesGpuTest dev.kiln.cuda.SoftmaxGpuTest dev.kiln.cuda.ReductionsGpuTest dev.kiln.cuda.IndexingGpuTest dev.kiln.cuda.DropoutGpuTest dev.kiln.cuda.GraphGpuTest dev.kiln.cuda.ReluNaNGpuTest dev.kiln.cuda.SortingGpuTest dev.kiln.cuda.RandomGpuTest" \
    "dev.kiln.cuda.CudaBackendGpuTest dev.kiln.cuda.QuantizedGpuTest dev.kiln.cuda.PredictorGpuTest dev.kiln.cuda.PipelineGpuTest dev.kiln.cuda.TextDataGpuTest dev.kiln.cuda.CudaLibGpuTest dev.kiln.cuda.GpuMonitorGpuTest" \
    "dev.kiln.cuda.AmpGpuTest dev.kiln.cuda.NcclGpuTest dev.kiln.cuda.DataParallelOneGpuTest dev.kiln.train.Fp16GraphGpuTest dev.kiln.train.CrashResumeGpuTest"; do
  n=$((n+1))
  left=$(( 330 - $(date +%s) + T0 )); [ $left -lt 30 ] && { echo "group $n not run: $left s left"; continue; }
  timeout $(( left < 130 ? left : 130 )) "$B/run.sh" test $(sel $group) > $R/tests$n.txt 2>&1; echo "group $n exit $? at $(el)s"
  grep -E "tests (successful|failed|aborted)" $R/tests$n.txt; grep -A8 "✘" $R/tests$n.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
done
timeout 60 "$B/run.sh" test $(sel dev.kiln.cpu.MatmulCpuTest dev.kiln.cpu.LayerNormF32Test dev.kiln.cpu.RecurrentCpuTest dev.kiln.cpu.ParallelTest dev.kiln.cpu.JitTierDeterminismTest dev.kiln.ops.NormalizationGradTest dev.kiln.ops.MatmulGradTest dev.kiln.cpu.PoolingCpuTest dev.kiln.cpu.ConvolutionCpuTest dev.kiln.models.ResNetTest dev.kiln.cpu.FloatArraysTest) > $R/cputests.txt 2>&1; echo "cpu tests exit $? at $(el)s"
grep -E "tests (successful|failed|skipped)" $R/cputests.txt; grep -A8 "✘" $R/cputests.txt | grep -E "Exception|expected|Error|=>|✘" | head -8
timeout 50 "$B/run.sh" java dev.kiln.cpu.ManyCoreProbe > $R/probe.txt 2>&1; echo "probe exit $? at $(el)s"; grep -v WARN $R/probe.txt
for round in 1 2; do
  timeout 70 "$B/run.sh" kiln bench --device cpu --only gpt,lstm --json > $R/kiln-cpu$round.json 2> $R/kiln-cpu$round.log; echo "kiln cpu $round exit $? at $(el)s"; tr -d '\n ' < $R/kiln-cpu$round.json; echo
  left=$(( 570 - $(date +%s) + T0 )); [ $left -lt 30 ] && break
  PYTHONUNBUFFERED=1 timeout $(( left < 60 ? left : 60 )) python3 bench/torch_cpu_ref.py seq > $R/torch-seq$round.txt 2>&1; echo "torch seq $round exit $? at $(el)s"; cat $R/torch-seq$round.txt
done
echo "done at $(el)s"
cd $R && gzip -f prof/*.json 2>/dev/null; tar czf all.tgz --exclude='*.tgz' *
