// Fused scaled-dot-product attention, forward and backward, flash-style: the scores of a query against one tile of
// keys live in registers and are folded into a running softmax (forward) or recomputed from the saved logsumexp
// (backward), so memory grows with the sequence length, never with its square.
//
// One thread owns one row (a query in the forward and the dq pass, a key in the dk and dv passes) and keeps it, and
// its accumulator, in registers; the block stages the other side's tile in shared memory, where every thread of a
// warp reads the same element at once (a broadcast). D is the head size rounded up to 32 or 64 (larger heads take the
// composite: a D of 128 would triple the compile time of this file for little use yet); rows are
// zero-padded to D, so the inner loops need no bounds. Arithmetic in float (double for float64).
//
// Layout: q/k/v/o/dq/dk/dv element (b, h, row, c) at base + b*sb + h*sh + row*sr + c (the last dim contiguous); the
// additive mask (b, h, i, j) at mask + b*mb + h*mh + i*ml + j*ms (strides 0 where it broadcasts), or null; logsumexp
// and delta contiguous (b*H + h, row). The grid is (row tiles, B*H).
#include "common.cuh"

#define ATT_ROWS 64
#define ATT_CHUNK 8   // keys scored before each rescale of the accumulator

// keys (or queries) per shared tile: two tiles of KT x D elements stay under 48 KB for every D and type
template <typename A, int D> struct AttTile { static const int KT = (int) (16384 / (sizeof(A) * D)) < 32 ? (int) (16384 / (sizeof(A) * D)) : 32; };

template <typename A>
__device__ __forceinline__ A att_neg_inf() { return -(A) __int_as_float(0x7f800000); }

// a register row . a shared row, and acc += p * a shared row: float rows are read 16 bytes at a time (one shared
// load per four FMAs; every thread of a warp reads the same address, so each load is one broadcast)
template <int D> __device__ __forceinline__ float att_dot(const float (&a)[D], const float* b) {
    float d0 = 0, d1 = 0;
#pragma unroll
    for (int c = 0; c < D; c += 4) {
        float4 v = *reinterpret_cast<const float4*>(b + c);
        d0 += a[c] * v.x; d1 += a[c + 1] * v.y; d0 += a[c + 2] * v.z; d1 += a[c + 3] * v.w;
    }
    return d0 + d1;
}
template <int D> __device__ __forceinline__ double att_dot(const double (&a)[D], const double* b) {
    double d0 = 0, d1 = 0;
#pragma unroll
    for (int c = 0; c < D; c += 2) { d0 += a[c] * b[c]; d1 += a[c + 1] * b[c + 1]; }
    return d0 + d1;
}
template <int D> __device__ __forceinline__ void att_axpy(float (&acc)[D], float p, const float* b) {
#pragma unroll
    for (int c = 0; c < D; c += 4) {
        float4 v = *reinterpret_cast<const float4*>(b + c);
        acc[c] += p * v.x; acc[c + 1] += p * v.y; acc[c + 2] += p * v.z; acc[c + 3] += p * v.w;
    }
}
template <int D> __device__ __forceinline__ void att_axpy(double (&acc)[D], double p, const double* b) {
#pragma unroll
    for (int c = 0; c < D; c++) acc[c] += p * b[c];
}

// Loads rows [r0, r0 + KT) of x (n rows of e valid columns) into sh (KT x D), scaled, zero beyond n and e.
template <typename T, typename A, int D, int KT>
__device__ __forceinline__ void att_load_tile(A (*sh)[D], const T* x, i64 sr, int r0, int n, int e, A scale) {
    for (int t = threadIdx.x; t < KT * D; t += blockDim.x) {
        int r = t / D, c = t - r * D, row = r0 + r;
        sh[r][c] = row < n && c < e ? load<A, T>(x[(i64) row * sr + c]) * scale : (A) 0;
    }
}

