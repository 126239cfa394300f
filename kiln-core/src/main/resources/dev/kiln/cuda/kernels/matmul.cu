// Batched matrix product C[b] = A[b] x B[b] (+ C[b] when accumulate) over any strides (transposed and stride-0
// batch views included): the fallback when cuBLAS is not there. 64x64 output tiles, 16-deep k slices in shared
// memory, 256 threads with 4x4 outputs each; float accumulation for the 32- and 16-bit types, double for float64.
// Backward is two more products (dev.kiln.ops.LinearAlgebra), so there is no separate kernel.
#include "common.cuh"

struct GemmP { i64 m, n, k; i64 sab, sam, sak, sbb, sbk, sbn, scb, scm; int accumulate; };

#define BM 64
#define BN 64
#define BK 16

#define GEMM(T, S) \
extern "C" __global__ void __launch_bounds__(256) gemm_##S(T* c, const T* a, const T* b, GemmP p, int batch0) { \
    typedef Acc<T>::type A; \
    __shared__ A as[BK][BM + 1]; \
    __shared__ A bs[BK][BN + 1]; \
    i64 bat = batch0 + blockIdx.z; \
    const T* ab = a + bat * p.sab; const T* bb = b + bat * p.sbb; T* cb = c + bat * p.scb; \
    i64 m0 = (i64) blockIdx.y * BM, n0 = (i64) blockIdx.x * BN; \
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16; \
    A acc[4][4]; \
    _Pragma("unroll") for (int u = 0; u < 4; u++) _Pragma("unroll") for (int v = 0; v < 4; v++) acc[u][v] = 0; \
    for (i64 k0 = 0; k0 < p.k; k0 += BK) { \
        for (int e = threadIdx.x; e < BM * BK; e += 256) { \
            int mm = e / BK, kk = e % BK; i64 gm = m0 + mm, gk = k0 + kk; \
            as[kk][mm] = (gm < p.m && gk < p.k) ? load<A, T>(ab[gm * p.sam + gk * p.sak]) : (A) 0; \
            int kk2 = e / BN, nn = e % BN; i64 gk2 = k0 + kk2, gn = n0 + nn; \
            bs[kk2][nn] = (gk2 < p.k && gn < p.n) ? load<A, T>(bb[gk2 * p.sbk + gn * p.sbn]) : (A) 0; \
        } \
        __syncthreads(); \
        _Pragma("unroll") for (int kk = 0; kk < BK; kk++) { \
            A ra[4], rb[4]; \
            _Pragma("unroll") for (int u = 0; u < 4; u++) { ra[u] = as[kk][ty + 16 * u]; rb[u] = bs[kk][tx + 16 * u]; } \
            _Pragma("unroll") for (int u = 0; u < 4; u++) _Pragma("unroll") for (int v = 0; v < 4; v++) acc[u][v] += ra[u] * rb[v]; \
        } \
        __syncthreads(); \
    } \
    _Pragma("unroll") for (int u = 0; u < 4; u++) _Pragma("unroll") for (int v = 0; v < 4; v++) { \
        i64 gm = m0 + ty + 16 * u, gn = n0 + tx + 16 * v; \
        if (gm < p.m && gn < p.n) { \
            T* dst = cb + gm * p.scm + gn; \
            A r = acc[u][v]; \
            if (p.accumulate) r += load<A, T>(*dst); \
            *dst = store<T, A>(r); \
        } \
    } \
}
KILN_FLOAT_TYPES(GEMM)
