# matmul.cu's gemm_wg32 variants (float32 products as three TF32 wgmma products, tile sums added in float32; sm_90a)
# beside PyTorch's float32 product (cuBLAS, TF32 off) on the GPT benchmark's shapes: error against float64 and time.
# python3 wg32_probe.py NAME=matmul.cubin ...  (each cubin a variant of matmul.cu built for sm_90a; kernels of session
# 35's signature: d, a, b, c, bias, part, {m, n, k, lda, ldb, ldd, kslice}). PROBE_SHAPES=tn:1152:16384:384,... limits
# the shapes (+bias, +bias+C: the epilogue's loads timed too); PROBE_TIME=0 launches each once (for Nsight Compute).
import ctypes, faulthandler, os, sys, torch
faulthandler.enable(); faulthandler.dump_traceback_later(100, exit=True)
print('probe: torch', torch.__version__, flush=True)
torch.manual_seed(0)
torch.backends.cuda.matmul.allow_tf32 = False
cu = ctypes.CDLL('libcuda.so.1')
torch.zeros(1, device='cuda'); torch.cuda.synchronize()
class P(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in ('m', 'n', 'k', 'lda', 'ldb', 'ldd', 'kslice')]
SMEM = 4 * 2 * 128 * 36 * 4 + 2 * 2 * 128 * 32 * 4
def load(path):
    mod = ctypes.c_void_p()
    assert cu.cuModuleLoadData(ctypes.byref(mod), ctypes.c_char_p(open(path, 'rb').read())) == 0, path
    ks = {}
    for l in ('tn', 'nn', 'nt', 'tt'):
        f = ctypes.c_void_p()
        assert cu.cuModuleGetFunction(ctypes.byref(f), mod, f'gemm_wg32_{l}'.encode()) == 0
        assert cu.cuFuncSetAttribute(f, 8, SMEM) == 0, l
        ks[l] = f
    f = ctypes.c_void_p(); cu.cuModuleGetFunction(ctypes.byref(f), mod, b'gemm_tc32_sum'); ks['sum'] = f
    return ks
