// 2-D max and average pooling over contiguous (N*C, H, W) planes, or channels-last (N, H, W, C) arrays when p.c (the
// channel count) is set, forward and backward; the output has the input's layout. The average-pool
// backward gathers (one thread per input element, looping over the windows that cover it), so it needs no
// atomics and is deterministic. Max-pool indices are int64, flat over H*W per plane, as the CPU backend's, except the
// 16-byte channels-last kernels': a byte per output element, the chosen element's place in its window (ky * kw + kx,
// 255 for none), an eighth of the int64 traffic, which bounded those two kernels (resnet18's stem pool).
#include "pool.cuh"

// The plane (n * C + channel) and pixel (y, x) of flat index i of an (h, w) array in memory order.
__device__ __forceinline__ i64 pool_pos(const PoolP& p, i64 i, int h, int w, int& y, int& x) {
    if (!p.c) return plane_yx(i, h, w, y, x);
    i64 ch, q = divmod(i, p.c, ch);
    return plane_yx(q, h, w, y, x) * p.c + ch;
}

// Where a plane's pixel (0, 0) is in an (h, w) array; its pixel (y, x) is at base + (y * w + x) * pool_step(p).
__device__ __forceinline__ i64 pool_base(const PoolP& p, i64 plane, int h, int w) {
    if (!p.c) return plane * h * w;
    i64 ch, n = divmod(plane, p.c, ch);
    return n * h * w * p.c + ch;
}

__device__ __forceinline__ int pool_step(const PoolP& p) { return p.c ? p.c : 1; }

#define POOL(T, S) \
extern "C" __global__ void max_pool_fwd_##S(T* y, i64* idx, const T* x, i64 n, PoolP p) { \
    GRID_STRIDE(i, n) { \
        int ox, oy; i64 plane = pool_pos(p, i, p.oh, p.ow, oy, ox); \
        const T* xp = x + pool_base(p, plane, p.h, p.w); const int step = pool_step(p); \
        double best = 0; int bi = -1; \
        for (int ky = 0; ky < p.kh; ky++) { \
            int iy = oy * p.sh - p.ph + ky; if (iy < 0 || iy >= p.h) continue; \
            for (int kx = 0; kx < p.kw; kx++) { \
                int ix = ox * p.sw - p.pw + kx; if (ix < 0 || ix >= p.w) continue; \
                double v = to_d(xp[(iy * p.w + ix) * step]); \
                if (bi < 0 || v > best || v != v) { best = v; bi = iy * p.w + ix; if (v != v) goto done; } \
            } \
        } \
        done: \
        y[i] = from_d<T>(bi < 0 ? -__longlong_as_double(0x7FF0000000000000ll) : best); idx[i] = bi; \
    } \
} \
extern "C" __global__ void avg_pool_fwd_##S(T* y, const T* x, i64 n, PoolP p) { \
    GRID_STRIDE(i, n) { \
        int ox, oy; i64 plane = pool_pos(p, i, p.oh, p.ow, oy, ox); \
        const T* xp = x + pool_base(p, plane, p.h, p.w); const int step = pool_step(p); \
        double s = 0; \
        for (int ky = 0; ky < p.kh; ky++) { \
            int iy = oy * p.sh - p.ph + ky; if (iy < 0 || iy >= p.h) continue; \
            for (int kx = 0; kx < p.kw; kx++) { \
                int ix = ox * p.sw - p.pw + kx; if (ix >= 0 && ix < p.w) s += to_d(xp[(iy * p.w + ix) * step]); \
            } \
        } \
        y[i] = from_d<T>(s / pool_count(p, oy, ox)); \
    } \
} \
extern "C" __global__ void avg_pool_bwd_##S(T* gx, const T* gy, i64 n, PoolP p) { \
    GRID_STRIDE(i, n) { \
        int ix, iy; i64 plane = pool_pos(p, i, p.h, p.w, iy, ix); \
        int y0, y1, x0, x1; covering(p, iy, ix, y0, y1, x0, x1); \
        const T* gp = gy + pool_base(p, plane, p.oh, p.ow); const int step = pool_step(p); \
        double s = 0; \
        for (int oy = y0; oy <= y1; oy++) for (int ox = x0; ox <= x1; ox++) \
            s += to_d(gp[(oy * p.ow + ox) * step]) / pool_count(p, oy, ox); \
        gx[i] = from_d<T>(s); \
    } \
}
KILN_FLOAT_TYPES(POOL)

