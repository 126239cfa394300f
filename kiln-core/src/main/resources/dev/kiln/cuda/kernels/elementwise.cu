// Elementwise kernels: fill, copy (with dtype conversion), unary, binary, binary with a scalar, where.
// Their gradients are other elementwise ops (see dev.kiln.ops.Elementwise); the *_BACKWARD binary codes are the
// activations' backward passes (g times relu', gelu', silu' of the input) in one kernel. Op codes are the names op_codes.cuh generates from
// dev.kiln.backend.UnaryOp / BinaryOp (dev.kiln.cuda.OpCodes); the maths follows dev.kiln.cpu.ScalarMath.
#include "common.cuh"
#include "op_codes.cuh"

template <typename C>
__device__ __forceinline__ C unary_op(int op, C x) {
    const C one = 1, zero = 0;
    switch (op) {
        case UNARY_NEG: return -x;
        case UNARY_EXP: return exp(x);
        case UNARY_LOG: return log(x);
        case UNARY_SQRT: return sqrt(x);
        case UNARY_ABS: return fabs(x);
        case UNARY_SIGN: return x > zero ? one : (x < zero ? -one : x);   // keeps NaN and signed zero, as Math.signum
        case UNARY_RECIPROCAL: return one / x;
        case UNARY_RELU: return x <= zero ? zero : x;   // keeps NaN, as PyTorch
        case UNARY_SIGMOID: return one / (one + exp(-x));
        case UNARY_TANH: return tanh(x);
        case UNARY_GELU: return (C) 0.5 * x * (one + erf(x * (C) 0.7071067811865476));
        case UNARY_SILU: return x / (one + exp(-x));
        case UNARY_GELU_TANH: return (C) 0.5 * x * (one + tanh((C) 0.7978845608028654 * (x + (C) 0.044715 * x * x * x)));
        case UNARY_SIN: return sin(x);
        case UNARY_COS: return cos(x);
        case UNARY_STEP: return x > zero ? one : zero;
        default: return x == zero ? one : zero;   // UNARY_NOT
    }
}

// The GELU's slopes at x: exact, d/dx x·Φ(x) = Φ(x) + x·φ(x), and tanh, d/dx 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
template <typename C> __device__ __forceinline__ C gelu_slope(C x) {
    return (C) 0.5 * ((C) 1 + erf(x * (C) 0.7071067811865476)) + x * (C) 0.3989422804014327 * exp((C) -0.5 * x * x);
}
template <typename C> __device__ __forceinline__ C gelu_tanh_slope(C x) {
    C t = tanh((C) 0.7978845608028654 * (x + (C) 0.044715 * x * x * x));
    return (C) 0.5 * ((C) 1 + t) + (C) 0.5 * x * ((C) 1 - t * t) * (C) 0.7978845608028654 * ((C) 1 + (C) 0.134145 * x * x);
}

template <typename C>
__device__ __forceinline__ C binary_op(int op, C a, C b) {
    const C one = 1, zero = 0;
    switch (op) {
        case BINARY_ADD: return a + b;
        case BINARY_SUB: return a - b;
        case BINARY_MUL: return a * b;
        case BINARY_DIV: return a / b;
        case BINARY_POW: return pow(a, b);
        case BINARY_MAX: return (a != a || b != b) ? a + b : (a > b ? a : b);
        case BINARY_MIN: return (a != a || b != b) ? a + b : (a < b ? a : b);
        case BINARY_EQ: return a == b ? one : zero;
        case BINARY_NE: return a != b ? one : zero;
        case BINARY_LT: return a < b ? one : zero;
        case BINARY_LE: return a <= b ? one : zero;
        case BINARY_GT: return a > b ? one : zero;
        case BINARY_GE: return a >= b ? one : zero;
        case BINARY_AND: return (a != zero && b != zero) ? one : zero;
        case BINARY_OR: return (a != zero || b != zero) ? one : zero;
        case BINARY_RELU_BACKWARD: return b > zero ? a : zero;
        case BINARY_GELU_BACKWARD: return a * gelu_slope(b);
        case BINARY_GELU_TANH_BACKWARD: return a * gelu_tanh_slope(b);
        default: { C s = one / (one + exp(-b)); return a * (s * (one + b * (one - s))); }   // BINARY_SILU_BACKWARD
    }
}

