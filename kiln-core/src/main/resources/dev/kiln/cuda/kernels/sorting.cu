// Sorting: argsort along the innermost dimension of a contiguous (rows, n) array (dev.kiln.cuda.SortingCuda brings
// the sorted dimension innermost first). The order is the CPU's (dev.kiln.cpu.SortingCpu): stable, numbers by value,
// -0 equal to 0, NaN above every number. Every kernel compares ordered keys: a type's values as unsigned numbers in
// the order asked for (with desc every key bit flipped), ties broken by index.
// - Short rows (P, the row length rounded up to a power of two, at most SORT_TILE) of a small array: a block a row,
//   (key, index) pairs in a bitonic network in shared memory (a strict total order, so the network gives exactly the
//   stable order; padding pairs sort after every real one by their index).
// - Everything else: a least-significant-digit radix sort of the whole array, 8 bits a pass, stable by construction:
//   the key's passes, then the row number's (from each element's position), so every row ends sorted in its place.
//   A pass is three launches: radix_hist (each tile's digit counts), radix_scan (each digit's counts over the tiles,
//   and its total), radix_scatter (each tile ranks its elements by digit and writes them, staged in shared memory so
//   the writes of one digit are contiguous).
// - The first k <= SORT_TILE of a longer row (topk): a radix select finds the k-th key, a block gathers the k pairs
//   before it (ties by index) and sorts them in shared memory.
#include "common.cuh"

#define SORT_TILE 2048
#define RADIX_WARPS 8
#define RADIX_ITEMS 8
#define RADIX_THREADS (RADIX_WARPS * 32)
#define RADIX_TILE (RADIX_THREADS * RADIX_ITEMS)

// ---- ordered keys: Key<T>::type holds Key<T>::bits significant bits
template <typename T> struct Key;
template <> struct Key<float> {
    typedef unsigned type; static const int bits = 32;
    static __device__ __forceinline__ unsigned of(float v) {
        unsigned b = __float_as_uint(v);
        if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFFFFFu;   // NaN
        if ((b & 0x7FFFFFFFu) == 0) b = 0;                          // -0 as 0
        return b & 0x80000000u ? ~b : b | 0x80000000u;
    }
};
template <> struct Key<double> {
    typedef u64 type; static const int bits = 64;
    static __device__ __forceinline__ u64 of(double v) {
        u64 b = (u64) __double_as_longlong(v);
        if ((b & 0x7FFFFFFFFFFFFFFFull) > 0x7FF0000000000000ull) return ~0ull;
        if ((b & 0x7FFFFFFFFFFFFFFFull) == 0) b = 0;
        return b & 0x8000000000000000ull ? ~b : b | 0x8000000000000000ull;
    }
};
// bf16 and f16: the same rule on 16 bits (NaN above their infinity's bits)
__device__ __forceinline__ unsigned half_key(unsigned b, unsigned inf) {
    if ((b & 0x7FFFu) > inf) return 0xFFFFu;
    if ((b & 0x7FFFu) == 0) b = 0;
    return b & 0x8000u ? ~b & 0xFFFFu : b | 0x8000u;
}
template <> struct Key<bf16> {
    typedef unsigned type; static const int bits = 16;
    static __device__ __forceinline__ unsigned of(bf16 v) { return half_key(v.v, 0x7F80u); }
};
template <> struct Key<f16> {
    typedef unsigned type; static const int bits = 16;
    static __device__ __forceinline__ unsigned of(f16 v) { return half_key(v.v, 0x7C00u); }
};
template <> struct Key<i64> {
    typedef u64 type; static const int bits = 64;
    static __device__ __forceinline__ u64 of(i64 v) { return (u64) v ^ 0x8000000000000000ull; }
};
template <> struct Key<int> {
    typedef unsigned type; static const int bits = 32;
    static __device__ __forceinline__ unsigned of(int v) { return (unsigned) v ^ 0x80000000u; }
};
template <> struct Key<unsigned char> {
    typedef unsigned type; static const int bits = 8;
    static __device__ __forceinline__ unsigned of(unsigned char v) { return v; }
};
template <> struct Key<b8> {
    typedef unsigned type; static const int bits = 8;
    static __device__ __forceinline__ unsigned of(b8 v) { return v.v != 0; }
};

// The key in the order asked for: descending flips its significant bits (equal keys keep their index order).
template <typename T>
__device__ __forceinline__ typename Key<T>::type ordered_key(T v, bool desc) {
    typedef typename Key<T>::type K;
    K k = Key<T>::of(v);
    return desc ? k ^ (~(K) 0 >> (8 * sizeof(K) - Key<T>::bits)) : k;
}

