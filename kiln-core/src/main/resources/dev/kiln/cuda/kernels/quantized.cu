// The Quantized family: 8-bit inference products (int8, FP8 E4M3) in three steps.
// 1. quantize_rows / quantize_im2col: float32 input -> codes (rows_p, kp), rows and k padded to multiples of 16 with
//    code 0 (cuBLASLt's int8 and FP8 tensor-core kernels want aligned k and leading dimensions; a zero adds nothing).
//    int8: x * inv (in double) rounded half away from zero, clamped to +-127, exactly as cpu/Int8Gemm.quantize;
//    FP8: the E4M3 code of x / scale (float division), exactly as backend/Fp8E4M3.encode.
// 2. the product of the padded codes: cuBLASLt (QuantizedCuda), or int8_gemm_dp4a where cuBLASLt takes no int8 problem.
// 3. dequantize_i32 / dequantize_f32: acc (rows_p, ldacc) -> out, acc * x_scale * w_scale[j] + bias[j], written NCHW for
//    a convolution (row i = image i / P, position i % P; P = 1 for a linear layer's (M, N)).
#include "common.cuh"

__device__ __forceinline__ unsigned char int8_code(float x, double inv) {
    double v = (double) x * inv;
    double r = trunc(v + copysign(0.5, v));
    return (unsigned char) (signed char) fmin(127.0, fmax(-127.0, r));
}

// E4M3 ("E4M3FN"): no infinities, NaN 0x7F, max 448; round to nearest even, saturating.
__device__ __forceinline__ unsigned char fp8_code(float x) {
    if (x != x) return 0x7F;
    unsigned sign = __float_as_uint(x) >> 31 ? 0x80 : 0;
    double a = fabs((double) x);
    int bits;
    if (a >= 448.0) {
        bits = 0x7E;
    } else if (a < 0.015625) {                  // below 2^-6: subnormals, multiples of 2^-9
        bits = (int) rint(a * 512.0);
    } else {
        int e = ilogb(a);
        int q = (int) rint(scalbn(a, 3 - e));  // 1.mmm as an integer in [8, 16]; q = 16 carries into the exponent
        bits = ((e + 7) << 3) + (q - 8);
        if (bits > 0x7E) bits = 0x7E;
    }
    return (unsigned char) (sign | bits);
}

__device__ __forceinline__ unsigned char code_of(float x, int fp8, double inv, float scale) {
    return fp8 ? fp8_code(x / scale) : int8_code(x, inv);
}

// Index math in 32 bits (the launcher keeps every buffer under 2^31 elements): a 64-bit division costs several times a
// 32-bit one, and the im2col pass does eight per code.
extern "C" __global__ void quantize_rows(unsigned char* q, const float* x, int m, int k, int rows_p, int kp,
                                         int fp8, double inv, double scale) {
    int total = rows_p * kp;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int r = i / kp, c = i - r * kp;
        q[i] = r < m && c < k ? code_of(x[(i64) r * k + c], fp8, inv, (float) scale) : 0;
    }
}

// Row (img, oy, ox) of the im2col matrix holds the input under the kernel at that position, column (ci, i, j) as the
// weight (O, C, kh, kw) orders it; outside the image: 0.
struct Im2colP { int n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw; };

extern "C" __global__ void quantize_im2col(unsigned char* q, const float* x, Im2colP g, int rows_p, int kp,
                                           int fp8, double inv, double scale) {
    int rows = g.n * g.oh * g.ow, k = g.c * g.kh * g.kw, total = rows_p * kp, khw = g.kh * g.kw, ohw = g.oh * g.ow;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int r = i / kp, col = i - r * kp;
        unsigned char v = 0;
        if (r < rows && col < k) {
            int img = r / ohw, pos = r - img * ohw, oy = pos / g.ow, ox = pos - oy * g.ow;
            int ci = col / khw, rest = col - ci * khw, ii = rest / g.kw, j = rest - ii * g.kw;
            int iy = oy * g.sh - g.ph + ii * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
            if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) v = code_of(x[(((i64) img * g.c + ci) * g.h + iy) * g.w + ix], fp8, inv, (float) scale);
        }
        q[i] = v;
    }
}

