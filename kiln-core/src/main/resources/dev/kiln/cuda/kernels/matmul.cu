// Batched matrix product C[b] = A[b] x B[b] (+ C[b] when accumulate) over any strides (transposed and stride-0
// batch views included): the fallback when cuBLAS is not there. 64x64 output tiles, 16-deep k slices in shared
// memory, 256 threads with 4x4 outputs each; float accumulation for the 32- and 16-bit types, double for float64.
// Backward is two more products (dev.kiln.ops.LinearAlgebra), so there is no separate kernel.
#include "common.cuh"

struct GemmP { i64 m, n, k; i64 sab, sam, sak, sbb, sbk, sbn, scb, scm; int accumulate; };

#define BM 64
#define BN 64
#define BK 16

#define GEMM(T, S) \
extern "C" __global__ void __launch_bounds__(256) gemm_##S(T* c, const T* a, const T* b, GemmP p, int batch0) { \
    typedef Acc<T>::type A; \
    __shared__ A as[BK][BM + 1]; \
    __shared__ A bs[BK][BN + 1]; \
    i64 bat = batch0 + blockIdx.z; \
    const T* ab = a + bat * p.sab; const T* bb = b + bat * p.sbb; T* cb = c + bat * p.scb; \
    i64 m0 = (i64) blockIdx.y * BM, n0 = (i64) blockIdx.x * BN; \
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16; \
    A acc[4][4]; \
    _Pragma("unroll") for (int u = 0; u < 4; u++) _Pragma("unroll") for (int v = 0; v < 4; v++) acc[u][v] = 0; \
    for (i64 k0 = 0; k0 < p.k; k0 += BK) { \
        for (int e = threadIdx.x; e < BM * BK; e += 256) { \
            int mm = e / BK, kk = e % BK; i64 gm = m0 + mm, gk = k0 + kk; \
            as[kk][mm] = (gm < p.m && gk < p.k) ? load<A, T>(ab[gm * p.sam + gk * p.sak]) : (A) 0; \
            int kk2 = e / BN, nn = e % BN; i64 gk2 = k0 + kk2, gn = n0 + nn; \
            bs[kk2][nn] = (gk2 < p.k && gn < p.n) ? load<A, T>(bb[gk2 * p.sbk + gn * p.sbn]) : (A) 0; \
        } \
        __syncthreads(); \
        _Pragma("unroll") for (int kk = 0; kk < BK; kk++) { \
            A ra[4], rb[4]; \
            _Pragma("unroll") for (int u = 0; u < 4; u++) { ra[u] = as[kk][ty + 16 * u]; rb[u] = bs[kk][tx + 16 * u]; } \
            _Pragma("unroll") for (int u = 0; u < 4; u++) _Pragma("unroll") for (int v = 0; v < 4; v++) acc[u][v] += ra[u] * rb[v]; \
        } \
        __syncthreads(); \
    } \
    _Pragma("unroll") for (int u = 0; u < 4; u++) _Pragma("unroll") for (int v = 0; v < 4; v++) { \
        i64 gm = m0 + ty + 16 * u, gn = n0 + tx + 16 * v; \
        if (gm < p.m && gn < p.n) { \
            T* dst = cb + gm * p.scm + gn; \
            A r = acc[u][v]; \
            if (p.accumulate) r += load<A, T>(*dst); \
            *dst = store<T, A>(r); \
        } \
    } \
}
KILN_FLOAT_TYPES(GEMM)