// ---- short rows: a bitonic network of (key, index) pairs in shared memory
template <typename K>
__device__ __forceinline__ bool pair_before(K ka, int ia, K kb, int ib) { return ka < kb || (ka == kb && ia < ib); }

// The steps of distance j0, j0/2, ..., 1 of merge size k over P pairs: ascending where (i & k) == 0.
template <typename K>
__device__ __forceinline__ void bitonic_steps(K* key, int* idx, int P, int k, int j0) {
    for (int j = j0; j > 0; j >>= 1) {
        for (int t = threadIdx.x; t < P / 2; t += blockDim.x) {
            int i = 2 * j * (t / j) + t % j, l = i + j;
            K ki = key[i], kl = key[l];
            int ii = idx[i], il = idx[l];
            if ((i & k) == 0 ? pair_before(kl, il, ki, ii) : pair_before(ki, ii, kl, il)) {
                key[i] = kl; key[l] = ki;
                idx[i] = il; idx[l] = ii;
            }
        }
        __syncthreads();
    }
}

// Sorts P pairs in shared memory (P a power of two, at most SORT_TILE), every thread of the block taking part.
template <typename K>
__device__ __forceinline__ void bitonic_sort(K* key, int* idx, int P) {
    for (int k = 2; k <= P; k <<= 1) bitonic_steps(key, idx, P, k, k >> 1);
}

// ---- the first k of long rows: radix select of the k-th key, then the k pairs sorted in one block
template <typename T>
__device__ __forceinline__ void select_first_k(i64* out, const T* x, i64 rows, int n, int k, bool desc) {
    typedef typename Key<T>::type K;
    __shared__ K sk[SORT_TILE];
    __shared__ int si[SORT_TILE];
    __shared__ int hist[256], warpEq[32];
    __shared__ K prefix;
    __shared__ int remaining, count, eqTaken;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* row = x + r * n;
        if (threadIdx.x == 0) { prefix = 0; remaining = k; count = 0; eqTaken = 0; }
        // the k-th key, 8 bits a pass from the top: remaining counts the keys equal to it that belong to the first k
        K mask = 0;
        for (int shift = Key<T>::bits - 8; shift >= 0; shift -= 8) {
            for (int b = threadIdx.x; b < 256; b += blockDim.x) hist[b] = 0;
            __syncthreads();
            K p = prefix;
            for (int j = threadIdx.x; j < n; j += blockDim.x) {
                K u = ordered_key(row[j], desc);
                if ((u & mask) == p) atomicAdd(&hist[(u >> shift) & 255], 1);
            }
            __syncthreads();
            if (threadIdx.x == 0) {
                int b = 0;
                while (hist[b] < remaining) remaining -= hist[b++];
                prefix = p | ((K) b << shift);
            }
            mask |= (K) 0xFF << shift;
            __syncthreads();
        }
        // the keys below the k-th, and the first `remaining` equal to it by index, into shared memory
        K kth = prefix;
        int want = remaining;
        for (int base = 0; base < n; base += blockDim.x) {
            int j = base + threadIdx.x;
            K u = j < n ? ordered_key(row[j], desc) : 0;
            bool below = j < n && u < kth, eq = j < n && u == kth;
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
        for (int i = k + threadIdx.x; i < P; i += blockDim.x) { sk[i] = ~(K) 0; si[i] = 0x7fffffff; }
        __syncthreads();
        bitonic_sort(sk, si, P);
        for (int i = threadIdx.x; i < k; i += blockDim.x) out[r * k + i] = si[i];
        __syncthreads();
    }
}

#define SORTING(T, S) \
/* rows of P <= SORT_TILE: a block a row (grid-stride), the whole network in shared memory; the first k indices out */ \
extern "C" __global__ void __launch_bounds__(1024) argsort_small_##S(i64* out, const T* x, i64 rows, int n, int P, int desc, int k) { \
    typedef Key<T>::type K; \
    __shared__ K key[SORT_TILE]; \
    __shared__ int idx[SORT_TILE]; \
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) { \
        for (int i = threadIdx.x; i < P; i += blockDim.x) { idx[i] = i; key[i] = i < n ? ordered_key(x[r * n + i], desc != 0) : ~(K) 0; } \
        __syncthreads(); \
        bitonic_sort(key, idx, P); \
        for (int i = threadIdx.x; i < k; i += blockDim.x) out[r * k + i] = idx[i]; \
        __syncthreads(); \
    } \
} \
/* the radix sort's keys */ \
extern "C" __global__ void argsort_keys_##S(Key<T>::type* key, const T* x, i64 count, int desc) { \
    GRID_STRIDE(e, count) key[e] = ordered_key(x[e], desc != 0); \
} \
/* the first k <= SORT_TILE of long rows: a block a row (grid-stride), radix select then a sort in shared memory */ \
extern "C" __global__ void __launch_bounds__(1024) argsort_select_##S(i64* out, const T* x, i64 rows, int n, int k, int desc) { \
    select_first_k(out, x, rows, n, k, desc != 0); \
}
KILN_ALL_TYPES(SORTING)

