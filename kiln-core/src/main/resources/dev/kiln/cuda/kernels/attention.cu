// Fused scaled-dot-product attention, forward and backward, flash-style: the scores of a query against one tile of
// keys live in registers and are folded into a running softmax (forward) or recomputed from the saved logsumexp
// (backward), so memory grows with the sequence length, never with its square. Two families: bfloat16, float16 and
// float32 on tensor cores (FlashAttention-2, below), and float64 a thread per row (first).
//
// float64: one thread owns one row (a query in the forward and the dq pass, a key in the dk and dv passes) and keeps
// it, and its accumulator, in registers; the block stages the other side's tile in shared memory, where every thread
// of a warp reads the same element at once (a broadcast). D is the head size rounded up to 32 or 64 (larger heads take
// the composite); rows are zero-padded to D, so the inner loops need no bounds.
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

// a register row . a shared row, and acc += p * a shared row (every thread of a warp reads the same address: a broadcast)
template <int D> __device__ __forceinline__ double att_dot(const double (&a)[D], const double* b) {
    double d0 = 0, d1 = 0;
#pragma unroll
    for (int c = 0; c < D; c += 2) { d0 += a[c] * b[c]; d1 += a[c + 1] * b[c + 1]; }
    return d0 + d1;
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
ATTENTION(double, f64)

// ==== The tensor-core path for bfloat16 and float16 (head sizes up to 64): FlashAttention-2 on mma.sync m16n8k16
// with float accumulators. Forward: a block of 4 warps owns 64 queries (16 per warp) and walks 64-key tiles, K and V
// double-buffered in shared memory by cp.async; the scores of a tile stay in registers (online softmax in log2 units,
// so each exponential is one ex2), P is reused as the A operand of P·V; tiles above the causal diagonal are never
// visited and only tiles that cross it (or the sequence's end, or a mask) test each score. Backward: delta =
// rowsum(dO·O) first (attention_mma_delta, which also zeroes the dq scratch); then a block owns 64 keys (16 per warp)
// and walks the 64-query tiles that see them: S^T = K·Q^T and dP^T = V·dO^T, then dV += P^T·dO and dK += dS^T·Q in
// registers; dS goes through shared memory for dQ += dS·K, added with vector float atomics to the scratch buffer that
// attention_mma_dq_finish scales and casts; the next query tile's loads run under that product. Fragments come from
// shared memory by ldmatrix (.trans for the operands read across rows); rows are padded by 8 elements, so the eight
// 16-byte rows of each 8x8 matrix fall in distinct banks. With `vec` (every row 16-byte aligned and head sizes a multiple
// of 8) tiles move in 16-byte cp.async chunks, else element by element.
template <typename T> struct Mma;
template <> struct Mma<bf16> {
    static __device__ __forceinline__ void run(float* c, const unsigned* a, unsigned b0, unsigned b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ unsigned pack(float lo, float hi) {
        unsigned r;
        asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
        return r;
    }
};
template <> struct Mma<f16> {
    static __device__ __forceinline__ void run(float* c, const unsigned* a, unsigned b0, unsigned b1) {
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    }
    static __device__ __forceinline__ unsigned pack(float lo, float hi) {
        unsigned r;
        asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
        return r;
    }
};

#define MMA_LOG2E 1.4426950408889634f
__device__ __forceinline__ float mma_exp2(float x) { float y; asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
// four 8x8 matrices of 16-bit elements; lanes 8m..8m+7 give the row addresses of matrix m
__device__ __forceinline__ void mma_ldsm(unsigned (&r)[4], const unsigned short* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(mma_smem(p)));
}
__device__ __forceinline__ void mma_ldsm_t(unsigned (&r)[4], const unsigned short* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(mma_smem(p)));
}
__device__ __forceinline__ void mma_red2(float* p, float a, float b) {
    asm volatile("red.global.add.v2.f32 [%0], {%1, %2};\n" :: "l"(p), "f"(a), "f"(b) : "memory");
}

// Rows [0, 64) of x (n valid rows of e valid columns, row stride sr) into sh, zero-padded; by cp.async when vec.
template <int D>
__device__ __forceinline__ void mma_tile(unsigned short (*sh)[D + 8], const unsigned short* x, i64 sr, int n, int e, bool vec) {
    if (vec) {
        for (int t = threadIdx.x; t < 64 * D / 8; t += 128) {
            int r = t / (D / 8), c = (t - r * (D / 8)) * 8;
            bool ok = r < n && c < e;
            mma_cp16(&sh[r][c], ok ? x + (i64) r * sr + c : x, ok);
        }
    } else {
        for (int t = threadIdx.x; t < 64 * D; t += 128) {
            int r = t / D, c = t - r * D;
            sh[r][c] = r < n && c < e ? x[(i64) r * sr + c] : (unsigned short) 0;
        }
    }
}

// The A fragments (16 rows from r0, k-step kk) of a row-major shared tile.
template <int W>
__device__ __forceinline__ void mma_a(unsigned (&a)[4], unsigned short (*sh)[W + 8], int r0, int kk, int lane) {
    mma_ldsm(a, &sh[r0 + (lane & 15)][kk * 16 + (lane >> 4) * 8]);
}
// k-step kk of c[0..7] (16 x 64) += A (16 x D) times the 64 rows of sh read as columns (B[k][n] = sh[n][k]).
template <typename T, int D>
__device__ __forceinline__ void mma_abt_step(float (*c)[4], const unsigned (&a)[4], unsigned short (*sh)[D + 8], int kk, int lane) {
#pragma unroll
    for (int np = 0; np < 4; np++) {
        unsigned b[4];
        mma_ldsm(b, &sh[np * 16 + (lane & 7) + ((lane >> 4) << 3)][kk * 16 + ((lane >> 3) & 1) * 8]);
        Mma<T>::run(c[2 * np], a, b[0], b[1]);
        Mma<T>::run(c[2 * np + 1], a, b[2], b[3]);
    }
}
// All D/16 k-steps, A's fragments held in registers (the forward's Q, read once for every key tile).
template <typename T, int D>
__device__ __forceinline__ void mma_abt(float (*c)[4], const unsigned (*a)[4], unsigned short (*sh)[D + 8], int lane) {
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) mma_abt_step<T, D>(c, a[kk], sh, kk, lane);
}
// RT row tiles at once: c[rt] (16 x 64) += rows [r0 + 16 rt, r0 + 16 rt + 16) of ash times the 64 rows of sh read as
// columns, A's fragments read as each k-step needs them, each B fragment feeding RT products (the backward, whose dK and
// dV accumulators leave no room for all of A's fragments at D = 128, and the two-tile forward).
template <typename T, int D, int RT>
__device__ __forceinline__ void mma_abt_rows(float (*c)[8][4], unsigned short (*ash)[D + 8], int r0, unsigned short (*sh)[D + 8], int lane) {
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++) {
        unsigned a[RT][4];
#pragma unroll
        for (int rt = 0; rt < RT; rt++) mma_a<D>(a[rt], ash, r0 + 16 * rt, kk, lane);
#pragma unroll
        for (int np = 0; np < 4; np++) {
            unsigned b[4];
            mma_ldsm(b, &sh[np * 16 + (lane & 7) + ((lane >> 4) << 3)][kk * 16 + ((lane >> 3) & 1) * 8]);
#pragma unroll
            for (int rt = 0; rt < RT; rt++) {
                Mma<T>::run(c[rt][2 * np], a[rt], b[0], b[1]);
                Mma<T>::run(c[rt][2 * np + 1], a[rt], b[2], b[3]);
            }
        }
    }
}
// acc[rt] (16 x D) += P[rt] (16 x 64, the C layout of mma_abt, rounded to T) times sh (64 rows x D columns: B[k][n] =
// sh[k][n]), each B fragment feeding RT products.
template <typename T, int D, int RT>
__device__ __forceinline__ void mma_pv(float (*acc)[D / 8][4], const float (*p)[8][4], unsigned short (*sh)[D + 8], int lane) {
#pragma unroll
    for (int kk = 0; kk < 4; kk++) {
        unsigned a[RT][4];
#pragma unroll
        for (int rt = 0; rt < RT; rt++) {
            a[rt][0] = Mma<T>::pack(p[rt][2 * kk][0], p[rt][2 * kk][1]);
            a[rt][1] = Mma<T>::pack(p[rt][2 * kk][2], p[rt][2 * kk][3]);
            a[rt][2] = Mma<T>::pack(p[rt][2 * kk + 1][0], p[rt][2 * kk + 1][1]);
            a[rt][3] = Mma<T>::pack(p[rt][2 * kk + 1][2], p[rt][2 * kk + 1][3]);
        }
#pragma unroll
        for (int np = 0; np < D / 16; np++) {
            unsigned b[4];
            mma_ldsm_t(b, &sh[kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8][np * 16 + (lane >> 4) * 8]);
#pragma unroll
            for (int rt = 0; rt < RT; rt++) {
                Mma<T>::run(acc[rt][2 * np], a[rt], b[0], b[1]);
                Mma<T>::run(acc[rt][2 * np + 1], a[rt], b[2], b[3]);
            }
        }
    }
}

