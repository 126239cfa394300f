// Reductions over the innermost dimension of a contiguous (rows, n) array, or over the outer dimension of a
// contiguous (n, cols) array; the host permutes reduced dimensions innermost first. Sums accumulate in double,
// as the CPU reference does. Op codes: REDUCE_* of op_codes.cuh; NaN propagates through max and min.
// Backward: the gradient of a sum is an expand and of max/min a mask (dev.kiln.ops.Reductions), so none here.
#include "common.cuh"
#include "op_codes.cuh"

__device__ __forceinline__ double red_combine(int op, double a, double b) {
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
extern "C" __global__ void reduce_cols_finish_##S(int op, T* out, const double* partial, i64 chunks, i64 cols) { \
    GRID_STRIDE(col, cols) { \
        double acc = red_identity(op); \
        for (i64 c = 0; c < chunks; c++) acc = red_combine(op, acc, partial[c * cols + col]); \
        out[col] = from_d<T>(acc); \
    } \
}
KILN_ALL_TYPES(REDUCE_2PASS)
