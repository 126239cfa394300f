"""Writes small randomly initialised Hugging Face GPT-2 models (transformers' GPT2LMHeadModel, save_pretrained) and their
logits for fixed ids, for Kiln's Gpt2InteropGpuTest:
    python3 gpt2_interop.py OUT_DIR      then   KILN_INTEROP_DIR=OUT_DIR <run the test>
Written against transformers 5.17 (the GPU machine's) and 4.4x, whose GPT-2 checkpoints have the same layout: names with the
'transformer.' prefix, Conv1D weights stored (in, out), lm_head.weight left out when tied."""
import os, sys
import torch
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

out = sys.argv[1]
torch.manual_seed(0)
for name, tied in [('gpt2-tied', True), ('gpt2-untied', False)]:
    cfg = GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=100, n_positions=64, activation_function='gelu_new',
                     tie_word_embeddings=tied, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    m = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)   # biases and layer-norm weights away from 0 and 1, so a mix-up shows
        ids = torch.randint(0, cfg.vocab_size, (3, 40))
        logits = m(ids).logits
    d = os.path.join(out, name)
    try:
        m.save_pretrained(d, safe_serialization=True)
    except TypeError:   # a transformers without the argument writes safetensors anyway
        m.save_pretrained(d)
    save_file({'ids': ids.contiguous(), 'logits': logits.float().contiguous()}, os.path.join(d, 'io.safetensors'))
    print(name, 'logits', tuple(logits.shape), 'written to', d, sorted(os.listdir(d)))