__device__ __forceinline__ float mma_row_max(float v) { v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1)); return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2)); }
__device__ __forceinline__ float mma_row_sum(float v) { v += __shfl_xor_sync(0xffffffffu, v, 1); return v + __shfl_xor_sync(0xffffffffu, v, 2); }

// One key tile of the online softmax (both forward kernels), for the two rows a thread holds in the mma C layout
// (rlo, rhi): the scores into log2 units, keys past S or above the diagonal hidden and the additive mask added only
// on edge tiles, the running maxima m and sums l updated, the accumulator rescaled, the scores turned into
// probabilities. A row whose keys are all hidden so far keeps p = 0, not NaN.
template <int NT, int D>
__device__ __forceinline__ void mma_softmax_tile(float (*s)[4], float (*acc)[4], float& mlo, float& mhi, float& llo, float& lhi,
                                                 bool edge, int j0, int S, bool causal, int rlo, int rhi, int L,
                                                 const float* mp, i64 ml, i64 ms, float sl2, int t4) {
    const float ninf = -__int_as_float(0x7f800000);
    float xlo = ninf, xhi = ninf;
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float x = s[nt][e] * sl2;
            if (edge) {
                int key = j0 + nt * 8 + t4 * 2 + (e & 1), row = e < 2 ? rlo : rhi;
                if (key >= S || (causal && key > row)) x = ninf;
                else if (mp && row < L) x += mp[(i64) row * ml + (i64) key * ms] * MMA_LOG2E;
            }
            s[nt][e] = x;
            if (e < 2) xlo = fmaxf(xlo, x); else xhi = fmaxf(xhi, x);
        }
    }
    float nlo = fmaxf(mlo, mma_row_max(xlo)), nhi = fmaxf(mhi, mma_row_max(xhi));
    float blo = nlo == ninf ? 0.f : nlo, bhi = nhi == ninf ? 0.f : nhi;
    float clo = mma_exp2(mlo - blo), chi = mma_exp2(mhi - bhi);
    llo *= clo;
    lhi *= chi;
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) { acc[nt][0] *= clo; acc[nt][1] *= clo; acc[nt][2] *= chi; acc[nt][3] *= chi; }
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
        s[nt][0] = mma_exp2(s[nt][0] - blo);
        s[nt][1] = mma_exp2(s[nt][1] - blo);
        s[nt][2] = mma_exp2(s[nt][2] - bhi);
        s[nt][3] = mma_exp2(s[nt][3] - bhi);
        llo += s[nt][0] + s[nt][1];
        lhi += s[nt][2] + s[nt][3];
    }
    mlo = nlo;
    mhi = nhi;
}

// Outputs col and col + 1 of a row of n: one 32-bit store when n is even (the rows Kiln allocates are then aligned).
template <typename T>
__device__ __forceinline__ void mma_store2(T* row, int col, int n, float a, float b) {
    if ((n & 1) == 0) {
        if (col < n) *reinterpret_cast<unsigned*>(row + col) = Mma<T>::pack(a, b);
    } else {
        if (col < n) row[col] = store<T, float>(a);
        if (col + 1 < n) row[col + 1] = store<T, float>(b);
    }
}

// The 16-bit kernels' shared tiles (rows padded by 8 elements: ldmatrix reads them conflict-free). Up to D = 64 they fit
// in 48 KB of static shared memory; D = 128 takes 102 KB (forward, 128 queries) and 78 KB (backward) of dynamic shared
// memory, which the launch sizes (AttentionCuda's FWD128_SHARED and BWD128_SHARED mirror these layouts).
template <int D, int RT> struct __align__(16) MmaFwdShared { unsigned short q[64 * RT][D + 8], k[2][64][D + 8], v[2][64][D + 8]; };
template <int D> struct __align__(16) MmaBwdShared {
    unsigned short k[64][D + 8], v[64][D + 8], q[64][D + 8], g[64][D + 8];
    unsigned short dst[64][64 + 8];                             // dS^T of the tile, (key, query)
    float lse[64], delta[64];
};
template <typename Smem, bool Dynamic> __device__ __forceinline__ Smem& mma_shared() {
    if constexpr (Dynamic) {
        extern __shared__ __align__(16) unsigned char mma_dynamic_shared[];
        return *reinterpret_cast<Smem*>(mma_dynamic_shared);
    } else {
        __shared__ Smem s;
        return s;
    }
}

