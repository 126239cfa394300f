// Batch norm over dim 1 of a contiguous (N, C, S) array (S = the product of the trailing dims; channels-last is
// (N*H*W, C, 1)), with a residual
// block's add and ReLU fused in: y = relu?((x - mean[c]) * invstd[c] * w[c] + b[c] + res). Statistics are summed in
// double (sum and sum of squares of up to millions of values per channel), everything else in the element type's
// accumulation type P (float for the 32- and 16-bit floats, double for float64); weights, biases, running and
// saved statistics are P, so 16-bit activations under autocast keep float32 parameters. Null w/b/res: 1/0/none.
#include "pool.cuh"

struct DAdd { __device__ double operator()(double a, double b) const { return a + b; } };

// The finish kernels take a warp per channel (WARP_STRIDE): its lanes read the channel's split partials side by side.

// Channel c = blockIdx.x, elements [split * chunk, (split + 1) * chunk) of its m = n * s (split = blockIdx.y):
// partial[(c * splits + split) * 2 + {0, 1}] = {sum x, sum x^2}.
template <typename T>
__device__ __forceinline__ void bn_stats_partial(double* partial, const T* x, i64 n, i64 c_count, i64 s, i64 chunk) {
    i64 c = blockIdx.x, from = (i64) blockIdx.y * chunk, to = min(n * s, from + chunk);
    double sum = 0, sq = 0;
    for (i64 j = from + threadIdx.x; j < to; j += blockDim.x) {
        i64 r, img = divmod(j, s, r);
        double v = (double) load<typename Acc<T>::type>(x[(img * c_count + c) * s + r]);
        sum += v;
        sq += v * v;
    }
    __shared__ double sh[32];
    sum = block_reduce(sum, DAdd(), sh);
    sq = block_reduce(sq, DAdd(), sh);
    if (threadIdx.x == 0) {
        partial[(c * gridDim.y + blockIdx.y) * 2] = sum;
        partial[(c * gridDim.y + blockIdx.y) * 2 + 1] = sq;
    }
}

// The backward's per-channel sums: {sum dz, sum dz * xhat}, dz = relu ? g * [y > 0] : g, xhat = (x - mean) * invstd.
template <typename T>
__device__ __forceinline__ void bn_grad_partial(double* partial, const T* g, const T* y, const T* x, const typename Acc<T>::type* mean,
                                                const typename Acc<T>::type* invstd, i64 n, i64 c_count, i64 s, i64 chunk, int relu) {
    typedef typename Acc<T>::type P;
    i64 c = blockIdx.x, from = (i64) blockIdx.y * chunk, to = min(n * s, from + chunk);
    P mu = mean[c], is = invstd[c];
    double sdz = 0, sdzx = 0;
    for (i64 j = from + threadIdx.x; j < to; j += blockDim.x) {
        i64 r, img = divmod(j, s, r);
        i64 i = (img * c_count + c) * s + r;
        P dz = load<P>(g[i]);
        if (relu && !(load<P>(y[i]) > 0)) dz = 0;
        sdz += (double) dz;
        sdzx += (double) (dz * ((load<P>(x[i]) - mu) * is));
    }
    __shared__ double sh[32];
    sdz = block_reduce(sdz, DAdd(), sh);
    sdzx = block_reduce(sdzx, DAdd(), sh);
    if (threadIdx.x == 0) {
        partial[(c * gridDim.y + blockIdx.y) * 2] = sdz;
        partial[(c * gridDim.y + blockIdx.y) * 2 + 1] = sdzx;
    }
}

// Channels-last: x is m = N*H*W rows of c_count channels. Block (blockIdx.x, split) takes channels
// [32 * blockIdx.x, +32) over rows [split * chunk, +chunk); its warps take every (warps)th row, a lane per channel, so a
// warp reads adjacent channels of one row (coalesced); the warps' sums meet in shared memory. Same partial layout as
// bn_stats_partial, so batch_norm_stats_finish serves both. The elementwise passes (apply, input_grad) take channels-last
// as s = 1; each thread takes vec consecutive elements (one channel's when s % vec == 0, vec channels when s == 1 and
// c_count % vec == 0), so the index division runs once per vec elements.
template <typename T>
__device__ __forceinline__ void bn_stats_partial_cl(double* partial, const T* x, i64 m, i64 c_count, i64 chunk) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    i64 c = (i64) blockIdx.x * 32 + lane, from = (i64) blockIdx.y * chunk, to = min(m, from + chunk);
    double sum = 0, sq = 0;
    if (c < c_count) {
#pragma unroll 4
        for (i64 r = from + warp; r < to; r += warps) {   // unrolled: several rows' loads in flight per thread
            double v = (double) load<typename Acc<T>::type>(x[r * c_count + c]);
            sum += v;
            sq += v * v;
        }
    }
    __shared__ double sh[2][32][32];
    sh[0][warp][lane] = sum;
    sh[1][warp][lane] = sq;
    __syncthreads();
    if (warp == 0 && c < c_count) {
        for (int k = 1; k < warps; k++) { sum += sh[0][k][lane]; sq += sh[1][k][lane]; }
        partial[(c * gridDim.y + blockIdx.y) * 2] = sum;
        partial[(c * gridDim.y + blockIdx.y) * 2 + 1] = sq;
    }
}

// bn_grad_partial for channels-last, blocked as bn_stats_partial_cl.
template <typename T>
__device__ __forceinline__ void bn_grad_partial_cl(double* partial, const T* g, const T* y, const T* x, const typename Acc<T>::type* mean,
                                                   const typename Acc<T>::type* invstd, i64 m, i64 c_count, i64 chunk, int relu) {
    typedef typename Acc<T>::type P;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    i64 c = (i64) blockIdx.x * 32 + lane, from = (i64) blockIdx.y * chunk, to = min(m, from + chunk);
    double sdz = 0, sdzx = 0;
    if (c < c_count) {
        P mu = mean[c], is = invstd[c];
#pragma unroll 4
        for (i64 r = from + warp; r < to; r += warps) {
            i64 i = r * c_count + c;
            P dz = load<P>(g[i]);
            if (relu && !(load<P>(y[i]) > 0)) dz = 0;
            sdz += (double) dz;
            sdzx += (double) (dz * ((load<P>(x[i]) - mu) * is));
        }
    }
    __shared__ double sh[2][32][32];
    sh[0][warp][lane] = sdz;
    sh[1][warp][lane] = sdzx;
    __syncthreads();
    if (warp == 0 && c < c_count) {
        for (int k = 1; k < warps; k++) { sdz += sh[0][k][lane]; sdzx += sh[1][k][lane]; }
        partial[(c * gridDim.y + blockIdx.y) * 2] = sdz;
        partial[(c * gridDim.y + blockIdx.y) * 2 + 1] = sdzx;
    }
}

