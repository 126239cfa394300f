"""Writes torchvision ResNets (random weights, batch-norm statistics from a few training-mode passes) as safetensors
state dicts, with an input batch and PyTorch's eval-mode logits, for Kiln's ResNetInteropGpuTest:
    python3 resnet_interop.py OUT_DIR      then   KILN_INTEROP_DIR=OUT_DIR <run the test>"""
import os, sys
import torch, torchvision
from safetensors.torch import save_file

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
for name, make, classes in [('resnet18', torchvision.models.resnet18, 10), ('resnet50', torchvision.models.resnet50, 1000)]:
    m = make(num_classes=classes)
    with torch.no_grad():
        m.train()
        for _ in range(3):
            m(torch.randn(8, 3, 224, 224) * 2 + 0.5)   # running statistics away from their initial 0 and 1
        m.eval()
        x = torch.randn(4, 3, 224, 224)
        y = m(x)
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f'{out}/{name}.safetensors', metadata={'format': 'pt'})
    save_file({'input': x.contiguous(), 'logits': y.contiguous()}, f'{out}/{name}-io.safetensors')
    print(name, 'logits', tuple(y.shape), 'written to', out)