// A warp takes RT tiles of 16 queries, so a block 64 RT: with RT = 2 (D = 128, as FlashAttention-2) each K and V fragment
// read from shared memory feeds two products, and Q's fragments are read per key tile instead of held in registers.
template <typename T, int D, int RT>
__device__ __forceinline__ void attention_mma_fwd_impl(T* o, float* lse, const T* q, const T* k, const T* v, const float* mask,
        int heads, int L, int S, int d, int dv, int causal, int vec, double scale_d, ATT_GEO, i64 ob, i64 oh, i64 ol,
        i64 mb, i64 mh, i64 ml, i64 ms) {
    constexpr int BM = 64 * RT;
    MmaFwdShared<D, RT>& sh = mma_shared<MmaFwdShared<D, RT>, (D > 64)>();
    auto& qs = sh.q;
    auto& ks = sh.k;
    auto& vs = sh.v;
    int bh = blockIdx.y, b = bh / heads, h = bh - b * heads;
    int row0 = (gridDim.x - 1 - blockIdx.x) * BM;      // the longest causal rows start first
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3, wr0 = warp * 16 * RT;
    const unsigned short* qp = reinterpret_cast<const unsigned short*>(q + b * qb + h * qh);
    const unsigned short* kp = reinterpret_cast<const unsigned short*>(k + b * kb + h * kh);
    const unsigned short* vp = reinterpret_cast<const unsigned short*>(v + b * vb + h * vh);
    const float* mp = mask ? mask + b * mb + h * mh : 0;
    float sl2 = (float) scale_d * MMA_LOG2E, ninf = -__int_as_float(0x7f800000);
    int kend = causal ? min(S, row0 + BM) : S, tiles = (kend + 63) / 64;
#pragma unroll
    for (int r = 0; r < RT; r++) mma_tile<D>(qs + 64 * r, qp + (i64) (row0 + 64 * r) * ql, ql, L - row0 - 64 * r, d, vec);
    mma_tile<D>(ks[0], kp, kl, S, d, vec);
    mma_tile<D>(vs[0], vp, vl, S, dv, vec);
    mma_commit();
    int rlo[RT], rhi[RT];
    float acc[RT][D / 8][4], mlo[RT], mhi[RT], llo[RT], lhi[RT];   // running max (log2 units) and sum of each row
    unsigned qa[RT == 1 ? D / 16 : 1][4];                      // one tile: Q's fragments held for every key tile
#pragma unroll
    for (int rt = 0; rt < RT; rt++) {
        rlo[rt] = row0 + wr0 + 16 * rt + g;
        rhi[rt] = rlo[rt] + 8;
        mlo[rt] = mhi[rt] = ninf;
        llo[rt] = lhi[rt] = 0;
#pragma unroll
        for (int nt = 0; nt < D / 8; nt++) acc[rt][nt][0] = acc[rt][nt][1] = acc[rt][nt][2] = acc[rt][nt][3] = 0;
    }
    for (int t = 0; t < tiles; t++) {
        int j0 = t * 64, buf = t & 1;
        __syncthreads();                                        // every warp is done with the buffer the next tile goes to
        if (t + 1 < tiles) {
            mma_tile<D>(ks[buf ^ 1], kp + (i64) (j0 + 64) * kl, kl, S - j0 - 64, d, vec);
            mma_tile<D>(vs[buf ^ 1], vp + (i64) (j0 + 64) * vl, vl, S - j0 - 64, dv, vec);
            mma_commit();
            mma_wait<1>();
        } else {
            mma_wait<0>();
        }
        __syncthreads();
        float s[RT][8][4];
#pragma unroll
        for (int rt = 0; rt < RT; rt++) {
#pragma unroll
            for (int nt = 0; nt < 8; nt++) s[rt][nt][0] = s[rt][nt][1] = s[rt][nt][2] = s[rt][nt][3] = 0;
        }
        if constexpr (RT == 1) {
            if (t == 0) {
#pragma unroll
                for (int kk = 0; kk < D / 16; kk++) mma_a<D>(qa[kk], qs, wr0, kk, lane);
            }
            mma_abt<T, D>(s[0], qa, ks[buf], lane);
        } else {
            mma_abt_rows<T, D, RT>(s, qs, wr0, ks[buf], lane);
        }
        bool edge = mp || j0 + 64 > S || (causal && j0 + 63 > row0 + wr0);
#pragma unroll
        for (int rt = 0; rt < RT; rt++) {
            mma_softmax_tile<8, D>(s[rt], acc[rt], mlo[rt], mhi[rt], llo[rt], lhi[rt], edge, j0, S, causal, rlo[rt], rhi[rt], L,
                                   mp, ml, ms, sl2, t4);
        }
        mma_pv<T, D, RT>(acc, s, vs[buf], lane);
    }
    mma_wait<0>();                                              // no copy may land after the block ends
#pragma unroll
    for (int rt = 0; rt < RT; rt++) {
        float sl = mma_row_sum(llo[rt]), sh2 = mma_row_sum(lhi[rt]);
        T* olo = o + b * ob + h * oh + (i64) rlo[rt] * ol;
        T* ohi = o + b * ob + h * oh + (i64) rhi[rt] * ol;
        float ilo = 1.f / sl, ihi = 1.f / sh2;                  // l = 0 (no key visible): NaN, as the composite
#pragma unroll
        for (int nt = 0; nt < D / 8; nt++) {
            int col = nt * 8 + t4 * 2;
            if (rlo[rt] < L) mma_store2(olo, col, dv, sl == 0 ? ilo * 0 : acc[rt][nt][0] * ilo, sl == 0 ? ilo * 0 : acc[rt][nt][1] * ilo);
            if (rhi[rt] < L) mma_store2(ohi, col, dv, sh2 == 0 ? ihi * 0 : acc[rt][nt][2] * ihi, sh2 == 0 ? ihi * 0 : acc[rt][nt][3] * ihi);
        }
        if (t4 == 0) {                                          // natural log: the float kernels' convention
            if (rlo[rt] < L) lse[(i64) bh * L + rlo[rt]] = (mlo[rt] + log2f(sl)) * 0.6931471805599453f;
            if (rhi[rt] < L) lse[(i64) bh * L + rhi[rt]] = (mhi[rt] + log2f(sh2)) * 0.6931471805599453f;
        }
    }
}

