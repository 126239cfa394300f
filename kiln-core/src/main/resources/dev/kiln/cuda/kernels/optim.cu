// Fused optimizer steps over many tensors at once (multi-tensor apply): a launch takes a TensorList by value
// (up to MT_MAX tensors: their pointers and sizes, no device table to upload) and each block walks chunks of
// MT_CHUNK elements of one tensor. In place; PyTorch's formulas, as dev.kiln.cpu.OptimCpu (the reference).
// Arithmetic in float for float32, double for float64. Dynamic loss scaling (amp_*) decides on the device whether a
// step is skipped: flags and counts are float64 scalars the steps read, so an fp16 step captures as one CUDA graph.
#include "common.cuh"

#define MT_MAX 48
#define MT_CHUNK 4096

// Written by dev.kiln.cuda.Launch#tensorList: ptr[operand][k] (adam: p, g, m, v, skipped count; sgd: p, g, buf;
// amp_unscale: g), numel[k], and chunk_start, the prefix sum of each tensor's chunk count (chunk_start[count] is the total).
struct TensorList {
    u64 ptr[5][MT_MAX];
    i64 numel[MT_MAX];
    int chunk_start[MT_MAX + 1];
    int count;
};

// The tensor that chunk c belongs to (a short linear scan of at most MT_MAX ints) and its element range.
__device__ __forceinline__ int chunk_tensor(const TensorList& tl, int c, i64* lo, i64* hi) {
    int k = 0;
    while (c >= tl.chunk_start[k + 1]) k++;
    *lo = (i64) (c - tl.chunk_start[k]) * MT_CHUNK;
    *hi = min(*lo + (i64) MT_CHUNK, tl.numel[k]);
    return k;
}

// lr: the argument, or inside a CUDA graph the graph's live scalar (lr_live, set before each replay, so a scheduler's
// new rate needs no new capture). decay = 1 - lr*wd when decoupled (else 1); l2 = wd when not decoupled (else 0);
// step_size = lr / (1 - b1^t); inv_sqrt_bc2 = 1 / sqrt(1 - b2^t), computed here in double for step t. Eagerly
// t = step_base + 1; inside a CUDA graph (whose arguments are baked into every replay) replay points at the graph's
// replay counter and t = step_base + *replay. One formula for both, so an eager step and a replayed one update alike
// bit for bit (a resumed run's eager warm-up steps continue an uninterrupted graphed run exactly).
// skip (a loss scaler's found-inf flag, or null): not zero, nothing changes but each tensor's skipped count (ptr[4][k]),
// which is subtracted from t, so t stays the steps the tensor took. Counted by block 0 (a tensor may have no chunk);
// no block reads a count in a skipped step, so the write races with nothing.
#define ADAM(T, S) \
extern "C" __global__ void adam_step_##S(const TensorList tl, double beta1, double beta2, double eps, double weight_decay, \
                                         int decoupled, const u64* replay, const double* lr_live, double lr_arg, double step_base, \
                                         const double* skip) { \
    if (skip && *skip != 0) { \
        if (blockIdx.x == 0) for (int k = threadIdx.x; k < tl.count; k += blockDim.x) if (tl.ptr[4][k]) *(double*) tl.ptr[4][k] += 1; \
        return; \
    } \
    const double t0 = step_base + (replay ? (double) *replay : 1.0); \
    const double lr = lr_live ? *lr_live : lr_arg; \
    const double decay = decoupled ? 1 - lr * weight_decay : 1, l2 = decoupled ? 0 : weight_decay; \
    const T b1 = (T) beta1, b2 = (T) beta2, a1 = (T) (1 - beta1), a2 = (T) (1 - beta2), e = (T) eps; \
    const T dec = (T) decay, wd = (T) l2; \
    T st = 0, ib = 0; \
    int last = -1; \
    int chunks = tl.chunk_start[tl.count]; \
    for (int c = blockIdx.x; c < chunks; c += gridDim.x) { \
        i64 lo, hi; \
        int k = chunk_tensor(tl, c, &lo, &hi); \
        if (k != last) { \
            const double t = tl.ptr[4][k] ? t0 - *(const double*) tl.ptr[4][k] : t0; \
            st = (T) (lr / (1 - pow(beta1, t))); \
            ib = (T) (1 / sqrt(1 - pow(beta2, t))); \
            last = k; \
        } \
        T* p = (T*) tl.ptr[0][k]; const T* g = (const T*) tl.ptr[1][k]; T* m = (T*) tl.ptr[2][k]; T* v = (T*) tl.ptr[3][k]; \
        for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) { \
            T x = p[i]; \
            T gi = g[i] + wd * x; \
            T mi = b1 * m[i] + a1 * gi; \
            T vi = b2 * v[i] + a2 * gi * gi; \
            m[i] = mi; \
            v[i] = vi; \
            p[i] = x * dec - st * mi / (sqrt(vi) * ib + e); \
        } \
    } \
}

