// Reductions over the innermost dimension of a contiguous (rows, n) array, or over the outer dimension of a
// contiguous (n, cols) array; the host permutes reduced dimensions innermost first. Sums accumulate in double,
// as the CPU reference does. Op codes: REDUCE_* of op_codes.cuh; NaN propagates through max and min.
// Backward: the gradient of a sum is an expand and of max/min a mask (dev.kiln.ops.Reductions), so none here.
#include "common.cuh"
#include "op_codes.cuh"

template <typename C>
__device__ __forceinline__ C red_combine(int op, C a, C b) {
    if (op == REDUCE_SUM) return a + b;
    if (a != a) return a;
    if (b != b) return b;
    return op == REDUCE_MAX ? (a > b ? a : b) : (a < b ? a : b);
}
__device__ __forceinline__ double red_identity(int op) {
    return op == REDUCE_SUM ? 0.0 : (op == REDUCE_MAX ? -__longlong_as_double(0x7FF0000000000000ll) : __longlong_as_double(0x7FF0000000000000ll));
}

// One block per row (grid-stride over rows), for long rows.
#define REDUCE(T, S) \
extern "C" __global__ void reduce_rows_##S(int op, T* out, const T* x, i64 rows, i64 n) { \
    __shared__ double sh[32]; \
    auto f = [op](double a, double b) { return red_combine(op, a, b); }; \
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) { \
        const T* row = x + r * n; \
        double acc = red_identity(op); \
        for (i64 j = threadIdx.x; j < n; j += blockDim.x) acc = f(acc, to_d(row[j])); \
        acc = block_reduce(acc, f, sh); \
        if (threadIdx.x == 0) out[r] = from_d<T>(acc); \
    } \
} \
/* One warp per row, for short rows. */ \
extern "C" __global__ void reduce_rows_warp_##S(int op, T* out, const T* x, i64 rows, i64 n) { \
    auto f = [op](double a, double b) { return red_combine(op, a, b); }; \
    int lane = threadIdx.x & 31; \
    i64 warps = (i64) gridDim.x * (blockDim.x >> 5); \
    for (i64 r = (i64) blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) { \
        const T* row = x + r * n; \
        double acc = red_identity(op); \
        for (i64 j = lane; j < n; j += 32) acc = f(acc, to_d(row[j])); \
        acc = warp_reduce(acc, f); \
        if (lane == 0) out[r] = from_d<T>(acc); \
    } \
} \
/* out[c] = reduce over r of x[r * cols + c]: reducing leading dimensions (bias gradients) without a transpose. */ \
extern "C" __global__ void reduce_cols_##S(int op, T* out, const T* x, i64 n, i64 cols) { \
    GRID_STRIDE(c, cols) { \
        double acc = red_identity(op); \
        for (i64 r = 0; r < n; r++) acc = red_combine(op, acc, to_d(x[r * cols + c])); \
        out[c] = from_d<T>(acc); \
    } \
}
KILN_ALL_TYPES(REDUCE)

// argmax / argmin along rows: the first NaN wins, else the first extreme value (as the CPU backend).
struct ArgVal { double v; i64 i; };
__device__ __forceinline__ ArgVal arg_combine(bool mx, ArgVal a, ArgVal b) {
    if (a.i < 0) return b;
    if (b.i < 0) return a;
    bool an = a.v != a.v, bn = b.v != b.v;
    if (an || bn) { if (an && bn) return a.i < b.i ? a : b; return an ? a : b; }
    if (a.v == b.v) return a.i < b.i ? a : b;
    return (mx ? a.v > b.v : a.v < b.v) ? a : b;
}

#define ARGREDUCE(T, S) \
extern "C" __global__ void argreduce_rows_##S(int is_max, i64* out, const T* x, i64 rows, i64 n) { \
    bool mx = is_max != 0; \
    int lane = threadIdx.x & 31; \
    i64 warps = (i64) gridDim.x * (blockDim.x >> 5); \
    for (i64 r = (i64) blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) { \
        const T* row = x + r * n; \
        ArgVal acc; acc.v = 0; acc.i = -1; \
        for (i64 j = lane; j < n; j += 32) { ArgVal c; c.v = to_d(row[j]); c.i = j; acc = arg_combine(mx, acc, c); } \
        for (int off = 16; off > 0; off >>= 1) { \
            ArgVal o; o.v = __shfl_down_sync(0xffffffffu, acc.v, off); o.i = __shfl_down_sync(0xffffffffu, acc.i, off); \
            acc = arg_combine(mx, acc, o); \
        } \
        if (lane == 0) out[r] = acc.i; \
    } \
}
KILN_ALL_TYPES(ARGREDUCE)

