// Convolution kernels: im2col + GEMM (the fallback when cuDNN is not used), direct kernels for a first layer of few
// input channels (FMA, and an implicit GEMM on tensor cores for ResNet's stem), and the bias + ReLU epilogue with its backward (ReLU mask and bias gradient in one pass).
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

// W elements moved as one access (aligned to their size)
template <typename T, int W> struct __align__(W * sizeof(T)) Pack { T v[W]; };

// ---- Direct convolution for few input channels (an image model's first layer: C = 1 or 3, K = 3 or 5, stride 1,
// square padding). cuDNN's general algorithms spend most of their time on such a layer reshaping data; here one
// thread owns an output pixel (n, oy, ox): it loads the C*K*K inputs under its window once into registers and
// writes every output channel, bias and ReLU included. The weights sit in shared memory (every lane reads the same
// word: a broadcast). SmallP: n images, input h x w, output oh x ow, o channels, padding; cl: the activations (x, y
// and y's gradient) channels-last, N, H, W, C in memory, as the layers after it want them (else N, C, H, W).
// The _lanes kernels (channels-last, o a power of two from 4 to 256) spread a pixel's channels over o / Q threads,
// Q channels each, so that a warp's loads and stores of y and its gradient are whole runs of memory: a thread per
// pixel strided them o elements apart (Nsight Compute, the MNIST CNN's first layer at batch 1024: 0.15 ms forward
// and 0.23 ms weight gradient, several times the memory's time), and a warp per pixel spent most of its
// instructions on the window's addresses (0.20 and 0.19 ms).
struct SmallP { int n, h, w, oh, ow, o, pad, cl; };

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
                i64 at = p.cl ? (((i64) img * p.h + iy) * p.w + ix) * C + c : (((i64) img * C + c) * p.h + iy) * p.w + ix;
                in[(c * K + ky) * K + kx] = inside ? load<A, T>(x[at]) : (A) 0;
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
        T* out = p.cl ? y + i * p.o : y + img * p.o * plane + r;   // channels-last: the counts _lanes does not take
        const i64 step = p.cl ? 1 : plane;
        for (int oc = 0; oc < p.o; oc++) {
            const A* wo = sw + oc * CKK;
            A acc = sw[p.o * CKK + oc];
#pragma unroll
            for (int t = 0; t < CKK; t++) acc += wo[t] * in[t];
            if (relu) acc = acc <= 0 ? (A) 0 : acc;
            out[oc * step] = store<T, A>(acc);
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
            i64 at = p.cl ? i * p.o + oc0 + a : (img * p.o + oc0 + a) * plane + r;
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

// The forward, channels-last, o / 4 threads a pixel, four channels each: the filter sits in shared memory tap-major
// (a tap's four weights one 16-byte read), each thread stores its four outputs at once. o / 4 divides the block.
template <typename T, int C, int K>
__device__ __forceinline__ void conv_small_fwd_lanes(T* y, const T* x, const T* w, const T* b, SmallP p, int relu) {
    typedef typename Acc<T>::type A;
    constexpr int CKK = C * K * K;
    extern __shared__ unsigned char smem[];
    A* sw = reinterpret_cast<A*>(smem);                 // sw[t * o + oc], then o biases
    for (int i = threadIdx.x; i < p.o * CKK; i += blockDim.x) sw[(i % CKK) * p.o + i / CKK] = load<A, T>(w[i]);
    for (int i = threadIdx.x; i < p.o; i += blockDim.x) sw[p.o * CKK + i] = b ? load<A, T>(b[i]) : (A) 0;
    __syncthreads();
    const int per = p.o / 4, oc0 = threadIdx.x % per * 4;
    const i64 plane = (i64) p.oh * p.ow, pixels = (i64) p.n * plane;
    for (i64 i = ((i64) blockIdx.x * blockDim.x + threadIdx.x) / per; i < pixels; i += (i64) gridDim.x * blockDim.x / per) {
        i64 r, img = divmod(i, plane, r);
        int oy = (int) r / p.ow, ox = (int) r - oy * p.ow;
        // one 3x3 filter's 36 weights stay in registers across pixels; more would spill, so they are read again
        if (CKK > 9) asm volatile("" ::: "memory");
        A in[CKK];
        small_window<T, C, K>(x, p, (int) img, oy, ox, in);
        Pack<A, 4> acc = *reinterpret_cast<const Pack<A, 4>*>(sw + p.o * CKK + oc0);
#pragma unroll
        for (int t = 0; t < CKK; t++) {
            Pack<A, 4> wt = *reinterpret_cast<const Pack<A, 4>*>(sw + t * p.o + oc0);
#pragma unroll
            for (int j = 0; j < 4; j++) acc.v[j] += wt.v[j] * in[t];
        }
        Pack<T, 4> out;
#pragma unroll
        for (int j = 0; j < 4; j++) out.v[j] = store<T, A>(relu && acc.v[j] <= 0 ? (A) 0 : acc.v[j]);
        *reinterpret_cast<Pack<T, 4>*>(y + i * p.o + oc0) = out;
    }
}

// The weight gradient, channels-last, o / OB threads a pixel (o / OB divides the block), OB channels each: a thread's
// OB gradients and ReLU outputs are one load each. The block's sums meet in a fixed order: first the lanes of a warp
// that share channels (a shuffle tree), then the warps, and go to partial as conv_small_wgrad's.
template <typename T, int C, int K, int OB>
__device__ __forceinline__ void conv_small_wgrad_lanes(typename Acc<T>::type* partial, const T* g, const T* y, const T* x, SmallP p, int relu) {
    typedef typename Acc<T>::type A;
    constexpr int CKK = C * K * K, V = CKK + 1;
    __shared__ A sh[256];                               // launched with 256 threads
    const int per = p.o / OB, oc0 = threadIdx.x % per * OB;
    A acc[OB][V];
#pragma unroll
    for (int a = 0; a < OB; a++)
#pragma unroll
        for (int t = 0; t < V; t++) acc[a][t] = 0;
    const i64 plane = (i64) p.oh * p.ow, pixels = (i64) p.n * plane;
    for (i64 i = ((i64) blockIdx.x * blockDim.x + threadIdx.x) / per; i < pixels; i += (i64) gridDim.x * blockDim.x / per) {
        i64 r, img = divmod(i, plane, r);
        int oy = (int) r / p.ow, ox = (int) r - oy * p.ow;
        A in[CKK];
        small_window<T, C, K>(x, p, (int) img, oy, ox, in);
        Pack<T, OB> gp = *reinterpret_cast<const Pack<T, OB>*>(g + i * p.o + oc0), yp;
        if (relu) yp = *reinterpret_cast<const Pack<T, OB>*>(y + i * p.o + oc0);
#pragma unroll
        for (int a = 0; a < OB; a++) {
            A d = load<A, T>(gp.v[a]);
            if (relu && !(load<A, T>(yp.v[a]) > 0)) d = 0;
#pragma unroll
            for (int t = 0; t < CKK; t++) acc[a][t] += d * in[t];
            acc[a][CKK] += d;
        }
    }
    // lanes l, l + per, ... of a warp hold the same channels (per < 32); after the tree lane l holds their sum
#pragma unroll
    for (int a = 0; a < OB; a++)
#pragma unroll
        for (int t = 0; t < V; t++) {
            A v = acc[a][t];
            for (int off = 16; off >= per; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
            sh[threadIdx.x] = v;
            __syncthreads();
            if (threadIdx.x < per) {
                A s = 0;
                for (int k = threadIdx.x; k < blockDim.x; k += per < 32 ? 32 : per) s += sh[k];
                partial[((i64) (oc0 + a) * V + t) * gridDim.x + blockIdx.x] = s;
            }
            __syncthreads();
        }
}

// The sum of row[0 .. n) by a whole warp (one thread summing hundreds of partials one after another took 26 us a
// call): lane l adds l, l + 32, ... in order, then the lanes meet in a fixed tree, so the sum is deterministic.
template <typename A>
__device__ __forceinline__ A warp_row_sum(const A* row, i64 n) {
    A s = 0;
    for (i64 k = threadIdx.x & 31; k < n; k += 32) s += row[k];
    return warp_reduce(s, [](A u, A v) { return u + v; });
}

// dw[oc][t] (t < CKK) and db[oc] (t == CKK) from the partials of conv_small_wgrad; db may be null.
template <typename T>
__device__ __forceinline__ void conv_small_wgrad_finish(T* dw, T* db, const typename Acc<T>::type* partial, int o, int ckk, int blocks) {
    WARP_STRIDE(k, lane, (i64) o * (ckk + 1)) {
        auto s = warp_row_sum(partial + k * blocks, blocks);
        int oc = (int) (k / (ckk + 1)), t = (int) (k - (i64) oc * (ckk + 1));
        if (lane != 0) continue;
        if (t < ckk) dw[oc * ckk + t] = store<T>(s);
        else if (db) db[oc] = store<T>(s);
    }
}

// OB: as many output channels per block as keep a thread's OB x (CKK + 1) sums within ~50 registers
#define SMALL_CONV(T, S, C, K, OB) \
extern "C" __global__ void conv_small_fwd_c##C##k##K##_##S(T* y, const T* x, const T* w, const T* b, SmallP p, int relu) { \
    conv_small_fwd<T, C, K>(y, x, w, b, p, relu); \
} \
extern "C" __global__ void conv_small_fwd_lanes_c##C##k##K##_##S(T* y, const T* x, const T* w, const T* b, SmallP p, int relu) { \
    conv_small_fwd_lanes<T, C, K>(y, x, w, b, p, relu); \
} \
extern "C" __global__ void conv_small_wgrad_c##C##k##K##_##S(typename Acc<T>::type* partial, const T* g, const T* y, const T* x, SmallP p, int relu) { \
    conv_small_wgrad<T, C, K, OB>(partial, g, y, x, p, relu); \
} \
extern "C" __global__ void conv_small_wgrad_lanes_c##C##k##K##_##S(typename Acc<T>::type* partial, const T* g, const T* y, const T* x, SmallP p, int relu) { \
    conv_small_wgrad_lanes<T, C, K, OB>(partial, g, y, x, p, relu); \
}
#define SMALL_CONV_ALL(T, S) \
    SMALL_CONV(T, S, 1, 3, 4) SMALL_CONV(T, S, 3, 3, 2) SMALL_CONV(T, S, 1, 5, 2) SMALL_CONV(T, S, 3, 5, 1) \
    extern "C" __global__ void conv_small_wgrad_finish_##S(T* dw, T* db, const typename Acc<T>::type* partial, int o, int ckk, int blocks) { \
        conv_small_wgrad_finish<T>(dw, db, partial, o, ckk, blocks); \
    }
