#!/usr/bin/env python3
"""One training step's kernels from an Nsight Compute CSV (gpu__time_duration.sum), steps cut at the optimizer's kernels.

usage: ncu_step.py NCU.csv [LABEL]   (scripts/gpu-profile.sh writes the CSV; the table is kernel time by name, largest first)
"""
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
ki, vi, ui = head.index('Kernel Name'), head.index('Metric Value'), head.index('Metric Unit')
ks = [(r[ki], float(r[vi].replace(',', '')) * {'ns': 1e-3, 'nsecond': 1e-3, 'ms': 1e3, 'msecond': 1e3}.get(r[ui], 1)) for r in rows]   # in us
opt = [i for i, (n, _) in enumerate(ks) if 'adam' in n]
ends = [i for j, i in enumerate(opt) if j + 1 == len(opt) or opt[j + 1] != i + 1]   # last kernel of each optimizer group
if len(ends) < 2: sys.exit(f'fewer than two optimizer steps in {len(ks)} kernels')
step = ks[ends[-2] + 1: ends[-1] + 1]
by = collections.defaultdict(lambda: [0.0, 0])
for n, t in step: by[n][0] += t; by[n][1] += 1
print(f'{sys.argv[2] if len(sys.argv) > 2 else ""} one step: {len(step)} kernels, {sum(t for _, t in step) / 1000:.3f} ms')
for n, (t, c) in sorted(by.items(), key=lambda kv: -kv[1][0]): print(f'{t / 1000:8.3f} ms {c:4d}  {n[:110]}')