// ---- channels-last with 16-byte accesses: V = 16 / sizeof(T) adjacent channels per thread (c_count % V == 0, every
// pointer 16-byte aligned; the launcher checks). A block of 256 threads is tpr threads across a row's vectors (channel
// group cg = blockIdx.x * tpr + lane) by 256 / tpr rows; a thread keeps its channels for the whole launch, so per-channel
// constants sit in registers. The sums accumulate per thread in A (float for 32- and 16-bit types), shifted by the
// chunk's first row so that sum of squares does not cancel when the mean is large against the spread, then meet in
// double in shared memory; the partial layout is bn_stats_partial's, so the finish kernels serve all three.
struct ClTile {
    int lane, row0, rows;   // this thread's vector within the tile, its first row, rows per block step
    i64 cg;                 // its channel group (channels cg * V ..)
    bool active;
};
__device__ __forceinline__ ClTile cl_tile(int tpr, i64 cv) {
    ClTile t;
    t.lane = threadIdx.x % tpr;
    t.row0 = threadIdx.x / tpr;
    t.rows = blockDim.x / tpr;
    t.cg = (i64) blockIdx.x * tpr + t.lane;
    t.active = t.row0 < t.rows && t.cg < cv;
    return t;
}

// Sums the threads' two accumulators per channel over a block's rows (sh: 2 * V * blockDim.x doubles) and writes the
// chunk's partials, unshifted: sum x = s + n k, sum x^2 = q + 2 k s + n k^2 (k = 0 for the gradient sums).
template <int V, typename A>
__device__ __forceinline__ void cl_block_partials(double* partial, double* sh, const A* a, const A* b, const A* shift, ClTile t,
                                                  int tpr, i64 n) {
    if (t.row0 < t.rows) {
#pragma unroll
        for (int k = 0; k < V; k++) {
            sh[((t.row0 * 2) * V + k) * tpr + t.lane] = (double) a[k];
            sh[((t.row0 * 2 + 1) * V + k) * tpr + t.lane] = (double) b[k];
        }
    }
    __syncthreads();
    if (t.row0 == 0 && t.active) {
#pragma unroll
        for (int k = 0; k < V; k++) {
            double s = 0, q = 0;
            for (int r = 0; r < t.rows; r++) { s += sh[((r * 2) * V + k) * tpr + t.lane]; q += sh[((r * 2 + 1) * V + k) * tpr + t.lane]; }
            double kk = shift ? (double) shift[k] : 0.0;
            i64 c = t.cg * V + k;
            partial[(c * gridDim.y + blockIdx.y) * 2] = s + n * kk;
            partial[(c * gridDim.y + blockIdx.y) * 2 + 1] = q + 2 * kk * s + n * kk * kk;
        }
    }
}

template <typename T>
__device__ __forceinline__ void bn_stats_partial_v(double* partial, const T* x, i64 m, i64 c_count, i64 chunk, int tpr) {
    typedef typename Acc<T>::type A;
    constexpr int V = Vec16<T>::N;
    extern __shared__ double sh_cl[];
    ClTile t = cl_tile(tpr, c_count / V);
    i64 from = (i64) blockIdx.y * chunk, to = min(m, from + chunk);
    A sum[V], sq[V], shift[V];
#pragma unroll
    for (int k = 0; k < V; k++) { sum[k] = 0; sq[k] = 0; shift[k] = 0; }
    if (t.active && from < to) {
        Vec16<T> v;
        v.load(x + from * c_count + t.cg * V);
#pragma unroll
        for (int k = 0; k < V; k++) shift[k] = load<A>(v.v[k]);
#pragma unroll 4
        for (i64 r = from + t.row0; r < to; r += t.rows) {
            v.load(x + r * c_count + t.cg * V);
#pragma unroll
            for (int k = 0; k < V; k++) {
                A d = load<A>(v.v[k]) - shift[k];
                sum[k] += d;
                sq[k] += d * d;
            }
        }
    }
    cl_block_partials<V, A>(partial, sh_cl, sum, sq, shift, t, tpr, max(to - from, (i64) 0));
}

// The affine part of the _v kernels' forward, y = x * scale + shift before the residual and the ReLU, in one fused
// multiply-add: the backward kernels recompute it bit for bit for the ReLU mask where no residual was added, rather
// than read y (a pass over the activations less each).
template <typename A> __device__ __forceinline__ A bn_affine(A x, A scale, A shift) { return fma(x, scale, shift); }

// scale = invstd * w, shift = b - mean * scale for the channels [c0, c0 + V).
template <typename A, int V>
__device__ __forceinline__ void bn_scale_shift(A* scale, A* shift, const A* mean, const A* invstd, const A* w, const A* b, i64 c0) {
#pragma unroll
    for (int k = 0; k < V; k++) {
        scale[k] = invstd[c0 + k] * (w ? w[c0 + k] : (A) 1);
        shift[k] = (b ? b[c0 + k] : (A) 0) - mean[c0 + k] * scale[k];
    }
}

// The V gradients of input pixel r (channels [cg * V, +V)) gathered from the max pool's output gradient g through its
// byte indices pidx (pooled_grad over pp's geometry): the fused max pool's input gradient reads g so.
template <typename T, typename A, int V>
__device__ __forceinline__ void bn_pooled_grad(A* d, const T* g, const unsigned char* pidx, const PoolP& pp, i64 r, i64 cg) {
    int ix, iy;
    i64 img = plane_yx(r, pp.h, pp.w, iy, ix);
    pooled_grad<T, A, V>(d, g, pidx, pp, img, iy, ix, cg);
}

// {sum dz, sum dz * xhat} as bn_grad_partial: dz * (x - mean) is summed and scaled by invstd once. The ReLU's mask
// comes from y, or (y null) from x recomputed as bn_apply_v did (no residual).
template <typename T>
__device__ __forceinline__ void bn_grad_partial_v(double* partial, const T* g, const T* y, const T* x, const typename Acc<T>::type* mean,
                                                  const typename Acc<T>::type* invstd, const typename Acc<T>::type* w,
                                                  const typename Acc<T>::type* b, i64 m, i64 c_count, i64 chunk, int relu, int tpr) {
    typedef typename Acc<T>::type A;
    constexpr int V = Vec16<T>::N;
    extern __shared__ double sh_cl[];
    ClTile t = cl_tile(tpr, c_count / V);
    i64 from = (i64) blockIdx.y * chunk, to = min(m, from + chunk);
    A sdz[V], sdzx[V], mu[V], scale[V], shift[V];
    const bool recompute = relu && !y;
#pragma unroll
    for (int k = 0; k < V; k++) { sdz[k] = 0; sdzx[k] = 0; mu[k] = t.active ? mean[t.cg * V + k] : (A) 0; scale[k] = 0; shift[k] = 0; }
    if (t.active) {
        if (recompute) bn_scale_shift<A, V>(scale, shift, mean, invstd, w, b, t.cg * V);
#pragma unroll 2
        for (i64 r = from + t.row0; r < to; r += t.rows) {
            i64 i = r * c_count + t.cg * V;
            Vec16<T> gv, xv, yv;
            gv.load(g + i);
            xv.load(x + i);
            if (relu && !recompute) yv.load(y + i);
#pragma unroll
            for (int k = 0; k < V; k++) {
                A dz = load<A>(gv.v[k]), xk = load<A>(xv.v[k]);
                if (relu && !((recompute ? bn_affine(xk, scale[k], shift[k]) : load<A>(yv.v[k])) > 0)) dz = 0;
                sdz[k] += dz;
                sdzx[k] += dz * (xk - mu[k]);
            }
        }
#pragma unroll
        for (int k = 0; k < V; k++) sdzx[k] *= invstd[t.cg * V + k];
    }
    cl_block_partials<V, A>(partial, sh_cl, sdz, sdzx, (const A*) nullptr, t, tpr, 0);
}

