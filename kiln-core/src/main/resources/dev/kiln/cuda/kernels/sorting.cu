// Sorting: argsort along the innermost dimension of a contiguous (rows, n) array (dev.kiln.cuda.SortingCuda brings
// the sorted dimension innermost first). The order is the CPU's (dev.kiln.cpu.SortingCpu): stable, numbers by value,
// NaN above every number. Each element is a (key, index) pair and pairs compare by key, then index: a strict total
// order, so the bitonic network (not stable by itself) gives exactly the stable order. Rows are padded to a power of
// two P with pairs (index >= n) that come after every real one. Rows of P <= SORT_TILE sort in shared memory in one
// kernel; longer rows sort tiles of SORT_TILE in shared memory, then merge: steps of a distance >= SORT_TILE in global
// memory, one launch a step, and each merge's shorter steps in shared memory again. The first k of a long row (topk,
// k <= SORT_TILE / 2) need no merges: each tile sorted on its own keeps its first k pairs, which are the candidates
// (tiles of them again while they are more than SORT_TILE), and one block sorts the last SORT_TILE.
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
/* a block a tile of SORT_TILE (grid-stride): k == 0 sorts it (merge sizes 2..SORT_TILE; each != 0: in the order asked */ \
/* for, else in the direction of its place in the bitonic network), else finishes merge size k */ \
extern "C" __global__ void __launch_bounds__(1024) argsort_tiles_##S(SortKey<T>::type* key, int* idx, i64 tiles, int n, int P, int desc, \
                                                                     int k, int each) { \
    typedef SortKey<T>::type K; \
    __shared__ K sk[SORT_TILE]; \
    __shared__ int si[SORT_TILE]; \
    for (i64 tile = blockIdx.x; tile < tiles; tile += gridDim.x) { \
        i64 at = tile * SORT_TILE; \
        int base = each ? 0 : (int) (at % P); \
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
/* the first k pairs of each sorted tile of (rows, P) into (rows, P2), padded */ \
extern "C" __global__ void argsort_keep_##S(SortKey<T>::type* nkey, int* nidx, const SortKey<T>::type* key, const int* idx, i64 rows, \
                                            int P, int k, int P2) { \
    GRID_STRIDE(e, rows * P2) { \
        i64 r = e / P2; int c = (int) (e - r * P2), tile = c / k; \
        bool kept = tile < P / SORT_TILE; \
        i64 from = r * P + (i64) tile * SORT_TILE + c % k; \
        nkey[e] = kept ? key[from] : (SortKey<T>::type) 0; \
        nidx[e] = kept ? idx[from] : 0x7fffffff; \
    } \
} \
/* rows of P <= SORT_TILE pairs from scratch: a block a row, sorted, the first k indices out */ \
extern "C" __global__ void __launch_bounds__(1024) argsort_pairs_##S(i64* out, const SortKey<T>::type* key, const int* idx, i64 rows, \
                                                                     int n, int P, int desc, int k) { \
    typedef SortKey<T>::type K; \
    __shared__ K sk[SORT_TILE]; \
    __shared__ int si[SORT_TILE]; \
    for (i64 r = blockIdx.x; r < rows; r += gridDim.x) { \
        for (int i = threadIdx.x; i < P; i += blockDim.x) { sk[i] = key[r * P + i]; si[i] = idx[r * P + i]; } \
        __syncthreads(); \
        sort_block(sk, si, P, n, desc != 0); \
        for (int i = threadIdx.x; i < k; i += blockDim.x) out[r * k + i] = si[i]; \
        __syncthreads(); \
    } \
}
KILN_ALL_TYPES(SORTING)

// The first k indices of each sorted (rows, P) row as int64 (the padding sorts last).
extern "C" __global__ void argsort_store(i64* out, const int* idx, i64 rows, int k, int P) {
    GRID_STRIDE(e, rows * k) {
        i64 r = e / k;
        out[e] = idx[r * P + (e - r * k)];
    }
}