// The weight's codes (n, k) copied into (np, kp), the padding 0.
extern "C" __global__ void pad_codes(unsigned char* dst, const unsigned char* src, i64 n, i64 k, i64 np, i64 kp) {
    i64 total = np * kp;
    for (i64 i = blockIdx.x * (i64) blockDim.x + threadIdx.x; i < total; i += (i64) gridDim.x * blockDim.x) {
        i64 r = i / kp, c = i % kp;
        dst[i] = r < n && c < k ? src[r * k + c] : 0;
    }
}

// 4 bytes of row r of a (rows x k) from column c on, packed little-endian; 0 beyond the matrix.
__device__ __forceinline__ int pack4(const signed char* a, i64 rows, i64 k, i64 r, i64 c) {
    int w = 0;
    if (r < rows) {
        for (int b = 0; b < 4; b++) if (c + b < k) w |= ((int) (unsigned char) a[r * k + c + b]) << (8 * b);
    }
    return w;
}

// acc (m, n) int32 = xq (m, k) . w (n, k)^T, exact (dp4a: four int8 products summed per instruction). A 256-thread block
// computes a 16 x 16 tile; k runs in chunks of 64 bytes through shared memory, each thread packing 4 bytes of an x row
// and of a w row per chunk.
extern "C" __global__ void int8_gemm_dp4a(int* acc, const signed char* xq, const signed char* w, i64 m, i64 n, i64 k) {
    __shared__ int xs[16][17], ws[16][17]; // 16 rows x 16 packed words (64 bytes) each; +1 against bank conflicts
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    i64 row0 = (i64) blockIdx.x * 16, col0 = (i64) blockIdx.y * 16; // rows on x: up to 2^31 - 1 blocks, y only 65,535
    int sum = 0;
    for (i64 k0 = 0; k0 < k; k0 += 64) {
        xs[ty][tx] = pack4(xq, m, k, row0 + ty, k0 + 4 * tx);
        ws[ty][tx] = pack4(w, n, k, col0 + ty, k0 + 4 * tx);
        __syncthreads();
        #pragma unroll
        for (int t = 0; t < 16; t++) sum = __dp4a(xs[ty][t], ws[tx][t], sum);
        __syncthreads();
    }
    i64 row = row0 + ty, col = col0 + tx;
    if (row < m && col < n) acc[row * n + col] = sum;
}

template <typename T>
__device__ __forceinline__ void dequantize(float* out, const T* acc, int ldacc, const float* w_scale, const float* bias,
                                           int has_bias, double x_scale, int rows, int n, int p) {
    int total = rows * n, pn = p * n;
    for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < total; o += gridDim.x * blockDim.x) {
        // o walks the output in its own order, (img, j, pos): consecutive threads write consecutive floats
        int img = o / pn, rest = o - img * pn, j = rest / p, pos = rest - j * p;
        float v = (float) acc[(i64) (img * p + pos) * ldacc + j] * (float) x_scale * w_scale[j];
        out[o] = has_bias ? v + bias[j] : v;
    }
}

extern "C" __global__ void dequantize_i32(float* out, const int* acc, int ldacc, const float* w_scale, const float* bias,
                                          int has_bias, double x_scale, int rows, int n, int p) {
    dequantize(out, acc, ldacc, w_scale, bias, has_bias, x_scale, rows, n, p);
}

extern "C" __global__ void dequantize_f32(float* out, const float* acc, int ldacc, const float* w_scale, const float* bias,
                                          int has_bias, double x_scale, int rows, int n, int p) {
    dequantize(out, acc, ldacc, w_scale, bias, has_bias, x_scale, rows, n, p);
}