// ==== float32 products on TF32 tensor cores at float32's precision (sm_80 and later): cuBLAS's float32 kernels run on
// the CUDA cores (~47 TFLOP/s on an H200 at the GPT's shapes), and on Hopper cuBLAS offers nothing faster at float32's
// precision (its BF16x9 emulation runs those same kernels; three TF32 products concatenated along k in one cuBLAS call
// are 5-80x float32's error: docs/DESIGN-NOTES.md). Here each product is three TF32 mma.sync m16n8k8 (lo·hi + hi·lo
// + hi·hi, x = hi + lo with hi x's top 10 mantissa bits), as the float32 attention kernels do, and the tensor cores'
// sums of one 32-deep k tile are added into float32 accumulators of their own, so long reductions keep float32's
// error: the tensor cores' own accumulation does not round to nearest (without this step the GPT's products were 2e-6
// to 1.7e-5 off, with it 4e-7, under cuBLAS's float32 product: bench/results/2026-12-03-h200-s33). Column-major, as
// cuBLAS: D (m x n, ldd) = op(A)·op(B) (+ bias[i]) (+ C, laid out as D), op(A)(i, p) = a[p + i·lda] when A_K (A's k
// contiguous) else a[i + p·lda], op(B)(p, j) = b[p + j·ldb] when B_K else b[j + p·ldb]. A block of 8 warps owns a
// 128 x 128 tile of D (a warp 64 x 32: 4 x 4 fragments); 32-deep k tiles move by 16-byte cp.async three stages ahead,
// each operand tile kept as it lies in memory and split into hi and lo as a fragment is read. The caller guarantees
// 16-byte rows: the contiguous extent and leading dimension of each operand multiples of 4, base pointers 16-byte
// aligned. With gridDim.z > 1 each z takes `kslice` of k and writes its raw sums to part[z] (m x n, ld m);
// gemm_tc32_sum adds the slices in order, then finishes as above. On an H200 it runs at about half of what three
// products allow (mma.sync TF32: 318 TFLOP/s, so 106 for float32): 1.05-1.33x cuBLAS's float32 product on the GPT's
// shapes; every operand element is split again by each of the 4 (or 2) warps that read it, and the fragments of 64
// sums and 64 tile sums leave the compiler copying registers (SASS of the variants measured: 1,097 instructions a tile
// for 192 products, 210 of them copies).
struct GemmTc32P { int m, n, k, lda, ldb, ldd, kslice; };

#define TC32_BM 128
#define TC32_BN 128
#define TC32_BK 32
#define TC32_STAGES 3
#define TC32_THREADS 256                // warps of 64 x 32: 2 x 4
#define TC32_KP (TC32_BK + 4)           // k-contiguous tile: rows of 32 (+4) floats
#define TC32_TILE (TC32_BM * TC32_KP)   // floats of one operand tile, either layout (128·36 >= 32·136)

