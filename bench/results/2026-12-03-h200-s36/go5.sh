#!/usr/bin/env bash
# session 36 call 5: the final code (matmul.cu as of call 3: the epilogue's loads first, Tc32Loads): GPT and LSTM fp32 and
# bf16 beside torch.compile in the same call, then the GPU suite by groups (DataParallelGpuTest needs two GPUs)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32,gpt_6L384_T256_b64_bf16,lstm_2L512_T128_b64_bf16
timeout 100 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json > $R/kiln.json 2> $R/kiln.log; echo "kiln bench exit $? at $(el)s"
PYTHONUNBUFFERED=1 timeout 150 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
n=0
for group in "dev.kiln.cuda.MatmulGpuTest dev.kiln.cuda.ConvolutionGpuTest dev.kiln.cuda.AttentionGpuTest dev.kiln.cuda.CublasLtChoicesGpuTest dev.kiln.cuda.ElementwiseGpuTest" \
    "dev.kiln.cuda.TransformerGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.RecurrentGpuTest dev.kiln.train.TrainerGraphGpuTest" \
    "dev.kiln.cuda.NormalizationGpuTest dev.kiln.cuda.PoolingGpuTest dev.kiln.cuda.OptimGpuTest dev.kiln.cuda.LossesGpuTest dev.kiln.cuda.SoftmaxGpuTest dev.kiln.cuda.ReductionsGpuTest dev.kiln.cuda.IndexingGpuTest dev.kiln.cuda.DropoutGpuTest dev.kiln.cuda.GraphGpuTest dev.kiln.cuda.ReluNaNGpuTest dev.kiln.cuda.SortingGpuTest dev.kiln.cuda.RandomGpuTest" \
    "dev.kiln.cuda.CudaBackendGpuTest dev.kiln.cuda.QuantizedGpuTest dev.kiln.cuda.PredictorGpuTest dev.kiln.cuda.PipelineGpuTest dev.kiln.cuda.TextDataGpuTest dev.kiln.cuda.CudaLibGpuTest dev.kiln.cuda.GpuMonitorGpuTest" \
    "dev.kiln.cuda.AmpGpuTest dev.kiln.cuda.NcclGpuTest dev.kiln.cuda.DataParallelOneGpuTest dev.kiln.train.Fp16GraphGpuTest dev.kiln.train.CrashResumeGpuTest"; do
  n=$((n+1))
  left=$(( 560 - $(date +%s) + T0 )); [ $left -lt 30 ] && { echo "group $n not run: $left s left"; continue; }
  NCCL_NVLS_ENABLE=0 timeout $(( left < 130 ? left : 130 )) "$B/run.sh" test $(sel $group) > $R/tests$n.txt 2>&1; echo "group $n exit $? at $(el)s"
  grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests$n.txt; grep -A8 "✘" $R/tests$n.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
