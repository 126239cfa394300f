// Sorting: argsort along the innermost dimension of a contiguous (rows, n) array (dev.kiln.cuda.SortingCuda brings
// the sorted dimension innermost first). The order is the CPU's (dev.kiln.cpu.SortingCpu): stable, numbers by value,
// NaN above every number. Each element is a (key, index) pair and pairs compare by key, then index: a strict total
// order, so the bitonic network (not stable by itself) gives exactly the stable order. Rows are padded to a power of
// two P with pairs (index >= n) that come after every real one. Rows of P <= SORT_TILE sort in shared memory in one
// kernel; longer rows sort tiles of SORT_TILE in shared memory, then merge: steps of a distance >= SORT_TILE in global
// memory, one launch a step, and each merge's shorter steps in shared memory again. The first k of a long row (topk,
// k <= SORT_TILE) need no full sort: a radix select finds the k-th key, a block gathers the k pairs before it (ties by
// index) and sorts them in shared memory.
#include "common.cuh"

#define SORT_TILE 2048

// Keys: double holds every type but int64 exactly; int64 keeps its own.
template <typename T> struct SortKey {
    typedef double type;
    static __device__ __forceinline__ double of(T v) { return to_d(v); }
};
template <> struct SortKey<i64> {
    typedef i64 type;
    static __device__ __forceinline__ i64 of(i64 v) { return v; }
};

// Whether pair (ka, ia) comes before (kb, ib) in the order asked for.
template <typename K>
__device__ __forceinline__ bool sort_before(K ka, int ia, K kb, int ib, int n, bool desc) {
    bool pa = ia >= n, pb = ib >= n;
    if (pa || pb) return pa != pb ? pb : ia < ib;
    bool na = ka != ka, nb = kb != kb;   // NaN (never for integers)
    if (na || nb) return na != nb ? (desc ? na : nb) : ia < ib;
    if (ka != kb) return desc ? ka > kb : ka < kb;
    return ia < ib;
}

// The compare-exchange of positions i < l of a bitonic step: ascending where (pos & k) == 0 (pos: i's place in the row).
template <typename K>
__device__ __forceinline__ void sort_exchange(K* key, int* idx, int i, int l, int pos, int k, int n, bool desc) {
    K ki = key[i], kl = key[l];
    int ii = idx[i], il = idx[l];
    bool up = (pos & k) == 0;
    if (up ? sort_before(kl, il, ki, ii, n, desc) : sort_before(ki, ii, kl, il, n, desc)) {
        key[i] = kl; key[l] = ki;
        idx[i] = il; idx[l] = ii;
    }
}

// The steps of distance j0, j0/2, ..., 1 of merge size k over a tile in shared memory; base is the tile's place in its row.
template <typename K>
__device__ __forceinline__ void sort_tile_steps(K* key, int* idx, int size, int base, int k, int j0, int n, bool desc) {
    for (int j = j0; j > 0; j >>= 1) {
        for (int t = threadIdx.x; t < size / 2; t += blockDim.x) {
            int i = 2 * j * (t / j) + t % j;
            sort_exchange(key, idx, i, i + j, base + i, k, n, desc);
        }
        __syncthreads();
    }
}

// Sorts the P pairs in shared memory (P a power of two, at most SORT_TILE), every thread of the block taking part.
template <typename K>
__device__ __forceinline__ void sort_block(K* key, int* idx, int P, int n, bool desc) {
    for (int k = 2; k <= P; k <<= 1) sort_tile_steps(key, idx, P, 0, k, k >> 1, n, desc);
}

// Radix select: keys as unsigned 64-bit numbers in the order asked for (numbers by value, -0 as 0, NaN above all; with
// desc every bit flipped), so the first k pairs are the k smallest (key, index).
template <typename T>
__device__ __forceinline__ u64 radix_key(T v, bool desc) {
    double d = to_d(v);
    u64 u;
    if (d != d) {
        u = ~0ull;
    } else {
        if (d == 0) d = 0.0;
        i64 b = __double_as_longlong(d);
        u = b < 0 ? ~(u64) b : (u64) b | 0x8000000000000000ull;
    }
    return desc ? ~u : u;
}
template <>
__device__ __forceinline__ u64 radix_key<i64>(i64 v, bool desc) {
    u64 u = (u64) v ^ 0x8000000000000000ull;
    return desc ? ~u : u;
}