// One operand's 32-deep tiles (128 rows from r0, k from k0 on) into shared memory by 16-byte cp.async, zero past the
// rows or kend; k-contiguous tiles rows 36 floats apart, else 32 k rows 136 apart: either way a fragment's 32 lanes read
// 32 banks. A thread moves 4 chunks of each tile, their addresses worked out once: worked out again for every tile they
// were a third of gemm_wg32's instructions (H200, bench/results/2026-12-03-h200-s36).
template <bool KC>
struct Tc32Loads {
    static constexpr int ROWS = 128;                                     // TC32_BM = TC32_BN
    static constexpr unsigned STEP = (KC ? 32 * TC32_KP : 8 * (ROWS + 8)) * sizeof(float);   // between chunks, bytes
    const float* src;        // chunk 0 of the next tile
    i64 chunk;               // floats between this thread's chunks in global memory (KC: 32 rows on; else 8 k rows)
    i64 tile;                // floats from one tile to the next
    unsigned dst;            // bytes from a tile's start in shared memory to chunk 0
    int k;                   // chunk 0's k in the next tile
    unsigned inside;         // bit c: chunk c's rows lie inside the operand
    __device__ __forceinline__ Tc32Loads(const float* x, int ld, int rows, int r0, int k0) {
        static_assert(TC32_THREADS == 256 && TC32_BM == 128 && TC32_BN == 128, "4 chunks a thread");
        int r, kk;
        if (KC) { r = threadIdx.x >> 3; kk = (threadIdx.x & 7) * 4; } else { kk = threadIdx.x >> 5; r = (threadIdx.x & 31) * 4; }
        src = KC ? x + (i64) (r0 + r) * ld + k0 + kk : x + (i64) (k0 + kk) * ld + r0 + r;
        chunk = KC ? (i64) 32 * ld : (i64) 8 * ld;
        tile = KC ? 32 : (i64) 32 * ld;
        dst = (KC ? r * TC32_KP + kk : kk * (ROWS + 8) + r) * sizeof(float);
        k = k0 + kk;
        inside = 0;
#pragma unroll
        for (int c = 0; c < 4; c++) inside |= (unsigned) (r0 + r + (KC ? 32 * c : 0) < rows) << c;
    }
    // the next tile into the tile at shared-memory address sh; x: any valid address (the zero-filled chunks name it)
    __device__ __forceinline__ void next(unsigned sh, const float* x, int kend) {
#pragma unroll
        for (int c = 0; c < 4; c++) {
            bool ok = (inside >> c & 1) && k + (KC ? 0 : 8 * c) < kend;
            mma_cp16_at(sh + dst + c * STEP, ok ? src + c * chunk : x, ok);
        }
        src += tile;
        k += TC32_BK;
    }
};
// Row r's elements at the fragment's k = t and t + 4 of the 8-deep step at ks. (float2 reads of k-contiguous tiles,
// k numbered 2·t, 2·t + 1 as the float32 attention kernels do, ran no faster: H200, bench/results/2026-12-03-h200-s33.)
template <bool KC, int ROWS>
__device__ __forceinline__ float2 tc32_pair(const float* sh, int r, int ks, int t) {
    if (KC) return make_float2(sh[r * TC32_KP + ks + t], sh[r * TC32_KP + ks + t + 4]);
    return make_float2(sh[(ks + t) * (ROWS + 8) + r], sh[(ks + t + 4) * (ROWS + 8) + r]);
}
// x = hi + lo exactly, hi x's top 10 mantissa bits (a TF32 value), lo the rest; the tensor cores read lo's top 10 bits.
// Masks, not cvt.rna (its SASS is a compare-and-select sequence; the kernel ran 15% slower with it).
__device__ __forceinline__ void tc32_split(float x, unsigned& h, unsigned& l) {
    h = __float_as_uint(x) & 0xffffe000u;
    l = __float_as_uint(x - __uint_as_float(h));
}

// c = A B: a tile's first product, so its sums need no zeroing
__device__ __forceinline__ void tc32_mma_set(float* c, const unsigned* a, unsigned b0, unsigned b1) {
    asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};\n"
                 : "=f"(c[0]), "=f"(c[1]), "=f"(c[2]), "=f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "f"(0.f));
}

// D = the product's sum v (+ bias[i]) (+ C), added as tc32_epilogue adds them. Kept this small: a GELU's slope here as
// well (cuBLASLt's DGELU) made the kernels' 64 unrolled stores long enough that every product ran 19-68% slower, GELU or
// not, and the GELU products twice as long as without it, slower than the product and the elementwise backward apart
// (H200, nn 1536 x 16384 x 384: 0.324 ms plain, 0.649 with the slopes; bench/results/2026-12-03-h200-s35; then the
// epilogue still loaded beside its stores, as session 36 found).
__device__ __forceinline__ void tc32_finish(float* d, const float* c, const float* bias, const GemmTc32P& p, int i, int j, float v) {
    i64 o = (i64) j * p.ldd + i;
    if (bias) v += bias[i];
    if (c) v += c[o];
    d[o] = v;
}
// The block's 64 sums a thread holds (ij(x, i, j) names the element of sum[x]) into D, or into the slice's partial sums
// when k is split. Every element of C and the bias is loaded before the first store: D may be C itself (a residual
// added in place), so no load may pass a store, and loaded beside each store the 64 loads' latencies added up (H200,
// 384 x 16384 x 384 with C: 0.143 ms against 0.083 without; bench/results/2026-12-03-h200-s36).
template <typename Ij>
__device__ __forceinline__ void tc32_epilogue(float* d, float* part, const float* c, const float* bias, const GemmTc32P& p,
                                              const float* sum, Ij ij) {
    if (gridDim.z > 1) {
#pragma unroll
        for (int x = 0; x < 64; x++) {
            int i, j;
            ij(x, i, j);
            if (i < p.m && j < p.n) part[((i64) blockIdx.z * p.n + j) * p.m + i] = sum[x];
        }
        return;
    }
    float cv[64], bv[64];
#pragma unroll
    for (int x = 0; x < 64; x++) {
        int i, j;
        ij(x, i, j);
        bool in = i < p.m && j < p.n;
        cv[x] = c && in ? c[(i64) j * p.ldd + i] : 0.f;
        bv[x] = bias && in ? bias[i] : 0.f;    // the same few rows again: the compiler loads each once
    }
#pragma unroll
    for (int x = 0; x < 64; x++) {
        int i, j;
        ij(x, i, j);
        if (i < p.m && j < p.n) {
            float v = sum[x];
            if (bias) v += bv[x];
            if (c) v += cv[x];
            d[(i64) j * p.ldd + i] = v;
        }
    }
}

