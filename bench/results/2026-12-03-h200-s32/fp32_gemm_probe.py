# float32 products on the H200 three ways, for the GPT benchmark's shapes: IEEE (PyTorch's default), one TF32
# product, three TF32 products of hi/lo halves (hi = the input rounded to TF32, lo = the rest; lo*lo dropped), and
# cuBLAS's BF16x9 emulation (CUBLAS_COMPUTE_32F_EMULATED_16BFX9) through ctypes; errors against float64.
import ctypes, torch, sys
torch.manual_seed(0)
dev = 'cuda'
lib = ctypes.CDLL('libcublas.so.13')
h = ctypes.c_void_p(); print('create', lib.cublasCreate_v2(ctypes.byref(h)))
lib.cublasSetStream_v2(h, ctypes.c_void_p(torch.cuda.current_stream().cuda_stream))
strategy = int(sys.argv[1]) if len(sys.argv) > 1 else 2
print('setEmulationStrategy', getattr(lib, 'cublasSetEmulationStrategy', None) and lib.cublasSetEmulationStrategy(h, strategy))
ws = torch.empty(64 << 20, dtype=torch.uint8, device=dev)
print('setWorkspace', lib.cublasSetWorkspace_v2(h, ctypes.c_void_p(ws.data_ptr()), ctypes.c_size_t(64 << 20)))
one, zero = ctypes.c_float(1.0), ctypes.c_float(0.0)

def gemm_ex(a, b, out, compute):
    # row-major out[M,N] = a[M,K] @ b[K,N] as column-major out^T = b^T a^T
    M, K = a.shape; N = b.shape[1]
    return lib.cublasGemmEx(h, 0, 0, N, M, K, ctypes.byref(one), ctypes.c_void_p(b.data_ptr()), 0, N,
                            ctypes.c_void_p(a.data_ptr()), 0, K, ctypes.byref(zero), ctypes.c_void_p(out.data_ptr()), 0, N,
                            compute, -1)

def split(x):
    hi = ((x.view(torch.int32) + 0x1000) & ~0x1fff).view(torch.float32)
    return hi, x - hi

def three(a, b):
    ah, al = split(a); bh, bl = split(b)
    return torch.addmm(torch.addmm(al @ bh, ah, bl), ah, bh)

def ms(f, n=20):
    f(); torch.cuda.synchronize()
    s, e = torch.cuda.Event(True), torch.cuda.Event(True)
    s.record()
    for _ in range(n): f()
    e.record(); torch.cuda.synchronize()
    return s.elapsed_time(e) / n

T = 16384
shapes = [(T, 384, 1152), (T, 384, 384), (T, 384, 1536), (T, 1536, 384), (T, 384, 65),
          (T, 1152, 384), (1152, T, 384), (384, T, 1536), (1536, T, 384), (8192, 8192, 8192), (1024, 1024, 1024)]
for M, K, N in shapes:
    a = torch.randn(M, K, device=dev); b = torch.randn(K, N, device=dev) / K ** 0.5
    ref = a.double() @ b.double()
    out = torch.empty(M, N, device=dev)
    err = lambda c: ((c.double() - ref).abs().max() / ref.abs().max()).item()
    row = {}
    torch.backends.cuda.matmul.allow_tf32 = False
    row['ieee'] = (ms(lambda: torch.mm(a, b, out=out)), err(a @ b))
    torch.backends.cuda.matmul.allow_tf32 = True
    row['tf32'] = (ms(lambda: torch.mm(a, b, out=out)), err(a @ b))
    row['3xtf32'] = (ms(lambda: three(a, b)), err(three(a, b)))
    torch.backends.cuda.matmul.allow_tf32 = False
    for name, ct in (('cublas32f', 68), ('bf16x9', 78)):
        st = gemm_ex(a, b, out, ct)
        if st != 0: row[name] = ('status %d' % st, None); continue
        row[name] = (ms(lambda: gemm_ex(a, b, out, ct)), err(out))
    fl = 2 * M * N * K
    print(f'{M}x{K}x{N}: ' + '  '.join(f'{k} {v[0]:.4f} ms {fl / v[0] / 1e9:.0f} TF err {v[1]:.2e}' if isinstance(v[0], float)
                                       else f'{k} {v[0]}' for k, v in row.items()), flush=True)