// Two-pass reductions for shapes one pass cannot spread over the GPU (few long rows, or few columns over many
// rows): the first pass reduces chunks into double partials, the second finishes each output.
#define REDUCE_2PASS(T, S) \
/* grid (chunks, rows): partial[r * gridDim.x + c] reduces x[r * n + c * chunk, ...) */ \
extern "C" __global__ void reduce_rows_partial_##S(int op, double* partial, const T* x, i64 n, i64 chunk) { \
    __shared__ double sh[32]; \
    auto f = [op](double a, double b) { return red_combine(op, a, b); }; \
    i64 r = blockIdx.y, c = blockIdx.x; \
    const T* row = x + r * n; \
    i64 end = min(n, (c + 1) * chunk); \
    double acc = red_identity(op); \
    for (i64 j = c * chunk + threadIdx.x; j < end; j += blockDim.x) acc = f(acc, to_d(row[j])); \
    acc = block_reduce(acc, f, sh); \
    if (threadIdx.x == 0) partial[r * gridDim.x + c] = acc; \
} \
/* one warp per row: out[r] reduces partial[r * chunks, ...) */ \
extern "C" __global__ void reduce_rows_finish_##S(int op, T* out, const double* partial, i64 rows, i64 chunks) { \
    auto f = [op](double a, double b) { return red_combine(op, a, b); }; \
    int lane = threadIdx.x & 31; \
    i64 warps = (i64) gridDim.x * (blockDim.x >> 5); \
    for (i64 r = (i64) blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); r < rows; r += warps) { \
        double acc = red_identity(op); \
        for (i64 j = lane; j < chunks; j += 32) acc = f(acc, partial[r * chunks + j]); \
        acc = warp_reduce(acc, f); \
        if (lane == 0) out[r] = from_d<T>(acc); \
    } \
} \
/* grid (column blocks, chunks): partial[c * cols + col] reduces rows [c * chunk, ...) of column col */ \
extern "C" __global__ void reduce_cols_partial_##S(int op, double* partial, const T* x, i64 n, i64 cols, i64 chunk) { \
    i64 col = (i64) blockIdx.x * blockDim.x + threadIdx.x; \
    if (col >= cols) return; \
    i64 r0 = (i64) blockIdx.y * chunk, r1 = min(n, r0 + chunk); \
    double acc = red_identity(op); \
    for (i64 r = r0; r < r1; r++) acc = red_combine(op, acc, to_d(x[r * cols + col])); \
    partial[(i64) blockIdx.y * cols + col] = acc; \
} \
/* blocks of 32 columns by blockDim.x / 32 lanes: lane l combines partials l, l + lanes, ... of its column, then the \
   lanes' results are combined in lane order (few columns of many chunks no longer leave a thread a long serial sum) */ \
extern "C" __global__ void reduce_cols_finish_##S(int op, T* out, const double* partial, i64 chunks, i64 cols) { \
    __shared__ double sh[1024]; \
    int tx = threadIdx.x & 31, ty = threadIdx.x >> 5, lanes = blockDim.x >> 5; \
    i64 col = (i64) blockIdx.x * 32 + tx; \
    double acc = red_identity(op); \
    if (col < cols) { \
        /* four independent loads a turn: a single chain would wait on L2 for each partial in turn */ \
        double a1 = acc, a2 = acc, a3 = acc; \
        for (i64 c = ty; c < chunks; c += 4 * lanes) { \
            acc = red_combine(op, acc, partial[c * cols + col]); \
            if (c + lanes < chunks) a1 = red_combine(op, a1, partial[(c + lanes) * cols + col]); \
            if (c + 2 * lanes < chunks) a2 = red_combine(op, a2, partial[(c + 2 * lanes) * cols + col]); \
            if (c + 3 * lanes < chunks) a3 = red_combine(op, a3, partial[(c + 3 * lanes) * cols + col]); \
        } \
        acc = red_combine(op, red_combine(op, acc, a1), red_combine(op, a2, a3)); \
    } \
    sh[threadIdx.x] = acc; \
    __syncthreads(); \
    if (ty == 0 && col < cols) { \
        for (int l = 1; l < lanes; l++) acc = red_combine(op, acc, sh[l * 32 + tx]); \
        out[col] = from_d<T>(acc); \
    } \
}
KILN_ALL_TYPES(REDUCE_2PASS)

