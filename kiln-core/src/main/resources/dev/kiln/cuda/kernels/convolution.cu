// Convolution kernels: im2col + GEMM (the fallback when cuDNN is not used), direct kernels for a first layer of few
// input channels, and the bias + ReLU epilogue with its backward (ReLU mask and bias gradient in one pass).
// im2col + GEMM: im2col unfolds contiguous input
// (N, C, H, W) into cols (N, C*kh*kw, OH*OW); the forward is then W (O, C*kh*kw) x cols per image and group.
// Backward: the weight gradient is gy x cols^T; the input gradient is W^T x gy folded back by col2im, which
// gathers (one thread per input element), so it needs no atomics.
#include "common.cuh"

struct ConvP { int c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow; };

#define CONV(T, S) \
extern "C" __global__ void im2col_##S(T* cols, const T* x, i64 n, ConvP p) { \
    i64 q = (i64) p.oh * p.ow, rows = (i64) p.c * p.kh * p.kw; \
    GRID_STRIDE(i, n) { \
        i64 pix = i % q, row = (i / q) % rows, img = i / (q * rows); \
        int ox = (int) (pix % p.ow), oy = (int) (pix / p.ow); \
        int kj = (int) (row % p.kw), ki = (int) ((row / p.kw) % p.kh), ch = (int) (row / ((i64) p.kw * p.kh)); \
        int iy = oy * p.sh - p.ph + ki * p.dh, ix = ox * p.sw - p.pw + kj * p.dw; \
        bool in = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w; \
        cols[i] = in ? x[((img * p.c + ch) * p.h + iy) * p.w + ix] : from_d<T>(0.0); \
    } \
} \
extern "C" __global__ void col2im_##S(T* gx, const T* cols, i64 n, ConvP p) { \
    typedef Acc<T>::type A; \
    i64 q = (i64) p.oh * p.ow, rows = (i64) p.c * p.kh * p.kw; \
    GRID_STRIDE(i, n) { \
        int ix = (int) (i % p.w), iy = (int) ((i / p.w) % p.h); \
        int ch = (int) ((i / ((i64) p.w * p.h)) % p.c); i64 img = i / ((i64) p.w * p.h * p.c); \
        A s = 0; \
        for (int ki = 0; ki < p.kh; ki++) { \
            int ty = iy + p.ph - ki * p.dh; \
            if (ty < 0 || ty % p.sh != 0) continue; \
            int oy = ty / p.sh; if (oy >= p.oh) continue; \
            for (int kj = 0; kj < p.kw; kj++) { \
                int tx = ix + p.pw - kj * p.dw; \
                if (tx < 0 || tx % p.sw != 0) continue; \
                int ox = tx / p.sw; if (ox >= p.ow) continue; \
                i64 row = ((i64) ch * p.kh + ki) * p.kw + kj; \
                s += load<A, T>(cols[(img * rows + row) * q + (i64) oy * p.ow + ox]); \
            } \
        } \
        gx[i] = store<T, A>(s); \
    } \
}
KILN_FLOAT_TYPES(CONV)

// ---- Direct convolution for few input channels (an image model's first layer: C = 1 or 3, K = 3 or 5, stride 1,
// square padding). cuDNN's general algorithms spend most of their time on such a layer reshaping data; here one
// thread owns an output pixel (n, oy, ox): it loads the C*K*K inputs under its window once into registers and
// writes every output channel, bias and ReLU included. The weights sit in shared memory (every lane reads the same
// word: a broadcast). SmallP: n images, input h x w, output oh x ow, o channels, padding.
struct SmallP { int n, h, w, oh, ow, o, pad; };

template <typename T, int C, int K>
__device__ __forceinline__ void small_window(const T* x, const SmallP& p, int img, int oy, int ox, typename Acc<T>::type* in) {
    typedef typename Acc<T>::type A;
#pragma unroll
    for (int c = 0; c < C; c++)
#pragma unroll
        for (int ky = 0; ky < K; ky++)
#pragma unroll
            for (int kx = 0; kx < K; kx++) {
                int iy = oy - p.pad + ky, ix = ox - p.pad + kx;
                bool inside = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w;
                in[(c * K + ky) * K + kx] = inside ? load<A, T>(x[(((i64) img * C + c) * p.h + iy) * p.w + ix]) : (A) 0;
            }
}

template <typename T, int C, int K>
__device__ __forceinline__ void conv_small_fwd(T* y, const T* x, const T* w, const T* b, SmallP p, int relu) {
    typedef typename Acc<T>::type A;
    constexpr int CKK = C * K * K;
    extern __shared__ unsigned char smem[];
    A* sw = reinterpret_cast<A*>(smem);                 // o * CKK weights, then o biases
    for (int i = threadIdx.x; i < p.o * CKK; i += blockDim.x) sw[i] = load<A, T>(w[i]);
    for (int i = threadIdx.x; i < p.o; i += blockDim.x) sw[p.o * CKK + i] = b ? load<A, T>(b[i]) : (A) 0;
    __syncthreads();
    const i64 plane = (i64) p.oh * p.ow, pixels = (i64) p.n * plane;
    GRID_STRIDE(i, pixels) {
        i64 r, img = divmod(i, plane, r);
        int oy = (int) r / p.ow, ox = (int) r - oy * p.ow;
        A in[CKK];
        small_window<T, C, K>(x, p, (int) img, oy, ox, in);
        T* out = y + img * p.o * plane + r;
        for (int oc = 0; oc < p.o; oc++) {
            const A* wo = sw + oc * CKK;
            A acc = sw[p.o * CKK + oc];
#pragma unroll
            for (int t = 0; t < CKK; t++) acc += wo[t] * in[t];
            if (relu) acc = acc > 0 ? acc : (A) 0;
            out[oc * plane] = store<T, A>(acc);
        }
    }
}

