# PyTorch's cuDNN SDPA graphs, forward and backward, for one shape: run under CUDNN_LOGLEVEL_DBG=3 to log the backend calls
import sys, torch, torch.nn.functional as F
from torch.nn.attention import sdpa_kernel, SDPBackend
B, H, T, D, causal = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == '1'
x = torch.randn(B, T, 3 * H, D, device='cuda', dtype=torch.bfloat16, requires_grad=True)
q, k, v = x.view(B, T, 3, H, D).permute(2, 0, 3, 1, 4).unbind(0)     # (B, H, T, D) views of one (B, T, 3H, D) tensor
with sdpa_kernel([SDPBackend.CUDNN_ATTENTION]):
    o = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    o.sum().backward()
torch.cuda.synchronize()
print('ok', o.shape, o.stride(), x.grad.stride(), torch.backends.cudnn.version())
