// Shared by every Kiln kernel file: the element types, their conversions (as the CPU backend's HostArrays does
// them), the strided-geometry struct and the grid-stride loop. No CUDA headers: NVRTC compiles this alone.
#pragma once

typedef long long i64;
typedef unsigned long long u64;

// 16-bit floats and bool are kept as raw bits so no toolkit header is needed; conversions are PTX instructions.
struct bf16 { unsigned short v; };
struct f16 { unsigned short v; };
struct b8 { unsigned char v; };

__device__ __forceinline__ float bf16_to_float(unsigned short b) { return __uint_as_float(((unsigned) b) << 16); }
__device__ __forceinline__ unsigned short float_to_bf16(float f) {   // round to nearest even, NaN stays NaN
    unsigned x = __float_as_uint(f);
    if (f != f) return 0x7FC0;
    return (unsigned short) ((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}
__device__ __forceinline__ float f16_to_float(unsigned short h) {
    float f;
    asm("{ .reg .b16 t; mov.b16 t, %1; cvt.f32.f16 %0, t; }" : "=f"(f) : "h"(h));
    return f;
}
__device__ __forceinline__ unsigned short float_to_f16(float f) {
    unsigned short h;
    asm("{ .reg .b16 t; cvt.rn.f16.f32 t, %1; mov.b16 %0, t; }" : "=h"(h) : "f"(f));
    return h;
}

// ---- every type to double (the CPU reference computes in double) and back, with Java's cast semantics
__device__ __forceinline__ double to_d(float v) { return v; }
__device__ __forceinline__ double to_d(double v) { return v; }
__device__ __forceinline__ double to_d(bf16 v) { return bf16_to_float(v.v); }
__device__ __forceinline__ double to_d(f16 v) { return f16_to_float(v.v); }
__device__ __forceinline__ double to_d(i64 v) { return (double) v; }
__device__ __forceinline__ double to_d(int v) { return v; }
__device__ __forceinline__ double to_d(unsigned char v) { return v; }
__device__ __forceinline__ double to_d(b8 v) { return v.v != 0 ? 1.0 : 0.0; }

template <typename T> __device__ __forceinline__ T from_d(double v);
template <> __device__ __forceinline__ float from_d<float>(double v) { return (float) v; }
template <> __device__ __forceinline__ double from_d<double>(double v) { return v; }
template <> __device__ __forceinline__ bf16 from_d<bf16>(double v) { bf16 r; r.v = float_to_bf16((float) v); return r; }
template <> __device__ __forceinline__ f16 from_d<f16>(double v) { f16 r; r.v = float_to_f16((float) v); return r; }
// float-to-integer conversion saturates and maps NaN to 0, as Java's (long) and (int) casts do
template <> __device__ __forceinline__ i64 from_d<i64>(double v) { return (i64) v; }
template <> __device__ __forceinline__ int from_d<int>(double v) { return (int) v; }
template <> __device__ __forceinline__ unsigned char from_d<unsigned char>(double v) { return (unsigned char) (i64) v; }
template <> __device__ __forceinline__ b8 from_d<b8>(double v) { b8 r; r.v = v != 0 ? 1 : 0; return r; }

// ---- the type arithmetic runs in: float for the 32- and 16-bit floats, double for the rest (as the CPU does)
template <typename T> struct Acc { typedef double type; };
template <> struct Acc<float> { typedef float type; };
template <> struct Acc<bf16> { typedef float type; };
template <> struct Acc<f16> { typedef float type; };

template <typename C, typename T> __device__ __forceinline__ C load(T v) { return (C) to_d(v); }
template <> __device__ __forceinline__ float load<float, float>(float v) { return v; }
template <> __device__ __forceinline__ float load<float, bf16>(bf16 v) { return bf16_to_float(v.v); }
template <> __device__ __forceinline__ float load<float, f16>(f16 v) { return f16_to_float(v.v); }
template <typename T, typename C> __device__ __forceinline__ T store(C v) { return from_d<T>((double) v); }
template <> __device__ __forceinline__ float store<float, float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 store<bf16, float>(float v) { bf16 r; r.v = float_to_bf16(v); return r; }
template <> __device__ __forceinline__ f16 store<f16, float>(float v) { f16 r; r.v = float_to_f16(v); return r; }

// ---- strided geometry: up to 8 dimensions (merged on the host first), up to 4 operands.
// rank 0 means every operand is contiguous from its base pointer: offset = linear index.
#define KILN_MAX_RANK 8
struct Geo {
    int rank;
    int shape[KILN_MAX_RANK];
    int stride[4][KILN_MAX_RANK];
};

__device__ __forceinline__ i64 divmod(i64 i, i64 d, i64& r);

template <int K>
__device__ __forceinline__ void offsets(const Geo& g, i64 i, i64* off) {
#pragma unroll
    for (int k = 0; k < K; k++) off[k] = 0;
    if (g.rank == 0) {
#pragma unroll
        for (int k = 0; k < K; k++) off[k] = i;
        return;
    }
    for (int d = g.rank - 1; d >= 0; d--) {
        i64 idx;
        i = divmod(i, g.shape[d], idx);   // 32-bit division while the index fits
#pragma unroll
        for (int k = 0; k < K; k++) off[k] += idx * g.stride[k][d];
    }
}

// i = (q * d) + r for a divisor d > 0: 32-bit unsigned division while i fits (a 64-bit division is a long
// software sequence on the GPU, enough to make an index-heavy kernel compute-bound), 64-bit beyond.
__device__ __forceinline__ i64 divmod(i64 i, i64 d, i64& r) {
    if ((unsigned long long) i <= 0xFFFFFFFFull && d <= 0xFFFFFFFFll) {
        unsigned q = (unsigned) i / (unsigned) d;
        r = (i64) ((unsigned) i - q * (unsigned) d);
        return q;
    }
    i64 q = i / d;
    r = i - q * d;
    return q;
}

#define GRID_STRIDE(i, n) for (i64 i = (i64) blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64) gridDim.x * blockDim.x)

// A warp a row: row r of n per warp, lane the thread's lane. Every lane of a warp runs the same iterations (launch a
// multiple of 32 threads), so the warp may shuffle (warp_reduce, warp_all) inside.
#define WARP_STRIDE(r, lane, n) \
    for (i64 r = ((i64) blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31; r < (n); \
         r += ((i64) gridDim.x * blockDim.x) >> 5)

// Instantiates MACRO(T, suffix) for every element type; suffixes match dev.kiln.DType's order.
#define KILN_ALL_TYPES(M) M(float, f32) M(double, f64) M(bf16, bf16) M(f16, f16) M(i64, i64) M(int, i32) M(unsigned char, u8) M(b8, b8)
#define KILN_FLOAT_TYPES(M) M(float, f32) M(double, f64) M(bf16, bf16) M(f16, f16)

// Index errors: the first bad index is recorded here and reported by the host at the next wait; op is one of the
// INDEX_ERROR_* codes of op_codes.cuh (dev.kiln.cuda.IndexErrorOp).
__device__ __forceinline__ void report_index_error(u64* err, i64 value, i64 size, int op) {
    if (atomicCAS(err, 0ull, 1ull) == 0ull) {
        err[1] = (u64) value;
        err[2] = (u64) size;
        err[3] = (u64) op;
    }
}

// 16 / sizeof(T) elements moved as one 16-byte access (the pointer must be 16-byte aligned).
template <typename T> struct alignas(16) Vec16 {
    static constexpr int N = 16 / sizeof(T);
    T v[N];
    __device__ __forceinline__ void load(const T* p) { *reinterpret_cast<uint4*>(v) = *reinterpret_cast<const uint4*>(p); }
    __device__ __forceinline__ void store(T* p) const { *reinterpret_cast<uint4*>(p) = *reinterpret_cast<const uint4*>(v); }
};

// ---- TF32 tensor cores (sm_80 and later): x rounded to TF32 (as cuDNN rounds float32 operands), and one
// mma.sync m16n8k8, c += A B, row-major A fragment a[4], column-major B fragment (b0, b1), float accumulators c[4]
__device__ __forceinline__ unsigned tc_tf32(float x) { unsigned r; asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x)); return r; }
__device__ __forceinline__ void tc_mma1(float* c, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// shared-memory address of p, and 16-byte asynchronous copies global -> shared (sm_80 and later)
__device__ __forceinline__ unsigned mma_smem(const void* p) {
    unsigned r;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(r) : "l"(p));
    return r;
}
__device__ __forceinline__ void mma_cp16_at(unsigned dst, const void* src, bool valid) {   // dst a shared-memory address
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" :: "r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void mma_cp16(void* dst, const void* src, bool valid) {   // zero-fills when !valid
    mma_cp16_at(mma_smem(dst), src, valid);
}
__device__ __forceinline__ void mma_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void mma_wait() { asm volatile("cp.async.wait_group %0;\n" :: "n"(N)); }

// ---- reductions within a warp and a block (blockDim.x a multiple of 32, at most 1024)
template <typename A, typename F>
__device__ __forceinline__ A warp_reduce(A v, F f) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = f(v, __shfl_down_sync(0xffffffffu, v, off));
    return v;
}

// Every lane of the warp gets the result (butterfly).
template <typename A, typename F>
__device__ __forceinline__ A warp_all(A v, F f) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = f(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

// Every thread of the block gets the result. sh holds 32 values; the block may call this again at once.
template <typename A, typename F>
__device__ __forceinline__ A block_reduce(A v, F f, A* sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_reduce(v, f);
    __syncthreads();                 // sh may still be read by a previous call
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    A r = sh[0];
    for (int w = 1; w < warps; w++) r = f(r, sh[w]);
    return r;
}
