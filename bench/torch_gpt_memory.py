#!/usr/bin/env python3
"""Peak device memory of one eager training step of torch_ref.py's GPT and LSTM (keys as kiln bench's *_peak_mem_mb):
torch.cuda.max_memory_allocated after a reset, model and optimizer state already allocated by warm-up steps."""
import json, sys, torch, torch.nn.functional as F
sys.argv = [sys.argv[0], '--only', 'none']
import importlib.util, os
spec = importlib.util.spec_from_file_location('ref', os.path.join(os.path.dirname(__file__), 'torch_ref.py'))
ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
res = {}
for name, make, opt_cls, T in [('gpt_6L384_T256_b64', ref.GPT, torch.optim.AdamW, 256), ('lstm_2L512_T128_b64', ref.CharLSTM, torch.optim.Adam, 128)]:
    for amp in (False, True):
        m = make().cuda(); opt = opt_cls(m.parameters(), 1e-3)
        idx = torch.randint(0, 65, (64, T), device='cuda')
        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast('cuda', torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(m(idx).view(-1, 65), idx.view(-1))
            loss.backward(); opt.step()
        for _ in range(3): step()
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); step(); torch.cuda.synchronize()
        res[f'{name}_{"bf16" if amp else "fp32"}_peak_mem_mb'] = round(torch.cuda.max_memory_allocated() / 1e6)
        del m, opt; torch.cuda.empty_cache()
print(json.dumps(res))
