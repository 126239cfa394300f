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

// linear's bias gradient, the column sums of g (rows x n, rows ld apart): partial[split * n + j] = the sum over the
// rows [split * chunk, (split + 1) * chunk), split = blockIdx.y, then one finish pass over the splits. A block of 256
// threads is 32 column groups x 8 row phases; a thread keeps V = 16 / sizeof(T) adjacent columns and reads them in
// one 16-byte load when vec (g and ld 16-byte aligned, n a multiple of V), the 8 row phases met in shared memory.
// (cuBLASLt's BGRADB epilogue ran as a kernel of its own at about 40% of the bandwidth this reaches.)
template <typename T>
__device__ __forceinline__ void bias_grad_partial(typename Acc<T>::type* partial, const T* g, i64 rows, int n, i64 ld, i64 chunk, int vec) {
    typedef typename Acc<T>::type P;
    constexpr int V = Vec16<T>::N;
    __shared__ P sh[8][32 * V];
    int tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
    i64 c0 = ((i64) blockIdx.x * 32 + tx) * V;
    i64 from = (i64) blockIdx.y * chunk, to = min(rows, from + chunk);
    P acc[V];
#pragma unroll
    for (int v = 0; v < V; v++) acc[v] = 0;
    if (c0 < n) {
#pragma unroll 4
        for (i64 r = from + ty; r < to; r += 8) {
            const T* row = g + r * ld + c0;
            if (vec) {
                Vec16<T> q;
                q.load(row);
#pragma unroll
                for (int v = 0; v < V; v++) acc[v] += load<P, T>(q.v[v]);
            } else {
#pragma unroll
                for (int v = 0; v < V; v++) if (c0 + v < n) acc[v] += load<P, T>(row[v]);
            }
        }
    }
#pragma unroll
    for (int v = 0; v < V; v++) sh[ty][tx * V + v] = acc[v];
    __syncthreads();
    if (ty == 0) {
#pragma unroll
        for (int v = 0; v < V; v++) {
            P s = sh[0][tx * V + v];
            for (int y = 1; y < 8; y++) s += sh[y][tx * V + v];
            if (c0 + v < n) partial[(i64) blockIdx.y * n + c0 + v] = s;
        }
    }
}
// db[j] (db's type D) = the sum of the splits' partials for column j: a warp per column, its lanes taking every 32nd split
template <typename D>
__device__ __forceinline__ void bias_grad_finish(D* db, const typename Acc<D>::type* partial, int n, int splits) {
    typedef typename Acc<D>::type P;
    int lane = threadIdx.x & 31;
    auto add = [](P a, P c) { return a + c; };
    for (i64 j = ((i64) blockIdx.x * blockDim.x + threadIdx.x) >> 5; j < n; j += ((i64) gridDim.x * blockDim.x) >> 5) {
        P s = 0;
        for (int k = lane; k < splits; k += 32) s += partial[(i64) k * n + j];
        s = warp_all(s, add);
        if (lane == 0) db[j] = store<D, P>(s);
    }
}
#define BIAS_GRAD(T, S) \
extern "C" __global__ void __launch_bounds__(256) linear_bias_grad_##S(typename Acc<T>::type* partial, const T* g, i64 rows, int n, i64 ld, \
        i64 chunk, int vec) { bias_grad_partial<T>(partial, g, rows, n, ld, chunk, vec); } \
extern "C" __global__ void linear_bias_grad_finish_##S(T* db, const typename Acc<T>::type* partial, int n, int splits) { \
    bias_grad_finish<T>(db, partial, n, splits); \
}
KILN_FLOAT_TYPES(BIAS_GRAD)