// delta[row] = sum_c dO[row, c] * O[row, c], a warp per row; the row's dq scratch (D floats) is zeroed on the way.
template <typename T>
__device__ __forceinline__ void attention_mma_delta_impl(float* delta, float* dqacc, const T* g, const T* o, int heads, int L, int dv,
        int D, i64 gb, i64 gh, i64 gl, i64 ob, i64 oh, i64 ol, i64 rows) {
    i64 r = ((i64) blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (r >= rows) return;
    i64 i, bh = divmod(r, L, i), b = bh / heads, h = bh - b * heads;
    const T* gr = g + b * gb + h * gh + i * gl;
    const T* orow = o + b * ob + h * oh + i * ol;
    float s = 0;
    for (int c = lane; c < dv; c += 32) s += load<float, T>(gr[c]) * load<float, T>(orow[c]);
    s = warp_all(s, [](float x, float y) { return x + y; });
    if (lane == 0) delta[r] = s;
    for (int c = lane; c < D; c += 32) dqacc[r * D + c] = 0;
}

// The same with 16-byte accesses (rows 16-byte aligned, dv a multiple of 16 bytes): 8 lanes per row, each a 16-byte
// chunk of dO and O at a time, so a warp covers 4 rows; the scratch row zeroed 16 bytes a store. A warp per row
// reading 2-byte elements spent ~30 µs a GPT layer here, more than the step's whole softmax.
template <typename T>
__device__ __forceinline__ void attention_mma_delta_v_impl(float* delta, float* dqacc, const T* g, const T* o, int heads, int L, int dv,
        int D, i64 gb, i64 gh, i64 gl, i64 ob, i64 oh, i64 ol, i64 rows) {
    constexpr int E = Vec16<T>::N;
    i64 r = ((i64) blockIdx.x * blockDim.x + threadIdx.x) >> 3;
    int sub = threadIdx.x & 7;
    float s = 0;
    if (r < rows) {                                             // no early return: the shuffles below take the whole warp
        i64 i, bh = divmod(r, L, i), b = bh / heads, h = bh - b * heads;
        const T* gr = g + b * gb + h * gh + i * gl;
        const T* orow = o + b * ob + h * oh + i * ol;
        for (int c = sub * E; c < dv; c += 8 * E) {
            Vec16<T> gv, ov;
            gv.load(gr + c);
            ov.load(orow + c);
#pragma unroll
            for (int e = 0; e < E; e++) s += load<float, T>(gv.v[e]) * load<float, T>(ov.v[e]);
        }
        for (int c = sub * 4; c < D; c += 32) *reinterpret_cast<float4*>(dqacc + r * D + c) = make_float4(0.f, 0.f, 0.f, 0.f);
    }
    s += __shfl_xor_sync(0xffffffffu, s, 4);
    s += __shfl_xor_sync(0xffffffffu, s, 2);
    s += __shfl_xor_sync(0xffffffffu, s, 1);
    if (r < rows && sub == 0) delta[r] = s;
}

template <typename T, int D>
__device__ __forceinline__ void attention_mma_bwd_impl(float* dqacc, T* dk, T* dvo, const T* g, const T* q, const T* k, const T* v,
        const float* lse, const float* delta, const float* mask, int heads, int L, int S, int d, int dv, int causal, int vec,
        double scale_d, ATT_GEO, i64 gb, i64 gh, i64 gl, i64 xb, i64 xh, i64 xl, i64 yb, i64 yh, i64 yl, i64 mb, i64 mh, i64 ml, i64 ms) {
    MmaBwdShared<D>& sh = mma_shared<MmaBwdShared<D>, (D > 64)>();
    auto& ks = sh.k;
    auto& vs = sh.v;
    auto& qs = sh.q;
    auto& gs = sh.g;
    auto& dst = sh.dst;
    auto& lses = sh.lse;
    auto& deltas = sh.delta;
    int bh = blockIdx.y, b = bh / heads, h = bh - b * heads, col0 = blockIdx.x * 64;   // causal: the busiest key blocks first
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gg = lane >> 2, t4 = lane & 3;
    const unsigned short* qp = reinterpret_cast<const unsigned short*>(q + b * qb + h * qh);
    const unsigned short* kp = reinterpret_cast<const unsigned short*>(k + b * kb + h * kh);
    const unsigned short* vp = reinterpret_cast<const unsigned short*>(v + b * vb + h * vh);
    const unsigned short* gp = reinterpret_cast<const unsigned short*>(g + b * gb + h * gh);
    const float* mp = mask ? mask + b * mb + h * mh : 0;
    float scale = (float) scale_d, sl2 = scale * MMA_LOG2E, ninf = -__int_as_float(0x7f800000);
    int istart = causal ? col0 : 0;                             // query i sees key j only when i >= j
    mma_tile<D>(ks, kp + (i64) col0 * kl, kl, S - col0, d, vec);
    mma_tile<D>(vs, vp + (i64) col0 * vl, vl, S - col0, dv, vec);
    if (istart < L) {
        mma_tile<D>(qs, qp + (i64) istart * ql, ql, L - istart, d, vec);
        mma_tile<D>(gs, gp + (i64) istart * gl, gl, L - istart, dv, vec);
    }
    mma_commit();
    int klo = col0 + warp * 16 + gg, khi = klo + 8;            // this thread's two keys: rows of the transposed tiles
    float dkacc[D / 8][4], dvacc[D / 8][4];
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) {
        dkacc[nt][0] = dkacc[nt][1] = dkacc[nt][2] = dkacc[nt][3] = 0;
        dvacc[nt][0] = dvacc[nt][1] = dvacc[nt][2] = dvacc[nt][3] = 0;
    }
    for (int i0 = istart; i0 < L; i0 += 64) {
        if (threadIdx.x < 64) {                                 // no warp reads these past the previous tile's middle barrier
            int r = i0 + threadIdx.x;
            lses[threadIdx.x] = r < L ? lse[(i64) bh * L + r] * MMA_LOG2E : 0.f;
            deltas[threadIdx.x] = r < L ? delta[(i64) bh * L + r] : 0.f;
        }
        mma_wait<0>();
        __syncthreads();
        float st[8][4], dpt[8][4];                              // S^T = K Q^T and dP^T = V dO^T: this warp's 16 keys x 64 queries
#pragma unroll
        for (int nt = 0; nt < 8; nt++) st[nt][0] = st[nt][1] = st[nt][2] = st[nt][3] = dpt[nt][0] = dpt[nt][1] = dpt[nt][2] = dpt[nt][3] = 0;
        mma_abt_rows<T, D, 1>(&st, ks, warp * 16, qs, lane);
        mma_abt_rows<T, D, 1>(&dpt, vs, warp * 16, gs, lane);
        bool edge = mp || i0 + 64 > L || col0 + 64 > S || (causal && i0 < col0 + 64);
#pragma unroll
        for (int nt = 0; nt < 8; nt++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int qi = nt * 8 + t4 * 2 + (e & 1);
                float x = st[nt][e] * sl2;
                bool dead = false;
                if (edge) {
                    int key = e < 2 ? klo : khi, row = i0 + qi;
                    dead = row >= L || key >= S || (causal && key > row);
                    if (!dead && mp) x += mp[(i64) row * ml + (i64) key * ms] * MMA_LOG2E;
                }
                float p = dead || x == ninf ? 0.f : mma_exp2(x - lses[qi]);
                st[nt][e] = p;
                dpt[nt][e] = p * (dpt[nt][e] - deltas[qi]);
            }
            *reinterpret_cast<unsigned*>(&dst[warp * 16 + gg][nt * 8 + t4 * 2]) = Mma<T>::pack(dpt[nt][0], dpt[nt][1]);
            *reinterpret_cast<unsigned*>(&dst[warp * 16 + gg + 8][nt * 8 + t4 * 2]) = Mma<T>::pack(dpt[nt][2], dpt[nt][3]);
        }
        mma_pv<T, D, 1>(&dvacc, &st, gs, lane);                // dV += P^T dO
        mma_pv<T, D, 1>(&dkacc, &dpt, qs, lane);               // dK += dS^T Q (scaled at the end)
        __syncthreads();                                        // dS^T whole; Q and dO read by every warp
        if (i0 + 64 < L) {                                      // the next query tile loads under the dQ product
            mma_tile<D>(qs, qp + (i64) (i0 + 64) * ql, ql, L - i0 - 64, d, vec);
            mma_tile<D>(gs, gp + (i64) (i0 + 64) * gl, gl, L - i0 - 64, dv, vec);
            mma_commit();
        }
        // dQ of this warp's 16 queries = dS (16 x 64 keys, read transposed from dS^T) times K (64 keys x D), 64 columns
        // at a time (at D = 128 all of them at once would not fit beside the dK and dV accumulators)
        constexpr int DC = D < 64 ? D : 64;
        int qlo = i0 + warp * 16 + gg, qhi = qlo + 8;
        float* alo = dqacc + ((i64) bh * L + qlo) * D;
        float* ahi = dqacc + ((i64) bh * L + qhi) * D;
#pragma unroll
        for (int c0 = 0; c0 < D; c0 += DC) {
            float dq[DC / 8][4];
#pragma unroll
            for (int nt = 0; nt < DC / 8; nt++) dq[nt][0] = dq[nt][1] = dq[nt][2] = dq[nt][3] = 0;
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
                unsigned a[4];
                mma_ldsm_t(a, &dst[kk * 16 + (lane & 7) + ((lane >> 4) << 3)][warp * 16 + ((lane >> 3) & 1) * 8]);
#pragma unroll
                for (int np = 0; np < DC / 16; np++) {
                    unsigned bb[4];
                    mma_ldsm_t(bb, &ks[kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8][c0 + np * 16 + (lane >> 4) * 8]);
                    Mma<T>::run(dq[2 * np], a, bb[0], bb[1]);
                    Mma<T>::run(dq[2 * np + 1], a, bb[2], bb[3]);
                }
            }
#pragma unroll
            for (int nt = 0; nt < DC / 8; nt++) {
                int col = c0 + nt * 8 + t4 * 2;
                if (col < d && qlo < L) mma_red2(alo + col, dq[nt][0], dq[nt][1]);
                if (col < d && qhi < L) mma_red2(ahi + col, dq[nt][2], dq[nt][3]);
            }
        }
        __syncthreads();                                        // dS^T read by every warp before the next tile writes it
    }
    mma_wait<0>();
    T* dklo = dk + b * xb + h * xh + (i64) klo * xl;
    T* dkhi = dk + b * xb + h * xh + (i64) khi * xl;
    T* dvlo = dvo + b * yb + h * yh + (i64) klo * yl;
    T* dvhi = dvo + b * yb + h * yh + (i64) khi * yl;
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) {
        int col = nt * 8 + t4 * 2;
        if (klo < S) { mma_store2(dklo, col, d, dkacc[nt][0] * scale, dkacc[nt][1] * scale); mma_store2(dvlo, col, dv, dvacc[nt][0], dvacc[nt][1]); }
        if (khi < S) { mma_store2(dkhi, col, d, dkacc[nt][2] * scale, dkacc[nt][3] * scale); mma_store2(dvhi, col, dv, dvacc[nt][2], dvacc[nt][3]); }
    }
}