// The same sums for the fused batch norm, ReLU and max pool, from the pooled gradient g: dz at input pixel i is the sum
// of the pooled gradients whose window chose i, so the sums run over the pooled pixels (m of them; a quarter of the
// input's for ResNet's 3x3/2 pool), each adding its gradient at the x its byte index names, with the ReLU's mask
// recomputed there. No input-sized gradient is read or written. STEM: the stem pool's geometry as constants.
template <typename T, bool STEM>
__device__ __forceinline__ void bn_relu_max_pool_grad_partial_v(double* partial, const T* g, const unsigned char* pidx, const T* x,
                                                                const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd,
                                                                const typename Acc<T>::type* w, const typename Acc<T>::type* b, i64 m,
                                                                i64 c_count, i64 chunk, int tpr, PoolP pp) {
    typedef typename Acc<T>::type A;
    constexpr int V = Vec16<T>::N;
    extern __shared__ double sh_cl[];
    ClTile t = cl_tile(tpr, c_count / V);
    i64 from = (i64) blockIdx.y * chunk, to = min(m, from + chunk);
    A sdz[V], sdzx[V], mu[V], scale[V], shift[V];
#pragma unroll
    for (int k = 0; k < V; k++) { sdz[k] = 0; sdzx[k] = 0; mu[k] = t.active ? mean[t.cg * V + k] : (A) 0; scale[k] = 0; shift[k] = 0; }
    if (t.active) {
        bn_scale_shift<A, V>(scale, shift, mean, invstd, w, b, t.cg * V);
#pragma unroll 2
        for (i64 r = from + t.row0; r < to; r += t.rows) {
            int ox, oy;
            const i64 img = plane_yx(r, pp.oh, pp.ow, oy, ox), o = r * c_count + t.cg * V;
            Vec16<T> gv;
            gv.load(g + o);
            const PoolBytes<V> ib = *reinterpret_cast<const PoolBytes<V>*>(pidx + o);
            const T* xi = x + img * pp.h * pp.w * c_count + t.cg * V;   // this image's channels of the group
            const int kw = STEM ? 3 : pp.kw, y0 = oy * (STEM ? 2 : pp.sh) - (STEM ? 1 : pp.ph), x0 = ox * (STEM ? 2 : pp.sw) - (STEM ? 1 : pp.pw);
#pragma unroll
            for (int k = 0; k < V; k++) {
                const int at = ib.b[k], ky = at / kw, kx = at - ky * kw;
                if (at == 255) continue;
                A xk = load<A>(xi[((i64) (y0 + ky) * pp.w + x0 + kx) * c_count + k]);
                if (!(bn_affine(xk, scale[k], shift[k]) > 0)) continue;
                A dz = load<A>(gv.v[k]);
                sdz[k] += dz;
                sdzx[k] += dz * (xk - mu[k]);
            }
        }
#pragma unroll
        for (int k = 0; k < V; k++) sdzx[k] *= invstd[t.cg * V + k];
    }
    cl_block_partials<V, A>(partial, sh_cl, sdz, sdzx, (const A*) nullptr, t, tpr, 0);
}

// y = x * scale + shift (+ res, ReLU) over rows [blockIdx.y * rows + row0, m) by gridDim.y * rows.
template <typename T>
__device__ __forceinline__ void bn_apply_v(T* y, const T* x, const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd,
                                           const typename Acc<T>::type* w, const typename Acc<T>::type* b, const T* res, i64 m, i64 c_count,
                                           int relu, int tpr) {
    typedef typename Acc<T>::type A;
    constexpr int V = Vec16<T>::N;
    ClTile t = cl_tile(tpr, c_count / V);
    if (!t.active) return;
    A scale[V], shift[V];
    bn_scale_shift<A, V>(scale, shift, mean, invstd, w, b, t.cg * V);
#pragma unroll 2
    for (i64 r = (i64) blockIdx.y * t.rows + t.row0; r < m; r += (i64) gridDim.y * t.rows) {
        i64 i = r * c_count + t.cg * V;
        Vec16<T> xv, rv, out;
        xv.load(x + i);
        if (res) rv.load(res + i);
#pragma unroll
        for (int k = 0; k < V; k++) {
            A v = bn_affine(load<A>(xv.v[k]), scale[k], shift[k]);
            if (res) v += load<A>(rv.v[k]);
            if (relu) v = v <= 0 ? (A) 0 : v;
            out.v[k] = store<T, A>(v);
        }
        out.store(y + i);
    }
}

// The input gradient's c0 and c1 (dx = scale * dz + c0 + c1 * x) for channels [first, first + V): from the finish
// kernel's two coefficients a channel and the mean in training; 0 in eval, where dx = scale * dz.
template <typename A, int V>
__device__ __forceinline__ void bn_input_grad_coef(A* c0, A* c1, const A* coef, const A* mean, i64 first, int training) {
#pragma unroll
    for (int k = 0; k < V; k++) {
        i64 c = first + k;
        c1[k] = training ? coef[c * 2 + 1] : (A) 0;
        c0[k] = training ? coef[c * 2] - c1[k] * mean[c] : (A) 0;
    }
}