// max-pool backward gathers: one thread per input element adds the gradients of the windows that cover it and
// chose it (index equal to its own), in window order, so it needs no zeroing pass and no atomics, is deterministic
// and takes every float type (accumulating in float, or double for float64).
#define MAX_POOL_BWD(T, S) \
extern "C" __global__ void max_pool_bwd_##S(T* gx, const T* gy, const i64* idx, i64 n, PoolP p) { \
    typedef typename Acc<T>::type A; \
    GRID_STRIDE(i, n) { \
        int ix, iy; i64 plane = pool_pos(p, i, p.h, p.w, iy, ix); \
        int y0, y1, x0, x1; covering(p, iy, ix, y0, y1, x0, x1); \
        const i64 self = (i64) iy * p.w + ix, base = pool_base(p, plane, p.oh, p.ow); \
        const int step = pool_step(p); \
        A s = 0; \
        for (int oy = y0; oy <= y1; oy++) for (int ox = x0; ox <= x1; ox++) { \
            i64 o = base + (oy * p.ow + ox) * step; \
            if (idx[o] == self) s += load<A, T>(gy[o]); \
        } \
        gx[i] = store<T, A>(s); \
    } \
}
KILN_FLOAT_TYPES(MAX_POOL_BWD)

// The gather for channels-last with 16-byte accesses (p.c % V == 0, gx and gy 16-byte aligned, idx max_pool_fwd_v's
// bytes): a thread takes V adjacent channels of one input pixel, so the position arithmetic runs once per V elements
// and every window's gradients come in one 16-byte piece, its indices in one V-byte one. total = N * H * W * (C / V).
#define MAX_POOL_BWD_V(T, S) \
extern "C" __global__ void max_pool_bwd_v_##S(T* gx, const T* gy, const unsigned char* idx, i64 total, PoolP p) { \
    typedef typename Acc<T>::type A; \
    constexpr int V = Vec16<T>::N; \
    const int groups = p.c / V; \
    GRID_STRIDE(j, total) { \
        i64 grp, pixel = divmod(j, groups, grp); \
        int ix, iy; i64 img = plane_yx(pixel, p.h, p.w, iy, ix); \
        A s[V]; \
        pooled_grad<T, A, V>(s, gy, idx, p, img, iy, ix, grp); \
        Vec16<T> out; \
        _Pragma("unroll") for (int k = 0; k < V; k++) out.v[k] = store<T, A>(s[k]); \
        out.store(gx + pixel * p.c + grp * V); \
    } \
}
KILN_FLOAT_TYPES(MAX_POOL_BWD_V)

// max-pool backward when the windows tile the input (stride == kernel, no padding), as in most CNNs (NCHW only): one thread
// per output element writes its whole window, the gradient where its index points and zero elsewhere. About a
// tenth of the gather's index arithmetic per input element, which is what bounds the gather. Input elements that
// no window covers (a ragged right or bottom edge) are zeroed by the host first.
#define MAX_POOL_BWD_TILED(T, S) \
extern "C" __global__ void max_pool_bwd_tiled_##S(T* gx, const T* gy, const i64* idx, i64 n, PoolP p) { \
    const T zero = from_d<T>(0.0); \
    GRID_STRIDE(i, n) { \
        int ox, oy; i64 plane = plane_yx(i, p.oh, p.ow, oy, ox); \
        const i64 k = idx[i]; \
        const T g = gy[i]; \
        T* base = gx + plane * p.h * p.w; \
        const int y0 = oy * p.kh, x0 = ox * p.kw; \
        for (int ky = 0; ky < p.kh; ky++) for (int kx = 0; kx < p.kw; kx++) { \
            int at = (y0 + ky) * p.w + x0 + kx; \
            base[at] = at == k ? g : zero; \
        } \
    } \
}
KILN_FLOAT_TYPES(MAX_POOL_BWD_TILED)

