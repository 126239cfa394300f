#!/usr/bin/env python3
"""PyTorch on the CPU beside Kiln's CPU backend: GEMM, the seed convolution, and training throughput.

Kiln's side: `kiln bench`'s CpuBench (GEMM, convolutions) and `kiln train --device cpu`. This prints the same cases
for PyTorch (Debian's python3-torch 1.13 + OpenBLAS: `apt-get install -y python3-torch`) on the same machine:
    python3 bench/torch_cpu_ref.py [gemm|conv|train|images|seq|ops|infer|generate|all] [--limit N] [--threads T] [--data DIR] [--profile]
To run OpenBLAS's AVX2 kernels on an AVX-512 machine (as on an AVX2-only CPU): OPENBLAS_CORETYPE=Haswell
ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 python3 bench/torch_cpu_ref.py ...
Figures: GEMM and convolution, best and median of 15 timed calls after warm-up; training, samples/s over one epoch
of N Fashion-MNIST images (the files kiln train reads), batch 128, Adam lr 1e-3, the models of kiln's ModelZoo,
data loading included (tensors already in memory, shuffled per epoch, as kiln's loader; --data: the directory of
Fashion-MNIST's files, gzipped or not); images, `kiln bench --device cpu`'s image workloads (mlp, cnn, cifar_cnn,
resnet_small at batch 128 and 1024, float32, random inputs, Adam; 10 warm-up steps and at least 2 s of them, then 10
timed and at least 1 s, as Kiln's); seq, torch_ref.py's GPT
(W7, AdamW) and character LSTM (W9, Adam) in float32, tokens/s over --steps steps after one warm-up step, as
`kiln bench --device cpu --only gpt,lstm` times Kiln's (torch 1.13 has no scaled_dot_product_attention: the causal
attention is written out, as its nn.MultiheadAttention would compute it); ops, those steps' products and elementwise
ops one by one (median and best microseconds), as Kiln's dev.kiln.cpu.ManyCoreProbe (test sources) times its own;
infer, ResNet-18 and ResNet-50 (torchvision's, or the same layers written out where torchvision is missing) in evaluation
mode, no gradients, 1000 classes, batch 1 latency (mean of 50 calls after 20) and batch 16 throughput (3 after 5), as
`kiln bench --device cpu --only infer_resnet18,infer_resnet50` times Kiln's Predictor; generate, the seq GPT (random weights) picking
60 tokens greedily after a 16-token prompt, one key/value-cached step each, and the seq LSTM likewise carrying its
state, runs for 2 s to warm up and then for at least 1 s timed, as `kiln bench --device cpu --only
infer_gpt_generate,infer_lstm_generate` times Kiln's TextGeneration (with threads over 1, Debian's torch 1.13 spends
most of a step in its thread pools: try --threads 1 too).
"""
import gzip, itertools, os, sys, time, argparse

p = argparse.ArgumentParser()
p.add_argument('what', nargs='?', default='all')
p.add_argument('--limit', type=int, default=12800)
p.add_argument('--threads', type=int, default=os.cpu_count())
p.add_argument('--model', help='train: mlp,cnn (the default); images: any of mlp,cnn,cifar_cnn,resnet_small (default all)')
p.add_argument('--steps', type=int, default=3)
p.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--profile', action='store_true', help='seq, images: after timing, one step under torch.profiler, its ops by self CPU time')
args = p.parse_args()
# OpenBLAS (Debian's torch 1.13 calls it for GEMM) keeps its own thread pool, which torch.set_num_threads does not
# reach: it must be told before it loads, or --threads 1 still multiplies on every core
os.environ.setdefault('OPENBLAS_NUM_THREADS', str(args.threads))
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(args.threads)
print(f'torch {torch.__version__}, threads {torch.get_num_threads()}, capability '
      f'{torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, "cpu") else "?"}, '
      f'OPENBLAS_CORETYPE={os.environ.get("OPENBLAS_CORETYPE", "(auto)")}, mkldnn {torch.backends.mkldnn.is_available()}')


