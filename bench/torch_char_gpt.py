#!/usr/bin/env python3
"""PyTorch's side of the character-GPT row: the model `kiln train --model gpt` builds (torch_ref.py's GPT layout under
nanoGPT's names: 6 layers, d 384, 6 heads, context 256, biases, untied head with bias, erf GELU; dropout as given), on
the same text, vocabulary (sorted distinct characters) and split (the last 10% of the tokens for validation), AdamW
1e-3 (PyTorch's defaults otherwise), batch 64, the same number of steps, then the validation loss over the validation
text in order (every token a target once), as Kiln's. Prints one JSON object.
--nanogpt-init draws the weights as nanoGPT (and Kiln's GPT) do: N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)),
zero biases; without it PyTorch's layer defaults.
usage: torch_char_gpt.py TEXT STEPS [--bf16] [--dropout P] [--nanogpt-init]"""
import json, math, sys, time, torch, torch.nn as nn, torch.nn.functional as F

text = open(sys.argv[1], encoding='utf-8').read().lstrip('\ufeff')
steps = int(sys.argv[2]); amp = '--bf16' in sys.argv
drop = float(sys.argv[sys.argv.index('--dropout') + 1]) if '--dropout' in sys.argv else 0.0
chars = sorted(set(text)); stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n_val = int(len(data) * 0.1); train, val = data[:len(data) - n_val], data[len(data) - n_val:]
V, T, B, d, L, H = len(chars), 256, 64, 384, 6, 6
torch.manual_seed(0)

class Block(nn.Module):
    def __init__(s):
        super().__init__(); s.ln_1 = nn.LayerNorm(d); s.ln_2 = nn.LayerNorm(d)
        s.c_attn = nn.Linear(d, 3 * d); s.c_proj = nn.Linear(d, d); s.c_fc = nn.Linear(d, 4 * d); s.c_proj2 = nn.Linear(4 * d, d)
        s.drop = nn.Dropout(drop)
    def forward(s, x):
        b, t, c = x.shape
        q, k, v = (u.view(b, t, H, c // H).transpose(1, 2) for u in s.c_attn(s.ln_1(x)).split(c, 2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=drop if s.training else 0).transpose(1, 2).reshape(b, t, c)
        x = x + s.drop(s.c_proj(y))
        return x + s.drop(s.c_proj2(F.gelu(s.c_fc(s.ln_2(x)))))
class GPT(nn.Module):
    def __init__(s):
        super().__init__(); s.wte = nn.Embedding(V, d); s.wpe = nn.Embedding(T, d); s.drop = nn.Dropout(drop)
        s.h = nn.Sequential(*[Block() for _ in range(L)]); s.ln_f = nn.LayerNorm(d); s.lm_head = nn.Linear(d, V)
    def forward(s, idx):
        return s.lm_head(s.ln_f(s.h(s.drop(s.wte(idx) + s.wpe(torch.arange(idx.shape[1], device=idx.device))))))

m = GPT().cuda()
if '--nanogpt-init' in sys.argv:
    for name, p in m.named_parameters():
        if name.endswith('bias'): torch.nn.init.zeros_(p)
        elif 'ln' in name: torch.nn.init.ones_(p)
        else: torch.nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L) if name.endswith('c_proj.weight') or name.endswith('c_proj2.weight') else 0.02)
opt = torch.optim.AdamW(m.parameters(), 1e-3)
g = torch.Generator().manual_seed(0)
def batch():
    ix = torch.randint(len(train) - T - 1, (B,), generator=g)
    return torch.stack([train[i:i + T] for i in ix]).cuda(), torch.stack([train[i + 1:i + T + 1] for i in ix]).cuda()
torch.cuda.synchronize(); t0 = time.perf_counter()
for step in range(steps):
    x, y = batch()
    with torch.autocast('cuda', torch.bfloat16, enabled=amp):
        loss = F.cross_entropy(m(x).view(-1, V), y.view(-1))
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
torch.cuda.synchronize(); secs = time.perf_counter() - t0
m.eval(); tot, cnt = 0.0, 0
with torch.no_grad(), torch.autocast('cuda', torch.bfloat16, enabled=amp):
    for i in range(0, len(val) - 1, T):
        x = val[i:i + T]; y = val[i + 1:i + T + 1]; x = x[:len(y)]
        if len(y) == 0: break
        l = F.cross_entropy(m(x[None].cuda()).view(-1, V).float(), y.cuda(), reduction='sum')
        tot += l.item(); cnt += len(y)
print(json.dumps({'init': 'nanogpt' if '--nanogpt-init' in sys.argv else 'pytorch', 'torch_char_gpt_steps': steps, 'torch_char_gpt_vocab': V, 'torch_char_gpt_val_loss': round(tot / cnt, 4),
                  'torch_char_gpt_train_s': round(secs, 2), 'torch_char_gpt_tok_s': round(steps * B * T / secs)}))
