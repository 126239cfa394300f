// softmax / log_softmax over the innermost dimension of a contiguous (rows, n) array, forward and backward.
// One block per row: a max pass, a sum-of-exponentials pass, a write pass. Arithmetic in float for the 32- and
// 16-bit types, double for float64.
#include "common.cuh"

#define SOFTMAX(T, S) \
extern "C" __global__ void softmax_fwd_##S(T* y, const T* x, i64 rows, i64 n, int log_out) { \
    typedef Acc<T>::type A; \
    __shared__ A sh[32]; \
    auto mx = [](A a, A b) { return a > b || a != a ? a : b; }; \
    auto add = [](A a, A b) { return a + b; }; \
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) { \
        const T* xr = x + r * n; T* yr = y + r * n; \
        A m = -(A) __int_as_float(0x7f800000); \
        for (i64 j = threadIdx.x; j < n; j += blockDim.x) m = mx(m, load<A, T>(xr[j])); \
        m = block_reduce(m, mx, sh); \
        A s = 0; \
        for (i64 j = threadIdx.x; j < n; j += blockDim.x) s += exp(load<A, T>(xr[j]) - m); \
        s = block_reduce(s, add, sh); \
        A ls = log(s), inv = (A) 1 / s; \
        for (i64 j = threadIdx.x; j < n; j += blockDim.x) { \
            A z = load<A, T>(xr[j]) - m; \
            yr[j] = store<T, A>(log_out ? z - ls : exp(z) * inv); \
        } \
    } \
} \
/* gx = y * (gy - sum(gy * y)) for softmax; gx = gy - exp(y) * sum(gy) for log_softmax (y is the output). */ \
extern "C" __global__ void softmax_bwd_##S(T* gx, const T* gy, const T* y, i64 rows, i64 n, int log_out) { \
    typedef Acc<T>::type A; \
    __shared__ A sh[32]; \
    auto add = [](A a, A b) { return a + b; }; \
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) { \
        const T* gr = gy + r * n; const T* yr = y + r * n; T* xr = gx + r * n; \
        A s = 0; \
        for (i64 j = threadIdx.x; j < n; j += blockDim.x) \
            s += log_out ? load<A, T>(gr[j]) : load<A, T>(gr[j]) * load<A, T>(yr[j]); \
        s = block_reduce(s, add, sh); \
        for (i64 j = threadIdx.x; j < n; j += blockDim.x) { \
            A g = load<A, T>(gr[j]), v = load<A, T>(yr[j]); \
            xr[j] = store<T, A>(log_out ? g - exp(v) * s : v * (g - s)); \
        } \
    } \
}
KILN_FLOAT_TYPES(SOFTMAX)