// dx = scale * dz + c0 + c1 * x (training; see batch_norm_grad_finish: c0 = coef[0] - coef[1] * mean, c1 = coef[1]),
// dres = dz; rows as bn_apply_v; the ReLU's mask as bn_grad_partial_v. POOL: g is the max pool's (bn_pooled_grad).
template <typename T, bool POOL>
__device__ __forceinline__ void bn_input_grad_v(T* dx, T* dres, const T* g, const T* y, const T* x, const typename Acc<T>::type* mean,
                                                const typename Acc<T>::type* invstd, const typename Acc<T>::type* w,
                                                const typename Acc<T>::type* b, const typename Acc<T>::type* coef, i64 m, i64 c_count,
                                                int relu, int training, int tpr, const unsigned char* pidx, PoolP pp) {
    typedef typename Acc<T>::type A;
    constexpr int V = Vec16<T>::N;
    ClTile t = cl_tile(tpr, c_count / V);
    if (!t.active) return;
    const bool recompute = relu && !y;
    A scale[V], shift[V], c0[V], c1[V];
    bn_scale_shift<A, V>(scale, shift, mean, invstd, w, b, t.cg * V);
    bn_input_grad_coef<A, V>(c0, c1, coef, mean, t.cg * V, training);
#pragma unroll 2
    for (i64 r = (i64) blockIdx.y * t.rows + t.row0; r < m; r += (i64) gridDim.y * t.rows) {
        i64 i = r * c_count + t.cg * V;
        Vec16<T> gv, yv, xv, dz, out;
        A gp[V];   // POOL only
        if (POOL) bn_pooled_grad<T, A, V>(gp, g, pidx, pp, r, t.cg);
        else gv.load(g + i);
        if (relu && !recompute) yv.load(y + i);
        if ((dx && training) || recompute) xv.load(x + i);
#pragma unroll
        for (int k = 0; k < V; k++) {
            A d = POOL ? gp[k] : load<A>(gv.v[k]);
            if (relu && !((recompute ? bn_affine(load<A>(xv.v[k]), scale[k], shift[k]) : load<A>(yv.v[k])) > 0)) d = 0;
            dz.v[k] = store<T, A>(d);
            if (dx) out.v[k] = store<T, A>(scale[k] * d + (training ? c0[k] + c1[k] * load<A>(xv.v[k]) : (A) 0));
        }
        if (dres) dz.store(dres + i);
        if (dx) out.store(dx + i);
    }
}

// dx of the fused batch norm, ReLU and max pool for ResNet's stem pool (3x3, stride 2, padding 1), by 2x2 quads of
// input pixels (rows: n * ceil(h / 2) * ceil(w / 2)): the four windows that cover quad (qy, qx), oy in {qy, qy + 1} and
// ox in {qx, qx + 1}, are read once for its four pixels (a gather per pixel reads nine windows a quad), each window's
// gradient added to the quad pixel its byte index names (none: 255 / 3 puts it outside), in window order as
// pooled_grad adds them; then dx as bn_input_grad_v, the ReLU's mask recomputed from x. Register arrays indexed by
// constants only (the four pixels' sums are selected by compares, not by a computed index, which would spill them).
template <typename T>
__device__ __forceinline__ void bn_relu_max_pool_input_grad_quads_v(T* dx, const T* g, const unsigned char* pidx, const T* x,
                                                                    const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd,
                                                                    const typename Acc<T>::type* w, const typename Acc<T>::type* b,
                                                                    const typename Acc<T>::type* coef, i64 quads, i64 c_count, int training,
                                                                    int tpr, PoolP pp) {
    typedef typename Acc<T>::type A;
    constexpr int V = Vec16<T>::N;
    ClTile t = cl_tile(tpr, c_count / V);
    if (!t.active) return;
    A scale[V], shift[V], c0[V], c1[V];
    bn_scale_shift<A, V>(scale, shift, mean, invstd, w, b, t.cg * V);
    bn_input_grad_coef<A, V>(c0, c1, coef, mean, t.cg * V, training);
    const int qh = (pp.h + 1) / 2, qw = (pp.w + 1) / 2;
    for (i64 q = (i64) blockIdx.y * t.rows + t.row0; q < quads; q += (i64) gridDim.y * t.rows) {
        int qy, qx;
        const i64 img = plane_yx(q, qh, qw, qy, qx);
        A acc[4][V];
#pragma unroll
        for (int p = 0; p < 4; p++) {
#pragma unroll
            for (int k = 0; k < V; k++) acc[p][k] = 0;
        }
#pragma unroll
        for (int a = 0; a < 2; a++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int oy = qy + a, ox = qx + e;
                if (oy >= pp.oh || ox >= pp.ow) continue;
                const i64 o = ((img * pp.oh + oy) * pp.ow + ox) * c_count + t.cg * V;
                Vec16<T> gv;
                gv.load(g + o);
                const PoolBytes<V> ib = *reinterpret_cast<const PoolBytes<V>*>(pidx + o);
#pragma unroll
                for (int k = 0; k < V; k++) {
                    const int at = ib.b[k], ky = at / 3, dy = 2 * a - 1 + ky, dxx = 2 * e - 1 + at - 3 * ky;
                    const A gk = load<A>(gv.v[k]);
#pragma unroll
                    for (int p = 0; p < 4; p++) if (dy == (p >> 1) && dxx == (p & 1)) acc[p][k] += gk;
                }
            }
        }
#pragma unroll
        for (int p = 0; p < 4; p++) {
            const int iy = 2 * qy + (p >> 1), ix = 2 * qx + (p & 1);
            if (iy >= pp.h || ix >= pp.w) continue;
            const i64 i = ((img * pp.h + iy) * pp.w + ix) * c_count + t.cg * V;
            Vec16<T> xv, out;
            xv.load(x + i);
#pragma unroll
            for (int k = 0; k < V; k++) {
                const A xk = load<A>(xv.v[k]), d = bn_affine(xk, scale[k], shift[k]) > 0 ? acc[p][k] : (A) 0;
                out.v[k] = store<T, A>(scale[k] * d + (training ? c0[k] + c1[k] * xk : (A) 0));
            }
            out.store(dx + i);
        }
    }
}

// The order of post-ReLU values (+0, positive, +inf, NaN of either sign) as unsigned integers: their bits without the
// sign, which puts NaN above +inf, so one integer compare is max_pool_fwd_v's "larger, or NaN" rule.
__device__ __forceinline__ unsigned pool_key(float a) { return __float_as_uint(a) & 0x7FFFFFFFu; }
__device__ __forceinline__ unsigned long long pool_key(double a) { return (unsigned long long) __double_as_longlong(a) & 0x7FFFFFFFFFFFFFFFull; }
__device__ __forceinline__ float from_key(unsigned k) { return __uint_as_float(k); }
__device__ __forceinline__ double from_key(unsigned long long k) { return __longlong_as_double((long long) k); }