KILN_FLOAT_TYPES(SMALL_CONV_ALL)

// ---- A network's first layer on tensor cores (TF32 mma.sync): C input channels (3), an R x S filter (7 x 7), any
// stride and padding, K output channels (a multiple of 64), channels-last output. cuDNN's algorithms spend most of
// such a layer reshaping its three channels (ResNet's stem: ~0.37 ms forward, ~0.45 ms weight gradient at batch 64
// on an H200, with the reshaping kernels); here it is one implicit GEMM, M = output pixels, N = K, reduction k =
// (r, s, c) padded to KS * 8. A block takes tiles of STEM_TP output rows x STEM_TQ columns of one image (a 16-row mma
// tile per output row): the input patch under the tile sits in shared memory, rounded to TF32, [row][column][c];
// off[k] is k's place in it relative to a pixel's corner. The input is read
// through its strides (NCHW or NHWC). Forward: each warp keeps its 16 output channels' filter fragments in registers
// for every tile of a grid-stride loop. Weight gradient: dW = dY^T x patches, reduced over pixels; each warp takes
// the block's 64 channels by a quarter of k, the output gradient tile in shared memory; a block's sums go to
// partial[block] and conv_stem_wgrad_finish adds them in a fixed order (no atomics: the same result every run).
#define STEM_TP 8
#define STEM_TQ 16
#define STEM_THREADS 128
struct StemG { int n, h, w, p, q, k, sh, sw, ph, pw; };       // the geometry, passed as ints
struct StemP { int n, h, w, p, q, k, sh, sw, ph, pw; i64 xn, xc, xh, xw; };   // ... and the input's strides
__device__ __forceinline__ StemP stem_p(StemG g, i64 xn, i64 xc, i64 xh, i64 xw) {
    StemP p = {g.n, g.h, g.w, g.p, g.q, g.k, g.sh, g.sw, g.ph, g.pw, xn, xc, xh, xw};
    return p;
}

