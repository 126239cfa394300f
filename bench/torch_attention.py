#!/usr/bin/env python3
"""PyTorch's side of kiln bench's attention rows: causal scaled_dot_product_attention, forward and backward, at the
GPT workload's shape (B 64, H 6, T 256, d 64; float32 and bfloat16) and a larger model's (B 8, H 16, T 1024, d 128;
bfloat16). Prints one JSON object with the keys kiln bench uses."""
import json, time, torch, torch.nn.functional as F

res = {}
for shape, dts in [((64, 6, 256, 64), [(torch.float32, 'fp32'), (torch.bfloat16, 'bf16')]),
                   ((8, 16, 1024, 128), [(torch.bfloat16, 'bf16')])]:
    for dt, name in dts:
        q, k, v, g = (torch.randn(*shape, device='cuda', dtype=dt, requires_grad=i < 3) for i in range(4))
        def step():
            F.scaled_dot_product_attention(q, k, v, is_causal=True).backward(g)
            q.grad = k.grad = v.grad = None
        for _ in range(5): step()
        torch.cuda.synchronize(); t = time.perf_counter()
        for _ in range(50): step()
        torch.cuda.synchronize()
        b, h, l, d = shape
        res[f'attention_b{b}_h{h}_t{l}_d{d}_{name}_fwd_bwd_ms'] = round((time.perf_counter() - t) / 50 * 1e3, 3)
print(json.dumps(res))