// out (strided, operand 0 of g) = value
#define FILL(T, S) \
extern "C" __global__ void fill_##S(T* out, double value, i64 n, Geo g) { \
    T v = from_d<T>(value); \
    GRID_STRIDE(i, n) { i64 o[1]; offsets<1>(g, i, o); out[o[0]] = v; } \
}
KILN_ALL_TYPES(FILL)

// dst (operand 0) = convert(src (operand 1)); one kernel per (dst, src) pair
#define COPY_PAIR(TD, SD, TS, SS) \
extern "C" __global__ void copy_##SD##_##SS(TD* dst, const TS* src, i64 n, Geo g) { \
    GRID_STRIDE(i, n) { i64 o[2]; offsets<2>(g, i, o); dst[o[0]] = from_d<TD>(to_d(src[o[1]])); } \
}
#define COPY_FROM(TD, SD) \
    COPY_PAIR(TD, SD, float, f32) COPY_PAIR(TD, SD, double, f64) COPY_PAIR(TD, SD, bf16, bf16) COPY_PAIR(TD, SD, f16, f16) \
    COPY_PAIR(TD, SD, i64, i64) COPY_PAIR(TD, SD, int, i32) COPY_PAIR(TD, SD, unsigned char, u8) COPY_PAIR(TD, SD, b8, b8)
KILN_ALL_TYPES(COPY_FROM)

// dst = convert(src) where dst's memory is (B, P, Q) and src's the same elements as (B, Q, P): a batched transpose
// (channels-last <-> NCHW, a filter's KCRS <-> KRSC), which the generic copy reads with a stride of P or Q elements.
// A block of 256 threads moves a TP x TQ tile of at most 1024 elements (the launcher picks it: a side below 32 is
// taken whole, the other stretched to fill the tile) through shared memory, so that the reads (rows of src along P)
// and the writes (rows of dst along Q) are coalesced; each thread has its four loads in flight at once.
template <typename TD, typename TS>
__device__ __forceinline__ void transpose_tiles(TD* dst, const TS* src, i64 B, int P, int Q, int TP, int TQ) {
    __shared__ TS tile[1536];                                  // TQ * pitch <= 1024 + TQ, TQ <= 512
    const int pitch = TP | 1;                                  // odd: a column of the tile touches 32 banks
    const int tilesQ = (Q + TQ - 1) / TQ;
    const int q0 = (blockIdx.x % tilesQ) * TQ, p0 = (blockIdx.x / tilesQ) * TP;
    const int nq = min(TQ, Q - q0), np = min(TP, P - p0), n = nq * np;
    for (i64 b = blockIdx.y; b < B; b += gridDim.y) {
        const TS* s = src + b * (i64) P * Q;
        TD* d = dst + b * (i64) P * Q;
        TS v[4];
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int t = threadIdx.x + 256 * j, q = t / np, p = t - q * np;
            if (t < n) v[j] = s[(i64) (q0 + q) * P + p0 + p];
        }
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int t = threadIdx.x + 256 * j, q = t / np, p = t - q * np;
            if (t < n) tile[q * pitch + p] = v[j];
        }
        __syncthreads();
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int t = threadIdx.x + 256 * j, p = t / nq, q = t - p * nq;
            if (t < n) d[(i64) (p0 + p) * Q + q0 + q] = from_d<TD>(to_d(tile[q * pitch + p]));
        }
        __syncthreads();
    }
}
#define TRANSPOSE_PAIR(TD, SD, TS, SS) \
extern "C" __global__ void transpose_##SD##_##SS(TD* dst, const TS* src, i64 b, int p, int q, int tp, int tq) { \
    transpose_tiles<TD, TS>(dst, src, b, p, q, tp, tq); \
}
#define TRANSPOSE_FROM(TD, SD) \
    TRANSPOSE_PAIR(TD, SD, float, f32) TRANSPOSE_PAIR(TD, SD, double, f64) TRANSPOSE_PAIR(TD, SD, bf16, bf16) \
    TRANSPOSE_PAIR(TD, SD, f16, f16) TRANSPOSE_PAIR(TD, SD, i64, i64) TRANSPOSE_PAIR(TD, SD, int, i32) \
    TRANSPOSE_PAIR(TD, SD, unsigned char, u8) TRANSPOSE_PAIR(TD, SD, b8, b8)
