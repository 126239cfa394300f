# PyTorch's SDPA, B 8, H 16, T 1024, d 128, causal, bf16, forward + backward: 10 steps (for Nsight Compute)
import torch, torch.nn.functional as F
q, k, v, g = (torch.randn(8, 16, 1024, 128, device='cuda', dtype=torch.bfloat16, requires_grad=i < 3) for i in range(4))
for _ in range(10):
    F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)
torch.cuda.synchronize()
