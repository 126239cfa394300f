# Which cuDNN kernels PyTorch's benchmarked weight gradient of resnet18's stem runs (fp32 TF32, channels-last), and their times.
import torch, os, torch.nn.functional as F
from torch.profiler import profile, ProfilerActivity
torch.backends.cudnn.benchmark = True
torch.backends.cudnn.allow_tf32 = True
x = torch.randn(64, 3, 224, 224, device='cuda').to(memory_format=torch.channels_last)
w = torch.randn(64, 3, 7, 7, device='cuda').to(memory_format=torch.channels_last)
y = F.conv2d(x, w, stride=2, padding=3); gy = torch.randn_like(y)
wg = lambda: torch.ops.aten.convolution_backward(gy, x, w, None, (2, 2), (3, 3), (1, 1), False, (0, 0), 1, (False, False, True))
fw = lambda: F.conv2d(x, w, stride=2, padding=3)
for _ in range(5): wg(); fw()
torch.cuda.synchronize()
with profile(activities=[ProfilerActivity.CUDA]) as prof:
    for _ in range(5): wg(); fw()
    torch.cuda.synchronize()
print("V8 disabled" if os.environ.get("TORCH_CUDNN_V8_API_DISABLED") else "default API")
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=110))
