// The Quantized family: 8-bit inference products (int8, FP8 E4M3) in three steps.
// 1. quantize_rows / quantize_im2col: float32 input -> codes (rows_p, kp), rows and k padded to multiples of 16 with
//    code 0 (cuBLASLt's int8 and FP8 tensor-core kernels want aligned k and leading dimensions; a zero adds nothing).
//    int8: x * inv (in double) rounded half away from zero, clamped to +-127, exactly as cpu/Int8Gemm.quantize;
//    FP8: the E4M3 code of x / scale (float division), exactly as backend/Fp8E4M3.encode.
// 2. the product of the padded codes: cuBLASLt (QuantizedCuda), or int8_gemm_dp4a where cuBLASLt takes no int8 problem.
// 3. dequantize_*: the product -> out (rows, n), acc * x_scale * w_scale[j] + bias[j] (then max(., 0) when a following
//    ReLU is folded in): a convolution's rows are its output positions, so its output is channels-last.
#include "common.cuh"

// v + copysign(0.5, v) truncated by one conversion (cvt.rzi.s64.f64: +-inf and overflow saturate), as the CPU's (long)
// cast; clamping the integer after it costs less than clamping doubles and a second conversion (the im2col pass is
// bound by conversions).
__device__ __forceinline__ unsigned char int8_code(float x, double inv) {
    if (x != x) return 0;   // the CPU's (long) NaN is 0; cvt's is not (QuantizedGpuTest's NaN case failed on the H200 without this)
    double v = (double) x * inv;
    long long r;
    asm("cvt.rzi.s64.f64 %0, %1;" : "=l"(r) : "d"(v + copysign(0.5, v)));
    return (unsigned char) (signed char) (r > 127 ? 127 : r < -127 ? -127 : r);
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

__device__ __forceinline__ uint4 codes16(const unsigned* w) {
    uint4 v;
    v.x = w[0]; v.y = w[1]; v.z = w[2]; v.w = w[3];
    return v;
}

// Index math in 32 bits (the launcher keeps every buffer under 2^31 elements): a 64-bit division costs several times a
// 32-bit one. A thread makes 16 adjacent codes of a row and stores them at once (kp is a multiple of 16), so the
// divisions that place a row and a column are paid once per 16 codes, not per code.
extern "C" __global__ void quantize_rows(uint4* q, const float* x, int m, int k, int rows_p, int kp,
                                         int fp8, double inv, double scale) {
    int chunks = kp / 16, total = rows_p * chunks;
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += gridDim.x * blockDim.x) {
        int r = t / chunks, c0 = (t - r * chunks) * 16;
        unsigned w[4] = {0, 0, 0, 0};
        if (r < m) {
            #pragma unroll
            for (int b = 0; b < 16; b++) {
                int c = c0 + b;
                if (c < k) w[b >> 2] |= (unsigned) code_of(x[r * k + c], fp8, inv, (float) scale) << (8 * (b & 3));
            }
        }
        q[t] = codes16(w);
    }
}

// Row (img, oy, ox) of the im2col matrix holds the input under the kernel at that position; its columns are ordered
// tap by tap, the channels of a tap adjacent ((i, j, ci): the weight's codes are padded into that order, pad_codes), so
// that a channels-last input's tap is one contiguous piece (im2col_codes). x is read through its strides (channels-last
// or not). Outside the image: code 0.
struct Im2colP { int n, c, h, w, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, xsn, xsc, xsh, xsw; };

extern "C" __global__ void quantize_im2col(uint4* q, const float* x, Im2colP g, int rows_p, int kp,
                                           int fp8, double inv, double scale) {
    int rows = g.n * g.oh * g.ow, k = g.c * g.kh * g.kw, ohw = g.oh * g.ow, chunks = kp / 16, total = rows_p * chunks;
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += gridDim.x * blockDim.x) {
        int r = t / chunks, col = (t - r * chunks) * 16;
        unsigned w[4] = {0, 0, 0, 0};
        if (r < rows && col < k) {
            int img = r / ohw, pos = r - img * ohw, oy = pos / g.ow, ox = pos - oy * g.ow;
            int tap = col / g.c, ci = col - tap * g.c, ii = tap / g.kw, j = tap - ii * g.kw;
            const float* base = x + img * g.xsn;
            #pragma unroll
            for (int b = 0; b < 16; b++) {
                if (col + b < k) {
                    int iy = oy * g.sh - g.ph + ii * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
                    if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) {
                        w[b >> 2] |= (unsigned) code_of(base[ci * g.xsc + iy * g.xsh + ix * g.xsw], fp8, inv, (float) scale) << (8 * (b & 3));
                    }
                    if (++ci == g.c) {
                        ci = 0;
                        if (++j == g.kw) { j = 0; ii++; }
                    }
                }
            }
        }
        q[t] = codes16(w);
    }
}