// ---- forward: thread per query; o = softmax(scale q k^T + mask) v, lse = logsumexp of the scaled scores
template <typename T, int D>
__device__ __forceinline__ void attention_fwd_impl(T* o, typename Acc<T>::type* lse, const T* q, const T* k, const T* v,
        const typename Acc<T>::type* mask, int heads, int L, int S, int d, int dv, int causal, double scale_d,
        i64 qb, i64 qh, i64 ql, i64 kb, i64 kh, i64 kl, i64 vb, i64 vh, i64 vl, i64 ob, i64 oh, i64 ol,
        i64 mb, i64 mh, i64 ml, i64 ms) {
    typedef typename Acc<T>::type A;
    const int KT = AttTile<A, D>::KT;
    __shared__ __align__(16) A ks[KT][D], vs[KT][D];
    int bh = blockIdx.y, b = bh / heads, h = bh - b * heads;
    int row0 = blockIdx.x * ATT_ROWS, i = row0 + threadIdx.x;
    bool live = i < L;
    const T* qr = q + b * qb + h * qh + (i64) (live ? i : 0) * ql;
    const T* kbase = k + b * kb + h * kh;
    const T* vbase = v + b * vb + h * vh;
    const A* mrow = mask ? mask + b * mb + h * mh + (i64) (live ? i : 0) * ml : 0;
    A qreg[D], acc[D];
#pragma unroll
    for (int c = 0; c < D; c++) { qreg[c] = live && c < d ? load<A, T>(qr[c]) * (A) scale_d : (A) 0; acc[c] = 0; }
    A m = att_neg_inf<A>(), l = 0;
    int kend = causal ? min(S, row0 + ATT_ROWS) : S;
    for (int j0 = 0; j0 < kend; j0 += KT) {
        __syncthreads();
        att_load_tile<T, A, D, KT>(ks, kbase + (i64) j0 * kl, kl, 0, S - j0, d, (A) 1);
        att_load_tile<T, A, D, KT>(vs, vbase + (i64) j0 * vl, vl, 0, S - j0, dv, (A) 1);
        __syncthreads();
        if (!live) continue;
#pragma unroll 1
        for (int r0 = 0; r0 < KT; r0 += ATT_CHUNK) {     // ATT_CHUNK scores at a time, then one rescale
            A s[ATT_CHUNK], tmax = att_neg_inf<A>();
#pragma unroll
            for (int u = 0; u < ATT_CHUNK; u++) {
                int r = r0 + u, j = j0 + r;
                A sc = att_dot<D>(qreg, ks[r]);
                if (j >= S || (causal && j > i)) sc = att_neg_inf<A>();
                else if (mrow) sc += mrow[(i64) j * ms];
                s[u] = sc;
                tmax = fmax(tmax, sc);
            }
            A mnew = fmax(m, tmax);
            if (mnew == att_neg_inf<A>()) continue;      // every key so far hidden
            A corr = exp(m - mnew);
            l *= corr;
#pragma unroll
            for (int c = 0; c < D; c++) acc[c] *= corr;
#pragma unroll
            for (int u = 0; u < ATT_CHUNK; u++) {
                A p = exp(s[u] - mnew);
                l += p;
                att_axpy<D>(acc, p, vs[r0 + u]);
            }
            m = mnew;
        }
    }
    if (!live) return;
    T* orow = o + b * ob + h * oh + (i64) i * ol;
    A inv = (A) 1 / l;                                // l = 0 (no key visible): NaN, as the composite
#pragma unroll
    for (int c = 0; c < D; c++) if (c < dv) orow[c] = store<T, A>(l == 0 ? (A) 0 / (A) 0 : acc[c] * inv);
    lse[(i64) bh * L + i] = m + log(l);
}

// ---- backward, 1: delta[row] = sum_c dO[row, c] * O[row, c]
template <typename T>
__device__ __forceinline__ void attention_delta_impl(typename Acc<T>::type* delta, const T* g, const T* o, int heads, int L, int dv,
        i64 gb, i64 gh, i64 gl, i64 ob, i64 oh, i64 ol) {
    typedef typename Acc<T>::type A;
    int bh = blockIdx.y, b = bh / heads, h = bh - b * heads, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= L) return;
    const T* gr = g + b * gb + h * gh + (i64) i * gl;
    const T* orow = o + b * ob + h * oh + (i64) i * ol;
    A s = 0;
    for (int c = 0; c < dv; c++) s += load<A, T>(gr[c]) * load<A, T>(orow[c]);
    delta[(i64) bh * L + i] = s;
}