// maxPool(relu(x * scale + shift)) over channels-last x, as bn_apply_v then max_pool_fwd_v would make it (each value
// rounded to T before the comparison, the first maximum winning, NaN above all, the same byte indices, which the _pool_
// backward kernels gather through; of several NaN in a window the index may name another than max_pool_fwd_v's, whose
// gradient the ReLU stops all the same): the normalised activations are never stored. A thread takes V channels of one
// output pixel; total = N * OH * OW * (C / V). STEM: the stem pool's geometry as constants (the window loops unroll).
template <typename T, bool STEM>
__device__ __forceinline__ void bn_relu_max_pool_v(T* y, unsigned char* idx, const T* x, const typename Acc<T>::type* mean,
                                                   const typename Acc<T>::type* invstd, const typename Acc<T>::type* w,
                                                   const typename Acc<T>::type* b, i64 total, PoolP p) {
    typedef typename Acc<T>::type A;
    constexpr int V = Vec16<T>::N;
    const int groups = p.c / V;
    GRID_STRIDE(j, total) {
        i64 grp, pixel = divmod(j, groups, grp);
        int ox, oy;
        i64 img = plane_yx(pixel, p.oh, p.ow, oy, ox);
        A scale[V], shift[V];
        decltype(pool_key(A())) best[V];
        int bi[V];
        bn_scale_shift<A, V>(scale, shift, mean, invstd, w, b, grp * V);
#pragma unroll
        for (int k = 0; k < V; k++) { best[k] = 0; bi[k] = 255; }
        const int kh = STEM ? 3 : p.kh, kw = STEM ? 3 : p.kw;
#pragma unroll
        for (int ky = 0; ky < kh; ky++) {
            int iy = oy * (STEM ? 2 : p.sh) - (STEM ? 1 : p.ph) + ky;
            if (iy < 0 || iy >= p.h) continue;
#pragma unroll
            for (int kx = 0; kx < kw; kx++) {
                int ix = ox * (STEM ? 2 : p.sw) - (STEM ? 1 : p.pw) + kx;
                if (ix < 0 || ix >= p.w) continue;
                Vec16<T> v;
                v.load(x + ((img * p.h + iy) * p.w + ix) * p.c + grp * V);
                const int at = ky * kw + kx;
#pragma unroll
                for (int k = 0; k < V; k++) {
                    A a = bn_affine(load<A>(v.v[k]), scale[k], shift[k]);
                    a = load<A>(store<T, A>(a <= 0 ? (A) 0 : a));
                    const auto key = pool_key(a);
                    if (bi[k] == 255 || key > best[k]) { best[k] = key; bi[k] = at; }
                }
            }
        }
        const i64 o = pixel * p.c + grp * V;
        Vec16<T> out;
        PoolBytes<V> ib;
#pragma unroll
        for (int k = 0; k < V; k++) {
            out.v[k] = store<T, A>(bi[k] == 255 ? (A) -__longlong_as_double(0x7FF0000000000000ll) : (A) from_key(best[k]));
            ib.b[k] = (unsigned char) bi[k];
        }
        out.store(y + o);
        *reinterpret_cast<PoolBytes<V>*>(idx + o) = ib;
    }
}

#define BATCH_NORM(T, S) \
extern "C" __global__ void batch_norm_stats_v_##S(double* partial, const T* x, i64 m, i64 c_count, i64 chunk, int tpr) { \
    bn_stats_partial_v<T>(partial, x, m, c_count, chunk, tpr); \
} \
extern "C" __global__ void batch_norm_grad_v_##S(double* partial, const T* g, const T* y, const T* x, const typename Acc<T>::type* mean, \
        const typename Acc<T>::type* invstd, const typename Acc<T>::type* w, const typename Acc<T>::type* b, i64 m, i64 c_count, \
        i64 chunk, int relu, int tpr) { \
    bn_grad_partial_v<T>(partial, g, y, x, mean, invstd, w, b, m, c_count, chunk, relu, tpr); \
} \
/* maxPool(relu(batchNorm(x))) in one op: the forward's second pass, and the backward's two from the pooled gradient */ \
extern "C" __global__ void batch_norm_relu_max_pool_v_##S(T* y, unsigned char* idx, const T* x, const typename Acc<T>::type* mean, \
        const typename Acc<T>::type* invstd, const typename Acc<T>::type* w, const typename Acc<T>::type* b, i64 total, PoolP p) { \
    if (stem_pool(p)) bn_relu_max_pool_v<T, true>(y, idx, x, mean, invstd, w, b, total, p); \
    else bn_relu_max_pool_v<T, false>(y, idx, x, mean, invstd, w, b, total, p); \
} \
extern "C" __global__ void batch_norm_relu_max_pool_grad_v_##S(double* partial, const T* g, const unsigned char* idx, const T* x, \
        const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd, const typename Acc<T>::type* w, \
        const typename Acc<T>::type* b, i64 m, i64 c_count, i64 chunk, int tpr, PoolP p) { \
    if (stem_pool(p)) bn_relu_max_pool_grad_partial_v<T, true>(partial, g, idx, x, mean, invstd, w, b, m, c_count, chunk, tpr, p); \
    else bn_relu_max_pool_grad_partial_v<T, false>(partial, g, idx, x, mean, invstd, w, b, m, c_count, chunk, tpr, p); \
} \
extern "C" __global__ void batch_norm_relu_max_pool_input_grad_v_##S(T* dx, const T* g, const unsigned char* idx, const T* x, \
        const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd, const typename Acc<T>::type* w, \
        const typename Acc<T>::type* b, const typename Acc<T>::type* coef, i64 m, i64 c_count, int training, int tpr, PoolP p) { \
    bn_input_grad_v<T, true>(dx, nullptr, g, nullptr, x, mean, invstd, w, b, coef, m, c_count, 1, training, tpr, idx, p); \
} \
/* the same for the stem pool (stem_pool(p)) over 2x2 quads of input pixels, quads = n * ceil(h / 2) * ceil(w / 2) */ \
extern "C" __global__ void batch_norm_relu_max_pool_input_grad_quads_v_##S(T* dx, const T* g, const unsigned char* idx, const T* x, \
        const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd, const typename Acc<T>::type* w, \
        const typename Acc<T>::type* b, const typename Acc<T>::type* coef, i64 quads, i64 c_count, int training, int tpr, PoolP p) { \
    bn_relu_max_pool_input_grad_quads_v<T>(dx, g, idx, x, mean, invstd, w, b, coef, quads, c_count, training, tpr, p); \
} \
extern "C" __global__ void batch_norm_apply_v_##S(T* y, const T* x, const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd, \
        const typename Acc<T>::type* w, const typename Acc<T>::type* b, const T* res, i64 m, i64 c_count, int relu, int tpr) { \
    bn_apply_v<T>(y, x, mean, invstd, w, b, res, m, c_count, relu, tpr); \
} \
extern "C" __global__ void batch_norm_input_grad_v_##S(T* dx, T* dres, const T* g, const T* y, const T* x, \
        const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd, const typename Acc<T>::type* w, \
        const typename Acc<T>::type* b, const typename Acc<T>::type* coef, i64 m, i64 c_count, int relu, int training, int tpr) { \
    bn_input_grad_v<T, false>(dx, dres, g, y, x, mean, invstd, w, b, coef, m, c_count, relu, training, tpr, nullptr, PoolP()); \
} \
extern "C" __global__ void batch_norm_stats_cl_##S(double* partial, const T* x, i64 m, i64 c_count, i64 chunk) { \
    bn_stats_partial_cl<T>(partial, x, m, c_count, chunk); \
} \
extern "C" __global__ void batch_norm_grad_cl_##S(double* partial, const T* g, const T* y, const T* x, const typename Acc<T>::type* mean, \
        const typename Acc<T>::type* invstd, i64 m, i64 c_count, i64 chunk, int relu) { \
    bn_grad_partial_cl<T>(partial, g, y, x, mean, invstd, m, c_count, chunk, relu); \
} \
extern "C" __global__ void batch_norm_stats_##S(double* partial, const T* x, i64 n, i64 c_count, i64 s, i64 chunk) { \
    bn_stats_partial<T>(partial, x, n, c_count, s, chunk); \
} \
/* mean, 1/sqrt(var + eps) from the partial sums; running statistics (when given) moved towards the batch's, the variance \
   unbiased; the layer's num_batches_tracked (when given) counted here rather than by two launches of its own */ \