// A channels-last input whose channel count is a multiple of 16 is quantized once, 16 codes a thread (n16 = numel / 16),
// and im2col_codes then copies each tap's 16 adjacent channels as one 16-byte piece: the kernel's taps read every input
// about kh * kw times, as bytes instead of as floats each converted again.
extern "C" __global__ void quantize_flat(uint4* q, const float4* x, int n16, int fp8, double inv, double scale) {
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < n16; t += gridDim.x * blockDim.x) {
        unsigned w[4];
        #pragma unroll
        for (int v = 0; v < 4; v++) {
            float4 f = x[4 * t + v];
            w[v] = (unsigned) code_of(f.x, fp8, inv, (float) scale) | (unsigned) code_of(f.y, fp8, inv, (float) scale) << 8
                 | (unsigned) code_of(f.z, fp8, inv, (float) scale) << 16 | (unsigned) code_of(f.w, fp8, inv, (float) scale) << 24;
        }
        q[t] = codes16(w);
    }
}

// codes: the input's codes, channels-last (N, H, W, C), C a multiple of 16; rows and columns as quantize_im2col.
extern "C" __global__ void im2col_codes(uint4* q, const uint4* codes, Im2colP g, int rows_p, int kp) {
    int rows = g.n * g.oh * g.ow, k = g.c * g.kh * g.kw, ohw = g.oh * g.ow, chunks = kp / 16, total = rows_p * chunks;
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += gridDim.x * blockDim.x) {
        int r = t / chunks, col = (t - r * chunks) * 16;
        uint4 v;
        v.x = v.y = v.z = v.w = 0;
        if (r < rows && col < k) {
            int img = r / ohw, pos = r - img * ohw, oy = pos / g.ow, ox = pos - oy * g.ow;
            int tap = col / g.c, ci = col - tap * g.c, ii = tap / g.kw, j = tap - ii * g.kw;
            int iy = oy * g.sh - g.ph + ii * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
            if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) v = codes[(((img * g.h + iy) * g.w + ix) * g.c + ci) / 16];
        }
        q[t] = v;
    }
}

