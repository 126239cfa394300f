#!/usr/bin/env python3
"""Where PyTorch's GPU time goes in one training step of the bench models (the kernels it picks, their times).

Kiln's own table comes from `kiln bench --profile DIR`; this prints PyTorch's beside it, so that a slower op in
Kiln can be traced to the kernel PyTorch runs instead. Usage on the GPU machine:
    python3 torch_profile.py [--only cnn_b1024_fp32,...] > torch-profile.txt
The models are those of shared/bench/torch_ref.py.
"""
import argparse
import torch, torch.nn as nn, torch.nn.functional as F
from torch.profiler import profile, ProfilerActivity

p = argparse.ArgumentParser()
p.add_argument('--only', default='')
p.add_argument('--rows', type=int, default=30)
args = p.parse_args()
only = [s for s in args.only.split(',') if s]


def cnn(): return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                                nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128),
                                nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def cifar(): return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Dropout(0.25), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
                                  nn.Linear(2304, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 10))


for name, make, shape in [('cnn', cnn, (1, 28, 28)), ('cifar_cnn', cifar, (3, 32, 32))]:
    for bs in (128, 1024):
        for amp in (False, True):
            key = f'{name}_b{bs}_{"bf16" if amp else "fp32"}'
            if only and not any(key.startswith(o) for o in only):
                continue
            m = make().cuda()
            opt = torch.optim.Adam(m.parameters(), 1e-3)
            x = torch.randn(bs, *shape, device='cuda')
            y = torch.randint(0, 10, (bs,), device='cuda')

            def step():
                opt.zero_grad(set_to_none=True)
                with torch.autocast('cuda', torch.bfloat16, enabled=amp):
                    loss = F.cross_entropy(m(x), y)
                loss.backward()
                opt.step()

            for _ in range(10):
                step()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(5):
                    step()
                torch.cuda.synchronize()
            print(f'## {key}: 5 steps')
            print(prof.key_averages().table(sort_by='cuda_time_total', row_limit=args.rows, max_name_column_width=90))