// ---- the radix sort's passes. An element is a key (absent on the row number's passes) and its position in the
// (rows, n) array (absent before the first pass: the identity). Digits come from the key, or from the position's row.
template <typename K>
__device__ __forceinline__ int radix_digit(const K* key, K k, unsigned pos, int n, int shift) {
    return key != 0 ? (int) ((k >> shift) & 255) : (int) (((pos / (unsigned) n) >> shift) & 255);
}

// The exclusive prefix sum of one value per thread over a block of RADIX_THREADS; total gets the sum.
__device__ __forceinline__ unsigned radix_block_scan(unsigned v, unsigned* total) {
    __shared__ unsigned warpSum[RADIX_WARPS];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    unsigned s = v;
    for (int off = 1; off < 32; off <<= 1) {
        unsigned u = __shfl_up_sync(0xffffffffu, s, off);
        if (lane >= off) s += u;
    }
    if (lane == 31) warpSum[warp] = s;
    __syncthreads();
    unsigned before = 0, all = 0;
    for (int w = 0; w < RADIX_WARPS; w++) {
        if (w < warp) before += warpSum[w];
        all += warpSum[w];
    }
    __syncthreads();   // warpSum is read before a later scan writes it
    if (total) *total = all;
    return before + s - v;
}

// Loads a tile's elements (a warp takes RADIX_ITEMS rounds of 32 consecutive ones) and ranks each among the earlier
// ones of its digit within its warp; counts[w][d] ends as warp w's count of digit d. Invalid slots get digit 256.
template <typename K>
__device__ __forceinline__ void radix_rank(const K* key, const unsigned* pos, i64 count, int n, int shift, i64 tileStart,
                                           K* k, unsigned* p, int* d, unsigned* rank, unsigned (*counts)[256]) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    for (int i = 0; i < RADIX_ITEMS; i++) {
        i64 e = tileStart + (warp * RADIX_ITEMS + i) * 32 + lane;
        bool valid = e < count;
        k[i] = valid && key != 0 ? key[e] : 0;
        p[i] = !valid ? 0 : pos != 0 ? pos[e] : (unsigned) e;
        d[i] = valid ? radix_digit(key, k[i], p[i], n, shift) : 256;
    }
    for (int i = 0; i < RADIX_ITEMS; i++) {
        unsigned peers = __match_any_sync(0xffffffffu, d[i]);
        int leader = __ffs(peers) - 1;
        unsigned prev = 0;
        if (lane == leader && d[i] < 256) {
            prev = counts[warp][d[i]];
            counts[warp][d[i]] = prev + __popc(peers);
        }
        rank[i] = __shfl_sync(0xffffffffu, prev, leader) + __popc(peers & ((1u << lane) - 1));
    }
}

// Each tile's count of each digit: hist[d * tiles + tile].
template <typename K>
__device__ __forceinline__ void radix_hist(const K* key, const unsigned* pos, i64 count, int n, int shift, unsigned* hist, int tiles) {
    __shared__ unsigned counts[RADIX_WARPS][256];
    for (int i = threadIdx.x; i < RADIX_WARPS * 256; i += RADIX_THREADS) counts[i / 256][i % 256] = 0;
    __syncthreads();
    K k[RADIX_ITEMS];
    unsigned p[RADIX_ITEMS], rank[RADIX_ITEMS];
    int d[RADIX_ITEMS];
    radix_rank(key, pos, count, n, shift, (i64) blockIdx.x * RADIX_TILE, k, p, d, rank, counts);
    __syncthreads();
    unsigned sum = 0;
    for (int w = 0; w < RADIX_WARPS; w++) sum += counts[w][threadIdx.x];
    hist[(i64) threadIdx.x * tiles + blockIdx.x] = sum;
}

