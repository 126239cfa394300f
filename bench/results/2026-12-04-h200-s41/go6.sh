#!/usr/bin/env bash
# session 41 call 6: CPU SiLU and GELU's tanh form now in vector lanes: the GPU tests that hold CUDA's elementwise ops,
# its GELU epilogues and the transformer / GPT-2 paths to the CPU's, and the CPU fast-path tests on the host
T0=$(date +%s); B=$(cd "${1:-$(dirname "$0")}" && pwd); R=$OUT/r; rm -rf $R; mkdir -p $R
el() { echo "$(( $(date +%s)-T0 ))"; }
sel() { for c in "$@"; do printf ' --select-class %s' "$c"; done; }
timeout 200 "$B/run.sh" test $(sel dev.kiln.cuda.ElementwiseGpuTest dev.kiln.cuda.MatmulGpuTest dev.kiln.cuda.CublasLtChoicesGpuTest dev.kiln.cuda.TransformerGpuTest dev.kiln.cuda.AmpGpuTest dev.kiln.cuda.Gpt2InteropGpuTest dev.kiln.ops.Float32FastPathTest dev.kiln.cpu.JitTierDeterminismTest) > $R/tests.txt 2>&1; echo "tests exit $? at $(el)s"
grep -E "tests (successful|failed|aborted|skipped)" $R/tests.txt; grep -A8 "✘" $R/tests.txt | grep -E "Exception|expected|Error|=>|✘" | head -12
echo "done at $(el)s"
cd $R && tar czf all.tgz --exclude='*.tgz' *