// g += wd*p; with a buffer: buf = first ? g : momentum*buf + damp*g, g = nesterov ? g + momentum*buf : buf; p -= lr*g.
// skip as for adam_step (SGD counts no steps).
#define SGD(T, S) \
extern "C" __global__ void sgd_step_##S(const TensorList tl, const double* lr_live, double lr, double momentum, double damp, \
                                        double weight_decay, int nesterov, int first, int has_buf, const double* skip) { \
    if (skip && *skip != 0) return; \
    const T l = (T) (lr_live ? *lr_live : lr), mo = (T) momentum, d = (T) damp, wd = (T) weight_decay; \
    int chunks = tl.chunk_start[tl.count]; \
    for (int c = blockIdx.x; c < chunks; c += gridDim.x) { \
        i64 lo, hi; \
        int k = chunk_tensor(tl, c, &lo, &hi); \
        T* p = (T*) tl.ptr[0][k]; const T* g = (const T*) tl.ptr[1][k]; T* buf = (T*) tl.ptr[2][k]; \
        for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) { \
            T gi = g[i] + wd * p[i]; \
            if (has_buf) { \
                T b = first ? gi : mo * buf[i] + d * gi; \
                buf[i] = b; \
                gi = nesterov ? gi + mo * b : b; \
            } \
            p[i] -= l * gi; \
        } \
    } \
}

// Dynamic loss scaling's unscale (PyTorch's _amp_foreach_non_finite_check_and_unscale_): g *= 1/scale, the factor
// rounded to T first as a float32 tensor times a double scalar is on the CPU; found_inf = 1 where an unscaled element
// is not finite (x - x is 0 exactly for finite x; every writer writes the same 1, so the race is benign).
#define UNSCALE(T, S) \
extern "C" __global__ void amp_unscale_##S(const TensorList tl, const double* scale, double* found_inf) { \
    const T inv = (T) (1.0 / *scale); \
    bool bad = false; \
    int chunks = tl.chunk_start[tl.count]; \
    for (int c = blockIdx.x; c < chunks; c += gridDim.x) { \
        i64 lo, hi; \
        int k = chunk_tensor(tl, c, &lo, &hi); \
        T* g = (T*) tl.ptr[0][k]; \
        for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) { \
            T v = g[i] * inv; \
            g[i] = v; \
            bad |= (v - v) != (T) 0; \
        } \
    } \
    if (bad) *found_inf = 1; \
}

#define OPTIM(T, S) ADAM(T, S) SGD(T, S) UNSCALE(T, S)
OPTIM(float, f32)
OPTIM(double, f64)

// Dynamic loss scaling's update (PyTorch's _amp_update_scale_), one thread: back off and count a skipped step after an
// overflow, grow after growth_interval clean steps; then clear the flag for the next step's unscale.
extern "C" __global__ void amp_update_scale(double* scale, double* clean_steps, double* skipped_steps, double* found_inf,
                                            double growth_factor, double backoff_factor, int growth_interval) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    if (*found_inf != 0) {
        *scale *= backoff_factor;
        *clean_steps = 0;
        *skipped_steps += 1;
    } else {
        double clean = *clean_steps + 1;
        if (clean == growth_interval) {
            *scale *= growth_factor;
            clean = 0;
        }
        *clean_steps = clean;
    }
    *found_inf = 0;
}
