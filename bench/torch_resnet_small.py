"""PyTorch's side of `kiln train --model resnet-small --lr-schedule cosine` on Fashion-MNIST: the same small ResNet
(dev.kiln.models.ResNet.small: conv 3x3 to 32 + BN + ReLU, three stages of two basic blocks of 32/64/128 channels,
global average pooling, fc), the same recipe (Adam, lr annealed per epoch along a half cosine, batch 128, the data
resident on the GPU, normalised with the training set's mean and std; with --augment, as `kiln train --augment`, each
batch randomly cropped from the images padded by 4 (an eighth of 28) and half of it mirrored, on the GPU), eager or compiled.
    python3 torch_resnet_small.py --fmnist DIR --epochs 15 [--augment] [--compiled]   -> one JSON line per epoch, then a summary"""
import argparse, gzip, json, math, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--fmnist', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--epochs', type=int, default=15)
p.add_argument('--lr', type=float, default=1e-3)
p.add_argument('--batch', type=int, default=128)
p.add_argument('--compiled', action='store_true')
p.add_argument('--augment', action='store_true')
args = p.parse_args()
dev = 'cuda'

def conv(i, o, k, s):
    c = nn.Conv2d(i, o, k, s, k // 2, bias=False)
    nn.init.kaiming_normal_(c.weight, mode='fan_out', nonlinearity='relu')
    return c

class Block(nn.Module):
    def __init__(s, i, o, stride):
        super().__init__()
        s.conv1, s.bn1, s.conv2, s.bn2 = conv(i, o, 3, stride), nn.BatchNorm2d(o), conv(o, o, 3, 1), nn.BatchNorm2d(o)
        s.downsample = nn.Sequential(conv(i, o, 1, stride), nn.BatchNorm2d(o)) if stride != 1 or i != o else None
    def forward(s, x):
        y = F.relu(s.bn1(s.conv1(x)))
        return F.relu(s.bn2(s.conv2(y)) + (x if s.downsample is None else s.downsample(x)))

class SmallResNet(nn.Module):
    def __init__(s, c=1, classes=10):
        super().__init__()
        s.conv1, s.bn1 = conv(c, 32, 3, 1), nn.BatchNorm2d(32)
        s.layer1 = nn.Sequential(Block(32, 32, 1), Block(32, 32, 1))
        s.layer2 = nn.Sequential(Block(32, 64, 2), Block(64, 64, 1))
        s.layer3 = nn.Sequential(Block(64, 128, 2), Block(128, 128, 1))
        s.fc = nn.Linear(128, classes)
    def forward(s, x):
        x = F.relu(s.bn1(s.conv1(x)))
        x = s.layer3(s.layer2(s.layer1(x)))
        return s.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

def augment(x, pad=4):
    """Random crops of x's size from x zero-padded by pad, then a left-right mirror with probability 1/2, per image."""
    n, c, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    top = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device) + torch.arange(h, device=x.device)
    left = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device) + torch.arange(w, device=x.device)
    left = torch.where(torch.rand(n, 1, device=x.device) < 0.5, left.flip(1), left)
    return xp[torch.arange(n, device=x.device)[:, None, None, None], torch.arange(c, device=x.device)[None, :, None, None],
              top[:, None, :, None], left[:, None, None, :]]

def idx(path):   # the .gz Debian ships, or the file unpacked beside it
    import os
    with (gzip.open(path) if os.path.exists(path) else open(path[:-3], 'rb')) as f: d = f.read()
    return np.frombuffer(d, np.uint8, offset=16).reshape(-1, 1, 28, 28) if d[3] == 3 else np.frombuffer(d, np.uint8, offset=8)

r = args.fmnist
xtr = torch.tensor(idx(f'{r}/train-images-idx3-ubyte.gz'), device=dev).float().div(255)
ytr = torch.tensor(idx(f'{r}/train-labels-idx1-ubyte.gz'), device=dev).long()
xte = torch.tensor(idx(f'{r}/t10k-images-idx3-ubyte.gz'), device=dev).float().div(255)
yte = torch.tensor(idx(f'{r}/t10k-labels-idx1-ubyte.gz'), device=dev).long()
xtr = (xtr - 0.2860) / 0.3530; xte = (xte - 0.2860) / 0.3530   # Kiln's FashionMnist.MEAN / STD

torch.manual_seed(0)
m = SmallResNet().to(dev)
opt = torch.optim.Adam(m.parameters(), args.lr, fused=args.compiled)
fm = torch.compile(m) if args.compiled else m
n, train_s, reached = xtr.shape[0], 0.0, None
print(json.dumps({'parameters': sum(p.numel() for p in m.parameters())}), flush=True)
for ep in range(1, args.epochs + 1):
    for g in opt.param_groups: g['lr'] = args.lr * 0.5 * (1 + math.cos(math.pi * (ep - 1) / args.epochs))
    m.train(); perm = torch.randperm(n, device=dev)
    torch.cuda.synchronize(); t = time.perf_counter()
    for i in range(0, n, args.batch):
        b = perm[i:i + args.batch]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(fm(augment(xtr[b]) if args.augment else xtr[b]), ytr[b]).backward()
        opt.step()
    torch.cuda.synchronize(); train_s += time.perf_counter() - t
    m.eval()
    with torch.no_grad():
        acc = sum((fm(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item() for i in range(0, xte.shape[0], 1000)) / xte.shape[0]
    if reached is None and acc >= 0.94: reached = train_s
    print(json.dumps({'epoch': ep, 'test_acc': round(acc, 4), 'train_s': round(train_s, 2)}), flush=True)
print(json.dumps({'model': 'resnet-small', 'framework': 'torch' + (' compiled' if args.compiled else ' eager'), 'epochs': args.epochs, 'augment': args.augment,
                  'test_acc': round(acc, 4), 'train_s': round(train_s, 2), 'train_s_to_94': None if reached is None else round(reached, 2)}))
