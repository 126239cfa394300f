# Kiln's gemm_tc32 (matmul.cu: float32 products as three TF32 mma.sync, tile sums added in float32) against PyTorch's
# float32 product (cuBLAS, IEEE, TF32 off) on the GPT benchmark's shapes: time and error against float64.
# python3 tc32_probe.py matmul.cubin [BN]
import ctypes, math, sys, torch
torch.manual_seed(0)
torch.backends.cuda.matmul.allow_tf32 = False
cu = ctypes.CDLL('libcuda.so.1')
torch.zeros(1, device='cuda'); torch.cuda.synchronize()
mod = ctypes.c_void_p()
data = open(sys.argv[1], 'rb').read()
assert cu.cuModuleLoadData(ctypes.byref(mod), ctypes.c_char_p(data)) == 0
BN = int(sys.argv[2]) if len(sys.argv) > 2 else 128
SMEM = 3 * (128 + BN) * 40 * 4   # the largest of the variants' tiles
def fn(name):
    f = ctypes.c_void_p()
    assert cu.cuModuleGetFunction(ctypes.byref(f), mod, name.encode()) == 0, name
    assert cu.cuFuncSetAttribute(f, 8, SMEM) == 0
    return f
class P(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in ('m', 'n', 'k', 'lda', 'ldb', 'ldd', 'kslice')]
K = {l: fn('gemm_tc32_' + l) for l in ('tn', 'nn', 'nt', 'tt')}
SUM = ctypes.c_void_p(); cu.cuModuleGetFunction(ctypes.byref(SUM), mod, b'gemm_tc32_sum')
SMS = torch.cuda.get_device_properties(0).multi_processor_count * (256 // (2 * BN))   # resident blocks
def slices(m, n, k):
    tiles = -(-m // 128) * -(-n // BN)
    best, bs = 1.0 * -(-tiles // SMS), 1
    for s in range(2, 17):
        ks = ((k + s - 1) // s + 31) // 32 * 32
        if ks < 256: break
        ss = -(-k // ks)
        f = -(-tiles * ss // SMS) / ss
        if f < best * 0.95: best, bs = f, ss
    return bs
def launch(layout, m, n, k, a, lda, b, ldb, d, ldd, c=None, bias=None, part=None, s=1):
    ks = ((k + s - 1) // s + 31) // 32 * 32 if s > 1 else k
    p = P(m, n, k, lda, ldb, ldd, ks)
    ptr = lambda t: ctypes.c_void_p(t.data_ptr() if t is not None else 0)
    args = [ptr(d), ptr(a), ptr(b), ptr(c if s == 1 else None), ptr(bias if s == 1 else None), ptr(part), p]
    arr = (ctypes.c_void_p * len(args))(*[ctypes.addressof(x) for x in args])
    st = torch.cuda.current_stream().cuda_stream
    r = cu.cuLaunchKernel(K[layout], -(-m // 128), -(-n // BN), s, 2 * BN, 1, 1, SMEM, ctypes.c_void_p(st), arr, None)
    assert r == 0, r
    if s > 1:
        sl = ctypes.c_int(s)
        args2 = [ptr(d), ptr(part), ptr(c), ptr(bias), p, sl]
        arr2 = (ctypes.c_void_p * len(args2))(*[ctypes.addressof(x) for x in args2])
        assert cu.cuLaunchKernel(SUM, min(-(-m * n // 256), SMS * 8), 1, 1, 256, 1, 1, 0, ctypes.c_void_p(st), arr2, None) == 0
def ms(f, n=20):
    f(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(True), torch.cuda.Event(True)
    s.record()
    for _ in range(n): f()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / n
T = 16384
# (layout, m, n, k): column-major D (m x n) as Kiln calls it: forward tn (m = out, n = tokens, k = in),
# input gradient nn (m = in, k = out), weight gradient nt (m = in, n = out, k = tokens)
shapes = [('tn', 1152, T, 384), ('tn', 384, T, 384), ('tn', 1536, T, 384), ('tn', 384, T, 1536),
          ('nn', 384, T, 1152), ('nn', 384, T, 384), ('nn', 384, T, 1536), ('nn', 1536, T, 384),
          ('nt', 384, 1152, T), ('nt', 384, 384, T), ('nt', 384, 1536, T), ('nt', 1536, 384, T),
          ('tt', 1024, 1024, 1024), ('tn', 4096, 4096, 4096), ('nn', 200, 300, 100), ('nt', 4, 8, 4), ('tn', 132, 20, 1000),
          ('tt', 260, 36, 4100)]
for layout, m, n, k in shapes:
    big = m * n * k > 1e8
    # operands as PyTorch tensors (row-major) whose memory is op(A), op(B) as the layout reads them
    if layout[0] == 't': A = torch.randn(m, k, device='cuda'); opA = A           # a[p + i lda]: rows i, lda = k
    else: A = torch.randn(k, m, device='cuda'); opA = A.t()                       # a[i + p lda]: lda = m
    if layout[1] == 'n': B = torch.randn(n, k, device='cuda') / k ** 0.5; opB = B.t()   # b[p + j ldb]: ldb = k
    else: B = torch.randn(k, n, device='cuda') / k ** 0.5; opB = B                      # b[j + p ldb]: ldb = n
    lda = k if layout[0] == 't' else m
    ldb = k if layout[1] == 'n' else n
    bias = torch.randn(m, device='cuda'); C = torch.randn(n, m, device='cuda')          # D row-major (n, m) = col-major (m x n)
    ref = (opA.double() @ opB.double()).t() + bias.double() + C.double()
    D = torch.empty(n, m, device='cuda')
    s = slices(m, n, k)
    part = torch.empty(s * m * n if s > 1 else 1, device='cuda')
    run = lambda: launch(layout, m, n, k, A, lda, B, ldb, D, m, C, bias, part, s)
    run(); torch.cuda.synchronize()
    scale = ref.abs().max().item()
    err = ((D.double() - ref).abs().max() / scale).item()
    ieee = (opA @ opB).t() + bias + C
    err_ieee = ((ieee.double() - ref).abs().max() / scale).item()
    # the products alone (no bias, C), for time
    run0 = lambda: launch(layout, m, n, k, A, lda, B, ldb, D, m, None, None, part, s)
    out = torch.empty(m, n, device='cuda')
    t_k = ms(run0) if big else float('nan')
    t_t = ms(lambda: torch.mm(opA, opB, out=out)) if big else float('nan')
    fl = 2 * m * n * k
    print(f'{layout} {m}x{n}x{k} s={s}: tc32 {t_k:.4f} ms {fl / t_k / 1e9:.0f} TF  ieee {t_t:.4f} ms {fl / t_t / 1e9:.0f} TF  '
          f'speedup {t_t / t_k:.2f}x  err {err:.2e} (ieee {err_ieee:.2e})', flush=True)