// ==== float32 on tensor cores, float32's precision kept: each product runs as three TF32 mma.sync m16n8k8
// (lo·hi + hi·lo + hi·hi, x = hi + lo with hi its TF32 rounding; the dropped lo·lo is ~2^-22 relative, float32's own
// rounding), the split CUTLASS and PyTorch's memory-efficient attention use for float32; one (hi·hi) when `split` is 0
// (TF32 allowed, Cuda.allowTf32). The same structure as the 16-bit kernels with tiles sized for 4-byte elements:
// forward, 64 queries per block and double-buffered 32-key tiles; backward, 64 keys per block and 32-query tiles, V's
// fragments kept in registers. Every tile in shared memory is split into hi and lo once, as it lands (tc_split_tile),
// so the products read both halves ready: splitting B operands at each product made every warp split every element of
// a shared tile again (four times over, twice a tile in the backward; H200, GPT shape: backward 0.61 -> 0.41 ms, forward
// 0.17 -> 0.14). The split tiles take dynamic shared memory (AttentionCuda's tc32Shared mirrors the layouts). The grid
// is (heads, tiles), so every head's heaviest causal tile is launched first and the light ones fill the tail (0.142 ->
// 0.124 ms forward, 0.412 -> 0.370 backward). m16n8k8 wants A's columns t4 and t4+4 where
// the C layout holds 2·t4 and 2·t4+1: the k index of a product is only summed over, so each kernel numbers it 2·t4,
// 2·t4+1 on both operands, and a score tile feeds P·V with no shuffles, and rows of Q, K, dO give float2 fragments.
struct TcA { unsigned h[4], l[4]; };                            // an A fragment, split
__device__ __forceinline__ float tc_hi(float x) { return __uint_as_float(tc_tf32(x)); }
__device__ __forceinline__ TcA tc_a(float a0, float a1, float a2, float a3, int split) {
    TcA r;
    float a[4] = {a0, a1, a2, a3};
#pragma unroll
    for (int e = 0; e < 4; e++) { r.h[e] = tc_tf32(a[e]); r.l[e] = split ? tc_tf32(a[e] - __uint_as_float(r.h[e])) : 0u; }
    return r;
}
// An A fragment from split tiles: hi halves h0..h3, lo halves l0..l3.
__device__ __forceinline__ TcA tc_a_split(float h0, float h1, float h2, float h3, float l0, float l1, float l2, float l3) {
    TcA r;
    r.h[0] = __float_as_uint(h0); r.h[1] = __float_as_uint(h1); r.h[2] = __float_as_uint(h2); r.h[3] = __float_as_uint(h3);
    r.l[0] = __float_as_uint(l0); r.l[1] = __float_as_uint(l1); r.l[2] = __float_as_uint(l2); r.l[3] = __float_as_uint(l3);
    return r;
}
// c += A B for B's two elements (k = 2·t4, 2·t4 + 1), given split: hi halves bh0, bh1, lo halves bl0, bl1
__device__ __forceinline__ void tc_mma(float* c, const TcA& a, float bh0, float bh1, float bl0, float bl1, int split) {
    if (split) {
        tc_mma1(c, a.l, __float_as_uint(bh0), __float_as_uint(bh1));
        tc_mma1(c, a.h, __float_as_uint(bl0), __float_as_uint(bl1));
    }
    tc_mma1(c, a.h, __float_as_uint(bh0), __float_as_uint(bh1));
}

// Rows [0, R) of x (n valid rows of e valid columns) into sh (rows W floats apart), zero-padded; cp.async when vec.
template <int R, int D, int W>
__device__ __forceinline__ void tc_tile(float (*sh)[W], const float* x, i64 sr, int n, int e, bool vec) {
    if (vec) {
        for (int t = threadIdx.x; t < R * D / 4; t += 128) {
            int r = t / (D / 4), c = (t - r * (D / 4)) * 4;
            bool ok = r < n && c < e;
            mma_cp16(&sh[r][c], ok ? x + (i64) r * sr + c : x, ok);
        }
    } else {
        for (int t = threadIdx.x; t < R * D; t += 128) {
            int r = t / D, c = t - r * D;
            sh[r][c] = r < n && c < e ? x[(i64) r * sr + c] : 0.f;
        }
    }
}
// Rows [0, R) of a landed tile sh: each element replaced by its TF32 rounding (hi), the remainder's rounding (lo) into shl.
template <int R, int D, int W>
__device__ __forceinline__ void tc_split_tile(float (*sh)[W], float (*shl)[W], int split) {
    for (int t = threadIdx.x; t < R * D / 4; t += 128) {
        int r = t / (D / 4), c = (t - r * (D / 4)) * 4;
        float4 x = *reinterpret_cast<float4*>(&sh[r][c]);
        float4 h = make_float4(tc_hi(x.x), tc_hi(x.y), tc_hi(x.z), tc_hi(x.w));
        *reinterpret_cast<float4*>(&sh[r][c]) = h;
        if (split) *reinterpret_cast<float4*>(&shl[r][c]) = make_float4(tc_hi(x.x - h.x), tc_hi(x.y - h.y), tc_hi(x.z - h.z), tc_hi(x.w - h.w));
    }
}

// The float32 kernels' dynamic shared memory: split tiles (hi, lo); pads keep float2 row reads and column reads
// conflict-free.
template <int D> struct Tc32FwdShared { float kh[2][32][D + 8], kl[2][32][D + 8], vh[2][32][D + 4], vl[2][32][D + 4]; };
template <int D> struct Tc32BwdShared {
    float kh[64][D + 4], kl[64][D + 4];
    float qh[32][D + 8], ql[32][D + 8], gh[32][D + 8], gl[32][D + 8];
    float dh[64][32 + 4], dl[64][32 + 4];                       // dS^T (key, query)
    float lses[32], deltas[32];
};