// max-pool forward when the windows tile the input (NCHW only): no bounds checks, compared in the accumulation type; the
// first maximum wins and a NaN wins at once, as in max_pool_fwd.
#define MAX_POOL_FWD_TILED(T, S) \
extern "C" __global__ void max_pool_fwd_tiled_##S(T* y, i64* idx, const T* x, i64 n, PoolP p) { \
    typedef typename Acc<T>::type A; \
    GRID_STRIDE(i, n) { \
        int ox, oy; i64 plane = plane_yx(i, p.oh, p.ow, oy, ox); \
        const T* xp = x + plane * p.h * p.w; \
        const int y0 = oy * p.kh, x0 = ox * p.kw; \
        int bi = y0 * p.w + x0; \
        A best = load<A, T>(xp[bi]); \
        for (int ky = 0; ky < p.kh && best == best; ky++) for (int kx = 0; kx < p.kw; kx++) { \
            int at = (y0 + ky) * p.w + x0 + kx; \
            A v = load<A, T>(xp[at]); \
            if (v > best || v != v) { best = v; bi = at; if (v != v) break; } \
        } \
        y[i] = store<T, A>(best); idx[i] = bi; \
    } \
}
KILN_FLOAT_TYPES(MAX_POOL_FWD_TILED)

// max-pool forward on channels-last with 16-byte accesses (p.c % V == 0, x and y 16-byte aligned), the forward of
// max_pool_bwd_v: a thread takes V adjacent channels of one output pixel, so the position arithmetic runs once per V
// outputs and each window element comes as one 16-byte load; the indices are bytes, each the place in the window
// (kh * kw < 255). Per channel as max_pool_fwd: the first maximum wins, a NaN wins at once. total = N * OH * OW * (C / V).
#define MAX_POOL_FWD_V(T, S) \
extern "C" __global__ void max_pool_fwd_v_##S(T* y, unsigned char* idx, const T* x, i64 total, PoolP p) { \
    typedef typename Acc<T>::type A; \
    constexpr int V = Vec16<T>::N; \
    const int groups = p.c / V; \
    GRID_STRIDE(j, total) { \
        i64 grp, pixel = divmod(j, groups, grp); \
        int ox, oy; i64 img = plane_yx(pixel, p.oh, p.ow, oy, ox); \
        A best[V]; int bi[V]; bool nan[V]; \
        _Pragma("unroll") for (int k = 0; k < V; k++) { best[k] = 0; bi[k] = 255; nan[k] = false; } \
        for (int ky = 0; ky < p.kh; ky++) { \
            int iy = oy * p.sh - p.ph + ky; if (iy < 0 || iy >= p.h) continue; \
            for (int kx = 0; kx < p.kw; kx++) { \
                int ix = ox * p.sw - p.pw + kx; if (ix < 0 || ix >= p.w) continue; \
                Vec16<T> v; v.load(x + ((img * p.h + iy) * p.w + ix) * p.c + grp * V); \
                const int at = ky * p.kw + kx; \
                _Pragma("unroll") for (int k = 0; k < V; k++) { \
                    A a = load<A, T>(v.v[k]); \
                    if (!nan[k] && (bi[k] == 255 || a > best[k] || a != a)) { best[k] = a; bi[k] = at; nan[k] = a != a; } \
                } \
            } \
        } \
        const i64 o = pixel * p.c + grp * V; \
        Vec16<T> out; PoolBytes<V> ib; \
        _Pragma("unroll") for (int k = 0; k < V; k++) { \
            out.v[k] = store<T, A>(bi[k] == 255 ? (A) -__longlong_as_double(0x7FF0000000000000ll) : best[k]); \
            ib.b[k] = (unsigned char) bi[k]; \
        } \
        out.store(y + o); \
        *reinterpret_cast<PoolBytes<V>*>(idx + o) = ib; \
    } \
}
KILN_FLOAT_TYPES(MAX_POOL_FWD_V)