def timed(f, reps=15):
    for _ in range(3):
        f()
    t = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    t.sort()
    return t[0], t[len(t) // 2]


if args.what in ('gemm', 'all'):
    for n in (256, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        best, med = timed(lambda: a @ b)
        print(f'gemm {n:4d}  best {2 * n ** 3 / best / 1e9:6.1f} GFLOP/s  median {2 * n ** 3 / med / 1e9:6.1f}')
    for m, k, n in ((128, 784, 512), (512, 128, 784), (784, 128, 512)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        best, med = timed(lambda: a @ b)
        print(f'gemm {m}x{k}x{n}  best {2 * m * n * k / best / 1e9:6.1f} GFLOP/s  median {2 * m * n * k / med / 1e9:6.1f}')

if args.what in ('conv', 'all'):
    cases = [('seed 16x3x224x224 -> 64 k3p1', (16, 3, 224, 224), (64, 3, 3, 3), 1),
             ('mnist conv1 128x1x28x28 -> 32 k3', (128, 1, 28, 28), (32, 1, 3, 3), 0),
             ('mnist conv2 128x32x26x26 -> 64 k3', (128, 32, 26, 26), (64, 32, 3, 3), 0),
             # the small ResNet's (images' resnet_small, batch 128), as CpuBench conv names them
             ('resnet1 128x32x28x28 -> 32 k3p1', (128, 32, 28, 28), (32, 32, 3, 3), 1),
             ('resnet2 128x32x28x28 -> 64 k3s2p1', (128, 32, 28, 28), (64, 32, 3, 3), 1, 2),
             ('resnet2 128x64x14x14 -> 64 k3p1', (128, 64, 14, 14), (64, 64, 3, 3), 1),
             ('resnet2 128x32x28x28 -> 64 k1s2', (128, 32, 28, 28), (64, 32, 1, 1), 0, 2),
             ('resnet3 128x64x14x14 -> 128 k3s2p1', (128, 64, 14, 14), (128, 64, 3, 3), 1, 2),
             ('resnet3 128x128x7x7 -> 128 k3p1', (128, 128, 7, 7), (128, 128, 3, 3), 1)]
    for name, xs, ws, pad, *stride in cases:
        st = stride[0] if stride else 1
        x, w, bias = torch.randn(*xs), torch.randn(*ws), torch.randn(ws[0])
        with torch.no_grad():
            y = F.conv2d(x, w, bias, st, pad)
            flops = 2.0 * y.numel() * ws[1] * ws[2] * ws[3]
            best, med = timed(lambda: F.conv2d(x, w, bias, st, pad), 10)
        xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()
        yg = F.conv2d(xg, wg, bias, st, pad)
        gy = torch.randn_like(yg)
        bbest, bmed = timed(lambda: torch.autograd.grad(F.conv2d(xg, wg, bias, st, pad), (xg, wg), gy), 5)
        print(f'conv {name:36s} fwd best {best * 1e3:8.2f} ms ({flops / best / 1e9:6.1f} GFLOP/s) median {med * 1e3:8.2f} ms'
              f' | fwd+bwd best {bbest * 1e3:8.2f} ms')


def idx_file(name):   # Debian's .gz, or the file unpacked (the GPU bundle's copy)
    path = f'{args.data}/{name}'
    with (gzip.open(path + '.gz') if os.path.exists(path + '.gz') else open(path, 'rb')) as f:
        return f.read()


def mnist(limit):
    x = np.frombuffer(idx_file('train-images-idx3-ubyte'), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    y = np.frombuffer(idx_file('train-labels-idx1-ubyte'), np.uint8, offset=8)
    n = limit or len(y)
    return torch.from_numpy(x[:n].astype(np.float32) / 255.0), torch.from_numpy(y[:n].astype(np.int64))


def mlp(): return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 512),
                                nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 10))


def cnn(): return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                                nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128),
                                nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def cifar_cnn(): return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Dropout(0.25), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
                                      nn.Linear(2304, 512), nn.ReLU(), nn.Dropout(0.5), nn.Linear(512, 10))


class BasicBlock(nn.Module):   # Kiln's ResNet.small (ModelZoo resnet-small), as bench/torch_resnet_small.py writes it
    def __init__(s, i, o, stride):
        super().__init__()
        s.conv1, s.bn1 = nn.Conv2d(i, o, 3, stride, 1, bias=False), nn.BatchNorm2d(o)
        s.conv2, s.bn2 = nn.Conv2d(o, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o)
        s.down = nn.Sequential(nn.Conv2d(i, o, 1, stride, bias=False), nn.BatchNorm2d(o)) if stride != 1 or i != o else None

    def forward(s, x):
        y = F.relu(s.bn1(s.conv1(x)))
        return F.relu(s.bn2(s.conv2(y)) + (x if s.down is None else s.down(x)))


