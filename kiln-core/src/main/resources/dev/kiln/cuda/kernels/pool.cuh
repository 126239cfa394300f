// The pooling geometry, shared by pooling.cu and normalization.cu (whose fused batch norm, ReLU and max pool writes
// max_pool_fwd_v's byte indices, which max_pool_bwd_v reads).
#pragma once
#include "common.cuh"

struct PoolP { int h, w, oh, ow, kh, kw, sh, sw, ph, pw, count_include_pad, c; };

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
