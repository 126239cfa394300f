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
p.add_argument('--compiled', action='store_true',
               help='also profile torch.compile (default mode: the kernels reduce-overhead graphs) of each step, fused Adam')
args = p.parse_args()
only = [s for s in args.only.split(',') if s]


def cnn(): return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                                nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128),
                                nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def cifar(): return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
                                  nn.MaxPool2d(2), nn.Dropout(0.25), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
                                  nn.Linear(2304, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 10))


class Block(nn.Module):   # torch_ref.py's GPT block
    def __init__(s, d, h):
        super().__init__(); s.h = h; s.ln1 = nn.LayerNorm(d); s.ln2 = nn.LayerNorm(d)
        s.qkv = nn.Linear(d, 3 * d); s.proj = nn.Linear(d, d); s.fc = nn.Linear(d, 4 * d); s.fc2 = nn.Linear(4 * d, d)

    def forward(s, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, s.h, C // s.h).transpose(1, 2) for t in s.qkv(s.ln1(x)).split(C, 2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + s.proj(y)
        return x + s.fc2(F.gelu(s.fc(s.ln2(x))))


class GPT(nn.Module):
    def __init__(s, V=65, d=384, L=6, h=6, T=256):
        super().__init__(); s.te = nn.Embedding(V, d); s.pe = nn.Embedding(T, d)
        s.blocks = nn.Sequential(*[Block(d, h) for _ in range(L)]); s.ln = nn.LayerNorm(d); s.head = nn.Linear(d, 65)

    def forward(s, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        return s.head(s.ln(s.blocks(s.te(idx) + s.pe(pos)))).view(-1, 65)


def profile_steps(key, m, opt, x, y, amp, fm=None):
    fm = m if fm is None else fm
    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast('cuda', torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(fm(x), y)
        loss.backward()
        opt.step()

    for _ in range(15 if fm is not m else 10):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            step()
        torch.cuda.synchronize()
    print(f'## {key}: 5 steps')
    print(prof.key_averages().table(sort_by='cuda_time_total', row_limit=args.rows, max_name_column_width=90))


for amp in (False, True):
    key = f'gpt_6L384_T256_b64_{"bf16" if amp else "fp32"}'
    if only and any(key.startswith(o) for o in only):   # only when asked: the conv nets are the default
        m = GPT().cuda()
        idx = torch.randint(0, 65, (64, 256), device='cuda')
        profile_steps(key, m, torch.optim.AdamW(m.parameters(), 1e-3), idx, idx.view(-1), amp)

for name, make, shape in [('cnn', cnn, (1, 28, 28)), ('cifar_cnn', cifar, (3, 32, 32))]:
    for bs in (128, 1024):
        for amp in (False, True):
            key = f'{name}_b{bs}_{"bf16" if amp else "fp32"}'
            if only and not any(key.startswith(o) for o in only):
                continue
            for compiled in (False, True) if args.compiled else (False,):
                m = make().cuda()
                opt = torch.optim.Adam(m.parameters(), 1e-3, fused=compiled)
                x = torch.randn(bs, *shape, device='cuda')
                y = torch.randint(0, 10, (bs,), device='cuda')
                profile_steps(key + (' compiled' if compiled else ''), m, opt, x, y, amp,
                              torch.compile(m) if compiled else None)

if any(o.startswith('resnet18') for o in only):   # torch_ref.py's resnet18 fp32 row: b64, NCHW, Adam (fused when compiled)
    import torchvision
    for compiled in (False, True) if args.compiled else (False,):
        m = torchvision.models.resnet18(num_classes=10).cuda()
        x = torch.randn(64, 3, 224, 224, device='cuda')
        y = torch.randint(0, 10, (64,), device='cuda')
        opt = torch.optim.Adam(m.parameters(), 1e-3, fused=compiled)
        profile_steps('resnet18_224_b64_fp32' + (' compiled' if compiled else ''), m, opt, x, y, False,
                      torch.compile(m) if compiled else None)

if any(o.startswith('resnet50') for o in only):   # torch_ref.py's resnet50 row: b128 bf16 channels-last, Adam
    import torchvision
    for compiled in (False, True) if args.compiled else (False,):
        m = torchvision.models.resnet50().cuda().to(memory_format=torch.channels_last)
        x = torch.randn(128, 3, 224, 224, device='cuda').to(memory_format=torch.channels_last)
        y = torch.randint(0, 1000, (128,), device='cuda')
        opt = torch.optim.Adam(m.parameters(), 1e-3, fused=compiled)
        profile_steps('resnet50_224_b128_bf16_cl' + (' compiled' if compiled else ''), m, opt, x, y, True,
                      torch.compile(m) if compiled else None)