KILN_ALL_TYPES(TRANSPOSE_FROM)

// out (contiguous) = op(x (operand 0 of g))
#define UNARY(T, S) \
extern "C" __global__ void unary_##S(int op, T* out, const T* x, i64 n, Geo g) { \
    typedef Acc<T>::type C; \
    GRID_STRIDE(i, n) { i64 o[1]; offsets<1>(g, i, o); out[i] = store<T, C>(unary_op<C>(op, load<C, T>(x[o[0]]))); } \
}
KILN_ALL_TYPES(UNARY)

// i mod p for p > 0 (i itself when p is past it: a whole operand), in 32 bits while they fit
__device__ __forceinline__ i64 periodic(i64 i, i64 p) {
    if (i < p) return i;
    i64 r;
    divmod(i, p, r);
    return r;
}

// out (contiguous, of type TO) = op(a, b) with a, b operands 0 and 1 of g
#define BINARY(T, S) \
extern "C" __global__ void binary_##S(int op, T* out, const T* a, const T* b, i64 n, Geo g) { \
    typedef Acc<T>::type C; \
    GRID_STRIDE(i, n) { \
        i64 o[2]; offsets<2>(g, i, o); \
        out[i] = store<T, C>(binary_op<C>(op, load<C, T>(a[o[0]]), load<C, T>(b[o[1]]))); \
    } \
} \
extern "C" __global__ void compare_##S(int op, b8* out, const T* a, const T* b, i64 n, Geo g) { \
    GRID_STRIDE(i, n) { \
        i64 o[2]; offsets<2>(g, i, o); \
        out[i] = from_d<b8>(binary_op<double>(op, to_d(a[o[0]]), to_d(b[o[1]]))); \
    } \
} \
extern "C" __global__ void binary_scalar_##S(int op, T* out, const T* a, double s, int scalar_first, i64 n, Geo g) { \
    GRID_STRIDE(i, n) { \
        i64 o[1]; offsets<1>(g, i, o); \
        double v = to_d(a[o[0]]); \
        out[i] = from_d<T>(scalar_first ? binary_op<double>(op, s, v) : binary_op<double>(op, v, s)); \
    } \
} \
extern "C" __global__ void compare_scalar_##S(int op, b8* out, const T* a, double s, int scalar_first, i64 n, Geo g) { \
    GRID_STRIDE(i, n) { \
        i64 o[1]; offsets<1>(g, i, o); \
        double v = to_d(a[o[0]]); \
        out[i] = from_d<b8>(scalar_first ? binary_op<double>(op, s, v) : binary_op<double>(op, v, s)); \
    } \
} \
extern "C" __global__ void where_##S(T* out, const b8* cond, const T* a, const T* b, i64 n, Geo g) { \
    GRID_STRIDE(i, n) { i64 o[3]; offsets<3>(g, i, o); out[i] = cond[o[0]].v ? a[o[1]] : b[o[2]]; } \
} \
/* the same where each operand repeats with a period p (its element i mod p): p = n for a whole operand, 1 for a scalar, \
   the trailing block's size for one broadcast over leading dims (a causal mask over batch and heads) */ \
extern "C" __global__ void where_periodic_##S(T* out, const b8* cond, const T* a, const T* b, i64 n, i64 pc, i64 pa, i64 pb) { \
    GRID_STRIDE(i, n) { out[i] = cond[periodic(i, pc)].v ? a[periodic(i, pa)] : b[periodic(i, pb)]; } \
}
KILN_ALL_TYPES(BINARY)