// The weight's codes (n, k) copied into (np, kp), the padding 0. A convolution's row (ci, i, j) goes to the im2col
// order (i, j, ci): column col = ci * taps + tap moves to tap * c + ci (c = k, taps = 1 for a linear layer).
extern "C" __global__ void pad_codes(unsigned char* dst, const unsigned char* src, int n, int k, int np, int kp, int c, int taps) {
    int total = np * kp;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += gridDim.x * blockDim.x) {
        int r = i / kp, col = i - r * kp;
        unsigned char v = 0;
        if (r < n && col < k) {
            int tap = col / c, ci = col - tap * c;
            v = src[r * k + ci * taps + tap];
        }
        dst[i] = v;
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

// One output of the dequantizing passes: the product's sum (int8's integer, FP8's float) times the input's and the
// channel's scales, plus the channel's bias, then the folded ReLU (relu != 0): max(v, 0) as Java's Math.max, NaN kept,
// -0 made +0 (the CPU's Int8Gemm.output).
__device__ __forceinline__ float dequantized(float sum, double x_scale, const float* w_scale, const float* bias, int has_bias, int relu, int j) {
    float v = sum * (float) x_scale * w_scale[j];
    if (has_bias) v += bias[j];
    return relu && !(v > 0.f) && v == v ? 0.f : v;
}

// acc (rows_p, ldacc) -> out (rows, n): a linear layer's output, or a convolution's channels-last.
template <typename T>
__device__ __forceinline__ void dequantize(float* out, const T* acc, int ldacc, const float* w_scale, const float* bias,
                                           int has_bias, int relu, double x_scale, int rows, int n) {
    int total = rows * n;
    for (int o = blockIdx.x * blockDim.x + threadIdx.x; o < total; o += gridDim.x * blockDim.x) {
        int i = o / n, j = o - i * n;
        out[o] = dequantized((float) acc[i * ldacc + j], x_scale, w_scale, bias, has_bias, relu, j);
    }
}

extern "C" __global__ void dequantize_i32(float* out, const int* acc, int ldacc, const float* w_scale, const float* bias,
                                          int has_bias, int relu, double x_scale, int rows, int n) {
    dequantize(out, acc, ldacc, w_scale, bias, has_bias, relu, x_scale, rows, n);
}

extern "C" __global__ void dequantize_f32(float* out, const float* acc, int ldacc, const float* w_scale, const float* bias,
                                          int has_bias, int relu, double x_scale, int rows, int n) {
    dequantize(out, acc, ldacc, w_scale, bias, has_bias, relu, x_scale, rows, n);
}

// The same from the transposed product accT (n, ld), which cuBLASLt makes faster for a convolution's few output
// channels and many rows: 32 x 32 tiles through shared memory, read along rows and written along channels. Blocks of
// 256 threads (32 x 8), grid (ceil(rows / 32), ceil(n / 32)).
template <typename T>
__device__ __forceinline__ void dequantize_t(float* out, const T* acc, int ld, const float* w_scale, const float* bias,
                                             int has_bias, int relu, double x_scale, int rows, int n) {
    __shared__ float tile[32][33];
    int i0 = blockIdx.x * 32, j0 = blockIdx.y * 32, tx = threadIdx.x & 31, ty = threadIdx.x >> 5;
    for (int jj = ty; jj < 32; jj += 8) {
        int i = i0 + tx, j = j0 + jj;
        if (i < rows && j < n) tile[jj][tx] = dequantized((float) acc[j * ld + i], x_scale, w_scale, bias, has_bias, relu, j);
    }
    __syncthreads();
    for (int ii = ty; ii < 32; ii += 8) {
        int i = i0 + ii, j = j0 + tx;
        if (i < rows && j < n) out[i * n + j] = tile[tx][ii];
    }
}

extern "C" __global__ void dequantize_t_i32(float* out, const int* acc, int ld, const float* w_scale, const float* bias,
                                            int has_bias, int relu, double x_scale, int rows, int n) {
    dequantize_t(out, acc, ld, w_scale, bias, has_bias, relu, x_scale, rows, n);
}

extern "C" __global__ void dequantize_t_f32(float* out, const float* acc, int ld, const float* w_scale, const float* bias,
                                            int has_bias, int relu, double x_scale, int rows, int n) {
    dequantize_t(out, acc, ld, w_scale, bias, has_bias, relu, x_scale, rows, n);
}

// An int8 convolution of at most 32 codes a row (c * kh * kw: a first layer) and 64 output channels in one pass, no
// im2col rows and no product: a thread quantizes its position's inputs into eight words of four codes (the im2col order
// (i, j, ci), as the padded codes), sums the exact products of G = 4 output channels (1 when o is not a multiple of 4)
// by dp4a against the weight's words in shared memory and writes them dequantized, channels-last: adjacent threads
// write adjacent channels (a thread a row wrote 128-byte strides, 3x slower). A GEMM of k <= 32 is all output traffic.
#define DIRECT_K 32
extern "C" __global__ void int8_conv_direct(float* out, const float* x, const unsigned char* wp, Im2colP g, int kp, int o,
                                            const float* w_scale, const float* bias, int has_bias, int relu, double inv, double x_scale) {
    __shared__ int ws[64][DIRECT_K / 4];
    int k = g.c * g.kh * g.kw, words = (k + 3) / 4, ohw = g.oh * g.ow, rows = g.n * ohw;
    int G = o % 4 == 0 ? 4 : 1, groups = o / G, total = rows * groups;
    for (int i = threadIdx.x; i < o * (DIRECT_K / 4); i += blockDim.x) {
        int jo = i / (DIRECT_K / 4), wd = i % (DIRECT_K / 4);
        ws[jo][wd] = wd * 4 < kp ? *reinterpret_cast<const int*>(wp + jo * kp + wd * 4) : 0;   // padding codes are 0
    }
    __syncthreads();
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < total; t += gridDim.x * blockDim.x) {
        int r = t / groups, j0 = (t - r * groups) * G;
        int img = r / ohw, pos = r - img * ohw, oy = pos / g.ow, ox = pos - oy * g.ow;
        const float* base = x + img * g.xsn;
        int q[DIRECT_K / 4];
        int ci = 0, ii = 0, j = 0;
        #pragma unroll
        for (int col = 0; col < DIRECT_K; col++) {
            if (col % 4 == 0) q[col / 4] = 0;
            if (col < k) {
                int iy = oy * g.sh - g.ph + ii * g.dh, ix = ox * g.sw - g.pw + j * g.dw;
                if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) {
                    q[col / 4] |= (int) int8_code(base[ci * g.xsc + iy * g.xsh + ix * g.xsw], inv) << (8 * (col % 4));
                }
                if (++ci == g.c) {
                    ci = 0;
                    if (++j == g.kw) { j = 0; ii++; }
                }
            }
        }
        float v[4];
        for (int u = 0; u < G; u++) {
            int jo = j0 + u, sum = 0;
            #pragma unroll
            for (int wd = 0; wd < DIRECT_K / 4; wd++) if (wd < words) sum = __dp4a(q[wd], ws[jo][wd], sum);
            v[u] = dequantized((float) sum, x_scale, w_scale, bias, has_bias, relu, jo);
        }
        float* dst = out + r * o + j0;
        if (G == 4) *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
        else dst[0] = v[0];
    }
}
