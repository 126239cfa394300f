// Indexing: gather and its adjoint scatter_add, index_select and its adjoint index_add. The adds use atomicAdd
// (floats, doubles, int32, int64; 16-bit and byte types are widened on the host). Indices are int64; a bad index
// is recorded in err (see common.cuh) and its element skipped, and the host reports it at the next wait.
// Op codes in err: 1 gather, 2 scatter_add, 3 index_select, 4 index_add.
#include "common.cuh"
#include "op_codes.cuh"

__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int* p, int v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(i64* p, i64 v) { atomicAdd((u64*) p, (u64) v); }

__device__ __forceinline__ bool fix_index(i64& v, i64 size, u64* err, int op) {
    if (v < -size || v >= size) { report_index_error(err, v, size, op); return false; }
    if (v < 0) v += size;
    return true;
}

// g.shape: the index's shape; g.stride[0]: x's strides, [1]: index's strides. out is contiguous, index-shaped.
#define GATHER(T, S) \
extern "C" __global__ void gather_##S(T* out, const T* x, const i64* index, int dim, i64 size, i64 n, Geo g, u64* err) { \
    GRID_STRIDE(i, n) { \
        i64 rem = i, xo = 0, io = 0, iv = 0; \
        for (int d = g.rank - 1; d >= 0; d--) { \
            i64 p = rem % g.shape[d]; rem /= g.shape[d]; \
            io += p * g.stride[1][d]; \
            if (d != dim) xo += p * g.stride[0][d]; \
        } \
        iv = index[io]; \
        if (!fix_index(iv, size, err, INDEX_ERROR_GATHER)) continue; \
        out[i] = x[xo + iv * g.stride[0][dim]]; \
    } \
}
KILN_ALL_TYPES(GATHER)

// out (contiguous, zeroed) += src at the positions gather would read. g.shape: index's shape;
// g.stride[0]: out's contiguous strides, [1]: index's strides, [2]: src's strides.
#define SCATTER(T, S) \
extern "C" __global__ void scatter_add_##S(T* out, const i64* index, const T* src, int dim, i64 size, i64 n, Geo g, u64* err) { \
    GRID_STRIDE(i, n) { \
        i64 rem = i, oo = 0, io = 0, so = 0, iv; \
        for (int d = g.rank - 1; d >= 0; d--) { \
            i64 p = rem % g.shape[d]; rem /= g.shape[d]; \
            io += p * g.stride[1][d]; so += p * g.stride[2][d]; \
            if (d != dim) oo += p * g.stride[0][d]; \
        } \
        iv = index[io]; \
        if (!fix_index(iv, size, err, INDEX_ERROR_SCATTER_ADD)) continue; \
        atomic_add(out + oo + iv * g.stride[0][dim], src[so]); \
    } \
}
SCATTER(float, f32) SCATTER(double, f64) SCATTER(i64, i64) SCATTER(int, i32)

// out (contiguous, shaped like x but with k along dim) = x's slices at index (contiguous, k long).
// g.shape: out's shape; g.stride[0]: x's strides.
#define INDEX_SELECT(T, S) \
extern "C" __global__ void index_select_##S(T* out, const T* x, const i64* index, int dim, i64 size, i64 n, Geo g, u64* err) { \
    GRID_STRIDE(i, n) { \
        i64 rem = i, xo = 0, iv = 0; \
        for (int d = g.rank - 1; d >= 0; d--) { \
            i64 p = rem % g.shape[d]; rem /= g.shape[d]; \
            if (d == dim) iv = index[p]; else xo += p * g.stride[0][d]; \
        } \
        if (!fix_index(iv, size, err, INDEX_ERROR_INDEX_SELECT)) continue; \
        out[i] = x[xo + iv * g.stride[0][dim]]; \
    } \
}
KILN_ALL_TYPES(INDEX_SELECT)

// out (contiguous, zeroed) gets src's slices added at index along dim. g.shape: src's shape;
// g.stride[0]: out's contiguous strides, [1]: src's strides.
#define INDEX_ADD(T, S) \
extern "C" __global__ void index_add_##S(T* out, const i64* index, const T* src, int dim, i64 size, i64 n, Geo g, u64* err) { \
    GRID_STRIDE(i, n) { \
        i64 rem = i, oo = 0, so = 0, iv = 0; \
        for (int d = g.rank - 1; d >= 0; d--) { \
            i64 p = rem % g.shape[d]; rem /= g.shape[d]; \
            so += p * g.stride[1][d]; \
            if (d == dim) iv = index[p]; else oo += p * g.stride[0][d]; \
        } \
        if (!fix_index(iv, size, err, INDEX_ERROR_INDEX_ADD)) continue; \
        atomic_add(out + oo + iv * g.stride[0][dim], src[so]); \
    } \
}
INDEX_ADD(float, f32) INDEX_ADD(double, f64) INDEX_ADD(i64, i64) INDEX_ADD(int, i32)

// Windows of images (Backend.cropImages): out (N, C, oh, ow) and x (N, C, H, W) contiguous; boxes int32 (N, 3) =
// {top, left, mirror}: out[n, c, i, j] = x[n, c, top + i, left + (mirror ? ow - 1 - j : j)], zero outside the image.
#define CROP_IMAGES(T, S) \
extern "C" __global__ void crop_images_##S(T* out, const T* x, const int* boxes, i64 planes, i64 c, i64 h, i64 w, i64 oh, i64 ow) { \
    GRID_STRIDE(i, planes * oh * ow) { \
        i64 j = i % ow, r = i / ow, row = r % oh, plane = r / oh; \
        const int* b = boxes + (plane / c) * 3; \
        i64 y = b[0] + row, xx = b[1] + (b[2] ? ow - 1 - j : j); \
        out[i] = y >= 0 && y < h && xx >= 0 && xx < w ? x[(plane * h + y) * w + xx] : from_d<T>(0.0); \
    } \
}
KILN_FLOAT_TYPES(CROP_IMAGES)