// Weight (and bias) gradient of the same layer from g = dL/dy, with the ReLU mask (y > 0) applied on the fly, so
// the masked gradient is never written: blockIdx.y takes OB output channels, each thread sums OB x (CKK + 1)
// products over its pixels; the block's sums go to partial[(oc * (CKK + 1) + t) * gridDim.x + blockIdx.x] and
// conv_small_wgrad_finish adds them in block order (deterministic).
template <typename T, int C, int K, int OB>
__device__ __forceinline__ void conv_small_wgrad(typename Acc<T>::type* partial, const T* g, const T* y, const T* x, SmallP p, int relu) {
    typedef typename Acc<T>::type A;
    constexpr int CKK = C * K * K, V = CKK + 1;
    __shared__ A sh[8][OB * V];                         // one row per warp: launched with 256 threads
    A acc[OB][V];
#pragma unroll
    for (int a = 0; a < OB; a++)
#pragma unroll
        for (int t = 0; t < V; t++) acc[a][t] = 0;
    const i64 plane = (i64) p.oh * p.ow, pixels = (i64) p.n * plane;
    const int oc0 = blockIdx.y * OB;
    for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < pixels; i += (i64) gridDim.x * blockDim.x) {
        i64 r, img = divmod(i, plane, r);
        int oy = (int) r / p.ow, ox = (int) r - oy * p.ow;
        A in[CKK];
        small_window<T, C, K>(x, p, (int) img, oy, ox, in);
#pragma unroll
        for (int a = 0; a < OB; a++) {
            i64 at = (img * p.o + oc0 + a) * plane + r;
            A d = load<A, T>(g[at]);
            if (relu && !(load<A, T>(y[at]) > 0)) d = 0;
#pragma unroll
            for (int t = 0; t < CKK; t++) acc[a][t] += d * in[t];
            acc[a][CKK] += d;
        }
    }
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
    for (int a = 0; a < OB; a++)
#pragma unroll
        for (int t = 0; t < V; t++) {
            A v = warp_reduce(acc[a][t], [](A u, A v) { return u + v; });
            if (lane == 0) sh[warp][a * V + t] = v;
        }
    __syncthreads();
    for (int k = threadIdx.x; k < OB * V; k += blockDim.x) {
        A s = 0;
        for (int wi = 0; wi < warps; wi++) s += sh[wi][k];
        int a = k / V, t = k - a * V;
        partial[((i64) (oc0 + a) * V + t) * gridDim.x + blockIdx.x] = s;
    }
}

// dw[oc][t] (t < CKK) and db[oc] (t == CKK) from the partials of conv_small_wgrad; db may be null.
template <typename T>
__device__ __forceinline__ void conv_small_wgrad_finish(T* dw, T* db, const typename Acc<T>::type* partial, int o, int ckk, int blocks) {
    typedef typename Acc<T>::type A;
    GRID_STRIDE(k, (i64) o * (ckk + 1)) {
        A s = 0;
        for (int bi = 0; bi < blocks; bi++) s += partial[k * blocks + bi];
        int oc = (int) (k / (ckk + 1)), t = (int) (k - (i64) oc * (ckk + 1));
        if (t < ckk) dw[oc * ckk + t] = store<T, A>(s);
        else if (db) db[oc] = store<T, A>(s);
    }
}

// OB: as many output channels per block as keep a thread's OB x (CKK + 1) sums within ~50 registers
#define SMALL_CONV(T, S, C, K, OB) \
extern "C" __global__ void conv_small_fwd_c##C##k##K##_##S(T* y, const T* x, const T* w, const T* b, SmallP p, int relu) { \
    conv_small_fwd<T, C, K>(y, x, w, b, p, relu); \
} \
extern "C" __global__ void conv_small_wgrad_c##C##k##K##_##S(typename Acc<T>::type* partial, const T* g, const T* y, const T* x, SmallP p, int relu) { \
    conv_small_wgrad<T, C, K, OB>(partial, g, y, x, p, relu); \
}
#define SMALL_CONV_ALL(T, S) \
    SMALL_CONV(T, S, 1, 3, 4) SMALL_CONV(T, S, 3, 3, 2) SMALL_CONV(T, S, 1, 5, 2) SMALL_CONV(T, S, 3, 5, 1) \
    extern "C" __global__ void conv_small_wgrad_finish_##S(T* dw, T* db, const typename Acc<T>::type* partial, int o, int ckk, int blocks) { \
        conv_small_wgrad_finish<T>(dw, db, partial, o, ckk, blocks); \
    }
KILN_FLOAT_TYPES(SMALL_CONV_ALL)

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
