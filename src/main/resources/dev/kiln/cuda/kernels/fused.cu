// Fused forward/backward kernels that replace chains of primitives: dropout (mask from the counter-based hash,
// never stored) and softmax cross-entropy over rows of logits (N, C). The references are in
// dev.kiln.cpu.FusedKernels; float32 computes in float, float64 in double.
#include "common.cuh"
#include "random.cuh"

// out = x * (u(key, i) >= p ? scale : 0): the composite's product (NaN in x stays NaN), keep-mask equal to the
// CPU's for the same key. The same kernel with the same key is its own backward. replay is null in eager mode;
// inside a CUDA graph it points at the graph's replay counter (advanced by graph_replay_tick, the graph's first
// node), which is mixed into the key that the graph baked in, so every replay draws a new mask and the backward
// of the same replay recomputes the same one.
#define DROPOUT(T, S) \
extern "C" __global__ void dropout_##S(T* out, const T* x, i64 n, u64 key, double p, double scale, const u64* replay) { \
    const T s = (T) scale, zero = 0; \
    const u64 k = replay ? key ^ mix64(*replay + 0x9E3779B97F4A7C15ull) : key; \
    GRID_STRIDE(i, n) out[i] = x[i] * (uniform_at(k, (u64) i) >= p ? s : zero); \
}

// One block per row: max, sum of x, sum of exp(x - max) (block reductions), then thread 0 writes
// loss = (1-s)(lse - x[t]) + (s/C)(C lse - sum x) and lse. Ignored rows write 0; a bad target is reported
// (op 5) and its row left NaN.
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
                if (bad) report_index_error(err, t, c, 5); \
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

#define FUSED(T, S) DROPOUT(T, S) CE_FWD(T, S) CE_BWD(T, S)
FUSED(float, f32)
FUSED(double, f64)

// The first node of every captured CUDA graph: one more replay (dropout keys and Adam's step count read it).
extern "C" __global__ void graph_replay_tick(u64* counter) {
    if (blockIdx.x == 0 && threadIdx.x == 0) *counter += 1;
}
