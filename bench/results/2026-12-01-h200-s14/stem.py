# cuDNN (through PyTorch) on resnet18's stem convolution, 7x7 s2 p3 -> 64, N=64, 224x224, channels-last:
# 3 input channels against the same with a zero 4th (and 8th) channel, forward, weight gradient, both; fp32 (TF32) and bf16.
import torch, time, torch.nn.functional as F
torch.backends.cudnn.benchmark = True
torch.backends.cuda.matmul.allow_tf32 = True; torch.backends.cudnn.allow_tf32 = True
def t(fn, n=50):
    for _ in range(5): fn()
    torch.cuda.synchronize(); s = time.perf_counter()
    for _ in range(n): fn()
    torch.cuda.synchronize(); return (time.perf_counter() - s) / n * 1e6
for dt in (torch.float32, torch.bfloat16):
    for c in (3, 4, 8):
        x = torch.randn(64, c, 224, 224, device='cuda', dtype=dt).to(memory_format=torch.channels_last)
        w = torch.randn(64, c, 7, 7, device='cuda', dtype=dt).to(memory_format=torch.channels_last)
        y = F.conv2d(x, w, stride=2, padding=3); gy = torch.randn_like(y)
        fwd = t(lambda: F.conv2d(x, w, stride=2, padding=3))
        wg = t(lambda: torch.ops.aten.convolution_backward(gy, x, w, None, (2, 2), (3, 3), (1, 1), False, (0, 0), 1, (False, False, True)))
        print(f"{str(dt):15s} C={c}: forward {fwd:7.1f} us, weight grad {wg:7.1f} us", flush=True)
