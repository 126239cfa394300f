#!/usr/bin/env bash
# session 34 call 1: TimedPick (one timed choice for cuBLASLt/cuBLAS, gemm_tc32/cuBLAS, conv_tap_wgrad/cuDNN, kept on
# disk): the GPU tests that reach it, the CNN to 92% in a fresh cache then a second process (choices on disk), the GPT
# and LSTM fp32 and CIFAR CNN b128 rows beside torch.compile with Kiln's per-op profile
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt
timeout 200 "$B/run.sh" test --select-class dev.kiln.cuda.MatmulGpuTest --select-class dev.kiln.cuda.ConvolutionGpuTest \
  --select-class dev.kiln.cuda.CublasLtChoicesGpuTest --select-class dev.kiln.train.TrainerGraphGpuTest > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted)|16384 x 128" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -16
for run in cold warm; do
  KILN_CACHE_DIR=/tmp/c92 KILN_LOG_LEVEL=debug timeout 70 "$B/run.sh" kiln bench --device cuda --only fmnist_cnn_to92 --cuda-graphs --json --data "$B/fmnist" > $R/to92-$run.json 2> $R/to92-$run.log
  echo "to92 $run exit $? at $(el)s"; grep -E "to92" $R/to92-$run.json; grep -E "to92|first epoch" $R/to92-$run.log | grep -v DEBUG | head -6
  echo "timed picks: $(grep -c 'TimedPick' $R/to92-$run.log)"
done
ls -la /tmp/c92; gzip $R/to92-*.log
W=gpt_6L384_T256_b64_fp32,lstm_2L512_T128_b64_fp32,cifar_cnn_b128
KILN_LOG_LEVEL=debug timeout 150 "$B/run.sh" kiln bench --device cuda --only $W --cuda-graphs --json --profile $R/prof > $R/kiln.json 2> $R/kiln-debug.log; echo "kiln bench exit $? at $(el)s"
grep -E "TimedPick|gemm_tc32 |conv_tap_wgrad |cublaslt " $R/kiln-debug.log | sed 's/.*DEBUG//' | cut -c1-200 | sort | uniq -c | head -40; grep -v "DEBUG\|cudnn:" $R/kiln-debug.log > $R/kiln.log; gzip $R/kiln-debug.log
PYTHONUNBUFFERED=1 timeout 150 python3 "$B/ref/torch_ref.py" --only $W --compiled > $R/torch.json 2> $R/torch.log; echo "torch exit $? at $(el)s"
python3 "$B/ref/compare.py" $R/kiln.json $R/torch.json | tee $R/compare.txt
for f in $R/prof/*.txt; do echo "== $f"; head -45 $f; done
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