// The first pass of reduce_cols_partial with 16 bytes a thread, for rows that are whole 16-byte vectors (a 16-bit
// linear layer's bias gradient: cuBLASLt's own bias-gradient kernel reads its (N, out) input at ~40% of the H200's
// bandwidth). Blocks of 256 threads: tw column vectors by 256 / tw row lanes, each lane with four rows in flight; the lanes'
// sums are combined in lane order, so the result does not depend on timing.
template <typename T>
__device__ __forceinline__ void reduce_cols_partial_v(int op, double* partial, const T* x, i64 n, i64 cols, i64 chunk, int tw) {
    constexpr int V = Vec16<T>::N;
    __shared__ double sh[256 * V];
    const int tx = threadIdx.x % tw, ty = threadIdx.x / tw, lanes = blockDim.x / tw, tile = tw * V;
    i64 cv = (i64) blockIdx.x * tw + tx;
    double acc[V];
#pragma unroll
    for (int j = 0; j < V; j++) acc[j] = red_identity(op);
    i64 r = (i64) blockIdx.y * chunk + ty, r1 = min(n, (i64) (blockIdx.y + 1) * chunk);
    if (cv * V < cols) {
        const T* p = x + cv * V;
        for (; r + 3 * lanes < r1; r += 4 * lanes) {
            Vec16<T> a[4];
#pragma unroll
            for (int u = 0; u < 4; u++) a[u].load(p + (r + u * lanes) * cols);
            // the four rows combined in float, then into double: one conversion to double per four elements
#pragma unroll
            for (int j = 0; j < V; j++) {
                float f = red_combine(op, red_combine(op, load<float, T>(a[0].v[j]), load<float, T>(a[1].v[j])),
                                      red_combine(op, load<float, T>(a[2].v[j]), load<float, T>(a[3].v[j])));
                acc[j] = red_combine(op, acc[j], (double) f);
            }
        }
        for (; r < r1; r += lanes) {
            Vec16<T> a;
            a.load(p + r * cols);
#pragma unroll
            for (int j = 0; j < V; j++) acc[j] = red_combine(op, acc[j], (double) load<float, T>(a.v[j]));
        }
    }
#pragma unroll
    for (int j = 0; j < V; j++) sh[ty * tile + tx * V + j] = acc[j];
    __syncthreads();
    for (int k = threadIdx.x; k < tile; k += blockDim.x) {
        i64 col = (i64) blockIdx.x * tile + k;
        if (col >= cols) break;
        double s = red_identity(op);
        for (int l = 0; l < lanes; l++) s = red_combine(op, s, sh[l * tile + k]);
        partial[(i64) blockIdx.y * cols + col] = s;
    }
}
#define REDUCE_COLS_V(T, S) \
extern "C" __global__ void __launch_bounds__(256, 4) reduce_cols_partial_v_##S(int op, double* partial, const T* x, i64 n, i64 cols, i64 chunk, int tw) { \
    reduce_cols_partial_v<T>(op, partial, x, n, cols, chunk, tw); \
}
REDUCE_COLS_V(float, f32) REDUCE_COLS_V(bf16, bf16) REDUCE_COLS_V(f16, f16)

// Running sums (cumsum) of a contiguous (outer, n, inner) array along n, from the end with reverse: in double for the
// floating types, exactly in i64 for i64, as the CPU does. Scan order s runs 0..n-1 (j = n-1-s with reverse). Lines
// long enough to leave the GPU idle are cut into segments: a first pass writes each segment's total into part
// (mode 1), cumsum_offsets turns those into each segment's exclusive prefix, and the scan (mode 0) starts each segment
// from its prefix (part null: from 0, one pass).
template <typename T> struct CumSum {
    typedef double type;
    static __device__ __forceinline__ T out(double v) { return from_d<T>(v); }
};
template <> struct CumSum<i64> {
    typedef i64 type;
    static __device__ __forceinline__ i64 out(i64 v) { return v; }
};
__device__ __forceinline__ double cum_load(float v) { return v; }
__device__ __forceinline__ double cum_load(double v) { return v; }
__device__ __forceinline__ double cum_load(bf16 v) { return to_d(v); }
__device__ __forceinline__ double cum_load(f16 v) { return to_d(v); }
__device__ __forceinline__ i64 cum_load(i64 v) { return v; }

#define CUMSUM_BLOCK 256
#define CUMSUM_ITEMS 16   // a block's segment of an innermost line: CUMSUM_BLOCK * CUMSUM_ITEMS elements

