// Random fills from the counter-based generator of random.cuh (the same numbers as the CPU for the same key). No state.
// replay: null in eager mode; in a CUDA graph the replay counter and key table (random.cuh's graph_key).
#include "common.cuh"
#include "random.cuh"

#define RANDOM(T, S) \
extern "C" __global__ void uniform_##S(T* out, i64 n, u64 seed, double lo, double hi, const u64* replay) { \
    const u64 key = graph_key(seed, replay); \
    GRID_STRIDE(i, n) out[i] = from_d<T>(lo + (hi - lo) * uniform_at(key, (u64) i)); \
} \
/* Box-Muller on elements 2i and 2i+1 of the stream, u1 kept away from 0 (as the CPU backend). */ \
extern "C" __global__ void normal_##S(T* out, i64 n, u64 seed, double mean, double std, const u64* replay) { \
    const u64 key = graph_key(seed, replay); \
    GRID_STRIDE(i, n) { \
        double u1 = uniform_at(key, 2 * (u64) i) + 2.9802322387695312e-08; \
        double u2 = uniform_at(key, 2 * (u64) i + 1); \
        out[i] = from_d<T>(mean + std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2)); \
    } \
}
KILN_FLOAT_TYPES(RANDOM)
