// Convolution by im2col + GEMM (the fallback when cuDNN is not used): im2col unfolds contiguous input
// (N, C, H, W) into cols (N, C*kh*kw, OH*OW); the forward is then W (O, C*kh*kw) x cols per image and group.
// Backward: the weight gradient is gy x cols^T; the input gradient is W^T x gy folded back by col2im, which
// gathers (one thread per input element), so it needs no atomics.
#include "common.cuh"

struct ConvP { int c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow; };

#define CONV(T, S) \
extern "C" __global__ void im2col_##S(T* cols, const T* x, i64 n, ConvP p) { \
    i64 q = (i64) p.oh * p.ow, rows = (i64) p.c * p.kh * p.kw; \
    GRID_STRIDE(i, n) { \
        i64 pix = i % q, row = (i / q) % rows, img = i / (q * rows); \
        int ox = (int) (pix % p.ow), oy = (int) (pix / p.ow); \
        int kj = (int) (row % p.kw), ki = (int) ((row / p.kw) % p.kh), ch = (int) (row / ((i64) p.kw * p.kh)); \
        int iy = oy * p.sh - p.ph + ki * p.dh, ix = ox * p.sw - p.pw + kj * p.dw; \
        bool in = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w; \
        cols[i] = in ? x[((img * p.c + ch) * p.h + iy) * p.w + ix] : from_d<T>(0.0); \
    } \
} \
extern "C" __global__ void col2im_##S(T* gx, const T* cols, i64 n, ConvP p) { \
    typedef Acc<T>::type A; \
    i64 q = (i64) p.oh * p.ow, rows = (i64) p.c * p.kh * p.kw; \
    GRID_STRIDE(i, n) { \
        int ix = (int) (i % p.w), iy = (int) ((i / p.w) % p.h); \
        int ch = (int) ((i / ((i64) p.w * p.h)) % p.c); i64 img = i / ((i64) p.w * p.h * p.c); \
        A s = 0; \
        for (int ki = 0; ki < p.kh; ki++) { \
            int ty = iy + p.ph - ki * p.dh; \
            if (ty < 0 || ty % p.sh != 0) continue; \
            int oy = ty / p.sh; if (oy >= p.oh) continue; \
            for (int kj = 0; kj < p.kw; kj++) { \
                int tx = ix + p.pw - kj * p.dw; \
                if (tx < 0 || tx % p.sw != 0) continue; \
                int ox = tx / p.sw; if (ox >= p.ow) continue; \
                i64 row = ((i64) ch * p.kh + ki) * p.kw + kj; \
                s += load<A, T>(cols[(img * rows + row) * q + (i64) oy * p.ow + ox]); \
            } \
        } \
        gx[i] = store<T, A>(s); \
    } \
}
KILN_FLOAT_TYPES(CONV)
