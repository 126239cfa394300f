// softmax / log_softmax over the innermost dimension of a contiguous (rows, n) array, forward and backward.
// Rows of up to 1,024 elements: a warp per row, the row held in registers (E elements a lane), so it is read once and
// reduced by shuffles alone; up to 8,192: a block of 256 per row, 32 elements a thread in registers. Longer rows: a
// block per row, one pass for the maximum and the sum of exponentials together (the sum rescaled as the maximum
// grows), one for the output. Rows whose length is a multiple of 16 bytes
// (and aligned) are moved 16 bytes a lane (V elements); the others an element at a time (V = 1). Arithmetic in float
// for the 32- and 16-bit types, double for float64.
#include "common.cuh"

template <typename A> __device__ __forceinline__ A softmax_max(A a, A b) { return a > b || a != a ? a : b; }   // NaN wins

// The E elements thread t of a group of G holds of a row: interleaved single elements (V = 1), or 16-byte vectors of
// V consecutive elements, vector c of thread t at column (G c + t) V. Columns at or past n read as pad; n is a multiple
// of V when V > 1.
template <typename T, typename A, int E, int V>
__device__ __forceinline__ void held_row_load(A (&v)[E], const T* row, int n, int t, int G, A pad) {
    static_assert(V == 1 || V == Vec16<T>::N, "a vector is 16 bytes");
#pragma unroll
    for (int c = 0; c < E / V; c++) {
        int j = (G * c + t) * V;
        if constexpr (V == 1) {
            v[c] = j < n ? load<A, T>(row[j]) : pad;
        } else {
            Vec16<T> x;
            if (j < n) x.load(row + j);
#pragma unroll
            for (int k = 0; k < V; k++) v[c * V + k] = j < n ? load<A, T>(x.v[k]) : pad;
        }
    }
}
template <typename T, typename A, int E, int V>
__device__ __forceinline__ void held_row_store(T* row, const A (&v)[E], int n, int t, int G) {
#pragma unroll
    for (int c = 0; c < E / V; c++) {
        int j = (G * c + t) * V;
        if (j >= n) continue;
        if constexpr (V == 1) {
            row[j] = store<T, A>(v[c]);
        } else {
            Vec16<T> x;
#pragma unroll
            for (int k = 0; k < V; k++) x.v[k] = store<T, A>(v[c * V + k]);
            x.store(row + j);
        }
    }
}

// Rows held in registers, E elements a thread: a warp a row (BLOCK false: rows of up to 32 E) or a block a row (BLOCK
// true: up to blockDim E), so each row is read once.
template <typename T, int E, int V, bool BLOCK>
__device__ __forceinline__ void softmax_held_fwd(T* y, const T* x, i64 rows, int n, int log_out) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[32];
    const A ninf = -(A) __int_as_float(0x7f800000);
    auto mx = [](A a, A b) { return softmax_max(a, b); };
    auto add = [](A a, A b) { return a + b; };
    int per = BLOCK ? 1 : blockDim.x >> 5, t = BLOCK ? threadIdx.x : threadIdx.x & 31, G = BLOCK ? blockDim.x : 32;
    for (i64 r = (i64) blockIdx.x * per + (BLOCK ? 0 : threadIdx.x >> 5); r < rows; r += (i64) gridDim.x * per) {
        A v[E], m = ninf, s = 0;
        held_row_load<T, A, E, V>(v, x + r * n, n, t, G, ninf);
#pragma unroll
        for (int e = 0; e < E; e++) m = softmax_max(m, v[e]);
        m = BLOCK ? block_reduce(m, mx, sh) : warp_all(m, mx);
#pragma unroll
        for (int e = 0; e < E; e++) s += exp(v[e] - m);         // padding adds 0 (or NaN to a row of -inf: NaN anyway)
        s = BLOCK ? block_reduce(s, add, sh) : warp_all(s, add);
        A ls = log(s), inv = (A) 1 / s;
#pragma unroll
        for (int e = 0; e < E; e++) v[e] = log_out ? v[e] - m - ls : exp(v[e] - m) * inv;
        held_row_store<T, A, E, V>(y + r * n, v, n, t, G);
    }
}

