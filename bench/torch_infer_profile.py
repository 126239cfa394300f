#!/usr/bin/env python3
"""Where PyTorch's GPU time goes in one batch-256 fp32 inference forward of torchvision's resnet18 / resnet50
(evaluation mode, no_grad, as torch_infer.py times them), eager and torch.compile: the kernels and their times, to set
beside Kiln's (CudaBench's infer-MODEL mode under Nsight Compute). Usage on the GPU machine:
    python3 torch_infer_profile.py [--only resnet50] [--rows 25] > torch-infer-profile.txt
"""
import argparse, collections
import torch, torchvision
from torch.profiler import profile, ProfilerActivity

p = argparse.ArgumentParser()
p.add_argument('--only', default='resnet18,resnet50')
p.add_argument('--rows', type=int, default=25)
args = p.parse_args()

for name in args.only.split(','):
    torch.manual_seed(0)
    m = getattr(torchvision.models, name)().cuda().eval()
    x = torch.randn(256, 3, 224, 224, device='cuda')
    for label, fn in (('eager', m), ('compiled', torch.compile(m))):
        with torch.no_grad():
            for _ in range(5): fn(x)
            torch.cuda.synchronize()
            reps = 5
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(reps): fn(x)
                torch.cuda.synchronize()
        by = collections.defaultdict(lambda: [0.0, 0])
        for e in prof.events():
            if e.device_type == torch.autograd.DeviceType.CUDA:
                by[e.name][0] += e.device_time / reps; by[e.name][1] += 1
        total = sum(t for t, _ in by.values())
        print(f'{name} b256 fp32 {label}: {sum(c for _, c in by.values()) // reps} kernels, {total / 1000:.3f} ms a forward')
        for n, (t, c) in sorted(by.items(), key=lambda kv: -kv[1][0])[:args.rows]:
            print(f'{t / 1000:8.3f} ms {c // reps:4d}  {n[:120]}')
        print(flush=True)