template <int D>
__device__ __forceinline__ void attention_tc32_fwd_impl(float* o, float* lse, const float* q, const float* k, const float* v, const float* mask,
        int heads, int L, int S, int d, int dv, int causal, int vec, int split, double scale_d, ATT_GEO, i64 ob, i64 oh, i64 ol,
        i64 mb, i64 mh, i64 ml, i64 ms) {
    extern __shared__ __align__(16) unsigned char tc32_shared[];
    Tc32FwdShared<D>& sh = *reinterpret_cast<Tc32FwdShared<D>*>(tc32_shared);
    int bh = blockIdx.x, b = bh / heads, h = bh - b * heads;
    int row0 = (gridDim.y - 1 - blockIdx.y) * 64;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const float* kp = k + b * kb + h * kh;
    const float* vp = v + b * vb + h * vh;
    const float* mp = mask ? mask + b * mb + h * mh : 0;
    float sl2 = (float) scale_d * MMA_LOG2E, ninf = -__int_as_float(0x7f800000);
    int kend = causal ? min(S, row0 + 64) : S, tiles = (kend + 31) / 32;
    tc_tile<32, D, D + 8>(sh.kh[0], kp, kl, S, d, vec);
    tc_tile<32, D, D + 4>(sh.vh[0], vp, vl, S, dv, vec);
    mma_commit();
    int rlo = row0 + warp * 16 + g, rhi = rlo + 8;
    TcA qa[D / 8];
    {
        const float* qlo = q + b * qb + h * qh + (i64) min(rlo, L - 1) * ql;
        const float* qhi = q + b * qb + h * qh + (i64) min(rhi, L - 1) * ql;
#pragma unroll
        for (int kk = 0; kk < D / 8; kk++) {
            int c = kk * 8 + 2 * t4;
            bool lo = rlo < L, hi = rhi < L;
            qa[kk] = tc_a(lo && c < d ? qlo[c] : 0.f, hi && c < d ? qhi[c] : 0.f, lo && c + 1 < d ? qlo[c + 1] : 0.f,
                          hi && c + 1 < d ? qhi[c + 1] : 0.f, split);
        }
    }
    float acc[D / 8][4];
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0;
    float mlo = ninf, mhi = ninf, llo = 0, lhi = 0;
    for (int t = 0; t < tiles; t++) {
        int j0 = t * 32, buf = t & 1;
        __syncthreads();
        if (t + 1 < tiles) {
            tc_tile<32, D, D + 8>(sh.kh[buf ^ 1], kp + (i64) (j0 + 32) * kl, kl, S - j0 - 32, d, vec);
            tc_tile<32, D, D + 4>(sh.vh[buf ^ 1], vp + (i64) (j0 + 32) * vl, vl, S - j0 - 32, dv, vec);
            mma_commit();
            mma_wait<1>();
        } else {
            mma_wait<0>();
        }
        __syncthreads();
        auto& ksh = sh.kh[buf]; auto& ksl = sh.kl[buf]; auto& vsh = sh.vh[buf]; auto& vsl = sh.vl[buf];
        tc_split_tile<32, D, D + 8>(ksh, ksl, split);
        tc_split_tile<32, D, D + 4>(vsh, vsl, split);
        __syncthreads();
        float s[4][4];
#pragma unroll
        for (int nt = 0; nt < 4; nt++) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0;
#pragma unroll
        for (int kk = 0; kk < D / 8; kk++) {
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                float2 bh = *reinterpret_cast<const float2*>(&ksh[nt * 8 + g][kk * 8 + 2 * t4]);
                float2 bl = *reinterpret_cast<const float2*>(&ksl[nt * 8 + g][kk * 8 + 2 * t4]);
                tc_mma(s[nt], qa[kk], bh.x, bh.y, bl.x, bl.y, split);
            }
        }
        bool edge = mp || j0 + 32 > S || (causal && j0 + 31 > row0 + warp * 16);
        mma_softmax_tile<4, D>(s, acc, mlo, mhi, llo, lhi, edge, j0, S, causal, rlo, rhi, L, mp, ml, ms, sl2, t4);
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {                        // acc += P V over this tile's 32 keys
            TcA pa = tc_a(s[kk][0], s[kk][2], s[kk][1], s[kk][3], split);
            int r = kk * 8 + 2 * t4;
#pragma unroll
            for (int nt = 0; nt < D / 8; nt++) {
                int c = nt * 8 + g;
                tc_mma(acc[nt], pa, vsh[r][c], vsh[r + 1][c], vsl[r][c], vsl[r + 1][c], split);
            }
        }
    }
    mma_wait<0>();
    llo = mma_row_sum(llo);
    lhi = mma_row_sum(lhi);
    float* olo = o + b * ob + h * oh + (i64) rlo * ol;
    float* ohi = o + b * ob + h * oh + (i64) rhi * ol;
    float ilo = 1.f / llo, ihi = 1.f / lhi;                    // l = 0 (no key visible): NaN, as the composite
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) {
#pragma unroll
        for (int cc = 0; cc < 2; cc++) {
            int col = nt * 8 + t4 * 2 + cc;
            if (col >= dv) continue;
            if (rlo < L) olo[col] = llo == 0 ? ilo * 0 : acc[nt][cc] * ilo;
            if (rhi < L) ohi[col] = lhi == 0 ? ihi * 0 : acc[nt][2 + cc] * ihi;
        }
    }
    if (t4 == 0) {
        if (rlo < L) lse[(i64) bh * L + rlo] = (mlo + log2f(llo)) * 0.6931471805599453f;
        if (rhi < L) lse[(i64) bh * L + rhi] = (mhi + log2f(lhi)) * 0.6931471805599453f;
    }
}