def resnet_small():
    return nn.Sequential(nn.Conv2d(1, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                         BasicBlock(32, 32, 1), BasicBlock(32, 32, 1), BasicBlock(32, 64, 2), BasicBlock(64, 64, 1),
                         BasicBlock(64, 128, 2), BasicBlock(128, 128, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10))


if args.what in ('images', 'all'):
    for name, make, shape in (('mlp', mlp, (1, 28, 28)), ('cnn', cnn, (1, 28, 28)), ('cifar_cnn', cifar_cnn, (3, 32, 32)),
                              ('resnet_small', resnet_small, (1, 28, 28))):
        if args.model and name not in args.model.split(','):
            continue
        for bs in (128, 1024):
            torch.manual_seed(0)
            m = make(); opt = torch.optim.Adam(m.parameters(), 1e-3)
            x, y = torch.randn(bs, *shape), torch.randint(0, 10, (bs,))

            def step():
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(m(x), y).backward()
                opt.step()
            warm_end = time.perf_counter() + 2   # as kiln bench's CPU steps: 10 and at least 2 s warm-up, 10 and 1 s timed
            for i in itertools.count():
                if i >= 10 and time.perf_counter() >= warm_end:
                    break
                step()
            t0 = time.perf_counter()
            for done in itertools.count(1):
                step()
                if done >= 10 and time.perf_counter() - t0 >= 1:
                    break
            dt = (time.perf_counter() - t0) / done
            print(f'{name}_b{bs}_fp32_train_samples_s {bs / dt:9.0f}  ({dt * 1e3:.1f} ms a step)', flush=True)
            if args.profile:
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                    step()
                print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=20))

if args.what in ('train', 'all'):
    x, y = mnist(args.limit)
    for name in (args.model or 'mlp,cnn').split(','):
        torch.manual_seed(0)
        m = {'mlp': mlp, 'cnn': cnn}[name]()
        opt = torch.optim.Adam(m.parameters(), 1e-3)
        for epoch in range(2):  # epoch 0 warms up; epoch 1 is timed
            perm = torch.randperm(len(y))
            t0 = time.perf_counter()
            for i in range(0, len(y), 128):
                idx = perm[i:i + 128]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(m(x[idx]), y[idx])
                loss.backward()
                opt.step()
            dt = time.perf_counter() - t0
            print(f'train {name} epoch {epoch} ({"warm-up" if epoch == 0 else "timed"}): {len(y)} samples in {dt:.2f} s, '
                  f'{len(y) / dt:8.0f} samples/s, loss {loss.item():.3f}')


class Block(nn.Module):
    def __init__(s, d, h):
        super().__init__(); s.h = h; s.ln1 = nn.LayerNorm(d); s.ln2 = nn.LayerNorm(d)
        s.qkv = nn.Linear(d, 3 * d); s.proj = nn.Linear(d, d); s.fc = nn.Linear(d, 4 * d); s.fc2 = nn.Linear(4 * d, d)

    def forward(s, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, s.h, C // s.h).transpose(1, 2) for t in s.qkv(s.ln1(x)).split(C, 2))
        a = (q @ k.transpose(-2, -1)) / (C // s.h) ** 0.5
        a = a.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float('-inf')).softmax(-1)
        x = x + s.proj((a @ v).transpose(1, 2).reshape(B, T, C))
        return x + s.fc2(F.gelu(s.fc(s.ln2(x))))


class GPT(nn.Module):
    def __init__(s, V=65, d=384, L=6, h=6, T=256):
        super().__init__(); s.te = nn.Embedding(V, d); s.pe = nn.Embedding(T, d)
        s.blocks = nn.Sequential(*[Block(d, h) for _ in range(L)]); s.ln = nn.LayerNorm(d); s.head = nn.Linear(d, V)

    def forward(s, idx):
        return s.head(s.ln(s.blocks(s.te(idx) + s.pe(torch.arange(idx.shape[1])))))


class CharLSTM(nn.Module):
    def __init__(s, V=65, E=128, H=512, L=2):
        super().__init__(); s.emb = nn.Embedding(V, E); s.lstm = nn.LSTM(E, H, L, batch_first=True); s.head = nn.Linear(H, V)

    def forward(s, idx): return s.head(s.lstm(s.emb(idx))[0])


if args.what in ('seq', 'all'):
    for name, make, opt_cls, T in (('gpt_6L384_T256_b64_fp32', GPT, torch.optim.AdamW, 256),
                                   ('lstm_2L512_T128_b64_fp32', CharLSTM, torch.optim.Adam, 128)):
        torch.manual_seed(0)
        m = make(); opt = opt_cls(m.parameters(), 1e-3)
        idx = torch.randint(0, 65, (64, T))

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(m(idx).view(-1, 65), idx.view(-1)).backward()
            opt.step()
        step()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        dt = (time.perf_counter() - t0) / args.steps
        print(f'{name}_train_tok_s {64 * T / dt:8.0f}  ({dt:.2f} s a step)')
        if args.profile:   # where PyTorch's step goes, beside `kiln bench --profile`'s op table
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                step()
            print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=25))