variants = [(a.split('=')[0], load(a.split('=')[1])) for a in sys.argv[1:]]
SMS = torch.cuda.get_device_properties(0).multi_processor_count
def slices(m, n, k):
    tiles = -(-m // 128) * -(-n // 128)
    best, bs = 1.0 * -(-tiles // SMS), 1
    for s in range(2, 17):
        ks = ((k + s - 1) // s + 31) // 32 * 32
        if ks < 256: break
        ss = -(-k // ks)
        f = -(-tiles * ss // SMS) / ss
        if f < best * 0.95: best, bs = f, ss
    return bs
def launch(K, layout, m, n, k, a, lda, b, ldb, d, ldd, c=None, bias=None, part=None, s=1):
    ks = ((k + s - 1) // s + 31) // 32 * 32 if s > 1 else k
    p = P(m, n, k, lda, ldb, ldd, ks)
    ptr = lambda t: ctypes.c_void_p(t.data_ptr() if t is not None else 0)
    args = [ptr(d), ptr(a), ptr(b), ptr(c if s == 1 else None), ptr(bias if s == 1 else None), ptr(part), p]
    arr = (ctypes.c_void_p * len(args))(*[ctypes.addressof(x) for x in args])
    st = torch.cuda.current_stream().cuda_stream
    r = cu.cuLaunchKernel(K[layout], -(-m // 128), -(-n // 128), s, 256, 1, 1, SMEM, ctypes.c_void_p(st), arr, None)
    assert r == 0, r
    if s > 1:
        sl = ctypes.c_int(s)
        args2 = [ptr(d), ptr(part), ptr(c), ptr(bias), p, sl]
        arr2 = (ctypes.c_void_p * len(args2))(*[ctypes.addressof(x) for x in args2])
        assert cu.cuLaunchKernel(K['sum'], min(-(-m * n // 256), SMS * 8), 1, 1, 256, 1, 1, 0, ctypes.c_void_p(st), arr2, None) == 0
def ms(f, n=20):
    f(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(True), torch.cuda.Event(True)
    s.record()
    for _ in range(n): f()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / n
T = 16384
shapes = [('tn', 1152, T, 384), ('tn', 384, T, 384), ('tn', 1536, T, 384), ('tn', 384, T, 1536),
          ('nn', 384, T, 1152), ('nn', 384, T, 384), ('nn', 384, T, 1536), ('nn', 1536, T, 384),
          ('nt', 384, 1152, T), ('nt', 384, 384, T), ('nt', 384, 1536, T), ('nt', 1536, 384, T),
          ('tt', 1024, 1024, 1024), ('tn', 4096, 4096, 4096), ('nn', 200, 300, 100), ('nt', 4, 8, 4), ('tn', 132, 20, 1000),
          ('tt', 260, 36, 4100), ('tn', 2304, 512, 128), ('nt', 512, 2304, 128), ('nn', 132, 260, 40), ('tn', 128, 128, 32)]
if os.environ.get('PROBE_SHAPES'):
    shapes = [(l, int(m), int(n), int(k)) for l, m, n, k in (x.split(':') for x in os.environ['PROBE_SHAPES'].split(','))]
timing = os.environ.get('PROBE_TIME', '1') != '0'
for layout, m, n, k in shapes:
    big = timing and m * n * k > 1e8
    if layout[0] == 't': A = torch.randn(m, k, device='cuda'); opA = A
    else: A = torch.randn(k, m, device='cuda'); opA = A.t()
    if layout[1] == 'n': B = torch.randn(n, k, device='cuda') / k ** 0.5; opB = B.t()
    else: B = torch.randn(k, n, device='cuda') / k ** 0.5; opB = B
    lda = k if layout[0] == 't' else m
    ldb = k if layout[1] == 'n' else n
    bias = torch.randn(m, device='cuda'); C = torch.randn(n, m, device='cuda')
    ref = (opA.double() @ opB.double()).t() + bias.double() + C.double()
    scale = ref.abs().max().item()
    ieee = (opA @ opB).t() + bias + C
    err_ieee = ((ieee.double() - ref).abs().max() / scale).item()
    out = torch.empty(m, n, device='cuda')
    t_t = ms(lambda: torch.mm(opA, opB, out=out)) if big else float('nan')
    s = slices(m, n, k)
    part = torch.empty(s * m * n if s > 1 else 1, device='cuda')
    fl = 2 * m * n * k
    Cmn = torch.randn(m, n, device='cuda')
    t_tc = ms(lambda: torch.addmm(Cmn, opA, opB, out=out)) if big and s == 1 else float('nan')
    line = f'{layout} {m}x{n}x{k} s={s}: ieee {t_t:.4f} ms (+C {t_tc:.4f}) {fl / t_t / 1e9:.0f} TF err {err_ieee:.1e}'
    for name, K in variants:
        D = torch.full((n, m), float('nan'), device='cuda')
        launch(K, layout, m, n, k, A, lda, B, ldb, D, m, C, bias, part, s); torch.cuda.synchronize()
        err = ((D.double() - ref).abs().max() / scale).item()
        t_k = ms(lambda: launch(K, layout, m, n, k, A, lda, B, ldb, D, m, None, None, part, s)) if big else float('nan')
        t_c = ms(lambda: launch(K, layout, m, n, k, A, lda, B, ldb, D, m, C, bias, part, s)) if big and s == 1 else float('nan')
        t_b = ms(lambda: launch(K, layout, m, n, k, A, lda, B, ldb, D, m, None, bias, part, s)) if big and s == 1 else float('nan')
        line += f' | {name} {t_k:.4f} ms (+bias {t_b:.4f}, +bias+C {t_c:.4f}) {fl / t_k / 1e9:.0f} TF x{t_t / t_k:.2f} err {err:.1e}'
    print(line, flush=True)