template <typename A>
__device__ __forceinline__ A cum_warp_scan(A v, int lane) {   // inclusive
    for (int off = 1; off < 32; off <<= 1) {
        A u = __shfl_up_sync(0xffffffffu, v, off);
        if (lane >= off) v += u;
    }
    return v;
}

// inner == 1: block b of rows * segs (row b / segs, segment b % segs; grid-stride) scans its CUMSUM_BLOCK *
// CUMSUM_ITEMS elements, each thread CUMSUM_ITEMS in a row.
template <typename T>
__device__ __forceinline__ void cumsum_rows_impl(T* out, const T* x, typename CumSum<T>::type* part, i64 rows, i64 n, int segs,
                                                 int reverse, int mode) {
    typedef typename CumSum<T>::type A;
    __shared__ A warps[CUMSUM_BLOCK / 32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (i64 b = blockIdx.x; b < rows * segs; b += gridDim.x) {
        i64 seg, r = divmod(b, segs, seg), s0 = seg * (CUMSUM_BLOCK * CUMSUM_ITEMS) + threadIdx.x * CUMSUM_ITEMS;
        A v[CUMSUM_ITEMS], run = 0;
#pragma unroll
        for (int k = 0; k < CUMSUM_ITEMS; k++) {
            i64 s = s0 + k;
            if (s < n) run += cum_load(x[r * n + (reverse ? n - 1 - s : s)]);
            v[k] = run;
        }
        A t = cum_warp_scan(run, lane);
        if (lane == 31) warps[warp] = t;
        __syncthreads();
        if (warp == 0) {
            A w = lane < CUMSUM_BLOCK / 32 ? warps[lane] : (A) 0;
            w = cum_warp_scan(w, lane);
            if (lane < CUMSUM_BLOCK / 32) warps[lane] = w;
        }
        __syncthreads();
        A before = (warp > 0 ? warps[warp - 1] : (A) 0) + t - run;   // the segment's elements before this thread's
        if (mode == 1) {
            if (threadIdx.x == 0) part[b] = warps[CUMSUM_BLOCK / 32 - 1];
        } else {
            if (part != 0) before += part[b];
#pragma unroll
            for (int k = 0; k < CUMSUM_ITEMS; k++) {
                i64 s = s0 + k;
                if (s < n) out[r * n + (reverse ? n - 1 - s : s)] = CumSum<T>::out(before + v[k]);
            }
        }
        __syncthreads();   // warps[] is read above before the next block's scan writes it
    }
}

#define CUMSUM(T, S) \
extern "C" __global__ void __launch_bounds__(CUMSUM_BLOCK) cumsum_rows_##S(T* out, const T* x, CumSum<T>::type* part, i64 rows, i64 n, \
                                                                            int segs, int reverse, int mode) { \
    cumsum_rows_impl<T>(out, x, part, rows, n, segs, reverse, mode); \
} \
/* inner > 1: a thread per (o, segment, i) walks its len elements of the line in order; neighbours read neighbours */ \
extern "C" __global__ void cumsum_lines_##S(T* out, const T* x, CumSum<T>::type* part, i64 outer, i64 n, i64 inner, int segs, i64 len, \
                                            int reverse, int mode) { \
    GRID_STRIDE(t, outer * segs * inner) { \
        i64 i, q = divmod(t, inner, i), seg, o = divmod(q, segs, seg); \
        CumSum<T>::type run = mode == 0 && part != 0 ? part[t] : 0; \
        i64 end = min(n, (seg + 1) * len); \
        for (i64 s = seg * len; s < end; s++) { \
            i64 j = (o * n + (reverse ? n - 1 - s : s)) * inner + i; \
            run += cum_load(x[j]); \
            if (mode == 0) out[j] = CumSum<T>::out(run); \
        } \
        if (mode == 1) part[t] = run; \
    } \
} \
/* part (outer, segs, inner) of segment totals -> each segment's exclusive prefix, a thread per (o, i) */ \
extern "C" __global__ void cumsum_offsets_##S(CumSum<T>::type* part, i64 outer, int segs, i64 inner) { \
    GRID_STRIDE(t, outer * inner) { \
        i64 i, o = divmod(t, inner, i); \
        CumSum<T>::type run = 0; \
        for (int seg = 0; seg < segs; seg++) { \
            CumSum<T>::type* p = part + (o * segs + seg) * inner + i; \
            CumSum<T>::type v = *p; \
            *p = run; \
            run += v; \
        } \
    } \
}
KILN_FLOAT_TYPES(CUMSUM) CUMSUM(i64, i64)
