// The counter-based generator: element i of the stream keyed by key is a splitmix64 hash of (key, i), exactly as
// dev.kiln.Generator.uniformAt, so the GPU draws the same numbers as the CPU for the same key. Shared by the
// random fills (random.cu) and fused dropout (fused.cu), so their masks agree. Include after common.cuh.
#ifndef KILN_RANDOM_CUH
#define KILN_RANDOM_CUH

__device__ __forceinline__ u64 mix64(u64 z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
__device__ __forceinline__ double uniform_at(u64 key, u64 i) {
    return (double) (mix64(key + 0x9E3779B97F4A7C15ull * (i + 1)) >> 40) * 5.9604644775390625e-08;   // 2^-24
}
// The key of a random kernel: in eager mode (replay null) the key itself; inside a CUDA graph the key is a slot of the
// graph's key table, which follows its replay counter: (seed, counter, keys per step) per slot, so replay t (1-based)
// derives the key an eager step would draw there, Generator.mix(seed + phi * (counter + (t - 1) * keys per step)).
__device__ __forceinline__ u64 graph_key(u64 key, const u64* replay) {
    if (!replay) return key;
    const u64* e = replay + 1 + 3 * key;
    return mix64(e[0] + 0x9E3779B97F4A7C15ull * (e[1] + (replay[0] - 1) * e[2]));
}
#endif