// f32 contiguous fast paths: 4 elements per thread with 16-byte loads where the pointers allow it
extern "C" __global__ void binary_f32_contig(int op, float* out, const float* a, const float* b, i64 n) {
    i64 n4 = n / 4;
    const float4* a4 = (const float4*) a; const float4* b4 = (const float4*) b; float4* o4 = (float4*) out;
    GRID_STRIDE(i, n4) {
        float4 x = a4[i], y = b4[i], r;
        r.x = binary_op<float>(op, x.x, y.x); r.y = binary_op<float>(op, x.y, y.y);
        r.z = binary_op<float>(op, x.z, y.z); r.w = binary_op<float>(op, x.w, y.w);
        o4[i] = r;
    }
    GRID_STRIDE(j, n - n4 * 4) { i64 k = n4 * 4 + j; out[k] = binary_op<float>(op, a[k], b[k]); }
}
extern "C" __global__ void unary_f32_contig(int op, float* out, const float* x, i64 n) {
    i64 n4 = n / 4;
    const float4* x4 = (const float4*) x; float4* o4 = (float4*) out;
    GRID_STRIDE(i, n4) {
        float4 v = x4[i], r;
        r.x = unary_op<float>(op, v.x); r.y = unary_op<float>(op, v.y); r.z = unary_op<float>(op, v.z); r.w = unary_op<float>(op, v.w);
        o4[i] = r;
    }
    GRID_STRIDE(j, n - n4 * 4) { i64 k = n4 * 4 + j; out[k] = unary_op<float>(op, x[k]); }
}

// 16-bit contiguous fast paths: 8 elements per thread, each operand moved as one 16-byte vector (a scalar 2-byte
// access per thread leaves most of the memory system's width unused)
template <typename T>
__device__ __forceinline__ void binary_contig(int op, T* out, const T* a, const T* b, i64 n) {
    i64 n8 = n / 8;
    GRID_STRIDE(i, n8) {
        uint4 x = ((const uint4*) a)[i], y = ((const uint4*) b)[i], r;
        const T* xs = (const T*) &x; const T* ys = (const T*) &y; T* rs = (T*) &r;
#pragma unroll
        for (int j = 0; j < 8; j++) rs[j] = store<T, float>(binary_op<float>(op, load<float, T>(xs[j]), load<float, T>(ys[j])));
        ((uint4*) out)[i] = r;
    }
    GRID_STRIDE(j, n - n8 * 8) { i64 k = n8 * 8 + j; out[k] = store<T, float>(binary_op<float>(op, load<float, T>(a[k]), load<float, T>(b[k]))); }
}
template <typename T>
__device__ __forceinline__ void unary_contig(int op, T* out, const T* x, i64 n) {
    i64 n8 = n / 8;
    GRID_STRIDE(i, n8) {
        uint4 v = ((const uint4*) x)[i], r;
        const T* vs = (const T*) &v; T* rs = (T*) &r;
#pragma unroll
        for (int j = 0; j < 8; j++) rs[j] = store<T, float>(unary_op<float>(op, load<float, T>(vs[j])));
        ((uint4*) out)[i] = r;
    }
    GRID_STRIDE(j, n - n8 * 8) { i64 k = n8 * 8 + j; out[k] = store<T, float>(unary_op<float>(op, load<float, T>(x[k]))); }
}
// a op s (or s op a) over contiguous memory, 16 bytes a thread, each element computed as binary_scalar computes it
// (in double, so the two paths agree to the bit); the common ops get loops of their own (a switch per element costs
// more than the memory traffic here)
template <typename T, typename F>
__device__ __forceinline__ void scalar_map_contig(T* out, const T* a, i64 n, F f) {
    constexpr int E = Vec16<T>::N;
    i64 nv = n / E;
    GRID_STRIDE(i, nv) {
        Vec16<T> x;
        x.load(a + i * E);
#pragma unroll
        for (int j = 0; j < E; j++) x.v[j] = from_d<T>(f(to_d(x.v[j])));
        x.store(out + i * E);
    }
    GRID_STRIDE(j, n - nv * E) { i64 k = nv * E + j; out[k] = from_d<T>(f(to_d(a[k]))); }
}
template <typename T>
__device__ __forceinline__ void binary_scalar_contig(int op, T* out, const T* a, double s, int scalar_first, i64 n) {
    if (op == BINARY_MUL) scalar_map_contig(out, a, n, [s](double v) { return v * s; });
    else if (op == BINARY_ADD) scalar_map_contig(out, a, n, [s](double v) { return v + s; });
    else if (op == BINARY_SUB && !scalar_first) scalar_map_contig(out, a, n, [s](double v) { return v - s; });
    else if (op == BINARY_SUB) scalar_map_contig(out, a, n, [s](double v) { return s - v; });
    else if (op == BINARY_DIV && !scalar_first) scalar_map_contig(out, a, n, [s](double v) { return v / s; });
    else scalar_map_contig(out, a, n, [=](double v) { return scalar_first ? binary_op<double>(op, s, v) : binary_op<double>(op, v, s); });
}
#define BINARY_SCALAR_CONTIG(T, S) \
extern "C" __global__ void binary_scalar_contig_##S(int op, T* out, const T* a, double s, int scalar_first, i64 n) { \
    binary_scalar_contig<T>(op, out, a, s, scalar_first, n); \
}
KILN_FLOAT_TYPES(BINARY_SCALAR_CONTIG)

