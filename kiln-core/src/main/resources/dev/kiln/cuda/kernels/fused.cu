// Fused forward/backward kernels that replace chains of primitives: dropout (mask from the counter-based hash,
// never stored), softmax cross-entropy over rows of logits (N, C), and a convolution's bias + ReLU epilogue with
// its backward (ReLU mask and bias gradient in one pass). The references are in dev.kiln.cpu.FusedKernels;
// float32 and the 16-bit floats compute in float, float64 in double.
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

// Dropout of 16-bit data: the scale rounded to the type first and the product rounded once, which is what the
// composite (x * cast(keep) * scale, each op rounding) gives, so both draw and round alike.
#define DROPOUT16(T, S) \
extern "C" __global__ void dropout_##S(T* out, const T* x, i64 n, u64 key, double p, double scale, const u64* replay) { \
    const float s = load<float, T>(store<T, float>((float) scale)); \
    const u64 k = replay ? key ^ mix64(*replay + 0x9E3779B97F4A7C15ull) : key; \
    GRID_STRIDE(i, n) out[i] = store<T, float>(load<float, T>(x[i]) * (uniform_at(k, (u64) i) >= p ? s : 0.f)); \
}
DROPOUT16(bf16, bf16) DROPOUT16(f16, f16)

// ---- bias + ReLU over channel dim 1 of a contiguous (N, C, inner...) tensor, in place: the epilogue of a
// convolution whose output nobody else has seen yet. relu(v) = v > 0 ? v : 0 (NaN becomes 0, as UnaryOp.RELU).
// Each thread takes W consecutive elements with one wide load: the _v4 kernels (W = 4) need inner % 4 == 0 and
// 16-byte aligned bases, so the 4 share a channel; the plain ones take W = 1.
template <typename T, int W> struct __align__(W * sizeof(T)) Pack { T v[W]; };

template <typename T>
__device__ __forceinline__ typename Acc<T>::type bias_relu_one(typename Acc<T>::type v, typename Acc<T>::type b, int relu) {
    v += b;
    return relu ? (v > 0 ? v : (typename Acc<T>::type) 0) : v;
}

template <typename T, int W>
__device__ __forceinline__ void bias_relu(T* y, const T* b, i64 packs, i64 inner, i64 c, int relu) {
    typedef typename Acc<T>::type A;
    Pack<T, W>* yp = reinterpret_cast<Pack<T, W>*>(y);
    GRID_STRIDE(i, packs) {
        i64 r, ch;
        divmod(divmod(W * i, inner, r), c, ch);
        A bv = b ? load<A, T>(b[ch]) : (A) 0;
        Pack<T, W> p = yp[i];
#pragma unroll
        for (int e = 0; e < W; e++) p.v[e] = store<T, A>(bias_relu_one<T>(load<A, T>(p.v[e]), bv, relu));
        yp[i] = p;
    }
}

// Backward of y = relu?(z + b): dz = relu ? (y > 0 ? g : 0) : g, written when write_dz; and, when partial is not
// null, this block's share of db[c] = sum of dz over (N, inner). Grid: x = channel, y = a split of the images;
// every split of a channel writes one partial, bias_grad_finish adds them in a fixed order (deterministic).
template <typename T, int W>
__device__ __forceinline__ void bias_relu_bwd(T* dz, typename Acc<T>::type* partial, const T* g, const T* y, i64 images,
                                              i64 inner, i64 c, int relu, int write_dz) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[32];
    const i64 row = inner / W, ch = blockIdx.x, per = (images - blockIdx.y + gridDim.y - 1) / gridDim.y, total = per * row;
    const Pack<T, W>* gp = reinterpret_cast<const Pack<T, W>*>(g);
    const Pack<T, W>* yp = reinterpret_cast<const Pack<T, W>*>(y);
    Pack<T, W>* dp = reinterpret_cast<Pack<T, W>*>(dz);
    A acc = 0;
    for (i64 j = threadIdx.x; j < total; j += blockDim.x) {
        i64 k, n = blockIdx.y + divmod(j, row, k) * gridDim.y, at = (n * c + ch) * row + k;
        Pack<T, W> gv = gp[at], yv;
        if (relu) yv = yp[at];
#pragma unroll
        for (int e = 0; e < W; e++) {
            A v = load<A, T>(gv.v[e]);
            if (relu && !(load<A, T>(yv.v[e]) > 0)) v = 0;
            gv.v[e] = store<T, A>(v);
            acc += v;
        }
        if (write_dz) dp[at] = gv;
    }
    if (partial) {
        acc = block_reduce(acc, [](A a, A b) { return a + b; }, sh);
        if (threadIdx.x == 0) partial[ch * gridDim.y + blockIdx.y] = acc;
    }
}

#define BIAS_RELU(T, S) \
extern "C" __global__ void bias_relu_##S(T* y, const T* b, i64 n, i64 inner, i64 c, int relu) { \
    bias_relu<T, 1>(y, b, n, inner, c, relu); \
} \
extern "C" __global__ void bias_relu_v4_##S(T* y, const T* b, i64 n4, i64 inner, i64 c, int relu) { \
    bias_relu<T, 4>(y, b, n4, inner, c, relu); \
}
#define BIAS_RELU_BWD(T, S) \
extern "C" __global__ void bias_relu_bwd_##S(T* dz, typename Acc<T>::type* partial, const T* g, const T* y, i64 images, \
                                             i64 inner, i64 c, int relu, int write_dz) { \
    bias_relu_bwd<T, 1>(dz, partial, g, y, images, inner, c, relu, write_dz); \
} \
extern "C" __global__ void bias_relu_bwd_v4_##S(T* dz, typename Acc<T>::type* partial, const T* g, const T* y, i64 images, \
                                                i64 inner, i64 c, int relu, int write_dz) { \
    bias_relu_bwd<T, 4>(dz, partial, g, y, images, inner, c, relu, write_dz); \
} \
extern "C" __global__ void bias_grad_finish_##S(T* db, const typename Acc<T>::type* partial, i64 c, i64 splits) { \
    typedef typename Acc<T>::type A; \
    GRID_STRIDE(ch, c) { \
        A s = 0; \
        for (i64 k = 0; k < splits; k++) s += partial[ch * splits + k]; \
        db[ch] = store<T, A>(s); \
    } \
}
#define BIAS_RELU_ALL(T, S) BIAS_RELU(T, S) BIAS_RELU_BWD(T, S)
KILN_FLOAT_TYPES(BIAS_RELU_ALL)

// The first node of every captured CUDA graph: one more replay (dropout keys and Adam's step count read it).
extern "C" __global__ void graph_replay_tick(u64* counter) {
    if (blockIdx.x == 0 && threadIdx.x == 0) *counter += 1;
}
