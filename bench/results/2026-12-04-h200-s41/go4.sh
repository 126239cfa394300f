#!/usr/bin/env bash
# session 41 call 4: the final code. The GPU suite by groups (CPU references changed: attention, softmax and norm lane
# reductions, the recurrent cells, sigmoid and tanh, transposed-B packing), the CPU tests on the host, then the CPU
# GPT and LSTM on 16 cores with this code and the session's starting code, and PyTorch's
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
timeout 60 "$B/run.sh" test $(sel dev.kiln.cpu.MatmulCpuTest dev.kiln.cpu.RecurrentCpuTest dev.kiln.cpu.AttentionF32Test dev.kiln.cpu.JitTierDeterminismTest dev.kiln.ops.Float32FastPathTest dev.kiln.ops.RecurrentGradTest dev.kiln.nn.RecurrentLayersTest dev.kiln.models.CharLSTMTest dev.kiln.ops.MatmulGradTest) > $R/cputests.txt 2>&1; echo "cpu tests exit $? at $(el)s"
grep -E "tests (successful|failed|skipped)" $R/cputests.txt; grep -A8 "✘" $R/cputests.txt | grep -E "Exception|expected|Error|=>|✘" | head -8
for round in 1; do
  timeout 60 "$B/run.sh" kiln bench --device cpu --only gpt,lstm --json > $R/kiln-new$round.json 2> $R/kiln-new$round.log; echo "cpu new $round exit $? at $(el)s: $(tr -d '\n ' < $R/kiln-new$round.json)"
  timeout 60 "$B/kiln-with.sh" "$B/old/kiln-core-old.jar" bench --device cpu --only gpt,lstm --json > $R/kiln-old$round.json 2> $R/kiln-old$round.log; echo "cpu old $round exit $? at $(el)s: $(tr -d '\n ' < $R/kiln-old$round.json)"
  left=$(( 585 - $(date +%s) + T0 ))
  [ $left -gt 30 ] && { PYTHONUNBUFFERED=1 timeout $left python3 bench/torch_cpu_ref.py seq > $R/torch-seq$round.txt 2>&1; echo "torch seq $round exit $? at $(el)s"; grep tok_s $R/torch-seq$round.txt; }
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