if args.what == 'ops':   # the cases of Kiln's dev.kiln.cpu.ManyCoreProbe (test sources), one by one
    def med_us(f):
        for _ in range(5):
            f()
        t, end = [], time.perf_counter() + 2
        while len(t) < 400 and (len(t) < 15 or time.perf_counter() < end):
            t0 = time.perf_counter(); f(); t.append(time.perf_counter() - t0)
        t.sort()
        return t[len(t) // 2] * 1e6, t[0] * 1e6
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, m, k, n, at, bt in (('lstm step 64x512x2048', 64, 512, 2048, 0, 0), ('lstm back 64x2048x512', 64, 2048, 512, 0, 0),
                                       ('gpt qkv 16384x384x1152 (B^T)', 16384, 384, 1152, 0, 1), ('gpt fc 16384x384x1536 (B^T)', 16384, 384, 1536, 0, 1),
                                       ('gpt fc2 16384x1536x384 (B^T)', 16384, 1536, 384, 0, 1), ('gpt dX fc2 16384x384x1536', 16384, 384, 1536, 0, 0),
                                       ('gpt dW fc 1536x16384x384 (A^T)', 1536, 16384, 384, 1, 0), ('gpt dW qkv 1152x16384x384 (A^T)', 1152, 16384, 384, 1, 0),
                                       ('lstm dW 2048x8192x512 (A^T)', 2048, 8192, 512, 1, 0), ('lstm dW 2048x8192x128 (A^T)', 2048, 8192, 128, 1, 0),
                                       ('square 2048', 2048, 2048, 2048, 0, 0)):
            a = torch.randn(k, m).t() if at else torch.randn(m, k)
            b = torch.randn(n, k).t() if bt else torch.randn(k, n)
            med, best = med_us(lambda: a @ b)
            print(f'{name:34s} median {med:10.1f} us  best {best:10.1f} us  {2 * m * n * k / med / 1e3:7.1f} GFLOP/s (median)')
        x, y, s1, s2 = torch.randn(16384, 1536), torch.randn(16384, 1536), torch.randn(64, 2048), torch.randn(64, 2048)
        ln, lw, lb = torch.randn(16384, 384), torch.randn(384), torch.randn(384)
        for name, f in (('gelu 16384x1536', lambda: F.gelu(x)), ('add 16384x1536', lambda: x + y), ('add 64x2048', lambda: s1 + s2),
                        ('layernorm 16384x384', lambda: F.layer_norm(ln, (384,), lw, lb, 1e-5)),
                        ('empty 16384x1536', lambda: torch.empty(16384, 1536))):
            med, best = med_us(f)
            print(f'{name:34s} median {med:10.1f} us  best {best:10.1f} us')


class Bottleneck(nn.Module):   # torchvision's (stride on the 3x3), for ResNet-50 written out
    def __init__(s, i, w, stride):
        super().__init__()
        s.conv1, s.bn1 = nn.Conv2d(i, w, 1, bias=False), nn.BatchNorm2d(w)
        s.conv2, s.bn2 = nn.Conv2d(w, w, 3, stride, 1, bias=False), nn.BatchNorm2d(w)
        s.conv3, s.bn3 = nn.Conv2d(w, 4 * w, 1, bias=False), nn.BatchNorm2d(4 * w)
        s.down = nn.Sequential(nn.Conv2d(i, 4 * w, 1, stride, bias=False), nn.BatchNorm2d(4 * w)) if stride != 1 or i != 4 * w else None

    def forward(s, x):
        y = F.relu(s.bn2(s.conv2(F.relu(s.bn1(s.conv1(x))))))
        return F.relu(s.bn3(s.conv3(y)) + (x if s.down is None else s.down(x)))


def resnet(depth):
    try:
        import torchvision
        return getattr(torchvision.models, f'resnet{depth}')()
    except ImportError:
        stages, i = [], 64
        for w, blocks, stride in zip((64, 128, 256, 512), (2, 2, 2, 2) if depth == 18 else (3, 4, 6, 3), (1, 2, 2, 2)):
            for b in range(blocks):
                stages.append(BasicBlock(i, w, stride if b == 0 else 1) if depth == 18 else Bottleneck(i, w, stride if b == 0 else 1))
                i = w if depth == 18 else 4 * w
        return nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                             *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(i, 1000))


