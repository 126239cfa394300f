// Counter-based random numbers: element i of the stream keyed by key is a splitmix64 hash of (key, i), exactly as
// dev.kiln.Generator.uniformAt, so the GPU draws the same numbers as the CPU for the same key. No state.
#include "common.cuh"

__device__ __forceinline__ u64 mix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
__device__ __forceinline__ double uniform_at(u64 key, u64 i) {
    return (double) (mix64(key + 0x9E3779B97F4A7C15ull * (i + 1)) >> 40) * 5.9604644775390625e-08;   // 2^-24
}

#define RANDOM(T, S) \
extern "C" __global__ void uniform_##S(T* out, i64 n, u64 key, double lo, double hi) { \
    GRID_STRIDE(i, n) out[i] = from_d<T>(lo + (hi - lo) * uniform_at(key, (u64) i)); \
} \
/* Box-Muller on elements 2i and 2i+1 of the stream, u1 kept away from 0 (as the CPU backend). */ \
extern "C" __global__ void normal_##S(T* out, i64 n, u64 key, double mean, double std) { \
    GRID_STRIDE(i, n) { \
        double u1 = uniform_at(key, 2 * (u64) i) + 2.9802322387695312e-08; \
        double u2 = uniform_at(key, 2 * (u64) i + 1); \
        out[i] = from_d<T>(mean + std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2)); \
    } \
}
KILN_FLOAT_TYPES(RANDOM)
