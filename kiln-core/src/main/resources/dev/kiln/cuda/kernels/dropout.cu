// Inverted dropout in one pass: the keep-mask comes from the counter-based hash of random.cuh and is never
// stored (the backward is the same kernel with the same key). The reference is in dev.kiln.cpu.FusedKernels.
#include "common.cuh"
#include "random.cuh"

// out = x * (u(key, i) >= p ? scale : 0): the composite's product (NaN in x stays NaN), keep-mask equal to the
// CPU's for the same key. The same kernel with the same key is its own backward. replay is null in eager mode;
// inside a CUDA graph it points at the graph's replay counter (advanced by graph_replay_tick, the graph's first
// node) and key table (random.cuh's graph_key), so every replay draws the mask an eager step would, and the
// backward of the same replay recomputes the same one.
// c > 0: x and out are channels-last (N, H, W, C in memory, hw = H * W), and element i draws at its place in
// (N, C, H, W) order, so the mask is the same whichever layout a tensor has (the backward's gradient may have another).
__device__ __forceinline__ u64 logical_index(i64 i, i64 c, i64 hw) {
    if (c == 0) return (u64) i;
    i64 ch, pixel = divmod(i, c, ch), at, img = divmod(pixel, hw, at);
    return (u64) ((img * c + ch) * hw + at);
}

#define DROPOUT(T, S) \
extern "C" __global__ void dropout_##S(T* out, const T* x, i64 n, i64 c, i64 hw, u64 key, double p, double scale, const u64* replay) { \
    const T s = (T) scale, zero = 0; \
    const u64 k = graph_key(key, replay); \
    GRID_STRIDE(i, n) out[i] = x[i] * (uniform_at(k, logical_index(i, c, hw)) >= p ? s : zero); \
}
DROPOUT(float, f32)
DROPOUT(double, f64)

// Dropout of 16-bit data: the scale rounded to the type first and the product rounded once, which is what the
// composite (x * cast(keep) * scale, each op rounding) gives, so both draw and round alike.
#define DROPOUT16(T, S) \
extern "C" __global__ void dropout_##S(T* out, const T* x, i64 n, i64 c, i64 hw, u64 key, double p, double scale, const u64* replay) { \
    const float s = load<float, T>(store<T, float>((float) scale)); \
    const u64 k = graph_key(key, replay); \
    GRID_STRIDE(i, n) out[i] = store<T, float>(load<float, T>(x[i]) * (uniform_at(k, logical_index(i, c, hw)) >= p ? s : 0.f)); \
}
DROPOUT16(bf16, bf16) DROPOUT16(f16, f16)
