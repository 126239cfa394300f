// Sorting: argsort along the innermost dimension of a contiguous (rows, n) array (dev.kiln.cuda.SortingCuda brings
// the sorted dimension innermost first). The order is the CPU's (dev.kiln.cpu.SortingCpu): stable, numbers by value,
// -0 equal to 0, NaN above every number. Every kernel compares ordered keys: a type's values as unsigned numbers in
// the order asked for (with desc every key bit flipped), ties broken by index.
// - Short rows (P, the row length rounded up to a power of two, at most SORT_TILE): a block a row,
//   (key, index) pairs in a bitonic network in shared memory (a strict total order, so the network gives exactly the
//   stable order; padding pairs sort after every real one by their index).
// - Everything else: a least-significant-digit radix sort of the whole array, 8 bits a pass, stable by construction:
//   the key's passes, then the row number's (from each element's position), so every row ends sorted in its place.
//   radix_counts reads the keys once for every pass's digit counts (radix_starts makes them each digit's start); then
//   a pass is one launch (radix_first, radix_key, radix_row), each tile finding its place among the earlier tiles by a
//   decoupled look-back (as CUB's "onesweep" sort).
// - The first k <= SORT_TILE of a longer row (topk): a radix select finds the k-th key, a block gathers the k pairs
//   before it (ties by index) and sorts them in shared memory.
#include "common.cuh"

#define SORT_TILE 2048
#define RADIX_WARPS 8
#define RADIX_ITEMS 8
#define RADIX_THREADS (RADIX_WARPS * 32)
#define RADIX_TILE (RADIX_THREADS * RADIX_ITEMS)
static_assert(RADIX_THREADS == 256, "the passes give each thread one digit");

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

// ---- the radix sort's passes. An element is a key and its position in the (rows, n) array; a pass is one of three
// kinds: the first (on the key; positions the identity, not read), a later one on the key, or one on the row number
// (from the position; keys no longer needed). Indices are 32-bit: the host keeps count below 2^31.
#define RADIX_FIRST 0
#define RADIX_KEY 1
#define RADIX_ROW 2

template <typename K, int MODE>
__device__ __forceinline__ int radix_digit(K k, unsigned pos, unsigned n, int shift) {
    return MODE == RADIX_ROW ? (int) (((pos / n) >> shift) & 255) : (int) ((k >> shift) & 255);
}

// Adds one to counts[d] for each lane's digit d (< 256), one atomic per distinct digit in the warp.
__device__ __forceinline__ void radix_count(unsigned* counts, int d) {
    unsigned peers = __match_any_sync(0xffffffffu, d);
    if ((threadIdx.x & 31) == __ffs(peers) - 1 && d < 256) atomicAdd(&counts[d], __popc(peers));
}

// Every pass's digit counts in one read of the keys: counts[p * 256 + d], the key's passes first, then the row
// number's (which do not depend on the order, so they come from each element's first position).
template <typename K>
__device__ __forceinline__ void radix_counts(const K* key, unsigned count, unsigned n, int keyPasses, int rowPasses, unsigned* counts) {
    __shared__ unsigned c[12 * 256];
    int passes = keyPasses + rowPasses;
    for (int i = threadIdx.x; i < passes * 256; i += blockDim.x) c[i] = 0;
    __syncthreads();
    for (unsigned base = blockIdx.x * blockDim.x; base < count; base += gridDim.x * blockDim.x) {
        unsigned e = base + threadIdx.x;
        bool valid = e < count;
        K k = valid ? key[e] : 0;
        for (int p = 0; p < keyPasses; p++) radix_count(c + p * 256, valid ? (int) ((k >> (8 * p)) & 255) : 256);
        unsigned row = valid ? e / n : 0;
        for (int p = 0; p < rowPasses; p++) radix_count(c + (keyPasses + p) * 256, valid ? (int) ((row >> (8 * p)) & 255) : 256);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < passes * 256; i += blockDim.x) if (c[i] != 0) atomicAdd(&counts[i], c[i]);
}

// The exclusive prefix sum over a block of 256 threads of v (thread t's element t): warp scans, then the earlier warps'
// totals (warpSum: 8 words of shared memory; the block synchronises once).
__device__ __forceinline__ unsigned block_exclusive_sum256(unsigned v, unsigned* warpSum) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    unsigned s = v;
    for (int off = 1; off < 32; off <<= 1) {
        unsigned u = __shfl_up_sync(0xffffffffu, s, off);
        if (lane >= off) s += u;
    }
    if (lane == 31) warpSum[warp] = s;
    __syncthreads();
    for (int w = 0; w < warp; w++) s += warpSum[w];
    return s - v;
}

