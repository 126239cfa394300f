// Standalone timing/accuracy harness for the float32 attention kernels: baseline (attention.cu) against variants.
#include "attention.cu"
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <vector>
#include <random>

#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); exit(1); } } while (0)

static int B = 64, H = 6, L = 256, DD = 64;

// float64 reference for one head: o, then dq, dk, dv from g
static void reference(const float* q, const float* k, const float* v, const float* g, int L, int d, double scale, std::vector<double>& dq,
                      std::vector<double>& dk, std::vector<double>& dv) {
    std::vector<double> p(L * L), dp(L * L), o(L * d, 0.0);
    for (int i = 0; i < L; i++) {
        double m = -1e300;
        for (int j = 0; j <= i; j++) { double s = 0; for (int c = 0; c < d; c++) s += (double) q[i * d + c] * k[j * d + c]; p[i * L + j] = s * scale; m = fmax(m, s * scale); }
        double z = 0;
        for (int j = 0; j <= i; j++) { p[i * L + j] = exp(p[i * L + j] - m); z += p[i * L + j]; }
        for (int j = 0; j <= i; j++) p[i * L + j] /= z;
        for (int j = i + 1; j < L; j++) p[i * L + j] = 0;
        for (int j = 0; j <= i; j++) for (int c = 0; c < d; c++) o[i * d + c] += p[i * L + j] * v[j * d + c];
    }
    dq.assign(L * d, 0); dk.assign(L * d, 0); dv.assign(L * d, 0);
    for (int i = 0; i < L; i++) {
        double delta = 0;
        for (int c = 0; c < d; c++) delta += (double) g[i * d + c] * o[i * d + c];
        for (int j = 0; j <= i; j++) {
            double dpij = 0;
            for (int c = 0; c < d; c++) dpij += (double) g[i * d + c] * v[j * d + c];
            double ds = p[i * L + j] * (dpij - delta);
            for (int c = 0; c < d; c++) {
                dv[j * d + c] += p[i * L + j] * g[i * d + c];
                dq[i * d + c] += scale * ds * k[j * d + c];
                dk[j * d + c] += scale * ds * q[i * d + c];
            }
        }
    }
}

struct Bufs { float *q, *k, *v, *g, *o, *lse, *delta, *acc, *dq, *dk, *dv; };

typedef void (*BwdFn)(float*, float*, float*, const float*, const float*, const float*, const float*, const float*, const float*,
                      const float*, int, int, int, int, int, int, int, int, double, ATT_GEO, i64, i64, i64, i64, i64, i64, i64, i64, i64,
                      i64, i64, i64, i64);
typedef void (*FwdFn)(float*, float*, const float*, const float*, const float*, const float*, int, int, int, int, int, int, int, int,
                      double, ATT_GEO, i64, i64, i64, i64, i64, i64, i64);

static void forward(FwdFn f, int smem, Bufs& b, int split) {
    i64 sb = (i64) H * L * DD, sh = (i64) L * DD, sl = DD;
    double scale = 1.0 / sqrt((double) DD);
    f<<<dim3(B * H, (L + 63) / 64), 128, smem>>>(b.o, b.lse, b.q, b.k, b.v, nullptr, H, L, L, DD, DD, 1, 1, split, scale,
        sb, sh, sl, sb, sh, sl, sb, sh, sl, sb, sh, sl, 0, 0, 0, 0);
}
static void backward(BwdFn f, int smem, Bufs& b, int split) {
    i64 sb = (i64) H * L * DD, sh = (i64) L * DD, sl = DD;
    double scale = 1.0 / sqrt((double) DD);
    i64 rows = (i64) B * H * L;
    attention_mma_delta_v_f32<<<(rows + 15) / 16, 128>>>(b.delta, b.acc, b.g, b.o, H, L, DD, DD, sb, sh, sl, sb, sh, sl, rows);
    f<<<dim3(B * H, (L + 63) / 64), 128, smem>>>(b.acc, b.dk, b.dv, b.g, b.q, b.k, b.v, b.lse, b.delta, nullptr, H, L, L, DD, DD, 1, 1, split,
        scale, sb, sh, sl, sb, sh, sl, sb, sh, sl, sb, sh, sl, sb, sh, sl, sb, sh, sl, 0, 0, 0, 0);
    i64 chunks = rows * DD / 4;
    attention_mma_dq_finish_v_f32<<<(int) std::min<i64>((chunks + 255) / 256, 132 * 8), 256>>>(b.dq, b.acc, H, L, DD, DD, scale, sb, sh, sl, chunks);
}

static float timeit(void (*body)(void*), void* arg, int iters) {
    cudaEvent_t a, z; cudaEventCreate(&a); cudaEventCreate(&z);
    for (int i = 0; i < 10; i++) body(arg);
    cudaEventRecord(a);
    for (int i = 0; i < iters; i++) body(arg);
    cudaEventRecord(z); CK(cudaEventSynchronize(z));
    float ms; cudaEventElapsedTime(&ms, a, z);
    return ms / iters;
}

