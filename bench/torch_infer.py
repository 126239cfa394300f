#!/usr/bin/env python3
"""PyTorch's side of Kiln's inference rows (kiln bench --only infer): batch-1 latency (ms) and batch-256 throughput
(images/s) of the fp32 cnn (torch_ref.py's), resnet18 and resnet50 (torchvision, 1000 classes), evaluation mode, the
input on the GPU and the logits read back to the host, for PyTorch eager (KEY), torch.compile (KEY_compiled) and ONNX
Runtime's CUDA provider on the same card (KEY_ort; the model exported by torch.onnx, input and output bound on the GPU).
    python3 torch_infer.py [--only cnn,resnet18,gpt_generate] [--bf16] > torch-infer.json
Also infer_gpt_generate_b1_fp32_tok_s: tokens/s of generate() for a GPT-2 of the bench GPT's size (Kiln: kiln generate's path).
"""
import argparse, copy, io, json, sys, time
import numpy, torch, torch.nn as nn, torchvision

p = argparse.ArgumentParser()
p.add_argument('--only', default='')
p.add_argument('--no-compile', action='store_true')
p.add_argument('--no-ort', action='store_true')
p.add_argument('--bf16', action='store_true', help='also the models in bfloat16 (KEY_b1_bf16_ms, KEY_b256_bf16_img_s)')
args = p.parse_args()
only = [s for s in args.only.split(',') if s]
dev = 'cuda'

def cnn():  # torch_ref.py's W4 (the Keras MNIST CNN)
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
                         nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))

def per_call(fn, iters, warm):
    for _ in range(warm): fn()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(iters): fn()
    torch.cuda.synchronize(); return (time.perf_counter() - t) / iters

def rows(key, fn, res, prec='fp32'):
    res[f'infer_{key}_b1_{prec}_ms'] = round(per_call(lambda: fn(1), 300, 20) * 1e3, 3)
    res[f'infer_{key}_b256_{prec}_img_s'] = round(256 / per_call(lambda: fn(256), 30, 5))

res = {'device': torch.cuda.get_device_name(0), 'torch': torch.__version__}
for name, make, shape in [('cnn', cnn, (1, 28, 28)), ('resnet18', lambda: torchvision.models.resnet18(), (3, 224, 224)),
                          ('resnet50', lambda: torchvision.models.resnet50(), (3, 224, 224))]:
    if only and name not in only: continue
    torch.manual_seed(0)
    m = make().to(dev).eval()
    xs = {n: torch.randn(n, *shape, device=dev) for n in (1, 256)}
    with torch.no_grad():
        rows(name, lambda n: m(xs[n]).cpu(), res)
        print(f'{name} eager done', file=sys.stderr, flush=True)
        if not args.no_compile:
            c = torch.compile(m)
            tmp = {}
            rows(name, lambda n: c(xs[n]).cpu(), tmp)
            res.update({k + '_compiled': v for k, v in tmp.items()})
            print(f'{name} compiled done', file=sys.stderr, flush=True)
        if args.bf16:   # the model in bfloat16 (model.to(torch.bfloat16), inputs cast on the device), eager and compiled
            m16 = copy.deepcopy(m).to(torch.bfloat16)
            rows(name, lambda n: m16(xs[n].to(torch.bfloat16)).float().cpu(), res, 'bf16')
            if not args.no_compile:
                c16 = torch.compile(m16)
                tmp = {}
                rows(name, lambda n: c16(xs[n].to(torch.bfloat16)).float().cpu(), tmp, 'bf16')
                res.update({k + '_compiled': v for k, v in tmp.items()})
            print(f'{name} bf16 done', file=sys.stderr, flush=True)
    if not args.no_ort:
        try:
            import onnxruntime as ort
            buf = io.BytesIO()
            torch.onnx.export(m, xs[1], buf, input_names=['x'], output_names=['y'], dynamic_axes={'x': {0: 'n'}, 'y': {0: 'n'}}, opset_version=17, dynamo=False)
            s = ort.InferenceSession(buf.getvalue(), providers=['CUDAExecutionProvider'])
            def run(n):
                b = s.io_binding()
                x = xs[n]
                b.bind_input('x', 'cuda', 0, numpy.float32, tuple(x.shape), x.data_ptr())
                b.bind_output('y', 'cuda')
                s.run_with_iobinding(b)
                return b.copy_outputs_to_cpu()[0]
            tmp = {}
            rows(name, run, tmp)
            res.update({k + '_ort': v for k, v in tmp.items()})
            res[f'infer_{name}_ort_providers'] = ','.join(s.get_providers())
            print(f'{name} ort done', file=sys.stderr, flush=True)
        except Exception as e:
            print(f'{name}: onnxruntime failed: {e}', file=sys.stderr, flush=True)
# generate: Hugging Face's GPT-2 architecture at the size of Kiln's bench GPT (6 layers, 384 wide, 6 heads, 65 tokens,
# context 256), random weights, 240 tokens picked greedily after a 16-token prompt with the key/value cache, batch 1
if not only or 'gpt_generate' in only:
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
        torch.manual_seed(0)
        g = GPT2LMHeadModel(GPT2Config(vocab_size=65, n_positions=256, n_embd=384, n_layer=6, n_head=6)).to(dev).eval()
        prompt = torch.randint(0, 65, (1, 16), device=dev)
        gen = lambda: g.generate(prompt, max_new_tokens=240, min_new_tokens=240, do_sample=False, use_cache=True, pad_token_id=0)
        with torch.no_grad():
            gen(); torch.cuda.synchronize(); t = time.perf_counter(); gen(); torch.cuda.synchronize()
        res['infer_gpt_generate_b1_fp32_tok_s'] = round(240 / (time.perf_counter() - t))
        print('gpt generate done', file=sys.stderr, flush=True)
    except Exception as e:
        print(f'gpt generate failed: {e}', file=sys.stderr, flush=True)
print(json.dumps(res, indent=1))