// A block a pass: its 256 digit counts to their exclusive prefix sums (where each digit starts in the output), in place.
extern "C" __global__ void __launch_bounds__(256) radix_starts(unsigned* counts) {
    __shared__ unsigned warpSum[8];
    unsigned* c = counts + blockIdx.x * 256;
    c[threadIdx.x] = block_exclusive_sum256(c[threadIdx.x], warpSum);
}

#define RADIX_LOOKBACK 8

// A tile's look-back status word, read and written whole at GPU scope (no ordering needed with anything else).
__device__ __forceinline__ u64 relaxed_load(const u64* p) {
    u64 v;
    asm volatile("ld.relaxed.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}
__device__ __forceinline__ void relaxed_store(u64* p, u64 v) { asm volatile("st.relaxed.gpu.global.u64 [%0], %1;" :: "l"(p), "l"(v) : "memory"); }

// One pass, a tile a block in the order blocks take them (tiles[0], so a tile waits only on running or finished ones):
// the tile ranks its elements by digit, publishes its count of each digit, adds up the earlier tiles' counts by
// looking back (stopping at a tile that published its running total: "decoupled look-back", as CUB's onesweep sort),
// and writes each element at its digit's start + the earlier tiles' count of the digit + its rank in the tile, staged
// in shared memory so the writes of one digit are contiguous. status[tile * 256 + d] is (flag << 32) | count with flag
// 2 * pass + 1 for the tile's own count and 2 * pass + 2 for the total up to and with it; zero before the first pass.
template <typename K, int MODE>
__device__ __forceinline__ void radix_pass(const K* key, const unsigned* pos, K* keyOut, unsigned* posOut, unsigned count, unsigned n,
                                           int shift, int pass, const unsigned* starts, u64* status, unsigned* tiles) {
    __shared__ unsigned warpCount[RADIX_WARPS][256];
    __shared__ unsigned tileStart[256], globalStart[256], warpSum[RADIX_WARPS];
    __shared__ K stageKey[MODE == RADIX_ROW ? 1 : RADIX_TILE];
    __shared__ unsigned stagePos[RADIX_TILE];
    __shared__ unsigned char stageDigit[RADIX_TILE];
    __shared__ unsigned tileShared;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, t = threadIdx.x;
    if (t == 0) tileShared = atomicAdd(tiles, 1);
    for (int i = t; i < RADIX_WARPS * 256; i += RADIX_THREADS) warpCount[i / 256][i % 256] = 0;
    __syncthreads();
    unsigned tile = tileShared, start = tile * RADIX_TILE;
    // load (a warp takes RADIX_ITEMS rounds of 32 consecutive elements), then rank each among the earlier ones of its
    // digit in its warp; slots past the end get digit 256
    K k[RADIX_ITEMS];
    unsigned p[RADIX_ITEMS], rank[RADIX_ITEMS];
    int d[RADIX_ITEMS];
    unsigned first = start + warp * (RADIX_ITEMS * 32) + lane;
    for (int i = 0; i < RADIX_ITEMS; i++) {
        unsigned e = first + i * 32;
        bool valid = e < count;
        k[i] = MODE != RADIX_ROW && valid ? key[e] : 0;
        p[i] = MODE == RADIX_FIRST ? e : valid ? pos[e] : 0;
        d[i] = valid ? radix_digit<K, MODE>(k[i], p[i], n, shift) : 256;
    }
    for (int i = 0; i < RADIX_ITEMS; i++) {
        unsigned peers = __match_any_sync(0xffffffffu, d[i]);
        int leader = __ffs(peers) - 1;
        unsigned prev = 0;
        if (lane == leader && d[i] < 256) {
            prev = warpCount[warp][d[i]];
            warpCount[warp][d[i]] = prev + __popc(peers);
        }
        rank[i] = __shfl_sync(0xffffffffu, prev, leader) + __popc(peers & ((1u << lane) - 1));
    }
    __syncthreads();
    // thread t is digit t: its warps' exclusive offsets and the tile's count, published at once
    unsigned run = 0;
    for (int w = 0; w < RADIX_WARPS; w++) { unsigned c = warpCount[w][t]; warpCount[w][t] = run; run += c; }
    u64 own = 2 * pass + 1, total = 2 * pass + 2;
    u64* st = status + t;
    relaxed_store(st + (u64) tile * 256, ((tile == 0 ? total : own) << 32) | run);
    // the tile's start of each digit (a block scan of run) while the earlier tiles publish
    tileStart[t] = block_exclusive_sum256(run, warpSum);
    // look back RADIX_LOOKBACK tiles a round (independent loads, one wait), adding counts up to the first running
    // total; a tile that has not published yet ends the round and is read again in the next, after a sleep that grows
    // (as CUB's look-back backs off, so spinning warps leave issue slots to the tiles waited for; level on the H200)
    unsigned before = 0, sleep = 32;
    for (int j = (int) tile - 1; j >= 0;) {
        u64 v[RADIX_LOOKBACK];
        for (int w = 0; w < RADIX_LOOKBACK; w++) v[w] = j - w >= 0 ? relaxed_load(st + (u64) (j - w) * 256) : total << 32;
        int used = 0;
        bool done = false;
        for (int w = 0; w < RADIX_LOOKBACK && !done; w++) {
            if ((v[w] >> 32) < own) break;
            before += (unsigned) v[w];
            used++;
            done = (v[w] >> 32) == total;
        }
        if (done) break;
        j -= used;
        if (used < RADIX_LOOKBACK) {
            __nanosleep(sleep);
            sleep = min(sleep * 2, 1024u);
        }
    }
    if (tile > 0) relaxed_store(st + (u64) tile * 256, (total << 32) | (before + run));
    globalStart[t] = starts[t] + before;
    __syncthreads();
    for (int i = 0; i < RADIX_ITEMS; i++) {
        if (d[i] < 256) {
            unsigned at = tileStart[d[i]] + warpCount[warp][d[i]] + rank[i];
            if (MODE != RADIX_ROW) stageKey[at] = k[i];
            stagePos[at] = p[i];
            stageDigit[at] = (unsigned char) d[i];
        }
    }
    __syncthreads();
    unsigned size = min((unsigned) RADIX_TILE, count - start);
    for (unsigned j = t; j < size; j += RADIX_THREADS) {
        int dj = stageDigit[j];
        unsigned at = globalStart[dj] + (j - tileStart[dj]);
        if (MODE != RADIX_ROW) keyOut[at] = stageKey[j];
        posOut[at] = stagePos[j];
    }
}

#define RADIX(K, S) \
extern "C" __global__ void __launch_bounds__(RADIX_THREADS) radix_counts_##S(const K* key, unsigned count, unsigned n, int keyPasses, int rowPasses, unsigned* counts) { \
    radix_counts(key, count, n, keyPasses, rowPasses, counts); \
} \
extern "C" __global__ void __launch_bounds__(RADIX_THREADS) radix_first_##S(const K* key, K* keyOut, unsigned* posOut, unsigned count, int shift, int pass, \
                                                                           const unsigned* starts, u64* status, unsigned* tiles) { \
    radix_pass<K, RADIX_FIRST>(key, 0, keyOut, posOut, count, 1, shift, pass, starts, status, tiles); \
} \
extern "C" __global__ void __launch_bounds__(RADIX_THREADS) radix_key_##S(const K* key, const unsigned* pos, K* keyOut, unsigned* posOut, unsigned count, int shift, \
                                                                         int pass, const unsigned* starts, u64* status, unsigned* tiles) { \
    radix_pass<K, RADIX_KEY>(key, pos, keyOut, posOut, count, 1, shift, pass, starts, status, tiles); \
}
RADIX(unsigned, k32)
RADIX(u64, k64)

extern "C" __global__ void __launch_bounds__(RADIX_THREADS) radix_row(const unsigned* pos, unsigned* posOut, unsigned count, unsigned n, int shift, int pass,
                                                                     const unsigned* starts, u64* status, unsigned* tiles) {
    radix_pass<unsigned, RADIX_ROW>(0, pos, 0, posOut, count, n, shift, pass, starts, status, tiles);
}

// The first k indices of each sorted row: the positions (row * n + index) of the row's first k elements, less row * n.
extern "C" __global__ void argsort_store(i64* out, const unsigned* pos, i64 rows, int n, int k) {
    GRID_STRIDE(e, rows * k) {
        i64 r = e / k;
        out[e] = (i64) pos[r * n + (e - r * k)] - r * n;
    }
}
