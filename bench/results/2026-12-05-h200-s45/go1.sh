#!/usr/bin/env bash
# session 45 call 1: session 44's final code plus the 256-bit weight-gradient change (61fd714) (CPU references changed: Conv3x3's stem and shortcut, WeightCache,
# Sgemv, batch norm's sums): the whole GPU suite by groups, the two interop tests (torchvision's ResNets and Hugging
# Face's GPT-2 against the CPU and CUDA), session 44's CPU tests on these 16 cores, and kiln launch on one GPU (a
# world of one over NCCL through the launcher, whose output forwarding changed in session 43)
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
export NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-200 > $R/cpu.txt
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
mkdir -p /tmp/kiln-interop
python3 "$B/ref/resnet_interop.py" /tmp/kiln-interop > $R/interop.txt 2>&1; echo "resnet_interop exit $?"
python3 "$B/ref/gpt2_interop.py" /tmp/kiln-interop >> $R/interop.txt 2>&1; echo "gpt2_interop exit $?"
export KILN_INTEROP_DIR=/tmp/kiln-interop
n=0
for group in "dev.kiln.cuda.MatmulGpuTest dev.kiln.cuda.ConvolutionGpuTest dev.kiln.cuda.AttentionGpuTest dev.kiln.cuda.CublasLtChoicesGpuTest dev.kiln.cuda.ElementwiseGpuTest" \
    "dev.kiln.cuda.TransformerGpuTest dev.kiln.cuda.LanguageModelGpuTest dev.kiln.cuda.RecurrentGpuTest dev.kiln.train.TrainerGraphGpuTest" \
    "dev.kiln.cuda.NormalizationGpuTest dev.kiln.cuda.PoolingGpuTest dev.kiln.cuda.OptimGpuTest dev.kiln.cuda.LossesGpuTest dev.kiln.cuda.SoftmaxGpuTest dev.kiln.cuda.ReductionsGpuTest dev.kiln.cuda.IndexingGpuTest dev.kiln.cuda.DropoutGpuTest dev.kiln.cuda.GraphGpuTest dev.kiln.cuda.ReluNaNGpuTest dev.kiln.cuda.SortingGpuTest dev.kiln.cuda.RandomGpuTest" \
    "dev.kiln.cuda.CudaBackendGpuTest dev.kiln.cuda.QuantizedGpuTest dev.kiln.cuda.PredictorGpuTest dev.kiln.cuda.PipelineGpuTest dev.kiln.cuda.TextDataGpuTest dev.kiln.cuda.CudaLibGpuTest dev.kiln.cuda.GpuMonitorGpuTest" \
    "dev.kiln.cuda.AmpGpuTest dev.kiln.cuda.NcclGpuTest dev.kiln.cuda.DataParallelOneGpuTest dev.kiln.train.Fp16GraphGpuTest dev.kiln.train.CrashResumeGpuTest" \
    "dev.kiln.cuda.ResNetInteropGpuTest dev.kiln.cuda.Gpt2InteropGpuTest"; do
  n=$((n+1))
  left=$(( 420 - $(date +%s) + T0 )); [ $left -lt 30 ] && { echo "group $n not run: $left s left"; continue; }
  timeout $(( left < 130 ? left : 130 )) "$B/run.sh" test $(sel $group) > $R/tests$n.txt 2>&1; echo "group $n exit $? at $(el)s"
  grep -E "tests (successful|failed|aborted|skipped)" $R/tests$n.txt; grep -A8 "✘" $R/tests$n.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
done
grep -h '^\[interop\]' $R/tests6.txt | head
timeout 90 "$B/run.sh" test $(sel dev.kiln.cpu.Conv3x3Test dev.kiln.cpu.ConvolutionCpuTest dev.kiln.cpu.MatmulCpuTest dev.kiln.cpu.BatchNormF32Test dev.kiln.infer.PredictorTest dev.kiln.models.ResNetTest) > $R/cputests.txt 2>&1; echo "cpu tests exit $? at $(el)s"
grep -E "tests (successful|failed|skipped)" $R/cputests.txt; grep -A8 "✘" $R/cputests.txt | grep -E "Exception|expected|Error|=>|✘" | head -8
timeout 90 "$B/run.sh" kiln launch --nproc-per-node 1 -- bench --data-parallel --cuda-graphs --json --only resnet18 > $R/launch1.json 2> $R/launch1.log; echo "launch exit $? at $(el)s"; cat $R/launch1.json; grep -v "^\s*$" $R/launch1.log | tail -5
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