template <bool A_K, bool B_K>
__device__ __forceinline__ void gemm_tc32_impl(float* d, const float* a, const float* b, const float* c, const float* bias,
                                               float* part, GemmTc32P p) {
    extern __shared__ __align__(16) float tc32_sh[];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    int wi = (warp & 1) * 64, wj = (warp >> 1) * 32;                    // the warp's corner in the block's tile
    int i0 = blockIdx.x * TC32_BM, j0 = blockIdx.y * TC32_BN;
    int kb = blockIdx.z * p.kslice, ke = min(p.k, kb + p.kslice);
    int tiles = (ke - kb + TC32_BK - 1) / TC32_BK;
    float acc[4][4][4], sum[4][4][4];
#pragma unroll
    for (int x = 0; x < 64; x++) { (&sum[0][0][0])[x] = 0.f; }
    Tc32Loads<A_K> la(a, p.lda, p.m, i0, kb);
    Tc32Loads<B_K> lb(b, p.ldb, p.n, j0, kb);
    const unsigned sh0 = mma_smem(tc32_sh), stage = 2 * TC32_TILE * sizeof(float), half = TC32_TILE * sizeof(float);
#pragma unroll
    for (int s = 0; s < TC32_STAGES - 1; s++) {
        if (s < tiles) {
            la.next(sh0 + s * stage, a, ke);
            lb.next(sh0 + s * stage + half, b, ke);
        }
        mma_commit();
    }
    for (int kt = 0; kt < tiles; kt++) {
        mma_wait<TC32_STAGES - 2>();
        __syncthreads();                          // tile kt landed for all; the stage loaded next was read by all
        int next = kt + TC32_STAGES - 1;
        if (next < tiles) {
            la.next(sh0 + (next % TC32_STAGES) * stage, a, ke);
            lb.next(sh0 + (next % TC32_STAGES) * stage + half, b, ke);
        }
        mma_commit();
        const float* sa = tc32_sh + (kt % TC32_STAGES) * 2 * TC32_TILE;
        const float* sb = sa + TC32_TILE;
#pragma unroll
        for (int ks = 0; ks < TC32_BK; ks += 8) {
            unsigned bh[4][2], bl[4][2];
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                float2 v = tc32_pair<B_K, TC32_BN>(sb, wj + nt * 8 + g, ks, t);
                tc32_split(v.x, bh[nt][0], bl[nt][0]);
                tc32_split(v.y, bh[nt][1], bl[nt][1]);
            }
            // one A fragment split at a time (the register budget: 64 sums and 64 tile sums beside the fragments)
#pragma unroll
            for (int mt = 0; mt < 4; mt++) {
                int r = wi + mt * 16 + g;
                float2 lo = tc32_pair<A_K, TC32_BM>(sa, r, ks, t), hi = tc32_pair<A_K, TC32_BM>(sa, r + 8, ks, t);
                unsigned ah[4], al[4];
                tc32_split(lo.x, ah[0], al[0]);
                tc32_split(hi.x, ah[1], al[1]);
                tc32_split(lo.y, ah[2], al[2]);
                tc32_split(hi.y, ah[3], al[3]);
#pragma unroll
                for (int nt = 0; nt < 4; nt++) {
                    if (ks == 0) tc32_mma_set(acc[mt][nt], al, bh[nt][0], bh[nt][1]);
                    else tc_mma1(acc[mt][nt], al, bh[nt][0], bh[nt][1]);
                    tc_mma1(acc[mt][nt], ah, bl[nt][0], bl[nt][1]);
                    tc_mma1(acc[mt][nt], ah, bh[nt][0], bh[nt][1]);
                }
            }
        }
#pragma unroll
        for (int x = 0; x < 64; x++) { (&sum[0][0][0])[x] += (&acc[0][0][0])[x]; }
    }
    mma_wait<0>();
    tc32_epilogue(d, part, c, bias, p, &sum[0][0][0], [&](int x, int& i, int& j) {   // x = (mt·4 + nt)·4 + e
        i = i0 + wi + (x >> 4) * 16 + g + ((x >> 1) & 1) * 8;
        j = j0 + wj + ((x >> 2) & 3) * 8 + t * 2 + (x & 1);
    });
}

