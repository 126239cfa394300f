#!/usr/bin/env python3
"""PyTorch's ONNX exports for Kiln's import check (kiln-onnx's TorchExportsTest), run where PyTorch is installed:
    python3 torch_onnx_export.py DIR && KILN_TORCH_ONNX_DIR=DIR run.sh test --select-class dev.kiln.onnx.TorchExportsTest
Writes DIR/NAME.onnx (opset 17, the TorchScript exporter, evaluation mode: batch norms folded into the convolutions)
and DIR/NAME.safetensors holding `input` (a batch of 4) and `expected` (PyTorch's output for it)."""
import os, sys, torch, torch.nn as nn, torchvision
from safetensors.torch import save_file

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
cnn = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.25),
                    nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))
for name, m, shape in [('cnn', cnn, (1, 28, 28)), ('resnet18', torchvision.models.resnet18(num_classes=10), (3, 224, 224))]:
    m.eval()
    if name == 'resnet18':  # batch-norm statistics away from 0 and 1, so the folding shows
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5); mod.running_var.uniform_(0.5, 2.0)
    x = torch.randn(4, *shape)
    with torch.no_grad():
        y = m(x)
    torch.onnx.export(m, x, f'{out}/{name}.onnx', input_names=['x'], output_names=['y'], dynamic_axes={'x': {0: 'n'}, 'y': {0: 'n'}},
                      opset_version=17, dynamo=False)
    save_file({'input': x.contiguous(), 'expected': y.contiguous()}, f'{out}/{name}.safetensors')
    print(name, 'exported', flush=True)