#define CONTIG_16(T, S) \
extern "C" __global__ void binary_contig_##S(int op, T* out, const T* a, const T* b, i64 n) { binary_contig<T>(op, out, a, b, n); } \
extern "C" __global__ void unary_contig_##S(int op, T* out, const T* x, i64 n) { unary_contig<T>(op, out, x, n); }
CONTIG_16(bf16, bf16) CONTIG_16(f16, f16)
// The same with the op fixed when the kernel is compiled, so the switch folds away, for the activations a training
// step runs over its widest tensors (a GPT's MLP: GELU, its recompute in backward, GELU's backward).
#define CONTIG_ACTIVATION(T, S, NAME, U, B) \
extern "C" __global__ void unary_contig_##NAME##_##S(T* out, const T* x, i64 n) { unary_contig<T>(U, out, x, n); } \
extern "C" __global__ void binary_contig_##NAME##_backward_##S(T* out, const T* a, const T* b, i64 n) { binary_contig<T>(B, out, a, b, n); }
#define CONTIG_ACTIVATIONS(T, S) CONTIG_ACTIVATION(T, S, gelu, UNARY_GELU, BINARY_GELU_BACKWARD) \
    CONTIG_ACTIVATION(T, S, gelu_tanh, UNARY_GELU_TANH, BINARY_GELU_TANH_BACKWARD) \
    CONTIG_ACTIVATION(T, S, silu, UNARY_SILU, BINARY_SILU_BACKWARD) CONTIG_ACTIVATION(T, S, relu, UNARY_RELU, BINARY_RELU_BACKWARD)
CONTIG_ACTIVATIONS(bf16, bf16) CONTIG_ACTIVATIONS(f16, f16)

// contiguous casts between float32 and the 16-bit floats (autocast's casts of weights, activations and gradients):
// 8 elements per thread in 16-byte vectors, converted as the strided copy converts them
template <typename TD, typename TS>
__device__ __forceinline__ void cast_contig(TD* dst, const TS* src, i64 n) {
    const int vs = sizeof(TS) / 2, vd = sizeof(TD) / 2;   // 16-byte vectors per 8 elements: 2 for float32, 1 for 16-bit
    i64 n8 = n / 8;
    GRID_STRIDE(i, n8) {
        uint4 in[vs], out[vd];
#pragma unroll
        for (int k = 0; k < vs; k++) in[k] = ((const uint4*) src)[i * vs + k];
        const TS* xs = (const TS*) in; TD* ys = (TD*) out;
#pragma unroll
        for (int j = 0; j < 8; j++) ys[j] = store<TD, float>(load<float, TS>(xs[j]));
#pragma unroll
        for (int k = 0; k < vd; k++) ((uint4*) dst)[i * vd + k] = out[k];
    }
    GRID_STRIDE(j, n - n8 * 8) { i64 k = n8 * 8 + j; dst[k] = store<TD, float>(load<float, TS>(src[k])); }
}
#define CAST_CONTIG(TD, SD, TS, SS) \
extern "C" __global__ void copy_contig_##SD##_##SS(TD* dst, const TS* src, i64 n) { cast_contig<TD, TS>(dst, src, n); }
CAST_CONTIG(bf16, bf16, float, f32) CAST_CONTIG(float, f32, bf16, bf16) CAST_CONTIG(f16, f16, float, f32) CAST_CONTIG(float, f32, f16, f16)