extern "C" __global__ void batch_norm_stats_finish_##S(typename Acc<T>::type* mean, typename Acc<T>::type* invstd, \
        typename Acc<T>::type* running_mean, typename Acc<T>::type* running_var, const double* partial, i64 c_count, int splits, \
        i64 m, double momentum, double eps, i64* batches_tracked) { \
    typedef typename Acc<T>::type P; \
    if (batches_tracked && blockIdx.x == 0 && threadIdx.x == 0) batches_tracked[0] += 1; \
    WARP_STRIDE(c, lane, c_count) { \
        double sum = 0, sq = 0; \
        for (int k = lane; k < splits; k += 32) { sum += partial[(c * splits + k) * 2]; sq += partial[(c * splits + k) * 2 + 1]; } \
        sum = warp_all(sum, DAdd()); \
        sq = warp_all(sq, DAdd()); \
        if (lane) continue; \
        double mu = sum / m, var = fmax(sq / m - mu * mu, 0.0); \
        mean[c] = (P) mu; \
        invstd[c] = (P) (1.0 / sqrt(var + eps)); \
        if (running_mean) running_mean[c] = (P) ((1 - momentum) * (double) running_mean[c] + momentum * mu); \
        if (running_var) running_var[c] = (P) ((1 - momentum) * (double) running_var[c] + momentum * var * m / (m - 1)); \
    } \
} \
extern "C" __global__ void batch_norm_eval_stats_##S(typename Acc<T>::type* mean, typename Acc<T>::type* invstd, \
        const typename Acc<T>::type* running_mean, const typename Acc<T>::type* running_var, i64 c_count, double eps) { \
    typedef typename Acc<T>::type P; \
    GRID_STRIDE(c, c_count) { \
        mean[c] = running_mean[c]; \
        invstd[c] = (P) (1.0 / sqrt((double) running_var[c] + eps)); \
    } \
} \
extern "C" __global__ void batch_norm_apply_##S(T* y, const T* x, const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd, \
        const typename Acc<T>::type* w, const typename Acc<T>::type* b, const T* res, i64 total, i64 c_count, i64 s, int relu, int vec) { \
    typedef typename Acc<T>::type P; \
    GRID_STRIDE(j, total / vec) { \
        i64 i0 = j * vec, r, c0, q = divmod(i0, s, r); \
        divmod(q, c_count, c0); \
        for (int k = 0; k < vec; k++) { \
            i64 i = i0 + k, c = s == 1 ? c0 + k : c0; \
            P v = (load<P>(x[i]) - mean[c]) * invstd[c]; \
            if (w) v *= w[c]; \
            if (b) v += b[c]; \
            if (res) v += load<P>(res[i]); \
            if (relu) v = v <= 0 ? (P) 0 : v; \
            y[i] = store<T, P>(v); \
        } \
    } \
} \
extern "C" __global__ void batch_norm_grad_##S(double* partial, const T* g, const T* y, const T* x, const typename Acc<T>::type* mean, \
        const typename Acc<T>::type* invstd, i64 n, i64 c_count, i64 s, i64 chunk, int relu) { \
    bn_grad_partial<T>(partial, g, y, x, mean, invstd, n, c_count, s, chunk, relu); \
} \
/* dweight = sum dz * xhat, dbias = sum dz (when asked for); for the training input gradient, with scale = w * invstd, \
   dx = scale * (dz - sum dz / m - xhat * sum(dz xhat) / m) = scale * dz + coef[0] + coef[1] * (x - mean): \
   coef[c] = {-scale * sum dz / m, -scale * invstd * sum(dz xhat) / m}, so the per-element pass divides nothing */ \
extern "C" __global__ void batch_norm_grad_finish_##S(typename Acc<T>::type* coef, typename Acc<T>::type* dw, typename Acc<T>::type* db, \
        const double* partial, const typename Acc<T>::type* w, const typename Acc<T>::type* invstd, i64 c_count, int splits, i64 m) { \
    typedef typename Acc<T>::type P; \
    WARP_STRIDE(c, lane, c_count) { \
        double sdz = 0, sdzx = 0; \
        for (int k = lane; k < splits; k += 32) { sdz += partial[(c * splits + k) * 2]; sdzx += partial[(c * splits + k) * 2 + 1]; } \
        sdz = warp_all(sdz, DAdd()); \
        sdzx = warp_all(sdzx, DAdd()); \
        if (lane) continue; \
        double is = (double) invstd[c], scale = is * (w ? (double) w[c] : 1.0); \
        coef[c * 2] = (P) (-scale * sdz / m); \
        coef[c * 2 + 1] = (P) (-scale * is * sdzx / m); \
        if (dw) dw[c] = (P) sdzx; \
        if (db) db[c] = (P) sdz; \
    } \
} \
/* dx = w * invstd * dz (+ the training terms from coef, see batch_norm_grad_finish); dres = dz */ \
extern "C" __global__ void batch_norm_input_grad_##S(T* dx, T* dres, const T* g, const T* y, const T* x, \
        const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd, const typename Acc<T>::type* w, \
        const typename Acc<T>::type* coef, i64 total, i64 c_count, i64 s, int relu, int training, int vec) { \
    typedef typename Acc<T>::type P; \
    GRID_STRIDE(j, total / vec) { \
        i64 i0 = j * vec, r, c0, q = divmod(i0, s, r); \
        divmod(q, c_count, c0); \
        for (int k = 0; k < vec; k++) { \
            i64 i = i0 + k, c = s == 1 ? c0 + k : c0; \
            P dz = load<P>(g[i]); \
            if (relu && !(load<P>(y[i]) > 0)) dz = 0; \
            if (dres) dres[i] = store<T, P>(dz); \
            if (!dx) continue; \
            P v = dz * invstd[c] * (w ? w[c] : (P) 1); \
            if (training) v += coef[c * 2] + coef[c * 2 + 1] * (load<P>(x[i]) - mean[c]); \
            dx[i] = store<T, P>(v); \
        } \
    } \
}
KILN_FLOAT_TYPES(BATCH_NORM)