// ==== The same products on Hopper's warpgroup tensor cores (wgmma, sm_90a): gemm_wg32, what MatmulCuda runs on sm_90.
// The same grid, 128 x 128 tiles of D, split k and epilogue as gemm_tc32; a block is two warpgroups, each 64 x 128 of
// the tile (one m64n128k8 product a k step and product kind). 32-deep k tiles move by cp.async three tiles ahead into
// four stages; B's landed tile is split once into hi and lo halves in shared memory, as wgmma reads B: K-major without
// swizzle, 8-row x 16-byte core matrices, element (j, k) at float (k / 4)·4·128 + 4·j + k % 4 (the descriptor's
// leading offset: the next 4 k, 2,048 bytes on; stride: the next 8 rows, 128 bytes on), while A's fragments are read
// and split in registers (a warp's own 16 rows, nothing split twice). The next tile's B is split while a tile's 12
// products run. H200, the GPT's shapes: 1.21-1.64x cuBLAS's float32 product (bench/results/2026-12-03-h200-s34; loading
// two tiles ahead 2-5% slower, A split in shared memory too 1.17-1.56x, without the overlap 1.08-1.39x), then with the
// epilogue's loads first and Tc32Loads 1.55-2.05x (bench/results/2026-12-03-h200-s36, where Nsight Compute's source
// counters of a plain product show the tensor pipe ~48% busy and 258 instructions a tile a warp, 95 of them the sums'
// and splits' adds). Splitting tile k + 1's A and crossing both barriers while tile k's products run (A's fragments in
// two register sets) was 1-5% faster on these shapes and 9% slower at 4096 (wg32-p2.diff there): not taken.
#define WG32_STAGES 4                   // raw tile stages, a power of two: loads run WG32_STAGES - 1 tiles ahead
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
__device__ __forceinline__ unsigned long long wg32_desc(const float* p, int rows) {
    return (unsigned long long) ((mma_smem(p) & 0x3FFFF) >> 4) | ((unsigned long long) (16 * rows >> 4) << 16)
            | ((unsigned long long) (128 >> 4) << 32);
}
// d (+)= A·B for a warpgroup, A's 64 x 8 from registers (mma.sync's A fragment of the warp's 16 rows), B from shared memory
__device__ __forceinline__ void wg32_mma_rs(float* d, const unsigned* a, unsigned long long b, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 {"
        "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"
        "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31,"
        "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"
        "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63},"
        " {%64, %65, %66, %67}, %68, p, 1, 1;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
          "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
          "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
          "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
          "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
          "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
          "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
}
// Keeps the compiler from moving the sums' registers across the asynchronous products
__device__ __forceinline__ void wg32_pin(float* d) {
#pragma unroll
    for (int x = 0; x < 64; x++) asm volatile("" : "+f"(d[x]) :: "memory");
}
// A raw tile (ROWS x 32, as Tc32Loads left it) into its hi and lo halves, wgmma's layout; 256 threads, a row and 16 k each
template <bool KC, int ROWS>
__device__ __forceinline__ void wg32_split(const float* raw, float* hi, float* lo) {
    int r = threadIdx.x % ROWS, k0 = threadIdx.x / ROWS * 16;
#pragma unroll
    for (int q = 0; q < 4; q++) {
        int k = k0 + q * 4;
        float x[4];
        if (KC) {
            float4 v = *reinterpret_cast<const float4*>(raw + r * TC32_KP + k);
            x[0] = v.x; x[1] = v.y; x[2] = v.z; x[3] = v.w;
        } else {
#pragma unroll
            for (int e = 0; e < 4; e++) x[e] = raw[(k + e) * (ROWS + 8) + r];
        }
        unsigned h[4], l[4];
#pragma unroll
        for (int e = 0; e < 4; e++) tc32_split(x[e], h[e], l[e]);
        int o = k / 4 * 4 * ROWS + 4 * r;
        *reinterpret_cast<uint4*>(hi + o) = make_uint4(h[0], h[1], h[2], h[3]);
        *reinterpret_cast<uint4*>(lo + o) = make_uint4(l[0], l[1], l[2], l[3]);
    }
}
#endif

template <bool A_K, bool B_K>
__device__ __forceinline__ void gemm_wg32_impl(float* d, const float* a, const float* b, const float* c, const float* bias,
                                               float* part, GemmTc32P p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    extern __shared__ __align__(128) float wg32_sh[];
    const int H = TC32_BN * TC32_BK;                                     // floats of one split half of B
    float* raw = wg32_sh + 4 * H;                                        // the raw stages after two split sets of B
    unsigned smem;                                                       // launched with less (MatmulCuda.WG32_SHARED): stop
    asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(smem));
    if (smem < (4 * H + WG32_STAGES * 2 * TC32_TILE) * sizeof(float)) __trap();
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3, wg = warp >> 2;
    int i0 = blockIdx.x * TC32_BM, j0 = blockIdx.y * TC32_BN;
    int kb = blockIdx.z * p.kslice, ke = min(p.k, kb + p.kslice);
    int tiles = (ke - kb + TC32_BK - 1) / TC32_BK;
    int ra = wg * 64 + (warp & 3) * 16 + g;                              // this thread's A rows: ra, ra + 8
    float acc[64], sum[64];
#pragma unroll
    for (int x = 0; x < 64; x++) { sum[x] = 0.f; acc[x] = 0.f; }
    Tc32Loads<A_K> la(a, p.lda, p.m, i0, kb);
    Tc32Loads<B_K> lb(b, p.ldb, p.n, j0, kb);
    const unsigned raw0 = mma_smem(raw), stage = 2 * TC32_TILE * sizeof(float), half = TC32_TILE * sizeof(float);
    const unsigned long long desc0 = wg32_desc(wg32_sh, TC32_BN);       // B's split set 0; the others by their offsets
#pragma unroll
    for (int s = 0; s < WG32_STAGES - 1; s++) {
        if (s < tiles) {
            la.next(raw0 + s * stage, a, ke);
            lb.next(raw0 + s * stage + half, b, ke);
        }
        mma_commit();
    }
    mma_wait<WG32_STAGES - 2>();
    __syncthreads();
    if (tiles > 0) wg32_split<B_K, TC32_BN>(raw + TC32_TILE, wg32_sh, wg32_sh + H);
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    for (int kt = 0; kt < tiles; kt++) {
        const float* sa = raw + (kt & (WG32_STAGES - 1)) * 2 * TC32_TILE;
        unsigned ah[4][4], al[4][4];
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            float2 lo = tc32_pair<A_K, TC32_BM>(sa, ra, ks * 8, t), hi = tc32_pair<A_K, TC32_BM>(sa, ra + 8, ks * 8, t);
            tc32_split(lo.x, ah[ks][0], al[ks][0]);
            tc32_split(hi.x, ah[ks][1], al[ks][1]);
            tc32_split(lo.y, ah[ks][2], al[ks][2]);
            tc32_split(hi.y, ah[ks][3], al[ks][3]);
        }
        // the descriptors' start address counts 16 bytes: a split set is 2·H floats on, a k step 8 rows of 128 floats
        const unsigned long long dset = desc0 + (kt & 1) * (2 * H * sizeof(float) / 16);
        wg32_pin(acc);
        asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
#pragma unroll
        for (int ks = 0; ks < 4; ks++) {
            unsigned long long dbh = dset + ks * (8 * TC32_BN * sizeof(float) / 16), dbl = dbh + H * sizeof(float) / 16;
            wg32_mma_rs(acc, al[ks], dbh, ks > 0);
            wg32_mma_rs(acc, ah[ks], dbl, 1);
            wg32_mma_rs(acc, ah[ks], dbh, 1);
        }
        asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
        if (kt + WG32_STAGES - 1 < tiles) {      // into the stage of tile kt - 1, read by all before the last barrier
            unsigned st = raw0 + ((kt + WG32_STAGES - 1) & (WG32_STAGES - 1)) * stage;
            la.next(st, a, ke);
            lb.next(st + half, b, ke);
        }
        mma_commit();
        mma_wait<WG32_STAGES - 2>();
        __syncthreads();                          // tile kt + 1 landed for all
        if (kt + 1 < tiles) wg32_split<B_K, TC32_BN>(raw + ((kt + 1) & (WG32_STAGES - 1)) * 2 * TC32_TILE + TC32_TILE, wg32_sh + ((kt + 1) & 1) * 2 * H,
                                                     wg32_sh + ((kt + 1) & 1) * 2 * H + H);
        asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
        asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
        wg32_pin(acc);
#pragma unroll
        for (int x = 0; x < 64; x++) sum[x] += acc[x];
        __syncthreads();
    }
    mma_wait<0>();
    tc32_epilogue(d, part, c, bias, p, sum, [&](int x, int& i, int& j) {   // x = nc·4 + e: m64n128's fragment
        i = i0 + wg * 64 + (warp & 3) * 16 + g + ((x >> 1) & 1) * 8;
        j = j0 + (x >> 2) * 8 + t * 2 + (x & 1);
    });
