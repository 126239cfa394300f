#!/usr/bin/env bash
# session 38 call 1: the GPU suite by groups at this session's code (CPU changes only: the 512-bit GEMM kernel in
# machine code, the CPU attention by causal blocks, both references of the GPU tests); then on the GPU host's own CPU
# (a 16-core Xeon with AVX-512): the CPU kernel tests, CpuBench gemm, and the GPT / LSTM on the CPU beside PyTorch 2.11
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-300 > $R/cpu.txt; head -2 $R/cpu.txt
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
n=0
for group in "dev.kiln.cuda.MatmulGpuTest dev.kiln.cuda.ConvolutionGpuTest dev.kiln.cuda.AttentionGpuTest dev.kiln.cuda.CublasLtChoicesGpuTest dev.kiln.cuda.ElementwiseGpuTest" \
    "dev.kiln.cuda.TransformerGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.RecurrentGpuTest dev.kiln.train.TrainerGraphGpuTest" \
    "dev.kiln.cuda.NormalizationGpuTest dev.kiln.cuda.PoolingGpuTest dev.kiln.cuda.OptimGpuTest dev.kiln.cuda.LossesGpuTest dev.kiln.cuda.SoftmaxGpuTest dev.kiln.cuda.ReductionsGpuTest dev.kiln.cuda.IndexingGpuTest dev.kiln.cuda.DropoutGpuTest dev.kiln.cuda.GraphGpuTest dev.kiln.cuda.ReluNaNGpuTest dev.kiln.cuda.SortingGpuTest dev.kiln.cuda.RandomGpuTest" \
    "dev.kiln.cuda.CudaBackendGpuTest dev.kiln.cuda.QuantizedGpuTest dev.kiln.cuda.PredictorGpuTest dev.kiln.cuda.PipelineGpuTest dev.kiln.cuda.TextDataGpuTest dev.kiln.cuda.CudaLibGpuTest dev.kiln.cuda.GpuMonitorGpuTest" \
    "dev.kiln.cuda.AmpGpuTest dev.kiln.cuda.NcclGpuTest dev.kiln.cuda.DataParallelOneGpuTest dev.kiln.train.Fp16GraphGpuTest dev.kiln.train.CrashResumeGpuTest"; do
  n=$((n+1))
  left=$(( 400 - $(date +%s) + T0 )); [ $left -lt 30 ] && { echo "group $n not run: $left s left"; continue; }
  timeout $(( left < 130 ? left : 130 )) "$B/run.sh" test $(sel $group) > $R/tests$n.txt 2>&1; echo "group $n exit $? at $(el)s"
  grep -E "tests (successful|failed|aborted)" $R/tests$n.txt; grep -A8 "✘" $R/tests$n.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
done
timeout 60 "$B/run.sh" test $(sel dev.kiln.cpu.MatmulCpuTest dev.kiln.cpu.AttentionF32Test dev.kiln.cpu.Int8GemmTest) > $R/cputests.txt 2>&1; echo "cpu tests exit $? at $(el)s"
grep -E "tests (successful|failed|skipped)" $R/cputests.txt; grep -A8 "✘" $R/cputests.txt | grep -E "Exception|expected|Error|=>|✘" | head -8
timeout 60 "$B/run.sh" kiln devices > $R/devices.txt 2>&1; head -1 $R/devices.txt
timeout 90 "$B/run.sh" java -Xms4g -XX:+AlwaysPreTouch dev.kiln.bench.CpuBench gemm > $R/cpugemm.txt 2>&1; echo "cpu gemm exit $? at $(el)s"; grep gemm $R/cpugemm.txt
left=$(( 585 - $(date +%s) + T0 ))
[ $left -gt 60 ] && { timeout $(( left / 2 )) "$B/run.sh" kiln bench --device cpu --only gpt,lstm --json > $R/kiln-cpu.json 2> $R/kiln-cpu.log; echo "kiln cpu exit $? at $(el)s"; tr -d '\n ' < $R/kiln-cpu.json; echo; }
left=$(( 585 - $(date +%s) + T0 ))
[ $left -gt 30 ] && { PYTHONUNBUFFERED=1 timeout $left python3 bench/torch_cpu_ref.py seq > $R/torch-cpu.txt 2>&1; echo "torch cpu exit $? at $(el)s"; cat $R/torch-cpu.txt; }
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