__device__ __forceinline__ int stem_patch_rows(const StemP& p, int r) { return (STEM_TP - 1) * p.sh + r; }
__device__ __forceinline__ int stem_patch_cols(const StemP& p, int s) { return (STEM_TQ - 1) * p.sw + s; }
// a thread's share of the largest patch (strides up to 2; the launcher checks)
__host__ __device__ constexpr int stem_patch_share(int c, int r, int s) {
    return (((STEM_TP - 1) * 2 + r) * ((STEM_TQ - 1) * 2 + s) * c + STEM_THREADS - 1) / STEM_THREADS;
}

// k's place in the patch (rows pitch floats apart) from a pixel's corner; k past R*S*C: 0, the pixel's first tap,
// whose product the forward zeroes and the weight gradient drops.
template <int C, int R, int S>
__device__ __forceinline__ int stem_offset(int k, int pitch) { return k < R * S * C ? (k / (S * C)) * pitch + (k / C % S) * C + k % C : 0; }
template <int C, int R, int S>
__device__ __forceinline__ void stem_offsets(int* off, const StemP& p) {
    constexpr int KS = (R * S * C + 7) / 8;
    int pitch = stem_patch_cols(p, S) * C;
    for (int k = threadIdx.x; k < KS * 8; k += blockDim.x) off[k] = stem_offset<C, R, S>(k, pitch);
}

// A tile's place: image, first output row and column.
struct StemTile { int img, p0, q0; };
__device__ __forceinline__ StemTile stem_tile(const StemP& p, i64 tile) {
    int tq = (p.q + STEM_TQ - 1) / STEM_TQ, tp = (p.p + STEM_TP - 1) / STEM_TP;
    StemTile t = {(int) (tile / ((i64) tq * tp)), (int) (tile / tq % tp) * STEM_TP, (int) (tile % tq) * STEM_TQ};
    return t;
}

// The input patch under a tile, this thread's share v[] (element threadIdx.x + e * STEM_THREADS of [row][col][c]),
// loaded all at once so that the loads are in flight together (zero in the padding), then rounded into shared memory.
template <typename T, int C, int R, int S>
__device__ __forceinline__ void stem_patch_load(float* v, const T* x, const StemP& p, StemTile t) {
    int cols = stem_patch_cols(p, S), n = stem_patch_rows(p, R) * cols * C;
    int h0 = t.p0 * p.sh - p.ph, w0 = t.q0 * p.sw - p.pw;
    const T* xi = x + t.img * p.xn;
#pragma unroll
    for (int e = 0; e < stem_patch_share(C, R, S); e++) {
        int i = threadIdx.x + e * STEM_THREADS, c = i % C, rc = i / C, col = rc % cols, row = rc / cols;
        int h = h0 + row, w = w0 + col;
        v[e] = i < n && h >= 0 && h < p.h && w >= 0 && w < p.w ? load<float>(xi[c * p.xc + h * p.xh + w * p.xw]) : 0.f;
    }
}
template <int C, int R, int S>
__device__ __forceinline__ void stem_patch_store(float* patch, const float* v, const StemP& p) {
    int n = stem_patch_rows(p, R) * stem_patch_cols(p, S) * C;
#pragma unroll
    for (int e = 0; e < stem_patch_share(C, R, S); e++) {
        int i = threadIdx.x + e * STEM_THREADS;
        if (i < n) patch[i] = __uint_as_float(tc_tf32(v[e]));
    }
}

// four elements from a 4-element-aligned place (the output gradient's pointer is 16-byte aligned, K % 64 == 0)
template <typename T> __device__ __forceinline__ void stem_load4(const T* src, float* v) {
    Pack<T, 4> q = *reinterpret_cast<const Pack<T, 4>*>(src);
#pragma unroll
    for (int e = 0; e < 4; e++) v[e] = load<float>(q.v[e]);
}
template <typename T> __device__ __forceinline__ void stem_store2(T* y, float a, float b) { y[0] = store<T, float>(a); y[1] = store<T, float>(b); }
template <> __device__ __forceinline__ void stem_store2<float>(float* y, float a, float b) { float2 v; v.x = a; v.y = b; *reinterpret_cast<float2*>(y) = v; }

