// Elementwise kernels: fill, copy (with dtype conversion), unary, binary, binary with a scalar, where.
// Forward only: their gradients are other elementwise ops (see dev.kiln.ops.Elementwise), and the *_GRAD unary
// codes (gelu', silu') are the backward halves that live here. Op codes follow dev.kiln.backend.UnaryOp /
// BinaryOp ordinals; the maths follows dev.kiln.cpu.ScalarMath.
#include "common.cuh"

// UnaryOp: NEG EXP LOG SQRT ABS SIGN RECIPROCAL RELU SIGMOID TANH GELU SILU GELU_GRAD SILU_GRAD STEP NOT
template <typename C>
__device__ __forceinline__ C unary_op(int op, C x) {
    const C one = 1, zero = 0;
    switch (op) {
        case 0: return -x;
        case 1: return exp(x);
        case 2: return log(x);
        case 3: return sqrt(x);
        case 4: return fabs(x);
        case 5: return x > zero ? one : (x < zero ? -one : x);   // keeps NaN and signed zero, as Math.signum
        case 6: return one / x;
        case 7: return x > zero ? x : zero;
        case 8: return one / (one + exp(-x));
        case 9: return tanh(x);
        case 10: return (C) 0.5 * x * (one + erf(x * (C) 0.7071067811865476));
        case 11: return x / (one + exp(-x));
        case 12: return (C) 0.5 * (one + erf(x * (C) 0.7071067811865476)) + x * (C) 0.3989422804014327 * exp((C) -0.5 * x * x);
        case 13: { C s = one / (one + exp(-x)); return s * (one + x * (one - s)); }
        case 14: return x > zero ? one : zero;
        default: return x == zero ? one : zero;
    }
}

// BinaryOp: ADD SUB MUL DIV POW MAX MIN EQ NE LT LE GT GE AND OR RELU_BACKWARD
template <typename C>
__device__ __forceinline__ C binary_op(int op, C a, C b) {
    const C one = 1, zero = 0;
    switch (op) {
        case 0: return a + b;
        case 1: return a - b;
        case 2: return a * b;
        case 3: return a / b;
        case 4: return pow(a, b);
        case 5: return (a != a || b != b) ? a + b : (a > b ? a : b);
        case 6: return (a != a || b != b) ? a + b : (a < b ? a : b);
        case 7: return a == b ? one : zero;
        case 8: return a != b ? one : zero;
        case 9: return a < b ? one : zero;
        case 10: return a <= b ? one : zero;
        case 11: return a > b ? one : zero;
        case 12: return a >= b ? one : zero;
        case 13: return (a != zero && b != zero) ? one : zero;
        case 14: return (a != zero || b != zero) ? one : zero;
        default: return b > zero ? a : zero;   // RELU_BACKWARD
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

// out (contiguous) = op(x (operand 0 of g))
#define UNARY(T, S) \
extern "C" __global__ void unary_##S(int op, T* out, const T* x, i64 n, Geo g) { \
    typedef Acc<T>::type C; \
    GRID_STRIDE(i, n) { i64 o[1]; offsets<1>(g, i, o); out[i] = store<T, C>(unary_op<C>(op, load<C, T>(x[o[0]]))); } \
}
KILN_ALL_TYPES(UNARY)

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
