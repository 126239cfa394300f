"""float32 products on tensor cores at float32's precision: cuBLAS's own BF16x9 emulation
(CUBLAS_COMPUTE_32F_EMULATED_16BFX9 with the EAGER emulation strategy) and three TF32 products in one call (the
operands split into TF32 hi and lo parts, concatenated along the reduction so one FAST_TF32 product sums
hi.hi + hi.lo + lo.hi), each against cuBLAS's plain float32 product (CUDA cores), on the benchmark GPT's shapes:
time per call and the largest error against float64, relative to the largest |reference| element.

python3 bench/cublas_fp32_probe.py [--iters 50]
"""
import argparse
import ctypes
import glob
import json
import os

import torch

COMPUTE_32F, COMPUTE_32F_FAST_TF32, COMPUTE_32F_EMULATED_16BFX9 = 68, 77, 78
R_32F, GEMM_DEFAULT, OP_N, OP_T = 0, -1, 0, 1


def load_cublas():
    names = glob.glob(os.path.join(os.path.dirname(torch.__file__), "..", "nvidia", "*", "lib", "libcublas.so*"))
    names += ["libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so"]
    for n in names:
        try:
            return ctypes.CDLL(n), n
        except OSError:
            pass
    raise SystemExit("no libcublas")


lib, libname = load_cublas()
handle = ctypes.c_void_p()
assert lib.cublasCreate_v2(ctypes.byref(handle)) == 0
version = ctypes.c_int()
lib.cublasGetVersion_v2(handle, ctypes.byref(version))


def gemm(a, b, c, compute, beta=0.0):
    """c (M, N) = a (M, K) . b (K, N), row-major float32, as cuBLAS's column-major c^T = b^T a^T."""
    m, k = a.shape
    n = b.shape[1]
    one, zero = ctypes.c_float(1.0), ctypes.c_float(beta)
    lib.cublasSetStream_v2(handle, ctypes.c_void_p(torch.cuda.current_stream().cuda_stream))
    s = lib.cublasGemmEx(handle, OP_N, OP_N, n, m, k, ctypes.byref(one),
                         ctypes.c_void_p(b.data_ptr()), R_32F, n, ctypes.c_void_p(a.data_ptr()), R_32F, k,
                         ctypes.byref(zero), ctypes.c_void_p(c.data_ptr()), R_32F, n, compute, GEMM_DEFAULT)
    if s != 0:
        raise RuntimeError(f"cublasGemmEx compute {compute}: status {s}")


def tf32_hi(x):
    """x rounded to TF32 (10 mantissa bits, nearest): exact in TF32, so a FAST_TF32 product reads it unchanged."""
    i = x.view(torch.int32)
    return ((i + 0x1000) & -0x2000).view(torch.float32)


def split3(a, b):
    """a' (M, 3K) = [hi | hi | lo] and b' (3K, N) = [hi ; lo ; hi]: a'.b' = hi.hi + hi.lo + lo.hi."""
    ah = tf32_hi(a)
    bh = tf32_hi(b)
    return torch.cat([ah, ah, a - ah], 1), torch.cat([bh, b - bh, bh], 0)


def timed(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(iters):
        fn()
    e1.record()
    torch.cuda.synchronize()
    return e0.elapsed_time(e1) / iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=50)
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = 64 * 256
    # (what, M, K, N): the GPT step's products (forward x.W^T, input gradient dy.W, weight gradient dy^T.x)
    shapes = [("qkv fwd", rows, 384, 1152), ("proj fwd", rows, 384, 384), ("fc fwd", rows, 384, 1536),
              ("fc2 fwd", rows, 1536, 384), ("qkv dx", rows, 1152, 384), ("fc dx", rows, 1536, 384),
              ("qkv dw", 1152, rows, 384), ("fc dw", 1536, rows, 384), ("fc2 dw", 384, rows, 1536)]
    out = {"cublas": libname, "cublas_version": version.value, "gpu": torch.cuda.get_device_name(), "rows": []}
    for what, m, k, n in shapes:
        a = torch.randn(m, k, device="cuda")
        b = torch.randn(k, n, device="cuda") / k ** 0.5
        ref = (a.double() @ b.double())
        scale = ref.abs().max().item()
        c = torch.empty(m, n, device="cuda")
        row = {"what": what, "m": m, "k": k, "n": n}
        for name, compute in (("fp32", COMPUTE_32F), ("bf16x9", COMPUTE_32F_EMULATED_16BFX9), ("tf32", COMPUTE_32F_FAST_TF32)):
            for strategy in ((0, 2) if compute == COMPUTE_32F_EMULATED_16BFX9 else (0,)):
                key = name + ("_eager" if strategy == 2 else "")
                try:
                    if strategy:
                        assert lib.cublasSetEmulationStrategy(handle, strategy) == 0
                    gemm(a, b, c, compute)
                    row[key + "_err"] = ((c.double() - ref).abs().max().item()) / scale
                    row[key + "_ms"] = timed(lambda: gemm(a, b, c, compute), args.iters)
                except Exception as e:  # noqa: BLE001
                    row[key + "_error"] = str(e)
                if strategy:
                    lib.cublasSetEmulationStrategy(handle, 0)
        a3, b3 = split3(a, b)
        gemm(a3, b3, c, COMPUTE_32F_FAST_TF32)
        row["3xtf32_err"] = ((c.double() - ref).abs().max().item()) / scale
        row["3xtf32_gemm_ms"] = timed(lambda: gemm(a3, b3, c, COMPUTE_32F_FAST_TF32), args.iters)
        row["3xtf32_split_ms"] = timed(lambda: split3(a, b), args.iters)
        row["torch_fp32_ms"] = timed(lambda: torch.matmul(a, b, out=c), args.iters)
        print(json.dumps(row), flush=True)
        out["rows"].append(row)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