// Blocks of STEM_THREADS, gridDim.y = K / 64: warp w takes output rows [4 (w & 1), +4) of a tile and channels
// [32 (w >> 1), +32) of the block's 64, so that each A fragment (4 shared loads) feeds four products. Shared: KS * 8
// ints, the block's filter fragments in fragment order (KS k-steps x 8 n-tiles x 32 lanes of (b0, b1): one
// conflict-free 8-byte load per lane and n-tile), then the patch: 48.8 KB at stride 2. The next tile's patch is loaded
// into registers while this one's products run; 211 registers, two blocks a multiprocessor (held to 168 for three,
// it spilled and ran 20% slower).
template <typename T, int C, int R, int S>
__device__ __forceinline__ void conv_stem_fwd(T* y, const T* x, const T* w, const T* bias, StemP p, i64 wk, i64 wc, i64 wr, i64 ws,
                                              int relu) {
    constexpr int KS = (R * S * C + 7) / 8, ROWS = STEM_TP / 2;
    extern __shared__ float stem_sh[];
    int* off = reinterpret_cast<int*>(stem_sh);
    float2* bs = reinterpret_cast<float2*>(stem_sh + KS * 8);
    float* patch = stem_sh + KS * 8 + KS * 8 * 32 * 2;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    int row0 = (warp & 1) * ROWS, nt0 = (warp >> 1) * 4, k0 = blockIdx.y * 64 + nt0 * 8;
    stem_offsets<C, R, S>(off, p);
    for (int i = threadIdx.x; i < KS * 8 * 32; i += blockDim.x) {   // B fragments: k = 8 ks + t4 (+ 4), channel n
        int ks = i >> 8, nt = (i >> 5) & 7, ln = i & 31, n = blockIdx.y * 64 + nt * 8 + (ln >> 2);
        float v[2];
#pragma unroll
        for (int e = 0; e < 2; e++) {
            int k = ks * 8 + (ln & 3) + 4 * e, r = k / (S * C), s = k / C % S, c = k % C;
            v[e] = k < R * S * C ? __uint_as_float(tc_tf32(load<float>(w[n * wk + c * wc + r * wr + s * ws]))) : 0.f;
        }
        float2 f;
        f.x = v[0];
        f.y = v[1];
        bs[i] = f;
    }
    float b[4][2];
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
        for (int e = 0; e < 2; e++) b[j][e] = bias ? load<float>(bias[k0 + 8 * j + 2 * t4 + e]) : 0.f;
    int pitch = stem_patch_cols(p, S) * C;
    i64 tiles = (i64) p.n * ((p.p + STEM_TP - 1) / STEM_TP) * ((p.q + STEM_TQ - 1) / STEM_TQ);
    float pv[stem_patch_share(C, R, S)];
    if (blockIdx.x < tiles) stem_patch_load<T, C, R, S>(pv, x, p, stem_tile(p, blockIdx.x));
    for (i64 tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        StemTile tt = stem_tile(p, tile);
        __syncthreads();      // the previous tile's patch is read (and, the first time, the fragments are written)
        stem_patch_store<C, R, S>(patch, pv, p);
        __syncthreads();
        if (tile + gridDim.x < tiles) stem_patch_load<T, C, R, S>(pv, x, p, stem_tile(p, tile + gridDim.x));
        float acc[ROWS][4][4];
#pragma unroll
        for (int i = 0; i < ROWS; i++)
#pragma unroll
            for (int j = 0; j < 4; j++) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.f;
#pragma unroll
        for (int ks = 0; ks < KS; ks++) {
            int oa = off[ks * 8 + t4], ob = off[ks * 8 + t4 + 4];
            float2 bv[4];
#pragma unroll
            for (int j = 0; j < 4; j++) bv[j] = bs[(ks * 8 + nt0 + j) * 32 + lane];
#pragma unroll
            for (int i = 0; i < ROWS; i++) {
                // rows g and g + 8 of the fragment: pixels (p0 + row0 + i, q0 + 2g) and (.., q0 + 2g + 1), so that at
                // stride 2 the 32 lanes' addresses 12 g + t4 (+ const) fall in 32 banks
                const float* lo = patch + (row0 + i) * p.sh * pitch + 2 * g * p.sw * C;
                const float* hi = lo + p.sw * C;
                unsigned a[4] = {__float_as_uint(lo[oa]), __float_as_uint(hi[oa]), __float_as_uint(lo[ob]), __float_as_uint(hi[ob])};
                if (ks == KS - 1) {   // k past R*S*C: 0, not the first tap again (its weight is 0, but inf * 0 is NaN)
                    if (ks * 8 + t4 >= R * S * C) a[0] = a[1] = 0u;
                    if (ks * 8 + t4 + 4 >= R * S * C) a[2] = a[3] = 0u;
                }
#pragma unroll
                for (int j = 0; j < 4; j++) tc_mma1(acc[i][j], a, __float_as_uint(bv[j].x), __float_as_uint(bv[j].y));
            }
        }
#pragma unroll
        for (int i = 0; i < ROWS; i++) {
            int pp = tt.p0 + row0 + i;
            if (pp >= p.p) break;
#pragma unroll
            for (int hl = 0; hl < 2; hl++) {
                int qq = tt.q0 + 2 * g + hl;
                if (qq >= p.q) continue;
                T* row = y + (((i64) tt.img * p.p + pp) * p.q + qq) * p.k + k0 + 2 * t4;
#pragma unroll
                for (int j = 0; j < 4; j++) {
                    float v0 = acc[i][j][2 * hl] + b[j][0], v1 = acc[i][j][2 * hl + 1] + b[j][1];
                    if (relu) { v0 = v0 <= 0.f ? 0.f : v0; v1 = v1 <= 0.f ? 0.f : v1; }
                    stem_store2<T>(row + 8 * j, v0, v1);
                }
            }
        }
    }
}

// The output gradient of a tile's pixels, channels [kb, kb + 64): this thread's 16 groups of 4 (zero outside the
// output), loaded all at once, then rounded into gs [pixel][64 + 8].
template <typename T>
__device__ __forceinline__ void stem_grad_load(float* v, const T* gy, const StemP& p, StemTile t, int kb) {
#pragma unroll
    for (int e = 0; e < STEM_TP * STEM_TQ * 16 / STEM_THREADS; e++) {
        int i = threadIdx.x + e * STEM_THREADS, px = i >> 4, c4 = (i & 15) * 4, pp = t.p0 + px / STEM_TQ, qq = t.q0 + px % STEM_TQ;
        if (pp < p.p && qq < p.q) stem_load4<T>(gy + (((i64) t.img * p.p + pp) * p.q + qq) * p.k + kb + c4, v + 4 * e);
        else v[4 * e] = v[4 * e + 1] = v[4 * e + 2] = v[4 * e + 3] = 0.f;
    }
}
// four values rounded to TF32 into 16-byte-aligned shared memory
__device__ __forceinline__ void tf32_store4(float* sh, float4 v) {
    float4 r;
    r.x = __uint_as_float(tc_tf32(v.x));
    r.y = __uint_as_float(tc_tf32(v.y));
    r.z = __uint_as_float(tc_tf32(v.z));
    r.w = __uint_as_float(tc_tf32(v.w));
    *reinterpret_cast<float4*>(sh) = r;
}
__device__ __forceinline__ void stem_grad_store(float* gs, const float* v) {
#pragma unroll
    for (int e = 0; e < STEM_TP * STEM_TQ * 16 / STEM_THREADS; e++) {
        int i = threadIdx.x + e * STEM_THREADS, px = i >> 4, c4 = (i & 15) * 4;
        tf32_store4(gs + px * (64 + 8) + c4, make_float4(v[4 * e], v[4 * e + 1], v[4 * e + 2], v[4 * e + 3]));
    }
}