template <typename T, int E, int V, bool BLOCK>
__device__ __forceinline__ void softmax_held_bwd(T* gx, const T* gy, const T* y, i64 rows, int n, int log_out) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[32];
    auto add = [](A a, A b) { return a + b; };
    int per = BLOCK ? 1 : blockDim.x >> 5, t = BLOCK ? threadIdx.x : threadIdx.x & 31, G = BLOCK ? blockDim.x : 32;
    for (i64 r = (i64) blockIdx.x * per + (BLOCK ? 0 : threadIdx.x >> 5); r < rows; r += (i64) gridDim.x * per) {
        A g[E], v[E], s = 0;
        held_row_load<T, A, E, V>(g, gy + r * n, n, t, G, (A) 0);
        held_row_load<T, A, E, V>(v, y + r * n, n, t, G, (A) 0);
#pragma unroll
        for (int e = 0; e < E; e++) s += log_out ? g[e] : g[e] * v[e];
        s = BLOCK ? block_reduce(s, add, sh) : warp_all(s, add);
#pragma unroll
        for (int e = 0; e < E; e++) g[e] = log_out ? g[e] - exp(v[e]) * s : v[e] * (g[e] - s);
        held_row_store<T, A, E, V>(gx + r * n, g, n, t, G);
    }
}

// A block's row, V elements at a time from column V t for thread t: f(j, a) for each element a at column j.
template <typename T, int V, typename F>
__device__ __forceinline__ void block_row_each(const T* row, i64 n, F f) {
    for (i64 j = (i64) threadIdx.x * V; j < n; j += (i64) blockDim.x * V) {
        if constexpr (V == 1) {
            f(j, row[j]);
        } else {
            Vec16<T> x;
            x.load(row + j);
#pragma unroll
            for (int k = 0; k < V; k++) f(j + k, x.v[k]);
        }
    }
}

template <typename T, int V>
__device__ __forceinline__ void softmax_block_fwd(T* y, const T* x, i64 rows, i64 n, int log_out) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[32];
    const A ninf = -(A) __int_as_float(0x7f800000);
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * n;
        T* yr = y + r * n;
        A m = ninf, s = 0;                                      // this thread's running maximum and sum of exp(x - m)
        block_row_each<T, V>(xr, n, [&](i64, T t) {
            A a = load<A, T>(t), nm = softmax_max(m, a);
            s = (m == ninf ? (A) 0 : s * exp(m - nm)) + (a == ninf && nm != ninf ? (A) 0 : exp(a - nm));
            m = nm;
        });
        A bm = block_reduce(m, [](A a, A b) { return softmax_max(a, b); }, sh);
        s = block_reduce(m == ninf && bm != ninf ? (A) 0 : s * exp(m - bm), [](A a, A b) { return a + b; }, sh);
        A ls = log(s), inv = (A) 1 / s;
        for (i64 j = (i64) threadIdx.x * V; j < n; j += (i64) blockDim.x * V) {
            Vec16<T> in;
            if constexpr (V == 1) in.v[0] = xr[j]; else in.load(xr + j);
#pragma unroll
            for (int k = 0; k < V; k++) {
                A z = load<A, T>(in.v[k]) - bm;
                in.v[k] = store<T, A>(log_out ? z - ls : exp(z) * inv);
            }
            if constexpr (V == 1) yr[j] = in.v[0]; else in.store(yr + j);
        }
    }
}