// ---- backward, 2: thread per query; dq = scale * sum_j p_ij (dO_i . v_j - delta_i) k_j
template <typename T, int D>
__device__ __forceinline__ void attention_bwd_dq_impl(T* dq, const T* g, const T* q, const T* k, const T* v,
        const typename Acc<T>::type* lse, const typename Acc<T>::type* delta, const typename Acc<T>::type* mask,
        int heads, int L, int S, int d, int dv, int causal, double scale_d,
        i64 qb, i64 qh, i64 ql, i64 kb, i64 kh, i64 kl, i64 vb, i64 vh, i64 vl, i64 gb, i64 gh, i64 gl, i64 db, i64 dh, i64 dl,
        i64 mb, i64 mh, i64 ml, i64 ms) {
    typedef typename Acc<T>::type A;
    const int KT = AttTile<A, D>::KT;
    __shared__ __align__(16) A ks[KT][D], vs[KT][D];
    int bh = blockIdx.y, b = bh / heads, h = bh - b * heads;
    int row0 = blockIdx.x * ATT_ROWS, i = row0 + threadIdx.x;
    bool live = i < L;
    int ic = live ? i : 0;
    const T* qr = q + b * qb + h * qh + (i64) ic * ql;
    const T* gr = g + b * gb + h * gh + (i64) ic * gl;
    const A* mrow = mask ? mask + b * mb + h * mh + (i64) ic * ml : 0;
    A scale = (A) scale_d;
    A qreg[D], greg[D], acc[D];
#pragma unroll
    for (int c = 0; c < D; c++) {
        qreg[c] = live && c < d ? load<A, T>(qr[c]) * scale : (A) 0;
        greg[c] = live && c < dv ? load<A, T>(gr[c]) : (A) 0;
        acc[c] = 0;
    }
    A li = live ? lse[(i64) bh * L + i] : 0, di = live ? delta[(i64) bh * L + i] : 0;
    int kend = causal ? min(S, row0 + ATT_ROWS) : S;
    for (int j0 = 0; j0 < kend; j0 += KT) {
        __syncthreads();
        att_load_tile<T, A, D, KT>(ks, k + b * kb + h * kh + (i64) j0 * kl, kl, 0, S - j0, d, (A) 1);
        att_load_tile<T, A, D, KT>(vs, v + b * vb + h * vh + (i64) j0 * vl, vl, 0, S - j0, dv, (A) 1);
        __syncthreads();
        if (!live) continue;
#pragma unroll 1
        for (int r = 0; r < KT; r++) {
            int j = j0 + r;
            if (j >= S || (causal && j > i)) continue;
            A sc = att_dot<D>(qreg, ks[r]), dp = att_dot<D>(greg, vs[r]);
            if (mrow) sc += mrow[(i64) j * ms];
            A p = exp(sc - li);
            if (!(p > 0)) continue;
            att_axpy<D>(acc, p * (dp - di), ks[r]);
        }
    }
    if (!live) return;
    T* out = dq + b * db + h * dh + (i64) i * dl;
#pragma unroll
    for (int c = 0; c < D; c++) if (c < d) out[c] = store<T, A>(acc[c] * scale);
}

// ---- backward, 3: thread per key j over the queries that see it. DK: dk_j = sum_i ds_ij (scale q_i);
// otherwise dv_j = sum_i p_ij dO_i. Two passes keep each under the register budget of three D-rows.
template <typename T, int D, bool DK>
__device__ __forceinline__ void attention_bwd_dkv_impl(T* out, const T* g, const T* q, const T* k, const T* v,
        const typename Acc<T>::type* lse, const typename Acc<T>::type* delta, const typename Acc<T>::type* mask,
        int heads, int L, int S, int d, int dv, int causal, double scale_d,
        i64 qb, i64 qh, i64 ql, i64 kb, i64 kh, i64 kl, i64 vb, i64 vh, i64 vl, i64 gb, i64 gh, i64 gl, i64 xb, i64 xh, i64 xl,
        i64 mb, i64 mh, i64 ml, i64 ms) {
    typedef typename Acc<T>::type A;
    const int KT = AttTile<A, D>::KT;
    __shared__ __align__(16) A qs[KT][D], gs[KT][D];
    __shared__ A lses[KT], deltas[KT];
    int bh = blockIdx.y, b = bh / heads, h = bh - b * heads;
    int col0 = blockIdx.x * ATT_ROWS, j = col0 + threadIdx.x;
    bool live = j < S;
    int jc = live ? j : 0;
    const T* kr = k + b * kb + h * kh + (i64) jc * kl;
    const T* vr = v + b * vb + h * vh + (i64) jc * vl;
    const A* mcol = mask ? mask + b * mb + h * mh + (i64) jc * ms : 0;
    A scale = (A) scale_d;
    A kreg[D], vreg[D], acc[D];
#pragma unroll
    for (int c = 0; c < D; c++) {
        kreg[c] = live && c < d ? load<A, T>(kr[c]) : (A) 0;
        vreg[c] = DK && live && c < dv ? load<A, T>(vr[c]) : (A) 0;
        acc[c] = 0;
    }
    int istart = causal ? col0 : 0;                 // query i sees key j only when i >= j
    for (int i0 = istart; i0 < L; i0 += KT) {
        __syncthreads();
        att_load_tile<T, A, D, KT>(qs, q + b * qb + h * qh + (i64) i0 * ql, ql, 0, L - i0, d, scale);
        att_load_tile<T, A, D, KT>(gs, g + b * gb + h * gh + (i64) i0 * gl, gl, 0, L - i0, dv, (A) 1);
        for (int t = threadIdx.x; t < KT; t += blockDim.x) {
            lses[t] = i0 + t < L ? lse[(i64) bh * L + i0 + t] : (A) 0;
            deltas[t] = i0 + t < L ? delta[(i64) bh * L + i0 + t] : (A) 0;
        }
        __syncthreads();
        if (!live) continue;
#pragma unroll 1
        for (int r = 0; r < KT; r++) {
            int i = i0 + r;
            if (i >= L || (causal && j > i)) continue;
            A sc = att_dot<D>(kreg, qs[r]);
            if (mcol) sc += mcol[(i64) i * ml];
            A p = exp(sc - lses[r]);
            if (!(p > 0)) continue;
            if (DK) att_axpy<D>(acc, p * (att_dot<D>(vreg, gs[r]) - deltas[r]), qs[r]);
            else att_axpy<D>(acc, p, gs[r]);
        }
    }
    if (!live) return;
    T* orow = out + b * xb + h * xh + (i64) j * xl;
    int e = DK ? d : dv;
#pragma unroll
    for (int c = 0; c < D; c++) if (c < e) orow[c] = store<T, A>(acc[c]);
}