// Blocks of STEM_THREADS, gridDim.y = K / 64; shared: KS * 8 ints, the patch (+ 1, a multiple of 4), the output gradient
// tile [STEM_TP * STEM_TQ pixels][64 + 8] (the pad spreads a fragment's rows over every bank). The next tile's
// operands are loaded into registers while this one's products run. partial: [gridDim.x][K][KS * 8].
template <typename T, int C, int R, int S>
__device__ __forceinline__ void conv_stem_wgrad(float* partial, const T* gy, const T* x, StemP p) {
    constexpr int KS = (R * S * C + 7) / 8, NT = (KS + 3) / 4, GP = 64 + 8, GV = STEM_TP * STEM_TQ * 64 / STEM_THREADS;
    extern __shared__ float stem_sh[];
    float* patch = stem_sh + KS * 8;   // after KS * 8 unused ints, as ConvolutionCuda.StemConv.wgradShared counts
    float* gs = patch + ((stem_patch_rows(p, R) * stem_patch_cols(p, S) * C + 1 + 3) & ~3);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    int nt0 = warp * NT, nts = min(NT, KS - nt0), kb = blockIdx.y * 64;
    int pitch = stem_patch_cols(p, S) * C, ob[NT];   // the patch offsets of this thread's B column in each n-tile
#pragma unroll
    for (int j = 0; j < NT; j++) ob[j] = stem_offset<C, R, S>((nt0 + j) * 8 + g, pitch);
    float acc[4][NT][4];
#pragma unroll
    for (int m = 0; m < 4; m++)
#pragma unroll
        for (int j = 0; j < NT; j++) acc[m][j][0] = acc[m][j][1] = acc[m][j][2] = acc[m][j][3] = 0.f;
    i64 tiles = (i64) p.n * ((p.p + STEM_TP - 1) / STEM_TP) * ((p.q + STEM_TQ - 1) / STEM_TQ);
    float pv[stem_patch_share(C, R, S)], gv[GV];
    if (blockIdx.x < tiles) {
        stem_patch_load<T, C, R, S>(pv, x, p, stem_tile(p, blockIdx.x));
        stem_grad_load<T>(gv, gy, p, stem_tile(p, blockIdx.x), kb);
    }
    for (i64 tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        __syncthreads();
        stem_patch_store<C, R, S>(patch, pv, p);
        stem_grad_store(gs, gv);
        __syncthreads();
        if (tile + gridDim.x < tiles) {
            StemTile next = stem_tile(p, tile + gridDim.x);
            stem_patch_load<T, C, R, S>(pv, x, p, next);
            stem_grad_load<T>(gv, gy, p, next, kb);
        }
#pragma unroll 2
        for (int ps = 0; ps < STEM_TP * STEM_TQ / 8; ps++) {   // 8 pixels a step: row ps / 2, columns (ps % 2) * 8 + ..
            int row = ps / (STEM_TQ / 8), col = ps % (STEM_TQ / 8) * 8;
            const float* base = patch + row * p.sh * pitch + col * p.sw * C;
            int plo = ps * 8 + t4, phi = plo + 4;
            unsigned a[4][4];
#pragma unroll
            for (int m = 0; m < 4; m++) {
                a[m][0] = __float_as_uint(gs[plo * GP + m * 16 + g]);
                a[m][1] = __float_as_uint(gs[plo * GP + m * 16 + g + 8]);
                a[m][2] = __float_as_uint(gs[phi * GP + m * 16 + g]);
                a[m][3] = __float_as_uint(gs[phi * GP + m * 16 + g + 8]);
            }
            const float* blo = base + t4 * p.sw * C;
            const float* bhi = blo + 4 * p.sw * C;
#pragma unroll
            for (int j = 0; j < NT; j++) {
                if (j < nts) {
                    unsigned b0 = __float_as_uint(blo[ob[j]]), b1 = __float_as_uint(bhi[ob[j]]);
#pragma unroll
                    for (int m = 0; m < 4; m++) tc_mma1(acc[m][j], a[m], b0, b1);
                }
            }
        }
    }
    float* out = partial + ((i64) blockIdx.x * p.k + kb) * (KS * 8);
#pragma unroll
    for (int m = 0; m < 4; m++)
#pragma unroll
        for (int j = 0; j < NT; j++) {
            if (j >= nts) continue;
            int col = (nt0 + j) * 8 + 2 * t4;
            stem_store2<float>(out + (m * 16 + g) * (KS * 8) + col, acc[m][j][0], acc[m][j][1]);
            stem_store2<float>(out + (m * 16 + g + 8) * (KS * 8) + col, acc[m][j][2], acc[m][j][3]);
        }
}