/* gx = y * (gy - sum(gy * y)) for softmax; gx = gy - exp(y) * sum(gy) for log_softmax (y is the output). */
template <typename T, int V>
__device__ __forceinline__ void softmax_block_bwd(T* gx, const T* gy, const T* y, i64 rows, i64 n, int log_out) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[32];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* gr = gy + r * n; const T* yr = y + r * n; T* xr = gx + r * n;
        A s = 0;
        for (i64 j = (i64) threadIdx.x * V; j < n; j += (i64) blockDim.x * V) {
            Vec16<T> gv, yv;
            if constexpr (V == 1) { gv.v[0] = gr[j]; yv.v[0] = yr[j]; } else { gv.load(gr + j); yv.load(yr + j); }
#pragma unroll
            for (int k = 0; k < V; k++) s += log_out ? load<A, T>(gv.v[k]) : load<A, T>(gv.v[k]) * load<A, T>(yv.v[k]);
        }
        s = block_reduce(s, [](A a, A b) { return a + b; }, sh);
        for (i64 j = (i64) threadIdx.x * V; j < n; j += (i64) blockDim.x * V) {
            Vec16<T> gv, yv;
            if constexpr (V == 1) { gv.v[0] = gr[j]; yv.v[0] = yr[j]; } else { gv.load(gr + j); yv.load(yr + j); }
#pragma unroll
            for (int k = 0; k < V; k++) {
                A g = load<A, T>(gv.v[k]), v = load<A, T>(yv.v[k]);
                gv.v[k] = store<T, A>(log_out ? g - exp(v) * s : v * (g - s));
            }
            if constexpr (V == 1) xr[j] = gv.v[0]; else gv.store(xr + j);
        }
    }
}

// softmax_{fwd,bwd}[_v]_S: a block a row, any length; softmax_held_{fwd,bwd}[_v]_S: a block of 256 a row of up to 8,192
// held in registers; softmax_warp_{fwd,bwd}_E[v]_S: a warp a row of up to 32 E elements (E = 1, 2, ..., 32); "v":
// 16-byte vectors (warps: E >= 8 only)
#define SOFTMAX_HELD(T, S, KIND, E, SUFFIX, V, BLOCK) \
extern "C" __global__ void softmax_##KIND##_fwd##SUFFIX##_##S(T* y, const T* x, i64 rows, int n, int log_out) { \
    softmax_held_fwd<T, E, V, BLOCK>(y, x, rows, n, log_out); \
} \
extern "C" __global__ void softmax_##KIND##_bwd##SUFFIX##_##S(T* gx, const T* gy, const T* y, i64 rows, int n, int log_out) { \
    softmax_held_bwd<T, E, V, BLOCK>(gx, gy, y, rows, n, log_out); \
}
#define SOFTMAX(T, S) \
extern "C" __global__ void softmax_fwd_##S(T* y, const T* x, i64 rows, i64 n, int log_out) { softmax_block_fwd<T, 1>(y, x, rows, n, log_out); } \
extern "C" __global__ void softmax_fwd_v_##S(T* y, const T* x, i64 rows, i64 n, int log_out) { \
    softmax_block_fwd<T, Vec16<T>::N>(y, x, rows, n, log_out); \
} \
extern "C" __global__ void softmax_bwd_##S(T* gx, const T* gy, const T* y, i64 rows, i64 n, int log_out) { \
    softmax_block_bwd<T, 1>(gx, gy, y, rows, n, log_out); \
} \
extern "C" __global__ void softmax_bwd_v_##S(T* gx, const T* gy, const T* y, i64 rows, i64 n, int log_out) { \
    softmax_block_bwd<T, Vec16<T>::N>(gx, gy, y, rows, n, log_out); \
} \
SOFTMAX_HELD(T, S, held, 32, , 1, true) SOFTMAX_HELD(T, S, held, 32, _v, Vec16<T>::N, true) \
SOFTMAX_HELD(T, S, warp, 1, _1, 1, false) SOFTMAX_HELD(T, S, warp, 2, _2, 1, false) SOFTMAX_HELD(T, S, warp, 4, _4, 1, false) \
SOFTMAX_HELD(T, S, warp, 8, _8, 1, false) SOFTMAX_HELD(T, S, warp, 16, _16, 1, false) SOFTMAX_HELD(T, S, warp, 32, _32, 1, false) \
SOFTMAX_HELD(T, S, warp, 8, _8v, Vec16<T>::N, false) SOFTMAX_HELD(T, S, warp, 16, _16v, Vec16<T>::N, false) \
SOFTMAX_HELD(T, S, warp, 32, _32v, Vec16<T>::N, false)
KILN_FLOAT_TYPES(SOFTMAX)
