// The Quantized family: int8 inference products.
// int8_quantize: float32 -> int8 codes, x * inv (in double) rounded half away from zero, clamped to +-127, exactly as
// cpu/Int8Gemm.quantize, so both backends give the same codes.
// int8_linear: out (M, N) float32 = xq (M, K) . w (N, K)^T in exact int32 (dp4a: four int8 products summed per
// instruction), then * x_scale * w_scale[n] + bias[n]. A 256-thread block computes a 16 x 16 output tile; K runs in
// chunks of 64 bytes through shared memory, each thread packing 4 bytes of an x row and of a w row per chunk.
#include "common.cuh"

extern "C" __global__ void int8_quantize(signed char* q, const float* x, i64 n, double inv) {
    for (i64 i = blockIdx.x * (i64) blockDim.x + threadIdx.x; i < n; i += (i64) gridDim.x * blockDim.x) {
        double v = (double) x[i] * inv;
        double r = trunc(v + copysign(0.5, v));
        q[i] = (signed char) fmin(127.0, fmax(-127.0, r));
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

extern "C" __global__ void int8_linear(float* out, const signed char* xq, const signed char* w, const float* w_scale,
                                       const float* bias, int has_bias, double x_scale, i64 m, i64 n, i64 k) {
    __shared__ int xs[16][17], ws[16][17]; // 16 rows x 16 packed words (64 bytes) each; +1 against bank conflicts
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    i64 row0 = (i64) blockIdx.y * 16, col0 = (i64) blockIdx.x * 16;
    int acc = 0;
    for (i64 k0 = 0; k0 < k; k0 += 64) {
        xs[ty][tx] = pack4(xq, m, k, row0 + ty, k0 + 4 * tx);
        ws[ty][tx] = pack4(w, n, k, col0 + ty, k0 + 4 * tx);
        __syncthreads();
        #pragma unroll
        for (int t = 0; t < 16; t++) acc = __dp4a(xs[ty][t], ws[tx][t], acc);
        __syncthreads();
    }
    i64 row = row0 + ty, col = col0 + tx;
    if (row < m && col < n) {
        float v = (float) acc * (float) x_scale * w_scale[col];
        out[row * n + col] = has_bias ? v + bias[col] : v;
    }
}