// The lowest key bit that tells a type's values apart (the double of a float, bf16 or f16 has 29 zero mantissa bits, of
// an int 21, of a byte 44; ones where the key flipped them): the select's passes stop there.
template <typename T> struct KeyLow { static const int bit = 0; };
template <> struct KeyLow<float> { static const int bit = 24; };
template <> struct KeyLow<bf16> { static const int bit = 24; };
template <> struct KeyLow<f16> { static const int bit = 24; };
template <> struct KeyLow<int> { static const int bit = 16; };
template <> struct KeyLow<unsigned char> { static const int bit = 40; };
template <> struct KeyLow<b8> { static const int bit = 40; };

template <typename T>
__device__ __forceinline__ void select_first_k(i64* out, const T* x, i64 rows, int n, int k, bool desc) {
    __shared__ u64 sk[SORT_TILE];
    __shared__ int si[SORT_TILE];
    __shared__ int hist[256], warpEq[32];
    __shared__ u64 prefix;
    __shared__ int remaining, count, eqTaken;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* row = x + r * n;
        if (threadIdx.x == 0) { prefix = 0; remaining = k; count = 0; eqTaken = 0; }
        // the k-th key, 8 bits a pass from the top: remaining counts the keys equal to it that belong to the first k
        u64 mask = 0;
        for (int shift = 56; shift >= KeyLow<T>::bit; shift -= 8) {
            for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
            __syncthreads();
            u64 p = prefix;
            for (int j = threadIdx.x; j < n; j += blockDim.x) {
                u64 u = radix_key(row[j], desc);
                if ((u & mask) == p) atomicAdd(&hist[(u >> shift) & 255], 1);
            }
            __syncthreads();
            if (threadIdx.x == 0) {
                int b = 0;
                while (hist[b] < remaining) remaining -= hist[b++];
                prefix = p | ((u64) b << shift);
            }
            mask |= 0xFFull << shift;
            __syncthreads();
        }
        // the keys below the k-th, and the first `remaining` equal to it by index, into shared memory
        u64 kth = prefix;
        int want = remaining;
        for (int base = 0; base < n; base += blockDim.x) {
            int j = base + threadIdx.x;
            u64 u = j < n ? radix_key(row[j], desc) : ~0ull, high = u & mask;   // below the passes' last bit, keys of one high part agree
            bool below = j < n && high < kth, eq = j < n && high == kth;
            unsigned ballot = __ballot_sync(0xffffffffu, eq);
            if (lane == 0) warpEq[warp] = __popc(ballot);
            __syncthreads();
            int before = eqTaken + __popc(ballot & ((1u << lane) - 1));
            for (int w = 0; w < warp; w++) before += warpEq[w];
            if (below || (eq && before < want)) {
                int at = atomicAdd(&count, 1);
                sk[at] = u;
                si[at] = j;
            }
            __syncthreads();
            if (threadIdx.x == 0) for (int w = 0; w < warps; w++) eqTaken += warpEq[w];
            __syncthreads();
        }
        int P = 1;
        while (P < k) P <<= 1;
        for (int i = k + threadIdx.x; i < P; i += blockDim.x) { sk[i] = ~0ull; si[i] = 0x7fffffff; }
        __syncthreads();
        sort_block(sk, si, P, n, false);
        for (int i = threadIdx.x; i < k; i += blockDim.x) out[r * k + i] = si[i];
        __syncthreads();
    }
}