template <int D>
__device__ __forceinline__ void attention_tc32_bwd_impl(float* dqacc, float* dk, float* dvo, const float* g, const float* q, const float* k,
        const float* v, const float* lse, const float* delta, const float* mask, int heads, int L, int S, int d, int dv, int causal, int vec,
        int split, double scale_d, ATT_GEO, i64 gb, i64 gh, i64 gl, i64 xb, i64 xh, i64 xl, i64 yb, i64 yh, i64 yl,
        i64 mb, i64 mh, i64 ml, i64 ms) {
    extern __shared__ __align__(16) unsigned char tc32_shared[];
    Tc32BwdShared<D>& sh = *reinterpret_cast<Tc32BwdShared<D>*>(tc32_shared);
    auto& ksh = sh.kh; auto& ksl = sh.kl; auto& qsh = sh.qh; auto& qsl = sh.ql; auto& gsh = sh.gh; auto& gsl = sh.gl;
    auto& dsh = sh.dh; auto& dsl = sh.dl; auto& lses = sh.lses; auto& deltas = sh.deltas;
    int bh = blockIdx.x, b = bh / heads, h = bh - b * heads, col0 = blockIdx.y * 64;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gg = lane >> 2, t4 = lane & 3;
    const float* qp = q + b * qb + h * qh;
    const float* gp = g + b * gb + h * gh;
    const float* mp = mask ? mask + b * mb + h * mh : 0;
    float scale = (float) scale_d, sl2 = scale * MMA_LOG2E, ninf = -__int_as_float(0x7f800000);
    int istart = causal ? col0 : 0;
    tc_tile<64, D, D + 4>(ksh, k + b * kb + h * kh + (i64) col0 * kl, kl, S - col0, d, vec);
    if (istart < L) {
        tc_tile<32, D, D + 8>(qsh, qp + (i64) istart * ql, ql, L - istart, d, vec);
        tc_tile<32, D, D + 8>(gsh, gp + (i64) istart * gl, gl, L - istart, dv, vec);
    }
    mma_commit();
    int klo = col0 + warp * 16 + gg, khi = klo + 8;
    float va[D / 8][4];                                         // this warp's V rows as A fragments (dims numbered as above)
    {
        const float* vlo = v + b * vb + h * vh + (i64) min(klo, S - 1) * vl;
        const float* vhi = v + b * vb + h * vh + (i64) min(khi, S - 1) * vl;
#pragma unroll
        for (int kk = 0; kk < D / 8; kk++) {
            int c = kk * 8 + 2 * t4;
            va[kk][0] = klo < S && c < dv ? vlo[c] : 0.f;
            va[kk][1] = khi < S && c < dv ? vhi[c] : 0.f;
            va[kk][2] = klo < S && c + 1 < dv ? vlo[c + 1] : 0.f;
            va[kk][3] = khi < S && c + 1 < dv ? vhi[c + 1] : 0.f;
        }
    }
    float dkacc[D / 8][4], dvacc[D / 8][4];
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) {
        dkacc[nt][0] = dkacc[nt][1] = dkacc[nt][2] = dkacc[nt][3] = 0;
        dvacc[nt][0] = dvacc[nt][1] = dvacc[nt][2] = dvacc[nt][3] = 0;
    }
    for (int i0 = istart; i0 < L; i0 += 32) {
        if (threadIdx.x < 32) {
            int r = i0 + threadIdx.x;
            lses[threadIdx.x] = r < L ? lse[(i64) bh * L + r] * MMA_LOG2E : 0.f;
            deltas[threadIdx.x] = r < L ? delta[(i64) bh * L + r] : 0.f;
        }
        mma_wait<0>();
        __syncthreads();
        if (i0 == istart) tc_split_tile<64, D, D + 4>(ksh, ksl, split);
        tc_split_tile<32, D, D + 8>(qsh, qsl, split);
        tc_split_tile<32, D, D + 8>(gsh, gsl, split);
        __syncthreads();
        float st[4][4], dpt[4][4];                              // this warp's 16 keys x 32 queries
#pragma unroll
        for (int nt = 0; nt < 4; nt++) st[nt][0] = st[nt][1] = st[nt][2] = st[nt][3] = dpt[nt][0] = dpt[nt][1] = dpt[nt][2] = dpt[nt][3] = 0;
#pragma unroll
        for (int kk = 0; kk < D / 8; kk++) {
            int c = kk * 8 + 2 * t4, r = warp * 16 + gg;
            TcA ka = tc_a_split(ksh[r][c], ksh[r + 8][c], ksh[r][c + 1], ksh[r + 8][c + 1], ksl[r][c], ksl[r + 8][c], ksl[r][c + 1], ksl[r + 8][c + 1]);
            TcA vv = tc_a(va[kk][0], va[kk][1], va[kk][2], va[kk][3], split);
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                float2 bq = *reinterpret_cast<const float2*>(&qsh[nt * 8 + gg][c]);
                float2 bql = *reinterpret_cast<const float2*>(&qsl[nt * 8 + gg][c]);
                float2 bg = *reinterpret_cast<const float2*>(&gsh[nt * 8 + gg][c]);
                float2 bgl = *reinterpret_cast<const float2*>(&gsl[nt * 8 + gg][c]);
                tc_mma(st[nt], ka, bq.x, bq.y, bql.x, bql.y, split);
                tc_mma(dpt[nt], vv, bg.x, bg.y, bgl.x, bgl.y, split);
            }
        }
        bool edge = mp || i0 + 32 > L || col0 + 64 > S || (causal && i0 < col0 + 64);
#pragma unroll
        for (int nt = 0; nt < 4; nt++) {
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int qi = nt * 8 + t4 * 2 + (e & 1);
                float x = st[nt][e] * sl2;
                bool dead = false;
                if (edge) {
                    int key = e < 2 ? klo : khi, row = i0 + qi;
                    dead = row >= L || key >= S || (causal && key > row);
                    if (!dead && mp) x += mp[(i64) row * ml + (i64) key * ms] * MMA_LOG2E;
                }
                float p = dead || x == ninf ? 0.f : mma_exp2(x - lses[qi]);
                st[nt][e] = p;
                dpt[nt][e] = p * (dpt[nt][e] - deltas[qi]);
            }
            int r = warp * 16 + gg, c = nt * 8 + t4 * 2;            // dS^T, split, for dQ's product
            float h0 = tc_hi(dpt[nt][0]), h1 = tc_hi(dpt[nt][1]), h2 = tc_hi(dpt[nt][2]), h3 = tc_hi(dpt[nt][3]);
            *reinterpret_cast<float2*>(&dsh[r][c]) = make_float2(h0, h1);
            *reinterpret_cast<float2*>(&dsh[r + 8][c]) = make_float2(h2, h3);
            if (split) {
                *reinterpret_cast<float2*>(&dsl[r][c]) = make_float2(tc_hi(dpt[nt][0] - h0), tc_hi(dpt[nt][1] - h1));
                *reinterpret_cast<float2*>(&dsl[r + 8][c]) = make_float2(tc_hi(dpt[nt][2] - h2), tc_hi(dpt[nt][3] - h3));
            }
        }
#pragma unroll
        for (int kk = 0; kk < 4; kk++) {                        // dV += P^T dO, dK += dS^T Q over the tile's 32 queries
            TcA pa = tc_a(st[kk][0], st[kk][2], st[kk][1], st[kk][3], split);
            TcA da = tc_a(dpt[kk][0], dpt[kk][2], dpt[kk][1], dpt[kk][3], split);
            int r = kk * 8 + 2 * t4;
#pragma unroll
            for (int nt = 0; nt < D / 8; nt++) {
                int c = nt * 8 + gg;
                tc_mma(dvacc[nt], pa, gsh[r][c], gsh[r + 1][c], gsl[r][c], gsl[r + 1][c], split);
                tc_mma(dkacc[nt], da, qsh[r][c], qsh[r + 1][c], qsl[r][c], qsl[r + 1][c], split);
            }
        }
        __syncthreads();
        if (i0 + 32 < L) {
            tc_tile<32, D, D + 8>(qsh, qp + (i64) (i0 + 32) * ql, ql, L - i0 - 32, d, vec);
            tc_tile<32, D, D + 8>(gsh, gp + (i64) (i0 + 32) * gl, gl, L - i0 - 32, dv, vec);
            mma_commit();
        }
        // dQ (32 queries x D) = dS (32 x 64 keys) K: warp w takes queries (w & 1) * 16 and columns (w >> 1) * D / 2; the
        // next iteration's first barrier keeps dS and K until every warp is done with them
        int qb0 = (warp & 1) * 16, c0 = (warp >> 1) * (D / 2);
        float dq[D / 16][4];
#pragma unroll
        for (int nt = 0; nt < D / 16; nt++) dq[nt][0] = dq[nt][1] = dq[nt][2] = dq[nt][3] = 0;
#pragma unroll
        for (int kk = 0; kk < 8; kk++) {
            int r = kk * 8 + 2 * t4, c = qb0 + gg;
            TcA a = tc_a_split(dsh[r][c], dsh[r][c + 8], dsh[r + 1][c], dsh[r + 1][c + 8], dsl[r][c], dsl[r][c + 8], dsl[r + 1][c], dsl[r + 1][c + 8]);
#pragma unroll
            for (int nt = 0; nt < D / 16; nt++) {
                int kc = c0 + nt * 8 + gg;
                tc_mma(dq[nt], a, ksh[r][kc], ksh[r + 1][kc], ksl[r][kc], ksl[r + 1][kc], split);
            }
        }
        int qlo = i0 + qb0 + gg, qhi = qlo + 8;
        float* alo = dqacc + ((i64) bh * L + qlo) * D;
        float* ahi = dqacc + ((i64) bh * L + qhi) * D;
