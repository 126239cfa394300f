#!/usr/bin/env bash
# session 35 call 6: MatmulGpuTest with the tanh GELU's DGELU bound, then the rest of the GPU suite by groups (JUnit
# prints only at the end, and the whole suite in one command ran out of time in session 34)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
n=0
for group in "dev.kiln.cuda.MatmulGpuTest dev.kiln.cuda.ConvolutionGpuTest dev.kiln.cuda.AttentionGpuTest dev.kiln.cuda.CublasLtChoicesGpuTest" \
    "dev.kiln.cuda.NormalizationGpuTest dev.kiln.cuda.PoolingGpuTest dev.kiln.cuda.OptimGpuTest dev.kiln.cuda.LossesGpuTest dev.kiln.cuda.SoftmaxGpuTest dev.kiln.cuda.ReductionsGpuTest dev.kiln.cuda.IndexingGpuTest dev.kiln.cuda.DropoutGpuTest dev.kiln.cuda.GraphGpuTest dev.kiln.cuda.ReluNaNGpuTest dev.kiln.cuda.SortingGpuTest dev.kiln.cuda.RandomGpuTest" \
    "dev.kiln.cuda.CudaBackendGpuTest dev.kiln.cuda.QuantizedGpuTest dev.kiln.cuda.PredictorGpuTest dev.kiln.cuda.PipelineGpuTest dev.kiln.cuda.TextDataGpuTest dev.kiln.cuda.CudaLibGpuTest dev.kiln.cuda.GpuMonitorGpuTest" \
    "dev.kiln.cuda.AmpGpuTest dev.kiln.cuda.NcclGpuTest dev.kiln.cuda.DataParallelOneGpuTest dev.kiln.train.Fp16GraphGpuTest dev.kiln.train.CrashResumeGpuTest"; do
  n=$((n+1))
  NCCL_NVLS_ENABLE=0 timeout 110 "$B/run.sh" test $(sel $group) > $R/tests$n.txt 2>&1; echo "group $n exit $? at $(el)s"
  grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests$n.txt; grep -A8 "✘" $R/tests$n.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