struct Case { const char* name; FwdFn fwd; int fsmem; BwdFn bwd; int bsmem; };
static std::vector<Case> variant_cases() {
#ifdef NEW
    return {Case{"split-tiles", attention_mma_fwd_d64_f32, (int) sizeof(Tc32FwdShared<64>), attention_mma_bwd_d64_f32, (int) sizeof(Tc32BwdShared<64>)}};
#else
    return {Case{"baseline", attention_mma_fwd_d64_f32, 0, attention_mma_bwd_d64_f32, 0}};
#endif
}
static Bufs* gb; static Case* gc; static int gsplit;
static void runFwd(void*) { forward(gc->fwd, gc->fsmem, *gb, gsplit); }
static void runBwd(void*) { backward(gc->bwd, gc->bsmem, *gb, gsplit); }

int main(int argc, char** argv) {
    if (argc > 1) B = atoi(argv[1]);
    if (argc > 2) L = atoi(argv[2]);
    size_t n = (size_t) B * H * L * DD;
    std::vector<float> hq(n), hk(n), hv(n), hg(n);
    std::mt19937 rng(1234); std::normal_distribution<float> nd(0.f, 1.f);
    for (size_t i = 0; i < n; i++) { hq[i] = nd(rng); hk[i] = nd(rng); hv[i] = nd(rng); hg[i] = nd(rng); }
    Bufs b;
    float** all[] = {&b.q, &b.k, &b.v, &b.g, &b.o, &b.dq, &b.dk, &b.dv};
    for (auto p : all) CK(cudaMalloc(p, n * 4));
    CK(cudaMalloc(&b.lse, (size_t) B * H * L * 4)); CK(cudaMalloc(&b.delta, (size_t) B * H * L * 4)); CK(cudaMalloc(&b.acc, n * 4));
    CK(cudaMemcpy(b.q, hq.data(), n * 4, cudaMemcpyHostToDevice)); CK(cudaMemcpy(b.k, hk.data(), n * 4, cudaMemcpyHostToDevice));
    CK(cudaMemcpy(b.v, hv.data(), n * 4, cudaMemcpyHostToDevice)); CK(cudaMemcpy(b.g, hg.data(), n * 4, cudaMemcpyHostToDevice));
    std::vector<double> rdq, rdk, rdv;
    reference(hq.data(), hk.data(), hv.data(), hg.data(), L, DD, 1.0 / sqrt((double) DD), rdq, rdk, rdv);
    std::vector<Case> cases = variant_cases();
    for (auto& c : cases) {
        if (c.fsmem > 48 * 1024) CK(cudaFuncSetAttribute(c.fwd, cudaFuncAttributeMaxDynamicSharedMemorySize, c.fsmem));
        if (c.bsmem > 48 * 1024) CK(cudaFuncSetAttribute(c.bwd, cudaFuncAttributeMaxDynamicSharedMemorySize, c.bsmem));
        cudaFuncAttributes fa, ba; cudaFuncGetAttributes(&fa, c.fwd); cudaFuncGetAttributes(&ba, c.bwd);
        gb = &b; gc = &c;
        for (int split = 1; split >= 0; split--) {
            gsplit = split;
            CK(cudaMemset(b.dq, 0, n * 4)); CK(cudaMemset(b.dk, 0, n * 4)); CK(cudaMemset(b.dv, 0, n * 4));
            forward(c.fwd, c.fsmem, b, split); backward(c.bwd, c.bsmem, b, split); CK(cudaDeviceSynchronize());
            std::vector<float> o(n), dq(n), dk(n), dv(n);
            CK(cudaMemcpy(dq.data(), b.dq, n * 4, cudaMemcpyDeviceToHost)); CK(cudaMemcpy(dk.data(), b.dk, n * 4, cudaMemcpyDeviceToHost));
            CK(cudaMemcpy(dv.data(), b.dv, n * 4, cudaMemcpyDeviceToHost));
            double e[3] = {0, 0, 0}, m[3] = {0, 0, 0};
            std::vector<double>* r[3] = {&rdq, &rdk, &rdv};
            std::vector<float>* x[3] = {&dq, &dk, &dv};
            for (int t = 0; t < 3; t++) for (int i = 0; i < L * DD; i++) { e[t] = fmax(e[t], fabs((*x[t])[i] - (*r[t])[i])); m[t] = fmax(m[t], fabs((*r[t])[i])); }
            float tf = timeit(runFwd, nullptr, 50), tb = timeit(runBwd, nullptr, 50);
            printf("%-12s split %d  fwd %.4f ms  bwd(delta+kernel+finish) %.4f ms  regs f/b %d/%d  err dq %.2e dk %.2e dv %.2e (rel to max)\n",
                   c.name, split, tf, tb, fa.numRegs, ba.numRegs, e[0] / m[0], e[1] / m[1], e[2] / m[2]);
        }
    }
    return 0;
}
