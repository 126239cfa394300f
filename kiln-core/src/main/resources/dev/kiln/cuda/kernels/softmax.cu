// softmax / log_softmax over the innermost dimension of a contiguous (rows, n) array, forward and backward.
// Rows of up to 1,024 elements: a warp per row, the row held in registers (E elements a lane), so it is read once and
// reduced by shuffles alone; up to 8,192: a block of 256 per row, 32 elements a thread in registers. Longer rows: a
// block per row, one pass for the maximum and the sum of exponentials together (the sum rescaled as the maximum
// grows), one for the output; or, when the rows are too few to fill the GPU, a block per segment of a row. Rows whose
// length is a multiple of 16 bytes (and aligned) move 16 bytes a thread (V elements); the others an element at a time
// (V = 1). Arithmetic in float for the 32- and 16-bit types, double for float64.
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

// Longer rows, a block over columns [lo, hi) of a row, V at a time from column lo + V t for thread t (lo and hi - lo
// multiples of V when V > 1).
#define SOFTMAX_SEGMENT 8192   // rows too few to fill the GPU are cut into segments of this many, a block each

// (m, s) and (m2, s2), sums of exp(x - m) over two sets, as one: a set whose maximum is -inf adds nothing
template <typename A>
__device__ __forceinline__ void softmax_merge(A& m, A& s, A m2, A s2) {
    const A ninf = -(A) __int_as_float(0x7f800000);
    A nm = softmax_max(m, m2);
    s = (m == ninf ? (A) 0 : s * exp(m - nm)) + (m2 == ninf ? (A) 0 : s2 * exp(m2 - nm));
    m = nm;
}
// Every thread's (m, s) merged over the block; every thread gets the result.
template <typename A>
__device__ __forceinline__ void softmax_block_merge(A& m, A& s, A* sh) {
    const A ninf = -(A) __int_as_float(0x7f800000);
    A bm = block_reduce(m, [](A a, A b) { return softmax_max(a, b); }, sh);
    s = block_reduce(m == ninf ? (A) 0 : s * exp(m - bm), [](A a, A b) { return a + b; }, sh);
    m = bm;
}
// The block's maximum m and sum s of exp(x - m) over the columns, in one pass (the sum rescaled as the maximum grows).
template <typename T, int V, typename A>
__device__ __forceinline__ void softmax_range_stats(const T* xr, i64 lo, i64 hi, A& m, A& s, A* sh) {
    const A ninf = -(A) __int_as_float(0x7f800000);
    m = ninf;
    s = 0;
    for (i64 j = lo + (i64) threadIdx.x * V; j < hi; j += (i64) blockDim.x * V) {
        Vec16<T> in;
        if constexpr (V == 1) in.v[0] = xr[j]; else in.load(xr + j);
#pragma unroll
        for (int k = 0; k < V; k++) softmax_merge(m, s, load<A, T>(in.v[k]), (A) 1);
    }
    softmax_block_merge(m, s, sh);
}
template <typename T, int V, typename A>
__device__ __forceinline__ void softmax_range_write(T* yr, const T* xr, i64 lo, i64 hi, A m, A s, int log_out) {
    A ls = log(s), inv = (A) 1 / s;
    for (i64 j = lo + (i64) threadIdx.x * V; j < hi; j += (i64) blockDim.x * V) {
        Vec16<T> in;
        if constexpr (V == 1) in.v[0] = xr[j]; else in.load(xr + j);
#pragma unroll
        for (int k = 0; k < V; k++) {
            A z = load<A, T>(in.v[k]) - m;
            in.v[k] = store<T, A>(log_out ? z - ls : exp(z) * inv);
        }
        if constexpr (V == 1) yr[j] = in.v[0]; else in.store(yr + j);
    }
}
// The block's sum of gy * y (softmax) or of gy (log_softmax) over the columns.
template <typename T, int V, typename A>
__device__ __forceinline__ A softmax_range_dot(const T* gr, const T* yr, i64 lo, i64 hi, int log_out, A* sh) {
    A s = 0;
    for (i64 j = lo + (i64) threadIdx.x * V; j < hi; j += (i64) blockDim.x * V) {
        Vec16<T> gv, yv;
        if constexpr (V == 1) { gv.v[0] = gr[j]; yv.v[0] = yr[j]; } else { gv.load(gr + j); yv.load(yr + j); }
#pragma unroll
        for (int k = 0; k < V; k++) s += log_out ? load<A, T>(gv.v[k]) : load<A, T>(gv.v[k]) * load<A, T>(yv.v[k]);
    }
    return block_reduce(s, [](A a, A b) { return a + b; }, sh);
}
/* gx = y * (gy - s) for softmax; gx = gy - exp(y) * s for log_softmax (y is the output, s softmax_range_dot's sum). */
template <typename T, int V, typename A>
__device__ __forceinline__ void softmax_range_grad(T* xr, const T* gr, const T* yr, i64 lo, i64 hi, A s, int log_out) {
    for (i64 j = lo + (i64) threadIdx.x * V; j < hi; j += (i64) blockDim.x * V) {
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

// A block a row (any length): two passes over it.
template <typename T, int V>
__device__ __forceinline__ void softmax_block_fwd(T* y, const T* x, i64 rows, i64 n, int log_out) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[32];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        A m, s;
        softmax_range_stats<T, V>(x + r * n, 0, n, m, s, sh);
        softmax_range_write<T, V>(y + r * n, x + r * n, 0, n, m, s, log_out);
    }
}
template <typename T, int V>
__device__ __forceinline__ void softmax_block_bwd(T* gx, const T* gy, const T* y, i64 rows, i64 n, int log_out) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[32];
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        A s = softmax_range_dot<T, V>(gy + r * n, y + r * n, 0, n, log_out, sh);
        softmax_range_grad<T, V>(gx + r * n, gy + r * n, y + r * n, 0, n, s, log_out);
    }
}

