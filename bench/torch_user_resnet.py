"""PyTorch's copy of examples/resnet-consumer (a user-written residual CNN: stem conv 1->8 + BN + ReLU, blocks 8->8,
8->16 (stride 2), 16->32 (stride 2) of conv-BN-ReLU-conv-BN plus the shortcut (1x1 conv + BN where the shape changes),
mean over H and W, linear 32->10) trained in the same plain loop: a DataLoader from host memory (2 workers, pinned,
shuffled, drop_last), Adam 1e-3 built inside the loop, loss.item() every step (the example prints and keeps each loss).
steps/5 steps warm up, then `steps` are timed, as ResNetExample --bench does.
    python3 torch_user_resnet.py --fmnist DIR --steps 400 --batch 128"""
import argparse, gzip, json, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument('--fmnist', default='/usr/share/datasets/fashion-mnist')
p.add_argument('--steps', type=int, default=400)
p.add_argument('--batch', type=int, default=128)
args = p.parse_args()
dev = 'cuda'

class Block(nn.Module):
    def __init__(s, i, o, stride):
        super().__init__()
        s.conv1, s.bn1 = nn.Conv2d(i, o, 3, stride, 1, bias=False), nn.BatchNorm2d(o)
        s.conv2, s.bn2 = nn.Conv2d(o, o, 3, 1, 1, bias=False), nn.BatchNorm2d(o)
        s.shortcut = None if i == o and stride == 1 else nn.Sequential(nn.Conv2d(i, o, 1, stride, 0, bias=False), nn.BatchNorm2d(o))
    def forward(s, x):
        y = s.bn2(s.conv2(s.bn1(s.conv1(x)).relu()))
        return (y + (x if s.shortcut is None else s.shortcut(x))).relu()

class Net(nn.Module):
    def __init__(s):
        super().__init__()
        s.stem = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        s.blocks = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2), Block(16, 32, 2))
        s.head = nn.Linear(32, 10)
    def forward(s, x):
        return s.head(s.blocks(s.stem(x)).mean((2, 3)))

def idx(path):
    with gzip.open(path) as f: d = f.read()
    return np.frombuffer(d, np.uint8, offset=16).reshape(-1, 1, 28, 28) if d[3] == 3 else np.frombuffer(d, np.uint8, offset=8)

x = (torch.tensor(idx(f'{args.fmnist}/train-images-idx3-ubyte.gz')).float().div(255) - 0.2860) / 0.3530
y = torch.tensor(idx(f'{args.fmnist}/train-labels-idx1-ubyte.gz')).long()
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=args.batch, shuffle=True, drop_last=True,
                                     num_workers=2, pin_memory=True, persistent_workers=True)

def train(model, steps):
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    losses, step = [], 0
    while step < steps:
        for xb, yb in loader:
            if step == steps: break
            xb, yb = xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward(); opt.step()
            losses.append(loss.item()); step += 1
    return losses

torch.manual_seed(0)
model = Net().to(dev)
train(model, max(1, args.steps // 5))
torch.cuda.synchronize(); t = time.perf_counter()
train(model, args.steps)
torch.cuda.synchronize(); s = time.perf_counter() - t
print(json.dumps({'model': 'user_resnet', 'framework': 'torch eager', 'batch': args.batch, 'steps': args.steps,
                  'samples_per_s': round(args.steps * args.batch / s, 1)}))
