#!/usr/bin/env python3
"""The kernels between the last two fill kernels of an Nsight Compute CSV (CudaBench's infer-MODEL marks), by name."""
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
ki, vi, ui = head.index('Kernel Name'), head.index('Metric Value'), head.index('Metric Unit')
ks = [(r[ki], float(r[vi].replace(',', '')) * {'ns': 1e-3, 'nsecond': 1e-3, 'ms': 1e3, 'msecond': 1e3}.get(r[ui], 1)) for r in rows]
fills = [i for i, (n, _) in enumerate(ks) if 'fill' in n]
a, b = fills[-2], fills[-1]
step = ks[a + 1:b]
by = collections.defaultdict(lambda: [0.0, 0])
for n, t in step: by[n][0] += t; by[n][1] += 1
print(f'{sys.argv[2] if len(sys.argv) > 2 else ""}: {len(step)} kernels, {sum(t for _, t in step) / 1000:.3f} ms')
for n, (t, c) in sorted(by.items(), key=lambda kv: -kv[1][0]): print(f'{t / 1000:8.3f} ms {c:4d}  {n[:120]}')