#define ATT_GEO i64 qb, i64 qh, i64 ql, i64 kb, i64 kh, i64 kl, i64 vb, i64 vh, i64 vl
#define ATT_GEO_ARGS qb, qh, ql, kb, kh, kl, vb, vh, vl
#define ATTENTION_D(T, S, D) \
extern "C" __global__ void __launch_bounds__(ATT_ROWS) attention_fwd_d##D##_##S(T* o, typename Acc<T>::type* lse, const T* q, \
        const T* k, const T* v, const typename Acc<T>::type* mask, int heads, int L, int Sk, int d, int dv, int causal, double scale, \
        ATT_GEO, i64 ob, i64 oh, i64 ol, i64 mb, i64 mh, i64 ml, i64 ms) { \
    attention_fwd_impl<T, D>(o, lse, q, k, v, mask, heads, L, Sk, d, dv, causal, scale, ATT_GEO_ARGS, ob, oh, ol, mb, mh, ml, ms); \
} \
extern "C" __global__ void __launch_bounds__(ATT_ROWS) attention_bwd_dq_d##D##_##S(T* dq, const T* g, const T* q, const T* k, \
        const T* v, const typename Acc<T>::type* lse, const typename Acc<T>::type* delta, const typename Acc<T>::type* mask, int heads, \
        int L, int Sk, int d, int dv, int causal, double scale, ATT_GEO, i64 gb, i64 gh, i64 gl, i64 xb, i64 xh, i64 xl, \
        i64 mb, i64 mh, i64 ml, i64 ms) { \
    attention_bwd_dq_impl<T, D>(dq, g, q, k, v, lse, delta, mask, heads, L, Sk, d, dv, causal, scale, ATT_GEO_ARGS, gb, gh, gl, \
            xb, xh, xl, mb, mh, ml, ms); \
} \
extern "C" __global__ void __launch_bounds__(ATT_ROWS) attention_bwd_dk_d##D##_##S(T* dk, const T* g, const T* q, const T* k, \
        const T* v, const typename Acc<T>::type* lse, const typename Acc<T>::type* delta, const typename Acc<T>::type* mask, int heads, \
        int L, int Sk, int d, int dv, int causal, double scale, ATT_GEO, i64 gb, i64 gh, i64 gl, i64 xb, i64 xh, i64 xl, \
        i64 mb, i64 mh, i64 ml, i64 ms) { \
    attention_bwd_dkv_impl<T, D, true>(dk, g, q, k, v, lse, delta, mask, heads, L, Sk, d, dv, causal, scale, ATT_GEO_ARGS, gb, gh, gl, \
            xb, xh, xl, mb, mh, ml, ms); \
} \
extern "C" __global__ void __launch_bounds__(ATT_ROWS) attention_bwd_dv_d##D##_##S(T* dvo, const T* g, const T* q, const T* k, \
        const T* v, const typename Acc<T>::type* lse, const typename Acc<T>::type* delta, const typename Acc<T>::type* mask, int heads, \
        int L, int Sk, int d, int dv, int causal, double scale, ATT_GEO, i64 gb, i64 gh, i64 gl, i64 xb, i64 xh, i64 xl, \
        i64 mb, i64 mh, i64 ml, i64 ms) { \
    attention_bwd_dkv_impl<T, D, false>(dvo, g, q, k, v, lse, delta, mask, heads, L, Sk, d, dv, causal, scale, ATT_GEO_ARGS, gb, gh, gl, \
            xb, xh, xl, mb, mh, ml, ms); \
}

#define ATTENTION(T, S) \
ATTENTION_D(T, S, 32) ATTENTION_D(T, S, 64) \
extern "C" __global__ void attention_delta_##S(typename Acc<T>::type* delta, const T* g, const T* o, int heads, int L, int dv, \
        i64 gb, i64 gh, i64 gl, i64 ob, i64 oh, i64 ol) { \
    attention_delta_impl<T>(delta, g, o, heads, L, dv, gb, gh, gl, ob, oh, ol); \
}
KILN_FLOAT_TYPES(ATTENTION)
