#!/usr/bin/env python3
"""PyTorch's side of kiln bench's attention rows: causal scaled_dot_product_attention, forward and backward, at the
GPT workload's shape (B 64, H 6, T 256, d 64). Prints one JSON object with the keys kiln bench uses."""
import json, time, torch, torch.nn.functional as F

res = {}
for dt, name in [(torch.float32, 'fp32'), (torch.bfloat16, 'bf16')]:
    q, k, v, g = (torch.randn(64, 6, 256, 64, device='cuda', dtype=dt, requires_grad=i < 3) for i in range(4))
    def step():
        F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)
        q.grad = k.grad = v.grad = None
    for _ in range(5): step()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(50): step()
    torch.cuda.synchronize()
    res[f'attention_b64_h6_t256_d64_{name}_fwd_bwd_ms'] = round((time.perf_counter() - t) / 50 * 1e3, 3)
print(json.dumps(res))