// Ranks a tile's elements among all elements of their digit (the earlier tiles' and the smaller digits' before them)
// and writes them there.
template <typename K>
__device__ __forceinline__ void radix_scatter(const K* key, const unsigned* pos, K* keyOut, unsigned* posOut, i64 count, int n,
                                              int shift, const unsigned* hist, const unsigned* total, int tiles) {
    __shared__ unsigned counts[RADIX_WARPS][256];
    __shared__ unsigned tileStart[256], globalStart[256];
    __shared__ K stageKey[RADIX_TILE];
    __shared__ unsigned stagePos[RADIX_TILE];
    for (int i = threadIdx.x; i < RADIX_WARPS * 256; i += RADIX_THREADS) counts[i / 256][i % 256] = 0;
    __syncthreads();
    i64 start = (i64) blockIdx.x * RADIX_TILE;
    K k[RADIX_ITEMS];
    unsigned p[RADIX_ITEMS], rank[RADIX_ITEMS];
    int d[RADIX_ITEMS];
    radix_rank(key, pos, count, n, shift, start, k, p, d, rank, counts);
    __syncthreads();
    // thread t is digit t: its warps' exclusive offsets, the tile's start of it, and where it goes in the output
    int t = threadIdx.x;
    unsigned run = 0;
    for (int w = 0; w < RADIX_WARPS; w++) { unsigned c = counts[w][t]; counts[w][t] = run; run += c; }
    tileStart[t] = radix_block_scan(run, 0);
    globalStart[t] = radix_block_scan(total[t], 0) + hist[(i64) t * tiles + blockIdx.x];
    __syncthreads();
    int warp = threadIdx.x >> 5;
    for (int i = 0; i < RADIX_ITEMS; i++) {
        if (d[i] < 256) {
            unsigned at = tileStart[d[i]] + counts[warp][d[i]] + rank[i];
            stageKey[at] = k[i];
            stagePos[at] = p[i];
        }
    }
    __syncthreads();
    int size = (int) min((i64) RADIX_TILE, count - start);
    for (int j = threadIdx.x; j < size; j += RADIX_THREADS) {
        K kj = stageKey[j];
        unsigned pj = stagePos[j];
        int dj = radix_digit(key, kj, pj, n, shift);
        unsigned at = globalStart[dj] + (j - tileStart[dj]);
        if (keyOut != 0) keyOut[at] = kj;
        posOut[at] = pj;
    }
}

#define RADIX(K, S) \
extern "C" __global__ void __launch_bounds__(RADIX_THREADS) radix_hist_##S(const K* key, const unsigned* pos, i64 count, int n, int shift, unsigned* hist, int tiles) { \
    radix_hist(key, pos, count, n, shift, hist, tiles); \
} \
extern "C" __global__ void __launch_bounds__(RADIX_THREADS) radix_scatter_##S(const K* key, const unsigned* pos, K* keyOut, unsigned* posOut, i64 count, int n, \
                                                                             int shift, const unsigned* hist, const unsigned* total, int tiles) { \
    radix_scatter(key, pos, keyOut, posOut, count, n, shift, hist, total, tiles); \
}
RADIX(unsigned, k32)
RADIX(u64, k64)

// A block a digit: its tiles' counts to their exclusive prefix sums, in place; total[d] their sum.
extern "C" __global__ void __launch_bounds__(RADIX_THREADS) radix_scan(unsigned* hist, int tiles, unsigned* total) {
    unsigned* h = hist + (i64) blockIdx.x * tiles;
    unsigned carry = 0;
    for (int base = 0; base < tiles; base += RADIX_THREADS * RADIX_ITEMS) {
        int first = base + threadIdx.x * RADIX_ITEMS;
        unsigned v[RADIX_ITEMS], sum = 0;
        for (int i = 0; i < RADIX_ITEMS; i++) { v[i] = first + i < tiles ? h[first + i] : 0; sum += v[i]; }
        unsigned chunk, before = carry + radix_block_scan(sum, &chunk);
        for (int i = 0; i < RADIX_ITEMS; i++) {
            if (first + i < tiles) h[first + i] = before;
            before += v[i];
        }
        carry += chunk;
    }
    if (threadIdx.x == 0) total[blockIdx.x] = carry;
}

// The first k indices of each sorted row: the positions (row * n + index) of the row's first k elements, less row * n.
extern "C" __global__ void argsort_store(i64* out, const unsigned* pos, i64 rows, int n, int k) {
    GRID_STRIDE(e, rows * k) {
        i64 r = e / k;
        out[e] = (i64) pos[r * n + (e - r * k)] - r * n;
    }
}