// dw[k][c][r][s] (through its strides) = the blocks' partials summed in a fixed order: a block of 256 threads takes
// 32 weights, its 8 warps every 8th partial each, then the warps' sums in order.
template <typename T, int C, int R, int S>
__device__ __forceinline__ void conv_stem_wgrad_finish(T* dw, const float* partial, int k_count, int blocks, i64 wk, i64 wc, i64 wr, i64 ws) {
    constexpr int KK = (R * S * C + 7) / 8 * 8;
    __shared__ float sh[8][32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    i64 i = (i64) blockIdx.x * 32 + lane;
    bool ok = i < (i64) k_count * R * S * C;
    int k = ok ? (int) (i / (R * S * C)) : 0, rsc = ok ? (int) (i % (R * S * C)) : 0;
    float sum = 0.f;
    if (ok) {
#pragma unroll 4
        for (int bi = warp; bi < blocks; bi += 8) sum += partial[((i64) bi * k_count + k) * KK + rsc];
    }
    sh[warp][lane] = sum;
    __syncthreads();
    if (warp == 0 && ok) {
        for (int w = 1; w < 8; w++) sum += sh[w][lane];
        int r = rsc / (S * C), s = rsc / C % S, c = rsc % C;
        dw[k * wk + c * wc + r * wr + s * ws] = store<T, float>(sum);
    }
}

#define STEM_CONV(T, S_, C, R, S) \
extern "C" __global__ void __launch_bounds__(STEM_THREADS) conv_stem_fwd_c##C##k##R##_##S_(T* y, const T* x, const T* w, const T* b, \
        StemG g, i64 xn, i64 xc, i64 xh, i64 xw, i64 wk, i64 wc, i64 wr, i64 ws, int relu) { \
    conv_stem_fwd<T, C, R, S>(y, x, w, b, stem_p(g, xn, xc, xh, xw), wk, wc, wr, ws, relu); \
} \
extern "C" __global__ void __launch_bounds__(STEM_THREADS) conv_stem_wgrad_c##C##k##R##_##S_(float* partial, const T* gy, const T* x, \
        StemG g, i64 xn, i64 xc, i64 xh, i64 xw) { \
    conv_stem_wgrad<T, C, R, S>(partial, gy, x, stem_p(g, xn, xc, xh, xw)); \
} \
extern "C" __global__ void __launch_bounds__(256) conv_stem_wgrad_finish_c##C##k##R##_##S_(T* dw, const float* partial, int k_count, \
        int blocks, i64 wk, i64 wc, i64 wr, i64 ws) { \
    conv_stem_wgrad_finish<T, C, R, S>(dw, partial, k_count, blocks, wk, wc, wr, ws); \
}
// float32 (TF32 products, as cuDNN's with TF32 allowed), ResNet's 7 x 7 stem; bfloat16's forward too (its values are
// TF32 values, so the products are exact): cuDNN pads the 3 channels to 8 and took 1.7 ms of a resnet18 batch-256
// bf16 prediction where float32's kernel here takes 0.69 (H200). bfloat16's weight gradient stays with cuDNN, whose
// 16-bit training step measured faster than this TF32 path's (resnet18 b64: 13,593 against 13,269 img/s graphed).
STEM_CONV(float, f32, 3, 7, 7)
STEM_CONV(bf16, bf16, 3, 7, 7)

// ---- The weight gradient of a 3 x 3 convolution of stride 1 with 32 or 64 output channels and 32 or 64 input
// channels (the small CNNs' inner layers), or up to 8 (a first layer), on tensor cores (TF32 mma.sync), channels-last:
// for each filter tap (r, s), dW[k][r][s][c] = the sum over output pixels of gy[pixel][k] * x[the pixel's input under
// the tap][c]. cuDNN's algorithms for these (wgrad_alg0_engine_NHWC: 0.126 ms for two layers of the CIFAR CNN's
// 0.72 ms step at batch 128, 0.061 ms for its first) ran at about a tenth of the tensor cores' rate. A block takes
// TAP_TILE x TAP_TILE output pixels of one image at a time (every gridDim.x-th such tile): their gradient [pixel][32
// channels] and the input patch under them [row][col][CW channels] sit in shared memory, rounded to TF32, and all
// R * S taps are summed from them, so each value is read from memory once per block. gridDim.y = (K / 32) * (C / CW)
// blocks of 32 x CW channels; warp w takes gradient channels [16 (w & 1), +16), input channels [8 ni, +8) and every Q-th
// row of the tile (Q = 32 / CW warps share a channel tile), for every tap (R * S accumulators of 4). The next tile's
// operands wait in registers while this one's products run. A block's sums go to partial[blockIdx.x][k][r][s][c]
// (cuDNN's channels-last filter layout), which a column sum adds in a fixed order.
#define TAP_TILE 8
#define TAP_THREADS 256
struct TapP { int n, h, w, oh, ow, k, c, ph, pw; };

template <int R, int S, int CW> struct TapShape {
    static constexpr int PR = TAP_TILE - 1 + R, PC = TAP_TILE - 1 + S, P = 32 + 8;   // patch rows, columns; pitch
    static constexpr int GV = TAP_TILE * TAP_TILE * 8 / TAP_THREADS;   // a thread's float4s of the gradient
    static constexpr int XE = CW == 32 ? 4 : 1;                        // elements a patch entry (8 entries a pixel)
    static constexpr int XV = (PR * PC * 8 + TAP_THREADS - 1) / TAP_THREADS;   // a thread's patch entries
    static constexpr int NI = CW / 8, Q = 4 / NI;
};

template <typename T, int R, int S, int CW>
__device__ __forceinline__ void tap_load(float4* gv, float* xv, const T* gy, const T* x, const TapP& p, i64 tile, int kb, int cb) {
    typedef TapShape<R, S, CW> Sh;
    int tq = (p.ow + TAP_TILE - 1) / TAP_TILE, tp = (p.oh + TAP_TILE - 1) / TAP_TILE;
    int img = (int) (tile / ((i64) tq * tp)), oy0 = (int) (tile / tq % tp) * TAP_TILE, ox0 = (int) (tile % tq) * TAP_TILE;
#pragma unroll
    for (int e = 0; e < Sh::GV; e++) {
        int i = threadIdx.x + e * TAP_THREADS, px = i >> 3, c4 = (i & 7) * 4, oy = oy0 + px / TAP_TILE, ox = ox0 + px % TAP_TILE;
        float v[4] = {0.f, 0.f, 0.f, 0.f};
        if (oy < p.oh && ox < p.ow) stem_load4<T>(gy + (((i64) img * p.oh + oy) * p.ow + ox) * p.k + kb + c4, v);
        gv[e] = make_float4(v[0], v[1], v[2], v[3]);
    }
#pragma unroll
    for (int e = 0; e < Sh::XV; e++) {
        int i = threadIdx.x + e * TAP_THREADS, px = i >> 3, c = cb + (i & 7) * Sh::XE;
        int iy = oy0 - p.ph + px / Sh::PC, ix = ox0 - p.pw + px % Sh::PC;
        float* v = xv + e * Sh::XE;
#pragma unroll
        for (int j = 0; j < Sh::XE; j++) v[j] = 0.f;
        if (i < Sh::PR * Sh::PC * 8 && iy >= 0 && iy < p.h && ix >= 0 && ix < p.w) {
            const T* src = x + (((i64) img * p.h + iy) * p.w + ix) * p.c + c;
            if constexpr (Sh::XE == 4) stem_load4<T>(src, v);
            else if (c < p.c) v[0] = load<float>(*src);
        }
    }
}