// ---- layer norm over rows of n contiguous elements: a warp per row (statistics by two passes over the row, which
// stays in L1), y = (x - mean) * invstd * w + b. Parameters and statistics are P (float, double for float64); y is
// TO, x's type or (layer_norm_fwd_to_*) a 16-bit one for float32 rows.
template <typename T, typename TO = T>
__device__ __forceinline__ void ln_forward(TO* y, typename Acc<T>::type* mean, typename Acc<T>::type* invstd, const T* x,
                                           const typename Acc<T>::type* w, const typename Acc<T>::type* b, i64 rows, int n, double eps) {
    typedef typename Acc<T>::type P;
    int lane = threadIdx.x & 31;
    auto add = [](P a, P c) { return a + c; };
    for (i64 r = ((i64) blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < rows; r += ((i64) gridDim.x * blockDim.x) >> 5) {
        const T* xr = x + r * n;
        P s = 0;
        for (int i = lane; i < n; i += 32) s += load<P, T>(xr[i]);
        P mu = warp_all(s, add) / (P) n, sq = 0;
        for (int i = lane; i < n; i += 32) { P d = load<P, T>(xr[i]) - mu; sq += d * d; }
        P is = (P) (1.0 / sqrt((double) (warp_all(sq, add) / (P) n) + eps));
        TO* yr = y + r * n;
        for (int i = lane; i < n; i += 32) {
            P v = (load<P, T>(xr[i]) - mu) * is;
            if (w) v *= w[i];
            if (b) v += b[i];
            yr[i] = store<TO, P>(v);
        }
        if (lane == 0) { mean[r] = mu; invstd[r] = is; }
    }
}

// dx = invstd * (dy - mean(dy) - xhat * mean(dy * xhat)), dy = g * w: a warp per row. g is x's type, or (the
// *_from_* kernels) the 16-bit type layer_norm_fwd_to_* wrote for float32 rows, read as it is rather than cast first.
// add (null: none) is x's pending gradient from its other consumers, added as dx is written (the engine's add pass
// goes). The parameter gradients stay a pass of their own: summing them here too, each lane's columns in registers,
// left too few rows in flight and ran 2-3x slower than both passes together on an H200.
template <typename T, typename G = T>
__device__ __forceinline__ void ln_input_grad(T* dx, const G* g, const T* x, const typename Acc<T>::type* w,
                                              const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd, i64 rows, int n,
                                              const T* add) {
    typedef typename Acc<T>::type P;
    int lane = threadIdx.x & 31;
    auto sum = [](P a, P c) { return a + c; };
    for (i64 r = ((i64) blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < rows; r += ((i64) gridDim.x * blockDim.x) >> 5) {
        const T* xr = x + r * n; const G* gr = g + r * n;
        const T* ar = add ? add + r * n : nullptr;
        P mu = mean[r], is = invstd[r], sdy = 0, sdyx = 0;
        for (int i = lane; i < n; i += 32) {
            // the addend's lines on their way to L2 while the row's sums are made (read after them, it stalled each warp)
            if (ar && lane == 0) asm volatile("prefetch.global.L2 [%0];" :: "l"(ar + i));
            P dy = load<P, G>(gr[i]) * (w ? w[i] : (P) 1), xhat = (load<P, T>(xr[i]) - mu) * is;
            sdy += dy;
            sdyx += dy * xhat;
        }
        P mdy = warp_all(sdy, sum) / (P) n, mdyx = warp_all(sdyx, sum) / (P) n;
        T* dr = dx + r * n;
        for (int i = lane; i < n; i += 32) {
            P dy = load<P, G>(gr[i]) * (w ? w[i] : (P) 1), xhat = (load<P, T>(xr[i]) - mu) * is;
            dr[i] = store<T, P>(is * (dy - mdy - xhat * mdyx) + (ar ? load<P, T>(ar[i]) : (P) 0));
        }
    }
}

// The parameter gradients' partial column sums: column i = blockIdx.x * blockDim.x + threadIdx.x over the rows
// [split * chunk, (split + 1) * chunk), split = blockIdx.y: partial[(split * n + i) * 2 + {0, 1}] = {sum g*xhat, sum g}.
template <typename T, typename G = T>
__device__ __forceinline__ void ln_param_grad(typename Acc<T>::type* partial, const G* g, const T* x, const typename Acc<T>::type* mean,
                                              const typename Acc<T>::type* invstd, i64 rows, int n, i64 chunk) {
    typedef typename Acc<T>::type P;
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    i64 from = (i64) blockIdx.y * chunk, to = min(rows, from + chunk);
    P sw = 0, sb = 0;
    for (i64 r = from; r < to; r++) {
        P gi = load<P, G>(g[r * n + i]);
        sw += gi * (load<P, T>(x[r * n + i]) - mean[r]) * invstd[r];
        sb += gi;
    }
    partial[((i64) blockIdx.y * n + i) * 2] = sw;
    partial[((i64) blockIdx.y * n + i) * 2 + 1] = sb;
}

#define LAYER_NORM(T, S) \
extern "C" __global__ void layer_norm_fwd_##S(T* y, typename Acc<T>::type* mean, typename Acc<T>::type* invstd, const T* x, \
        const typename Acc<T>::type* w, const typename Acc<T>::type* b, i64 rows, int n, double eps) { \
    ln_forward<T>(y, mean, invstd, x, w, b, rows, n, eps); \
} \
extern "C" __global__ void layer_norm_input_grad_##S(T* dx, const T* g, const T* x, const typename Acc<T>::type* w, \
        const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd, i64 rows, int n, const T* add) { \
    ln_input_grad<T>(dx, g, x, w, mean, invstd, rows, n, add); \
} \
extern "C" __global__ void layer_norm_param_grad_##S(typename Acc<T>::type* partial, const T* g, const T* x, \
        const typename Acc<T>::type* mean, const typename Acc<T>::type* invstd, i64 rows, int n, i64 chunk) { \
    ln_param_grad<T>(partial, g, x, mean, invstd, rows, n, chunk); \
} \
/* dw[i], db[i] = the sums of the splits' partials (dw null when there is no weight): a warp per column, its lanes \
   taking every 32nd split (one thread per column left a few hundred dependent loads to each of n threads) */ \
extern "C" __global__ void layer_norm_param_grad_finish_##S(typename Acc<T>::type* dw, typename Acc<T>::type* db, \
        const typename Acc<T>::type* partial, int n, int splits) { \
    typedef typename Acc<T>::type P; \
    int lane = threadIdx.x & 31; \
    auto add = [](P a, P c) { return a + c; }; \
    for (i64 i = ((i64) blockIdx.x * blockDim.x + threadIdx.x) >> 5; i < n; i += ((i64) gridDim.x * blockDim.x) >> 5) { \
        P sw = 0, sb = 0; \
        for (int k = lane; k < splits; k += 32) { sw += partial[((i64) k * n + i) * 2]; sb += partial[((i64) k * n + i) * 2 + 1]; } \
        sw = warp_all(sw, add); \
        sb = warp_all(sb, add); \
        if (lane == 0) { \
            if (dw) dw[i] = sw; \
            db[i] = sb; \
        } \
    } \
}
KILN_FLOAT_TYPES(LAYER_NORM)

