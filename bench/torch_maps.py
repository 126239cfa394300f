"""PyTorch's softmax (forward and backward) and a scalar map at the shapes of CudaBench's `maps` (run.sh bench maps): the
same timing rule (events around a batch of about 20 ms after a warm-up, median of 5 batches), so the two print same-run
figures."""
import torch

from torch_timing import time   # beside this file

torch.manual_seed(1)
d = "cuda"
scores = torch.randn(98304, 256, device=d); scores16 = scores.bfloat16()
gs = torch.randn(98304, 256, device=d); gs16 = gs.bfloat16()
ys, ys16 = torch.softmax(scores, 1), torch.softmax(scores16, 1)
vocab, wide = torch.randn(64, 50257, device=d), torch.randn(8192, 4096, device=d)
sb = 4 * 98304 * 256
print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
time("softmax f32 98304x256 dim 1", 2 * sb, lambda: torch.softmax(scores, 1))
time("softmax bf16 98304x256 dim 1", sb, lambda: torch.softmax(scores16, 1))
time("softmax backward f32 98304x256 dim 1", 3 * sb, lambda: torch._softmax_backward_data(gs, ys, 1, torch.float32))
time("softmax backward bf16 98304x256 dim 1", 3 * sb // 2, lambda: torch._softmax_backward_data(gs16, ys16, 1, torch.bfloat16))
time("log_softmax f32 64x50257 dim 1", 2 * 4 * 64 * 50257, lambda: torch.log_softmax(vocab, 1))
time("softmax f32 8192x4096 dim 1", 2 * 4 * 8192 * 4096, lambda: torch.softmax(wide, 1))
big = torch.randn(1 << 26, device=d); big16 = big.bfloat16()
heads16 = scores16.view(64, 6, 256, 256)
future = torch.arange(256, device=d).unsqueeze(0) > torch.arange(256, device=d).unsqueeze(1)
time("masked_fill bf16 64x6x256x256, a causal 256x256 mask", 2 * 2 * 98304 * 256, lambda: heads16.masked_fill(future, float("-inf")))
time("mul scalar f32 2^26", 2 * 4 << 26, lambda: big * 0.125)
time("mul scalar bf16 2^26", 2 * 2 << 26, lambda: big16 * 0.125)
