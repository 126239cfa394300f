"""PyTorch's sort, topk and cumsum at the shapes of CudaBench's `sorting` (run.sh bench sorting): the same timing rule
(events around a batch of about 20 ms after a warm-up, median of 5 batches), so the two print same-run figures."""
import torch

from torch_timing import time   # beside this file

torch.manual_seed(1)
d = "cuda"
vocab = torch.randn(64, 50257, device=d)
rows = torch.randn(8192, 1024, device=d)
flat = torch.randn(1 << 24, device=d)
square = torch.randn(4096, 4096, device=d)
vb, rb, fb, sb = 4 * 64 * 50257, 4 * 8192 * 1024, 4 << 24, 4 * 4096 * 4096
print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
time("argsort f32 64x50257 dim 1", vb, lambda: torch.argsort(vocab, dim=1, descending=True, stable=True))
time("argsort f32 8192x1024 dim 1", rb, lambda: torch.argsort(rows, dim=1, stable=True))
time("argsort f32 2^24", fb, lambda: torch.argsort(flat, dim=0, stable=True))
few, rows16, flat64 = rows[:256], rows.to(torch.bfloat16), flat[: 1 << 22].double()
time("argsort f32 256x1024 dim 1", 4 * 256 * 1024, lambda: torch.argsort(few, dim=1, stable=True))
time("argsort bf16 8192x1024 dim 1", rb // 2, lambda: torch.argsort(rows16, dim=1, stable=True))
time("argsort f64 2^22", 8 << 22, lambda: torch.argsort(flat64, dim=0, stable=True))
time("topk 50 f32 64x50257 dim 1", vb, lambda: torch.topk(vocab, 50, 1).values)
time("cumsum f32 64x50257 dim 1", 2 * vb, lambda: torch.cumsum(vocab, 1))
time("cumsum f32 4096x4096 dim 1", 2 * sb, lambda: torch.cumsum(square, 1))
time("cumsum f32 4096x4096 dim 0", 2 * sb, lambda: torch.cumsum(square, 0))