#pragma unroll
        for (int nt = 0; nt < D / 16; nt++) {
            int col = c0 + nt * 8 + t4 * 2;
            if (col < d && qlo < L) mma_red2(alo + col, dq[nt][0], dq[nt][1]);
            if (col < d && qhi < L) mma_red2(ahi + col, dq[nt][2], dq[nt][3]);
        }
    }
    mma_wait<0>();
    float* dklo = dk + b * xb + h * xh + (i64) klo * xl;
    float* dkhi = dk + b * xb + h * xh + (i64) khi * xl;
    float* dvlo = dvo + b * yb + h * yh + (i64) klo * yl;
    float* dvhi = dvo + b * yb + h * yh + (i64) khi * yl;
#pragma unroll
    for (int nt = 0; nt < D / 8; nt++) {
#pragma unroll
        for (int cc = 0; cc < 2; cc++) {
            int col = nt * 8 + t4 * 2 + cc;
            if (klo < S && col < d) dklo[col] = dkacc[nt][cc] * scale;
            if (khi < S && col < d) dkhi[col] = dkacc[nt][2 + cc] * scale;
            if (klo < S && col < dv) dvlo[col] = dvacc[nt][cc];
            if (khi < S && col < dv) dvhi[col] = dvacc[nt][2 + cc];
        }
    }
}
#define ATTENTION_MMA_D(T, S, D, RT) \
extern "C" __global__ void __launch_bounds__(128) attention_mma_fwd_d##D##_##S(T* o, float* lse, const T* q, const T* k, const T* v, \
        const float* mask, int heads, int L, int Sk, int d, int dv, int causal, int vec, double scale, ATT_GEO, i64 ob, i64 oh, i64 ol, \
        i64 mb, i64 mh, i64 ml, i64 ms) { \
    attention_mma_fwd_impl<T, D, RT>(o, lse, q, k, v, mask, heads, L, Sk, d, dv, causal, vec, scale, ATT_GEO_ARGS, ob, oh, ol, mb, mh, ml, ms); \
} \
extern "C" __global__ void __launch_bounds__(128) attention_mma_bwd_d##D##_##S(float* dqacc, T* dk, T* dvo, const T* g, const T* q, \
        const T* k, const T* v, const float* lse, const float* delta, const float* mask, int heads, int L, int Sk, int d, int dv, \
        int causal, int vec, double scale, ATT_GEO, i64 gb, i64 gh, i64 gl, i64 xb, i64 xh, i64 xl, i64 yb, i64 yh, i64 yl, \
        i64 mb, i64 mh, i64 ml, i64 ms) { \
    attention_mma_bwd_impl<T, D>(dqacc, dk, dvo, g, q, k, v, lse, delta, mask, heads, L, Sk, d, dv, causal, vec, scale, ATT_GEO_ARGS, \
            gb, gh, gl, xb, xh, xl, yb, yh, yl, mb, mh, ml, ms); \
}
// delta and the dq finish, shared by every tensor-core path
#define ATTENTION_MMA_COMMON(T, S) \
extern "C" __global__ void attention_mma_delta_##S(float* delta, float* dqacc, const T* g, const T* o, int heads, int L, int dv, int D, \
        i64 gb, i64 gh, i64 gl, i64 ob, i64 oh, i64 ol, i64 rows) { \
    attention_mma_delta_impl<T>(delta, dqacc, g, o, heads, L, dv, D, gb, gh, gl, ob, oh, ol, rows); \
} \
/* dq[b, h, i, c] = scale * acc[(b*H + h, i), c] (acc rows D wide) */ \
extern "C" __global__ void attention_mma_dq_finish_##S(T* dq, const float* acc, int heads, int L, int d, int D, double scale, \
        i64 xb, i64 xh, i64 xl, i64 n) { \
    GRID_STRIDE(i, n) { \
        i64 c, r = divmod(i, d, c), row, bh = divmod(r, L, row); \
        i64 b = bh / heads, h = bh - b * heads; \
        dq[b * xb + h * xh + row * xl + c] = store<T, float>(acc[r * D + c] * (float) scale); \
    } \
} \
extern "C" __global__ void attention_mma_delta_v_##S(float* delta, float* dqacc, const T* g, const T* o, int heads, int L, int dv, int D, \
        i64 gb, i64 gh, i64 gl, i64 ob, i64 oh, i64 ol, i64 rows) { \
    attention_mma_delta_v_impl<T>(delta, dqacc, g, o, heads, L, dv, D, gb, gh, gl, ob, oh, ol, rows); \
} \
/* the same 16 bytes of dq at a time (d and dq's row strides a multiple of 16 bytes, dq 16-byte aligned): n chunks */ \
extern "C" __global__ void attention_mma_dq_finish_v_##S(T* dq, const float* acc, int heads, int L, int d, int D, double scale, \
        i64 xb, i64 xh, i64 xl, i64 n) { \
    constexpr int E = Vec16<T>::N; \
    GRID_STRIDE(j, n) { \
        i64 c, r = divmod(j * E, d, c), row, bh = divmod(r, L, row); \
        i64 b = bh / heads, h = bh - b * heads; \
        const float* a = acc + r * D + c; \
        Vec16<T> out; \
        _Pragma("unroll") for (int e = 0; e < E; e++) out.v[e] = store<T, float>(a[e] * (float) scale); \
        out.store(dq + b * xb + h * xh + row * xl + c); \
    } \
}
#define ATTENTION_TC32_D(D) \
extern "C" __global__ void __launch_bounds__(128) attention_mma_fwd_d##D##_f32(float* o, float* lse, const float* q, const float* k, \
        const float* v, const float* mask, int heads, int L, int Sk, int d, int dv, int causal, int vec, int split, double scale, ATT_GEO, \
        i64 ob, i64 oh, i64 ol, i64 mb, i64 mh, i64 ml, i64 ms) { \
    attention_tc32_fwd_impl<D>(o, lse, q, k, v, mask, heads, L, Sk, d, dv, causal, vec, split, scale, ATT_GEO_ARGS, ob, oh, ol, mb, mh, ml, ms); \
} \
extern "C" __global__ void __launch_bounds__(128) attention_mma_bwd_d##D##_f32(float* dqacc, float* dk, float* dvo, const float* g, \
        const float* q, const float* k, const float* v, const float* lse, const float* delta, const float* mask, int heads, int L, int Sk, \
        int d, int dv, int causal, int vec, int split, double scale, ATT_GEO, i64 gb, i64 gh, i64 gl, i64 xb, i64 xh, i64 xl, \
        i64 yb, i64 yh, i64 yl, i64 mb, i64 mh, i64 ml, i64 ms) { \
    attention_tc32_bwd_impl<D>(dqacc, dk, dvo, g, q, k, v, lse, delta, mask, heads, L, Sk, d, dv, causal, vec, split, scale, ATT_GEO_ARGS, \
            gb, gh, gl, xb, xh, xl, yb, yh, yl, mb, mh, ml, ms); \
}
// the forward's row tiles per warp (RT) last: two at D = 128 (a block of 128 queries)
ATTENTION_MMA_D(bf16, bf16, 32, 1) ATTENTION_MMA_D(bf16, bf16, 64, 1) ATTENTION_MMA_D(bf16, bf16, 128, 2) ATTENTION_MMA_COMMON(bf16, bf16)
ATTENTION_MMA_D(f16, f16, 32, 1) ATTENTION_MMA_D(f16, f16, 64, 1) ATTENTION_MMA_D(f16, f16, 128, 2) ATTENTION_MMA_COMMON(f16, f16)
ATTENTION_TC32_D(32) ATTENTION_TC32_D(64) ATTENTION_MMA_COMMON(float, f32)