// float32 rows of n = 128·k elements, k <= LN_V: each lane holds its k float4s of the row in registers, so x (and in
// backward g) is read once, 16 bytes a load, where the kernels above read the row two or three times, 4 bytes a load
// (the GPT's rows of 384: layer norm was ~6% of its float32 step). The same sums as above in another order.
#define LN_V 8
extern "C" __global__ void layer_norm_fwd_v_f32(float* y, float* mean, float* invstd, const float* x, const float* w, const float* b,
                                                i64 rows, int n, double eps) {
    int lane = threadIdx.x & 31, k = n >> 7;
    auto add = [](float a, float c) { return a + c; };
    for (i64 r = ((i64) blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < rows; r += ((i64) gridDim.x * blockDim.x) >> 5) {
        const float4* xr = reinterpret_cast<const float4*>(x + r * n);
        float4 v[LN_V];
        float s = 0;
#pragma unroll
        for (int q = 0; q < LN_V; q++) if (q < k) { v[q] = xr[q * 32 + lane]; s += (v[q].x + v[q].y) + (v[q].z + v[q].w); }
        float mu = warp_all(s, add) / (float) n, sq = 0;
#pragma unroll
        for (int q = 0; q < LN_V; q++) {
            if (q < k) {
                float a = v[q].x - mu, c = v[q].y - mu, d = v[q].z - mu, e = v[q].w - mu;
                sq += (a * a + c * c) + (d * d + e * e);
            }
        }
        float is = (float) (1.0 / sqrt((double) (warp_all(sq, add) / (float) n) + eps));
        float4* yr = reinterpret_cast<float4*>(y + r * n);
#pragma unroll
        for (int q = 0; q < LN_V; q++) {
            if (q < k) {
                int i = q * 32 + lane;
                float4 o = make_float4((v[q].x - mu) * is, (v[q].y - mu) * is, (v[q].z - mu) * is, (v[q].w - mu) * is);
                if (w) { float4 ww = reinterpret_cast<const float4*>(w)[i]; o.x *= ww.x; o.y *= ww.y; o.z *= ww.z; o.w *= ww.w; }
                if (b) { float4 bb = reinterpret_cast<const float4*>(b)[i]; o.x += bb.x; o.y += bb.y; o.z += bb.z; o.w += bb.w; }
                yr[i] = o;
            }
        }
        if (lane == 0) { mean[r] = mu; invstd[r] = is; }
    }
}
// and its input gradient, as ln_input_grad: g and x each read once into registers, the addend as dx is written
extern "C" __global__ void layer_norm_input_grad_v_f32(float* dx, const float* g, const float* x, const float* w, const float* mean,
                                                       const float* invstd, i64 rows, int n, const float* add) {
    int lane = threadIdx.x & 31, k = n >> 7;
    auto sum = [](float a, float c) { return a + c; };
    for (i64 r = ((i64) blockIdx.x * blockDim.x + threadIdx.x) >> 5; r < rows; r += ((i64) gridDim.x * blockDim.x) >> 5) {
        const float4* xr = reinterpret_cast<const float4*>(x + r * n);
        const float4* gr = reinterpret_cast<const float4*>(g + r * n);
        float mu = mean[r], is = invstd[r], sdy = 0, sdyx = 0;
        float4 dy[LN_V], xh[LN_V];
#pragma unroll
        for (int q = 0; q < LN_V; q++) {
            if (q < k) {
                int i = q * 32 + lane;
                float4 gg = gr[i], xx = xr[i];
                if (w) { float4 ww = reinterpret_cast<const float4*>(w)[i]; gg.x *= ww.x; gg.y *= ww.y; gg.z *= ww.z; gg.w *= ww.w; }
                dy[q] = gg;
                xh[q] = make_float4((xx.x - mu) * is, (xx.y - mu) * is, (xx.z - mu) * is, (xx.w - mu) * is);
                sdy += (gg.x + gg.y) + (gg.z + gg.w);
                sdyx += (gg.x * xh[q].x + gg.y * xh[q].y) + (gg.z * xh[q].z + gg.w * xh[q].w);
            }
        }
        float mdy = warp_all(sdy, sum) / (float) n, mdyx = warp_all(sdyx, sum) / (float) n;
        float4* dr = reinterpret_cast<float4*>(dx + r * n);
        const float4* ar = add ? reinterpret_cast<const float4*>(add + r * n) : nullptr;
#pragma unroll
        for (int q = 0; q < LN_V; q++) {
            if (q < k) {
                int i = q * 32 + lane;
                float4 o = make_float4(is * (dy[q].x - mdy - xh[q].x * mdyx), is * (dy[q].y - mdy - xh[q].y * mdyx),
                                       is * (dy[q].z - mdy - xh[q].z * mdyx), is * (dy[q].w - mdy - xh[q].w * mdyx));
                if (ar) { float4 a = ar[i]; o.x += a.x; o.y += a.y; o.z += a.z; o.w += a.w; }
                dr[i] = o;
            }
        }
    }
}

// float32 rows normalised into 16 bits: a pre-norm block under autocast hands its linear layers their dtype at once
extern "C" __global__ void layer_norm_fwd_to_bf16_f32(bf16* y, float* mean, float* invstd, const float* x, const float* w,
        const float* b, i64 rows, int n, double eps) {
    ln_forward<float, bf16>(y, mean, invstd, x, w, b, rows, n, eps);
}
extern "C" __global__ void layer_norm_fwd_to_f16_f32(f16* y, float* mean, float* invstd, const float* x, const float* w,
        const float* b, i64 rows, int n, double eps) {
    ln_forward<float, f16>(y, mean, invstd, x, w, b, rows, n, eps);
}
// and their backward from the 16-bit gradient of that output
#define LAYER_NORM_FROM(G, S) \
extern "C" __global__ void layer_norm_input_grad_from_##S##_f32(float* dx, const G* g, const float* x, const float* w, const float* mean, \
        const float* invstd, i64 rows, int n, const float* add) { \
    ln_input_grad<float, G>(dx, g, x, w, mean, invstd, rows, n, add); \
} \
extern "C" __global__ void layer_norm_param_grad_from_##S##_f32(float* partial, const G* g, const float* x, const float* mean, \
        const float* invstd, i64 rows, int n, i64 chunk) { \
    ln_param_grad<float, G>(partial, g, x, mean, invstd, rows, n, chunk); \
}
LAYER_NORM_FROM(bf16, bf16) LAYER_NORM_FROM(f16, f16)
