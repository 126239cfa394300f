#!/usr/bin/env bash
# session 37 call 3: the GPU suite by groups on this session's code (kiln.dp.reduce.alone, kiln.dp.comm.high.priority,
# the timed searches' wall times in the debug log), then gpu-scaling.sh's new lines as a job of one reducing alone:
# the reductions' stream at the highest priority, and the per-rank eager profile of the GPT bf16 step
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
n=0
for group in "dev.kiln.cuda.AmpGpuTest dev.kiln.cuda.NcclGpuTest dev.kiln.cuda.DataParallelOneGpuTest dev.kiln.train.Fp16GraphGpuTest dev.kiln.train.CrashResumeGpuTest" \
    "dev.kiln.cuda.MatmulGpuTest dev.kiln.cuda.ConvolutionGpuTest dev.kiln.cuda.AttentionGpuTest dev.kiln.cuda.CublasLtChoicesGpuTest dev.kiln.cuda.ElementwiseGpuTest" \
    "dev.kiln.cuda.TransformerGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.RecurrentGpuTest dev.kiln.train.TrainerGraphGpuTest" \
    "dev.kiln.cuda.NormalizationGpuTest dev.kiln.cuda.PoolingGpuTest dev.kiln.cuda.OptimGpuTest dev.kiln.cuda.LossesGpuTest dev.kiln.cuda.SoftmaxGpuTest dev.kiln.cuda.ReductionsGpuTest dev.kiln.cuda.IndexingGpuTest dev.kiln.cuda.DropoutGpuTest dev.kiln.cuda.GraphGpuTest dev.kiln.cuda.ReluNaNGpuTest dev.kiln.cuda.SortingGpuTest dev.kiln.cuda.RandomGpuTest" \
    "dev.kiln.cuda.CudaBackendGpuTest dev.kiln.cuda.QuantizedGpuTest dev.kiln.cuda.PredictorGpuTest dev.kiln.cuda.PipelineGpuTest dev.kiln.cuda.TextDataGpuTest dev.kiln.cuda.CudaLibGpuTest dev.kiln.cuda.GpuMonitorGpuTest"; do
  n=$((n+1))
  left=$(( 480 - $(date +%s) + T0 )); [ $left -lt 30 ] && { echo "group $n not run: $left s left"; continue; }
  timeout $(( left < 130 ? left : 130 )) "$B/run.sh" test $(sel $group) > $R/tests$n.txt 2>&1; echo "group $n exit $? at $(el)s"
  grep -E "tests (successful|failed|aborted)|\[dp\]" $R/tests$n.txt; grep -A8 "✘" $R/tests$n.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
done
export KILN_DP_REDUCE_ALONE=on
KILN_DP_COMM_HIGH_PRIORITY=on timeout 60 "$B/run.sh" kiln bench --gpus 1 --cuda-graphs --json --only gpt,resnet18 > $R/alone-high.json 2> $R/alone-high.log; echo "alone-high exit $? at $(el)s"; tr -d '\n ' < $R/alone-high.json; echo
timeout 60 "$B/run.sh" kiln bench --gpus 1 --json --only gpt_6L384_T256_b64_bf16 --profile $R/prof > $R/alone-prof.json 2> $R/alone-prof.log; echo "alone-prof exit $? at $(el)s"
for f in $R/prof/*.txt; do echo "== $f"; head -30 "$f"; done
echo "done at $(el)s"
cd $R && gzip -f prof/*.json 2>/dev/null; tar czf all.tgz --exclude='*.tgz' *