if args.what == 'infer':
    for depth in (18, 50):
        torch.manual_seed(0)
        m = resnet(depth).eval()
        with torch.no_grad():
            for bs, iters, warm in ((1, 50, 20), (16, 3, 5)):
                x = torch.randn(bs, 3, 224, 224)
                for _ in range(warm):
                    m(x)
                t0 = time.perf_counter()
                for _ in range(iters):
                    m(x)
                dt = (time.perf_counter() - t0) / iters
                print(f'infer_resnet{depth}_b1_fp32_ms {dt * 1e3:9.3f}' if bs == 1 else f'infer_resnet{depth}_b{bs}_fp32_img_s {bs / dt:9.1f}', flush=True)


def cached_forward(m, idx, caches, start):
    """The GPT's logits for tokens idx (1, t) at positions start.., each block's keys and values kept in caches."""
    x = m.te(idx) + m.pe(torch.arange(start, start + idx.shape[1]))
    for b, cache in zip(m.blocks, caches):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, b.h, C // b.h).transpose(1, 2) for t in b.qkv(b.ln1(x)).split(C, 2))
        if cache:
            k, v = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2)
        cache[:] = [k, v]
        a = (q @ k.transpose(-2, -1)) / (C // b.h) ** 0.5
        if T > 1:   # the prompt: causal over itself (nothing cached before it)
            a = a.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float('-inf'))
        x = x + b.proj((a.softmax(-1) @ v).transpose(1, 2).reshape(B, T, C))
        x = x + b.fc2(F.gelu(b.fc(b.ln2(x))))
    return m.head(m.ln(x))


def lstm_steps(m, idx, state):
    """The LSTM's logits for tokens idx (1, t) after `state` (None at the start), and the state after them."""
    out, state = m.lstm(m.emb(idx), state)
    return m.head(out), state


if args.what == 'generate':
    prompt, n = torch.randint(0, 65, (1, 16)), 60
    for name in ('gpt', 'lstm'):
        torch.manual_seed(0)
        m = (GPT() if name == 'gpt' else CharLSTM()).eval()

        def generate():
            if name == 'gpt':
                caches, pos = [[] for _ in m.blocks], 16
                logits = cached_forward(m, prompt, caches, 0)
            else:
                logits, state = lstm_steps(m, prompt, None)
            for _ in range(n):
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                if name == 'gpt':
                    logits, pos = cached_forward(m, nxt, caches, pos), pos + 1
                else:
                    logits, state = lstm_steps(m, nxt, state)
        with torch.no_grad():
            end = time.perf_counter() + 2
            while time.perf_counter() < end:
                generate()
            t0, tokens = time.perf_counter(), 0
            while tokens == 0 or time.perf_counter() - t0 < 1:
                generate()
                tokens += n
            print(f'infer_{name}_generate_b1_fp32_tok_s {tokens / (time.perf_counter() - t0):9.0f}', flush=True)
