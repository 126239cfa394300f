#!/usr/bin/env bash
# Load test of `kiln serve` with wrk: POST /predict of one image at 1, 8 and 64 connections, p50/p99 latency and
# throughput as a Markdown table (on stdout, and appended to OUT when given).
#
#   bench/serve_load.sh RUN IMAGE [OUT.md]        e.g. bench/serve_load.sh runs/latest shoe.png bench/results/serve-load.md
#
# Env: PORT (default 8181), DURATION (default 10s), THREADS (wrk threads, default 2), KILN_SERVE_ARGS (extra serve options,
# e.g. "--device cuda --max-batch 64"). Needs wrk (Debian: apt-get install wrk).
set -euo pipefail
run=${1:?usage: serve_load.sh RUN IMAGE [OUT.md]}
image=${2:?usage: serve_load.sh RUN IMAGE [OUT.md]}
out=${3:-}
port=${PORT:-8181}
duration=${DURATION:-10s}
threads=${THREADS:-2}
here=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { echo "serve_load.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -f "$image" ] || { echo "serve_load.sh: $image: no such file" >&2; exit 1; }

log=$(mktemp)
"$here/kiln" serve "$run" --port "$port" ${KILN_SERVE_ARGS:-} >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log" "$lua"' EXIT
for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 $server 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.5
done

lua=$(mktemp --suffix .lua)
cat >"$lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
local f = assert(io.open("$image", "rb"))
wrk.body = f:read("*all")
f:close()
LUA

# warm-up (kernel compilation, JIT, the batcher's first batches), not reported
wrk -t1 -c8 -d3s -s "$lua" "http://127.0.0.1:$port/predict" >/dev/null

table="| connections | requests/s | p50 ms | p99 ms | non-2xx |
|---:|---:|---:|---:|---:|"
for c in 1 8 64; do
    t=$(( c < threads ? c : threads ))
    r=$(wrk -t$t -c$c -d"$duration" --latency -s "$lua" "http://127.0.0.1:$port/predict")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$r")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$r")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$r")
    bad=$(awk '/Non-2xx/ {print $NF}' <<<"$r")
    ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'; }
    table+="
| $c | $rps | $(ms "$p50") | $(ms "$p99") | ${bad:-0} |"
done
metrics=$(curl -fsS "http://127.0.0.1:$port/metrics")
result="$table

server: \`kiln serve $run ${KILN_SERVE_ARGS:-}\`, image $(basename "$image"), wrk $duration per row, $(nproc) CPU cores.
/metrics after the run: \`$metrics\`"
echo "$result"
[ -z "$out" ] || printf '%s\n' "$result" >>"$out"
