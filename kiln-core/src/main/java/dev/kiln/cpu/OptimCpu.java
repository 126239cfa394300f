package dev.kiln.cpu;

import dev.kiln.Tensor;

import java.util.List;

import static dev.kiln.cpu.CpuStorage.contiguousArray;

/**
 * The CPU kernels of the Optim family: the fused Adam and SGD steps (formulas in {@link dev.kiln.backend.Backend}),
 * one pass over each parameter in place instead of a chain of elementwise ops that each allocate a new array.
 * float32 runs in float (as the chain of float32 ops does), float64 in double.
 */
final class OptimCpu {
    private OptimCpu() {}

    static void adamStep(List<Tensor> params, List<Tensor> grads, List<Tensor> expAvg, List<Tensor> expAvgSq, double lr, double beta1,
                         double beta2, double eps, double wd, boolean decoupled, long step) {
        double stepSize = lr / (1 - Math.pow(beta1, step)), invSqrtBc2 = 1 / Math.sqrt(1 - Math.pow(beta2, step));
        double decay = decoupled ? 1 - lr * wd : 1, l2 = decoupled ? 0 : wd;
        for (int k = 0; k < params.size(); k++) {
            Tensor p = params.get(k);
            DTypeChecks.requireFloat("adam_step", p.dtype());
            int n = (int) p.numel();
            int op = p.offset(), og = grads.get(k).offset(), om = expAvg.get(k).offset(), ov = expAvgSq.get(k).offset();
            Object pa = contiguousArray("adam_step", p), ga = contiguousArray("adam_step", grads.get(k));
            Object ma = contiguousArray("adam_step", expAvg.get(k)), va = contiguousArray("adam_step", expAvgSq.get(k));
            switch (p.dtype()) {
                case FLOAT32 -> Parallel.range(n, Parallel.GRAIN, (lo, hi) -> adamF32((float[]) pa, op, (float[]) ga, og, (float[]) ma, om, (float[]) va, ov,
                        lo, hi, (float) beta1, (float) beta2, (float) eps, (float) decay, (float) l2, (float) stepSize, (float) invSqrtBc2));
                case FLOAT64 -> Parallel.range(n, Parallel.GRAIN, (lo, hi) -> adamF64((double[]) pa, op, (double[]) ga, og, (double[]) ma, om, (double[]) va, ov,
                        lo, hi, beta1, beta2, eps, decay, l2, stepSize, invSqrtBc2));
                case BFLOAT16, FLOAT16, INT64, INT32, UINT8, BOOL -> throw new IllegalStateException("checked above");
            }
        }
    }

    private static void adamF32(float[] p, int op, float[] grad, int og, float[] m, int om, float[] v, int ov, int lo, int hi,
                                float b1, float b2, float eps, float decay, float l2, float stepSize, float invSqrtBc2) {
        float a1 = 1 - b1, a2 = 1 - b2;
        for (int i = lo; i < hi; i++) {
            float x = p[op + i];
            float g = grad[og + i] + l2 * x;
            float mi = b1 * m[om + i] + a1 * g;
            float vi = b2 * v[ov + i] + a2 * g * g;
            m[om + i] = mi;
            v[ov + i] = vi;
            p[op + i] = x * decay - stepSize * mi / ((float) Math.sqrt(vi) * invSqrtBc2 + eps);
        }
    }

    private static void adamF64(double[] p, int op, double[] grad, int og, double[] m, int om, double[] v, int ov, int lo, int hi,
                                double b1, double b2, double eps, double decay, double l2, double stepSize, double invSqrtBc2) {
        double a1 = 1 - b1, a2 = 1 - b2;
        for (int i = lo; i < hi; i++) {
            double x = p[op + i];
            double g = grad[og + i] + l2 * x;
            double mi = b1 * m[om + i] + a1 * g;
            double vi = b2 * v[ov + i] + a2 * g * g;
            m[om + i] = mi;
            v[ov + i] = vi;
            p[op + i] = x * decay - stepSize * mi / (Math.sqrt(vi) * invSqrtBc2 + eps);
        }
    }

    static void sgdStep(List<Tensor> params, List<Tensor> grads, List<Tensor> bufs, double lr, double momentum, double dampening,
                        double wd, boolean nesterov, boolean first) {
        for (int k = 0; k < params.size(); k++) {
            Tensor p = params.get(k);
            DTypeChecks.requireFloat("sgd_step", p.dtype());
            int n = (int) p.numel();
            int op = p.offset(), og = grads.get(k).offset(), ob = bufs == null ? 0 : bufs.get(k).offset();
            Object pa = contiguousArray("sgd_step", p), ga = contiguousArray("sgd_step", grads.get(k)), ba = bufs == null ? null : contiguousArray("sgd_step", bufs.get(k));
            switch (p.dtype()) {
                case FLOAT32 -> Parallel.range(n, Parallel.GRAIN, (lo, hi) -> sgdF32((float[]) pa, op, (float[]) ga, og, (float[]) ba, ob, lo, hi,
                        (float) lr, (float) momentum, (float) (1 - dampening), (float) wd, nesterov, first));
                case FLOAT64 -> Parallel.range(n, Parallel.GRAIN, (lo, hi) -> sgdF64((double[]) pa, op, (double[]) ga, og, (double[]) ba, ob, lo, hi,
                        lr, momentum, 1 - dampening, wd, nesterov, first));
                case BFLOAT16, FLOAT16, INT64, INT32, UINT8, BOOL -> throw new IllegalStateException("checked above");
            }
        }
    }

    private static void sgdF32(float[] p, int op, float[] grad, int og, float[] buf, int ob, int lo, int hi,
                               float lr, float momentum, float damp, float wd, boolean nesterov, boolean first) {
        for (int i = lo; i < hi; i++) {
            float g = grad[og + i] + wd * p[op + i];
            if (buf != null) {
                float b = first ? g : momentum * buf[ob + i] + damp * g;
                buf[ob + i] = b;
                g = nesterov ? g + momentum * b : b;
            }
            p[op + i] -= lr * g;
        }
    }

    private static void sgdF64(double[] p, int op, double[] grad, int og, double[] buf, int ob, int lo, int hi,
                               double lr, double momentum, double damp, double wd, boolean nesterov, boolean first) {
        for (int i = lo; i < hi; i++) {
            double g = grad[og + i] + wd * p[op + i];
            if (buf != null) {
                double b = first ? g : momentum * buf[ob + i] + damp * g;
                buf[ob + i] = b;
                g = nesterov ? g + momentum * b : b;
            }
            p[op + i] -= lr * g;
        }
    }
}