template <typename T, int R, int S, int CW>
__device__ __forceinline__ void conv_tap_wgrad(float* partial, const T* gy, const T* x, TapP p) {
    typedef TapShape<R, S, CW> Sh;
    constexpr int P = Sh::P;
    __shared__ __align__(16) float gs[TAP_TILE * TAP_TILE * P];
    __shared__ __align__(16) float xs[Sh::PR * Sh::PC * P];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    int mi = warp & 1, ni = (warp >> 1) % Sh::NI, q = (warp >> 1) / Sh::NI;
    int kb = blockIdx.y % (p.k / 32) * 32, cb = blockIdx.y / (p.k / 32) * CW;
    float acc[R * S][4];
#pragma unroll
    for (int t = 0; t < R * S; t++) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.f;
    i64 tiles = (i64) p.n * ((p.oh + TAP_TILE - 1) / TAP_TILE) * ((p.ow + TAP_TILE - 1) / TAP_TILE);
    float4 gv[Sh::GV];
    float xv[Sh::XV * Sh::XE];
    if (blockIdx.x < tiles) tap_load<T, R, S, CW>(gv, xv, gy, x, p, blockIdx.x, kb, cb);
    for (i64 tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        __syncthreads();   // the previous tile's operands are read
#pragma unroll
        for (int e = 0; e < Sh::GV; e++) {
            int i = threadIdx.x + e * TAP_THREADS;
            tf32_store4(gs + (i >> 3) * P + (i & 7) * 4, gv[e]);
        }
#pragma unroll
        for (int e = 0; e < Sh::XV; e++) {
            int i = threadIdx.x + e * TAP_THREADS;
            if (i >= Sh::PR * Sh::PC * 8) continue;
            float* dst = xs + (i >> 3) * P + (i & 7) * Sh::XE;
            if constexpr (Sh::XE == 4) tf32_store4(dst, make_float4(xv[4 * e], xv[4 * e + 1], xv[4 * e + 2], xv[4 * e + 3]));
            else *dst = __uint_as_float(tc_tf32(xv[e]));
        }
        __syncthreads();
        if (tile + gridDim.x < tiles) tap_load<T, R, S, CW>(gv, xv, gy, x, p, tile + gridDim.x, kb, cb);
#pragma unroll 2
        for (int row = q; row < TAP_TILE; row += Sh::Q) {   // a k-step: the 8 pixels of one output row of the tile
            // A (16 gradient channels x 8 pixels): pixel t4 (+ 4), channel g (+ 8); the pitch 40 puts the lanes in 32 banks
            const float* ga = gs + (row * TAP_TILE + t4) * P + mi * 16 + g;
            unsigned a[4] = {__float_as_uint(ga[0]), __float_as_uint(ga[8]), __float_as_uint(ga[4 * P]), __float_as_uint(ga[4 * P + 8])};
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int s = 0; s < S; s++) {
                    // B (8 pixels x 8 input channels): the patch under pixel t4 (+ 4) of the row, shifted by the tap
                    const float* xb = xs + ((row + r) * Sh::PC + s + t4) * P + ni * 8 + g;
                    tc_mma1(acc[r * S + s], a, __float_as_uint(xb[0]), __float_as_uint(xb[4 * P]));
                }
        }
    }
    if constexpr (Sh::Q > 1) {   // the row groups' sums meet in the first's, in order, through the patch's memory
        float* red = xs + (mi * 32 + lane) * R * S * 4;
        for (int qq = 1; qq < Sh::Q; qq++) {
            __syncthreads();
            if (q == qq)
#pragma unroll
                for (int t = 0; t < R * S; t++)
#pragma unroll
                    for (int j = 0; j < 4; j++) red[t * 4 + j] = acc[t][j];
            __syncthreads();
            if (q == 0)
#pragma unroll
                for (int t = 0; t < R * S; t++)
#pragma unroll
                    for (int j = 0; j < 4; j++) acc[t][j] += red[t * 4 + j];
        }
        if (q != 0) return;
    }
    float* out = partial + (i64) blockIdx.x * p.k * R * S * p.c;
    int k = kb + mi * 16 + g, c = cb + ni * 8 + 2 * t4;
#pragma unroll
    for (int t = 0; t < R * S; t++) {
        float* o0 = out + ((i64) k * R * S + t) * p.c + c;
        float* o1 = out + ((i64) (k + 8) * R * S + t) * p.c + c;
        if constexpr (CW == 32) {
            stem_store2<float>(o0, acc[t][0], acc[t][1]);
            stem_store2<float>(o1, acc[t][2], acc[t][3]);
        } else {   // a few input channels: c and c + 1 may be past them
            if (c < p.c) { o0[0] = acc[t][0]; o1[0] = acc[t][2]; }
            if (c + 1 < p.c) { o0[1] = acc[t][1]; o1[1] = acc[t][3]; }
        }
    }
}

// 32-channel blocks (C = 32, 64) and one block of up to 8 input channels (a first layer)
extern "C" __global__ void __launch_bounds__(TAP_THREADS) conv_tap_wgrad_k3_f32(float* partial, const float* gy, const float* x, TapP p) {
    conv_tap_wgrad<float, 3, 3, 32>(partial, gy, x, p);
}
extern "C" __global__ void __launch_bounds__(TAP_THREADS) conv_tap_wgrad_c8k3_f32(float* partial, const float* gy, const float* x, TapP p) {
    conv_tap_wgrad<float, 3, 3, 8>(partial, gy, x, p);
}

