#!/usr/bin/env bash
# Call 4: Nsight Compute stall reasons and the per-instruction samples of one radix pass of the 2^24 argsort.
B=$(cd "$(dirname "$0")" && pwd)
O=${OUT:-/tmp/kiln-out}/r; mkdir -p "$O"
NCU=/usr/local/cuda/bin/ncu
S=""
for r in long_scoreboard short_scoreboard barrier membar mio_throttle lg_throttle wait branch_resolving math_pipe_throttle no_instruction dispatch_stall drain not_selected selected sleeping tex_throttle misc imc_miss; do
  S="$S${S:+,}smsp__average_warps_issue_stalled_${r}_per_issue_active.ratio"
done
timeout 200 $NCU --kernel-name regex:radix_pass --launch-skip 6 --launch-count 1 --metrics "$S" --target-processes all "$B/run.sh" bench argsort-flat > "$O/ncu-stalls.txt" 2>&1
echo "stalls exit $?"; grep "stalled" "$O/ncu-stalls.txt"
timeout 300 $NCU --kernel-name regex:radix_pass --launch-skip 6 --launch-count 1 --section SourceCounters --section WarpStateStats --import-source no \
  -o /tmp/pass --target-processes all "$B/run.sh" bench argsort-flat > /dev/null 2>&1
echo "rep exit $?"
$NCU --import /tmp/pass.ncu-rep --page source --csv --print-source sass > "$O/ncu-sass.csv" 2>&1; echo "sass exit $?"; wc -l "$O/ncu-sass.csv"; head -3 "$O/ncu-sass.csv" | cut -c1-600
