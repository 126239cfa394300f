# TF32 mma.sync m16n8k8 peak on this GPU: blocks of 256 threads (8 warps), 1/2/4 blocks a multiprocessor
import ctypes, torch
cu = ctypes.CDLL('libcuda.so.1')
torch.zeros(1, device='cuda'); torch.cuda.synchronize()
mod = ctypes.c_void_p(); assert cu.cuModuleLoadData(ctypes.byref(mod), ctypes.c_char_p(open('mma_peak.cubin', 'rb').read())) == 0
f = ctypes.c_void_p(); assert cu.cuModuleGetFunction(ctypes.byref(f), mod, b'mma_peak') == 0
sms = torch.cuda.get_device_properties(0).multi_processor_count
for per in (1, 2, 4):
    blocks, iters = sms * per, 4096
    out = torch.empty(blocks * 256, device='cuda')
    args = [ctypes.c_void_p(out.data_ptr()), ctypes.c_int(iters)]
    arr = (ctypes.c_void_p * 2)(*[ctypes.addressof(x) for x in args])
    st = ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)
    go = lambda: cu.cuLaunchKernel(f, blocks, 1, 1, 256, 1, 1, 0, st, arr, None)
    go(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(True), torch.cuda.Event(True); s.record()
    for _ in range(5): go()
    e.record(); torch.cuda.synchronize(); ms = s.elapsed_time(e) / 5
    fl = blocks * 8 * iters * 8 * 2 * 16 * 8 * 8
    print(f'{per} block(s) of 8 warps a multiprocessor: {fl / ms / 1e9:.0f} TFLOP/s TF32 mma.sync', flush=True)
