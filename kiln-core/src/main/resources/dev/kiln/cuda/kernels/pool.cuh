// The pooling geometry and the channels-last max-pool gather, shared by pooling.cu and normalization.cu (whose fused
// batch norm, ReLU and max pool keeps max_pool_fwd_v's byte indices and gathers through them the same way).
#pragma once
#include "common.cuh"

struct PoolP { int h, w, oh, ow, kh, kw, sh, sw, ph, pw, count_include_pad, c; };

__device__ __forceinline__ int pool_count(const PoolP& p, int oy, int ox) {
    if (p.count_include_pad) {
        int y0 = oy * p.sh - p.ph, x0 = ox * p.sw - p.pw;
        int y1 = min(y0 + p.kh, p.h + p.ph), x1 = min(x0 + p.kw, p.w + p.pw);
        return (y1 - y0) * (x1 - x0);
    }
    int y0 = max(oy * p.sh - p.ph, 0), x0 = max(ox * p.sw - p.pw, 0);
    int y1 = min(oy * p.sh - p.ph + p.kh, p.h), x1 = min(ox * p.sw - p.pw + p.kw, p.w);
    return (y1 - y0) * (x1 - x0);
}

// The output windows (oy in [y0, y1], ox in [x0, x1]) that contain input pixel (iy, ix).
__device__ __forceinline__ void covering(const PoolP& p, int iy, int ix, int& y0, int& y1, int& x0, int& x1) {
    int ty = iy + p.ph, tx = ix + p.pw;
    y0 = ty < p.kh ? 0 : (ty - p.kh) / p.sh + 1; y1 = min(ty / p.sh, p.oh - 1);
    x0 = tx < p.kw ? 0 : (tx - p.kw) / p.sw + 1; x1 = min(tx / p.sw, p.ow - 1);
}

// (plane, y, x) of flat index i over planes of h x w
__device__ __forceinline__ i64 plane_yx(i64 i, int h, int w, int& y, int& x) {
    i64 r, q = divmod(i, w, r);
    x = (int) r;
    i64 plane = divmod(q, h, r);
    y = (int) r;
    return plane;
}

// A byte per channel of one output pixel: the place of the window's maximum (ky * kw + kx), 255 for none.
template <int V> struct __align__(V) PoolBytes { unsigned char b[V]; };

// ResNet's stem pool: 3x3 windows, stride 2, padding 1. Kernels take its geometry as constants (their window arithmetic
// then divides by constants, not by run-time values: the integer work bounds a gather otherwise).
__device__ __forceinline__ bool stem_pool(const PoolP& p) {
    return p.kh == 3 && p.kw == 3 && p.sh == 2 && p.sw == 2 && p.ph == 1 && p.pw == 1;
}

// The gradient the windows of max_pool_fwd_v send input pixel (img, iy, ix), channels [grp * V, +V) of a channels-last
// gradient gy (p.c channels): the sum, in window order, of gy over the windows that cover the pixel and whose index
// names it. No atomics, no zeroing pass, deterministic.
template <typename T, typename A, int V>
__device__ __forceinline__ void pooled_grad(A* s, const T* gy, const unsigned char* idx, const PoolP& p, i64 img, int iy, int ix, i64 grp) {
    const int ty = iy + p.ph, tx = ix + p.pw;
    const int y0 = ty < p.kh ? 0 : (ty - p.kh) / p.sh + 1, y1 = min(ty / p.sh, p.oh - 1);
    const int x0 = tx < p.kw ? 0 : (tx - p.kw) / p.sw + 1, x1 = min(tx / p.sw, p.ow - 1);
#pragma unroll
    for (int k = 0; k < V; k++) s[k] = 0;
    for (int oy = y0; oy <= y1; oy++) {
        for (int ox = x0; ox <= x1; ox++) {
            const int self = (ty - oy * p.sh) * p.kw + tx - ox * p.sw;
            const i64 o = ((img * p.oh + oy) * p.ow + ox) * p.c + grp * V;
            Vec16<T> g;
            g.load(gy + o);
            const PoolBytes<V> ib = *reinterpret_cast<const PoolBytes<V>*>(idx + o);
#pragma unroll
            for (int k = 0; k < V; k++) if (ib.b[k] == self) s[k] += load<A, T>(g.v[k]);
        }
    }
}