#define SORTING(T, S) \
/* rows of P <= SORT_TILE: a block a row (grid-stride), the whole network in shared memory; the first k indices out */ \
extern "C" __global__ void __launch_bounds__(1024) argsort_small_##S(i64* out, const T* x, i64 rows, int n, int P, int desc, int k) { \
    typedef SortKey<T>::type K; \
    __shared__ K key[SORT_TILE]; \
    __shared__ int idx[SORT_TILE]; \
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) { \
        for (int i = threadIdx.x; i < P; i += blockDim.x) { idx[i] = i; key[i] = i < n ? SortKey<T>::of(x[r * n + i]) : (K) 0; } \
        __syncthreads(); \
        sort_block(key, idx, P, n, desc != 0); \
        for (int i = threadIdx.x; i < k; i += blockDim.x) out[r * k + i] = idx[i]; \
        __syncthreads(); \
    } \
} \
/* longer rows: pairs into (rows, P) scratch */ \
extern "C" __global__ void argsort_load_##S(SortKey<T>::type* key, int* idx, const T* x, i64 rows, int n, int P) { \
    GRID_STRIDE(e, rows * P) { \
        i64 r = e / P; int i = (int) (e - r * P); \
        idx[e] = i; \
        key[e] = i < n ? SortKey<T>::of(x[r * n + i]) : (SortKey<T>::type) 0; \
    } \
} \
/* a block a tile of SORT_TILE (grid-stride): k == 0 sorts it (merge sizes 2..SORT_TILE, in the direction of its place */ \
/* in the bitonic network), else finishes merge size k */ \
extern "C" __global__ void __launch_bounds__(1024) argsort_tiles_##S(SortKey<T>::type* key, int* idx, i64 tiles, int n, int P, int desc, int k) { \
    typedef SortKey<T>::type K; \
    __shared__ K sk[SORT_TILE]; \
    __shared__ int si[SORT_TILE]; \
    for (i64 tile = blockIdx.x; tile < tiles; tile += gridDim.x) { \
        i64 at = tile * SORT_TILE; \
        int base = (int) (at % P); \
        for (int i = threadIdx.x; i < SORT_TILE; i += blockDim.x) { sk[i] = key[at + i]; si[i] = idx[at + i]; } \
        __syncthreads(); \
        if (k == 0) { for (int kk = 2; kk <= SORT_TILE; kk <<= 1) sort_tile_steps(sk, si, SORT_TILE, base, kk, kk >> 1, n, desc != 0); } \
        else sort_tile_steps(sk, si, SORT_TILE, base, k, SORT_TILE / 2, n, desc != 0); \
        for (int i = threadIdx.x; i < SORT_TILE; i += blockDim.x) { key[at + i] = sk[i]; idx[at + i] = si[i]; } \
        __syncthreads(); \
    } \
} \
/* one step of distance j >= SORT_TILE of merge size k, a thread a pair */ \
extern "C" __global__ void argsort_merge_##S(SortKey<T>::type* key, int* idx, i64 rows, int n, int P, int desc, int k, int j) { \
    GRID_STRIDE(e, rows * (P / 2)) { \
        i64 r = e / (P / 2); int t = (int) (e - r * (P / 2)); \
        int i = 2 * j * (t / j) + t % j; \
        sort_exchange(key + r * P, idx + r * P, i, i + j, i, k, n, desc != 0); \
    } \
} \
/* the first k <= SORT_TILE of long rows: a block a row (grid-stride), radix select then a sort in shared memory */ \
extern "C" __global__ void __launch_bounds__(1024) argsort_select_##S(i64* out, const T* x, i64 rows, int n, int k, int desc) { \
    select_first_k(out, x, rows, n, k, desc != 0); \
}
KILN_ALL_TYPES(SORTING)

// The first k indices of each sorted (rows, P) row as int64 (the padding sorts last).
extern "C" __global__ void argsort_store(i64* out, const int* idx, i64 rows, int k, int P) {
    GRID_STRIDE(e, rows * k) {
        i64 r = e / k;
        out[e] = idx[r * P + (e - r * k)];
    }
}