// A block (segment, row) of grid (segments, rows): the segments' parts (forward: maximum and sum of exponentials;
// backward: the sum of softmax_range_dot), then each block merges its row's parts and writes its segment.
template <typename T, int V>
__device__ __forceinline__ void softmax_parts_fwd(typename Acc<T>::type* pm, typename Acc<T>::type* ps, const T* x, i64 n) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[32];
    i64 row = blockIdx.y, lo = (i64) blockIdx.x * SOFTMAX_SEGMENT, hi = min(n, lo + SOFTMAX_SEGMENT);
    A m, s;
    softmax_range_stats<T, V>(x + row * n, lo, hi, m, s, sh);
    if (threadIdx.x == 0) {
        pm[row * gridDim.x + blockIdx.x] = m;
        ps[row * gridDim.x + blockIdx.x] = s;
    }
}
template <typename T, int V>
__device__ __forceinline__ void softmax_split_fwd(T* y, const T* x, const typename Acc<T>::type* pm, const typename Acc<T>::type* ps,
                                                  i64 n, int log_out) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[32];
    const A ninf = -(A) __int_as_float(0x7f800000);
    i64 row = blockIdx.y, lo = (i64) blockIdx.x * SOFTMAX_SEGMENT, hi = min(n, lo + SOFTMAX_SEGMENT);
    A m = ninf, s = 0;
    for (int k = threadIdx.x; k < (int) gridDim.x; k += blockDim.x) softmax_merge(m, s, pm[row * gridDim.x + k], ps[row * gridDim.x + k]);
    softmax_block_merge(m, s, sh);
    softmax_range_write<T, V>(y + row * n, x + row * n, lo, hi, m, s, log_out);
}
template <typename T, int V>
__device__ __forceinline__ void softmax_parts_bwd(typename Acc<T>::type* ps, const T* gy, const T* y, i64 n, int log_out) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[32];
    i64 row = blockIdx.y, lo = (i64) blockIdx.x * SOFTMAX_SEGMENT, hi = min(n, lo + SOFTMAX_SEGMENT);
    A s = softmax_range_dot<T, V>(gy + row * n, y + row * n, lo, hi, log_out, sh);
    if (threadIdx.x == 0) ps[row * gridDim.x + blockIdx.x] = s;
}
template <typename T, int V>
__device__ __forceinline__ void softmax_split_bwd(T* gx, const T* gy, const T* y, const typename Acc<T>::type* ps, i64 n, int log_out) {
    typedef typename Acc<T>::type A;
    __shared__ A sh[32];
    i64 row = blockIdx.y, lo = (i64) blockIdx.x * SOFTMAX_SEGMENT, hi = min(n, lo + SOFTMAX_SEGMENT);
    A s = 0;
    for (int k = threadIdx.x; k < (int) gridDim.x; k += blockDim.x) s += ps[row * gridDim.x + k];
    s = block_reduce(s, [](A a, A b) { return a + b; }, sh);
    softmax_range_grad<T, V>(gx + row * n, gy + row * n, y + row * n, lo, hi, s, log_out);
}

// softmax_{parts,split}_{fwd,bwd}[_v]_S: rows cut into segments (two launches);
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
#define SOFTMAX_SPLIT(T, S, SUFFIX, V) \
extern "C" __global__ void softmax_parts_fwd##SUFFIX##_##S(Acc<T>::type* pm, Acc<T>::type* ps, const T* x, i64 n) { \
    softmax_parts_fwd<T, V>(pm, ps, x, n); \
} \
extern "C" __global__ void softmax_split_fwd##SUFFIX##_##S(T* y, const T* x, const Acc<T>::type* pm, const Acc<T>::type* ps, i64 n, \
        int log_out) { \
    softmax_split_fwd<T, V>(y, x, pm, ps, n, log_out); \
} \
extern "C" __global__ void softmax_parts_bwd##SUFFIX##_##S(Acc<T>::type* ps, const T* gy, const T* y, i64 n, int log_out) { \
    softmax_parts_bwd<T, V>(ps, gy, y, n, log_out); \
} \
extern "C" __global__ void softmax_split_bwd##SUFFIX##_##S(T* gx, const T* gy, const T* y, const Acc<T>::type* ps, i64 n, int log_out) { \
    softmax_split_bwd<T, V>(gx, gy, y, ps, n, log_out); \
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
SOFTMAX_HELD(T, S, warp, 32, _32v, Vec16<T>::N, false) \
SOFTMAX_SPLIT(T, S, , 1) SOFTMAX_SPLIT(T, S, _v, Vec16<T>::N)
KILN_FLOAT_TYPES(SOFTMAX)