#else
    __trap();
#endif
}

// The four layouts of each: KIND tc32 (mma.sync) or wg32 (wgmma), NAME op(A) op(B) as cuBLAS spells them
#define GEMM_F32_TC(KIND, NAME, AK, BK) \
extern "C" __global__ void __launch_bounds__(TC32_THREADS, 1) gemm_##KIND##_##NAME(float* d, const float* a, \
        const float* b, const float* c, const float* bias, float* part, GemmTc32P p) { \
    gemm_##KIND##_impl<AK, BK>(d, a, b, c, bias, part, p); \
}
#define GEMM_F32_TC_LAYOUTS(KIND) GEMM_F32_TC(KIND, tn, true, true) GEMM_F32_TC(KIND, nn, false, true) \
    GEMM_F32_TC(KIND, nt, false, false) GEMM_F32_TC(KIND, tt, true, false)
GEMM_F32_TC_LAYOUTS(tc32)
GEMM_F32_TC_LAYOUTS(wg32)

// D = the slices' sums in order, finished as tc32_finish does: the split-k products' second pass, the same bits every run.
extern "C" __global__ void gemm_tc32_sum(float* d, const float* part, const float* c, const float* bias, GemmTc32P p, int slices) {
    i64 total = (i64) p.m * p.n;
    for (i64 e = blockIdx.x * (i64) blockDim.x + threadIdx.x; e < total; e += (i64) gridDim.x * blockDim.x) {
        int j = (int) (e / p.m), i = (int) (e - (i64) j * p.m);
        float v = part[e];
        for (int z = 1; z < slices; z++) v += part[z * total + e];
        tc32_finish(d, c, bias, p, i, j, v);
    }
}
