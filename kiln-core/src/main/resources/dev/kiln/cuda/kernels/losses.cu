// Losses in one pass each: softmax cross-entropy over rows of logits (N, C) and its backward, and the mean over
// the rows a loss keeps. The references are in dev.kiln.cpu.FusedKernels; float32 and the 16-bit floats compute
// in float, float64 in double.
#include "common.cuh"
#include "op_codes.cuh"

// One block per row: max, sum of x, sum of exp(x - max) (block reductions), then thread 0 writes
// loss = (1-s)(lse - x[t]) + (s/C)(C lse - sum x) and lse. Ignored rows write 0; a bad target is reported
// (INDEX_ERROR_CROSS_ENTROPY) and its row left NaN.
#define CE_FWD(T, S) \
extern "C" __global__ void ce_rows_fwd_##S(T* loss, T* lse, const T* x, const i64* target, i64 rows, i64 c, double smoothing, \
                                           i64 ignore, u64* err) { \
    __shared__ T sh[32]; \
    auto mx = [](T a, T b) { return a > b || a != a ? a : b; }; \
    auto add = [](T a, T b) { return a + b; }; \
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) { \
        i64 t = target[r]; \
        if (t == ignore || t < 0 || t >= c) { \
            if (threadIdx.x == 0) { \
                bool bad = t != ignore; \
                if (bad) report_index_error(err, t, c, INDEX_ERROR_CROSS_ENTROPY); \
                loss[r] = bad ? (T) __longlong_as_double(0x7ff8000000000000ll) : (T) 0; \
                lse[r] = loss[r]; \
            } \
            continue; \
        } \
        const T* xr = x + r * c; \
        T m = -(T) __int_as_float(0x7f800000), sx = 0; \
        for (i64 j = threadIdx.x; j < c; j += blockDim.x) { T v = xr[j]; m = mx(m, v); sx += v; } \
        m = block_reduce(m, mx, sh); \
        sx = block_reduce(sx, add, sh); \
        T se = 0; \
        for (i64 j = threadIdx.x; j < c; j += blockDim.x) se += exp(xr[j] - m); \
        se = block_reduce(se, add, sh); \
        if (threadIdx.x == 0) { \
            T l = m + log(se), s = (T) smoothing; \
            loss[r] = ((T) 1 - s) * (l - xr[t]) + s / (T) c * ((T) c * l - sx); \
            lse[r] = l; \
        } \
    } \
}

// gx[r, j] = (exp(x[r, j] - lse[r]) - (1-s)[j == t] - s/C) * g[r * g_stride], 0 for ignored rows. Elementwise:
// one pass, nothing reduced (g_stride 0 when g is a broadcast scalar).
#define CE_BWD(T, S) \
extern "C" __global__ void ce_rows_bwd_##S(T* gx, const T* x, const i64* target, const T* lse, const T* g, i64 g_stride, i64 rows, \
                                           i64 c, double smoothing, i64 ignore) { \
    const T off = (T) (smoothing / (double) c), hit = (T) (1 - smoothing); \
    GRID_STRIDE(i, rows * c) { \
        i64 r = i / c, j = i - r * c, t = target[r]; \
        gx[i] = t == ignore ? (T) 0 : (exp(x[i] - lse[r]) - (j == t ? hit : (T) 0) - off) * g[r * g_stride]; \
    } \
}

#define CE_ROWS(T, S) CE_FWD(T, S) CE_BWD(T, S)
CE_ROWS(float, f32)
CE_ROWS(double, f64)

// mean and count of v over the rows whose target is not `ignore`: one block (a loss's MEAN reduction, rows = batch).
#define MEAN_KEPT(T, S) \
extern "C" __global__ void mean_kept_##S(T* mean, T* count, const T* v, const i64* target, i64 n, i64 ignore) { \
    typedef typename Acc<T>::type A; \
    __shared__ A sh[32]; \
    A s = 0, c = 0; \
    for (i64 i = threadIdx.x; i < n; i += blockDim.x) if (target[i] != ignore) { s += load<A, T>(v[i]); c += 1; } \
    s = block_reduce(s, [](A a, A b) { return a + b; }, sh); \
    c = block_reduce(c, [](A a, A b) { return a + b; }, sh); \
    if (threadIdx.x == 0) { mean[0] = store<T, A>(s / c); count[0] = store<T, A>(c); } \
}
KILN_FLOAT_TYPES(MEAN_KEPT)