// ---- bias (+ residual) + ReLU over channel dim 1 of a contiguous (N, C, inner...) tensor, in place: the epilogue of
// a convolution whose output nobody else has seen yet, y = relu?(y + b[c] + z), z (a residual block's shortcut, laid
// out as y) or b null for none. relu(v) = v <= 0 ? 0 : v (NaN kept, as UnaryOp.RELU). Each thread takes W consecutive
// elements with one wide load: the _v4 kernels (W = 4) need inner % 4 == 0 and 16-byte aligned bases, so the 4 share
// a channel; the _cl_v4 ones take channels-last y (inner 1, the channel innermost: the 4 are channels ch..ch+3, c % 4
// == 0); the plain ones W = 1.

template <typename T, int W, bool CL>
__device__ __forceinline__ void bias_relu(T* y, const T* b, const T* z, i64 packs, i64 inner, i64 c, int relu) {
    typedef typename Acc<T>::type A;
    Pack<T, W>* yp = reinterpret_cast<Pack<T, W>*>(y);
    const Pack<T, W>* zp = reinterpret_cast<const Pack<T, W>*>(z);
    GRID_STRIDE(i, packs) {
        i64 r, ch;
        if (CL) divmod(W * i, c, ch);
        else divmod(divmod(W * i, inner, r), c, ch);
        Pack<T, W> p = yp[i], q;
        if (z) q = zp[i];
#pragma unroll
        for (int e = 0; e < W; e++) {
            A v = load<A, T>(p.v[e]) + (b ? load<A, T>(b[CL ? ch + e : ch]) : (A) 0);   // (y + b) + z, as the CPU sums
            if (z) v += load<A, T>(q.v[e]);
            p.v[e] = store<T, A>(relu && v <= 0 ? (A) 0 : v);
        }
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

// The same over channels-last memory, rows (N*H*W) of c channels, c a multiple of 4 up to 1,024 (launched with 256
// threads): each thread keeps one 4-channel pack over every (256 / (c / 4))-th row of its block's run of rows, so the
// block reads whole rows side by side; the threads of a pack then add their sums in row order (deterministic) into
// partial[ch * gridDim.x + blockIdx.x], as above.
template <typename T>
__device__ __forceinline__ void bias_relu_bwd_cl(T* dz, typename Acc<T>::type* partial, const T* g, const T* y, i64 rows,
                                                 i64 c, int relu, int write_dz) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[256 * 4];
    const int packs = (int) (c / 4), pk = threadIdx.x % packs, step = blockDim.x / packs, r0 = threadIdx.x / packs;
    const i64 per = (rows + gridDim.x - 1) / gridDim.x, begin = blockIdx.x * per, end = min(rows, begin + per);
    const Pack<T, 4>* gp = reinterpret_cast<const Pack<T, 4>*>(g);
    const Pack<T, 4>* yp = reinterpret_cast<const Pack<T, 4>*>(y);
    Pack<T, 4>* dp = reinterpret_cast<Pack<T, 4>*>(dz);
    A acc[4] = {0, 0, 0, 0};
    if (r0 < step)
        for (i64 r = begin + r0; r < end; r += step) {
            i64 at = r * packs + pk;
            Pack<T, 4> gv = gp[at], yv;
            if (relu) yv = yp[at];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                A v = load<A, T>(gv.v[e]);
                if (relu && !(load<A, T>(yv.v[e]) > 0)) v = 0;
                gv.v[e] = store<T, A>(v);
                acc[e] += v;
            }
            if (write_dz) dp[at] = gv;
        }
    if (!partial) return;
#pragma unroll
    for (int e = 0; e < 4; e++) sh[threadIdx.x * 4 + e] = acc[e];
    __syncthreads();
    for (int k = threadIdx.x; k < c; k += blockDim.x) {
        A sum = 0;
        for (int r = 0; r < step; r++) sum += sh[(r * packs + k / 4) * 4 + k % 4];
        partial[k * gridDim.x + blockIdx.x] = sum;
    }
}

// db[ch] = the sum of partial[ch * splits ...], a warp a channel
template <typename T>
__device__ __forceinline__ void bias_grad_finish(T* db, const typename Acc<T>::type* partial, i64 c, i64 splits) {
    WARP_STRIDE(ch, lane, c) {
        auto s = warp_row_sum(partial + ch * splits, splits);
        if (lane == 0) db[ch] = store<T>(s);
    }
}

#define BIAS_RELU(T, S) \
extern "C" __global__ void bias_relu_##S(T* y, const T* b, const T* z, i64 n, i64 inner, i64 c, int relu) { \
    bias_relu<T, 1, false>(y, b, z, n, inner, c, relu); \
} \
extern "C" __global__ void bias_relu_v4_##S(T* y, const T* b, const T* z, i64 n4, i64 inner, i64 c, int relu) { \
    bias_relu<T, 4, false>(y, b, z, n4, inner, c, relu); \
} \
extern "C" __global__ void bias_relu_cl_v4_##S(T* y, const T* b, const T* z, i64 n4, i64 inner, i64 c, int relu) { \
    bias_relu<T, 4, true>(y, b, z, n4, inner, c, relu); \
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
extern "C" __global__ void bias_relu_bwd_cl_##S(T* dz, typename Acc<T>::type* partial, const T* g, const T* y, i64 rows, \
                                                i64 c, int relu, int write_dz) { \
    bias_relu_bwd_cl<T>(dz, partial, g, y, rows, c, relu, write_dz); \
} \
extern "C" __global__ void bias_grad_finish_##S(T* db, const typename Acc<T>::type* partial, i64 c, i64 splits) { \
    bias_grad_finish<T>(db, partial, c, splits); \
}
#define BIAS_RELU_ALL(T, S) BIAS_RELU(T, S) BIAS_RELU_BWD(T, S)
KILN_FLOAT_TYPES(BIAS_RELU_ALL)
