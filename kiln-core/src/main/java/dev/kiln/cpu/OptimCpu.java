package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;

import java.util.List;

import static dev.kiln.cpu.CpuStorage.contiguousArray;

/**
 * The CPU kernels of the Optim family: the fused Adam and SGD steps (formulas in {@link dev.kiln.backend.Backend}),
 * one pass over each parameter in place instead of a chain of elementwise ops that each allocate a new array, and
 * dynamic loss scaling's unscale and scale update, whose flag and counts the steps read.
 * float32 runs in float (as the chain of float32 ops does), float64 in double.
 */
final class OptimCpu {
    private OptimCpu() {}

    static void adamStep(List<Tensor> params, List<Tensor> grads, List<Tensor> expAvg, List<Tensor> expAvgSq, double lr, double beta1,
                         double beta2, double eps, double wd, boolean decoupled, long step, Tensor skip, List<Tensor> skipped) {
        if (skip != null && scalar("adam_step", skip) != 0) {
            if (skipped != null) for (Tensor s : skipped) setScalar("adam_step", s, scalar("adam_step", s) + 1);
            return;
        }
        double decay = decoupled ? 1 - lr * wd : 1, l2 = decoupled ? 0 : wd;
        for (int k = 0; k < params.size(); k++) {
            Tensor p = params.get(k);
            DTypeChecks.requireFloat("adam_step", p.dtype());
            double t = step - (skipped == null ? 0 : scalar("adam_step", skipped.get(k)));   // the steps this parameter took
            double stepSize = lr / (1 - Math.pow(beta1, t)), invSqrtBc2 = 1 / Math.sqrt(1 - Math.pow(beta2, t));
            int n = (int) p.numel();
            int op = p.offset(), og = grads.get(k).offset(), om = expAvg.get(k).offset(), ov = expAvgSq.get(k).offset();
            Object pa = flatArray("adam_step", p, p), ga = flatArray("adam_step", grads.get(k), p);
            Object ma = flatArray("adam_step", expAvg.get(k), p), va = flatArray("adam_step", expAvgSq.get(k), p);
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
                        double wd, boolean nesterov, boolean first, Tensor skip) {
        if (skip != null && scalar("sgd_step", skip) != 0) return;
        for (int k = 0; k < params.size(); k++) {
            Tensor p = params.get(k);
            DTypeChecks.requireFloat("sgd_step", p.dtype());
            int n = (int) p.numel();
            int op = p.offset(), og = grads.get(k).offset(), ob = bufs == null ? 0 : bufs.get(k).offset();
            Object pa = flatArray("sgd_step", p, p), ga = flatArray("sgd_step", grads.get(k), p), ba = bufs == null ? null : flatArray("sgd_step", bufs.get(k), p);
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

    // ---------------------------------------------------------------- dynamic loss scaling

    static void ampUnscale(List<Tensor> grads, Tensor scale, Tensor foundInf) {
        double inv = 1.0 / scalar("amp_unscale", scale);
        boolean[] bad = new boolean[1];   // only ever set to true, by any range: no lost update can matter
        for (Tensor g : grads) {
            DTypeChecks.requireFloat("amp_unscale", g.dtype());
            int n = (int) g.numel(), o = g.offset();
            Object a = flatArray("amp_unscale", g, g);
            switch (g.dtype()) {
                case FLOAT32 -> Parallel.range(n, Parallel.GRAIN, (lo, hi) -> {
                    if (unscaleF32((float[]) a, o, lo, hi, (float) inv)) bad[0] = true;
                });
                case FLOAT64 -> Parallel.range(n, Parallel.GRAIN, (lo, hi) -> {
                    if (unscaleF64((double[]) a, o, lo, hi, inv)) bad[0] = true;
                });
                case BFLOAT16, FLOAT16, INT64, INT32, UINT8, BOOL -> throw new IllegalStateException("checked above");
            }
        }
        if (bad[0]) setScalar("amp_unscale", foundInf, 1);
    }

    /** g *= inv over [lo, hi); whether an unscaled element is not finite. */
    private static boolean unscaleF32(float[] g, int o, int lo, int hi, float inv) {
        boolean bad = false;
        for (int i = o + lo; i < o + hi; i++) {
            float v = g[i] * inv;
            g[i] = v;
            bad |= !Float.isFinite(v);
        }
        return bad;
    }

    private static boolean unscaleF64(double[] g, int o, int lo, int hi, double inv) {
        boolean bad = false;
        for (int i = o + lo; i < o + hi; i++) {
            double v = g[i] * inv;
            g[i] = v;
            bad |= !Double.isFinite(v);
        }
        return bad;
    }

    static void ampUpdateScale(Tensor scale, Tensor cleanSteps, Tensor skippedSteps, Tensor foundInf, double growthFactor,
                               double backoffFactor, int growthInterval) {
        String op = "amp_update_scale";
        if (scalar(op, foundInf) != 0) {
            setScalar(op, scale, scalar(op, scale) * backoffFactor);
            setScalar(op, cleanSteps, 0);
            setScalar(op, skippedSteps, scalar(op, skippedSteps) + 1);
        } else {
            double clean = scalar(op, cleanSteps) + 1;
            if (clean == growthInterval) {
                setScalar(op, scale, scalar(op, scale) * growthFactor);
                clean = 0;
            }
            setScalar(op, cleanSteps, clean);
        }
        setScalar(op, foundInf, 0);
    }

    /** The value of a one-element float64 tensor (a flag or a count the optimizer and the loss scaler keep). */
    private static double scalar(String op, Tensor t) {
        requireScalar(op, t);
        return ((double[]) contiguousArray(op, t))[t.offset()];
    }

    private static void setScalar(String op, Tensor t, double v) {
        requireScalar(op, t);
        ((double[]) contiguousArray(op, t))[t.offset()] = v;
    }

    private static void requireScalar(String op, Tensor t) {
        if (t.dtype() != DType.FLOAT64 || t.numel() != 1) {
            throw new IllegalArgumentException(op + ": flags and counts are one-element float64 tensors, got " + t.dtype() + " " + Shape.str(t.shape()));
        }
    }

    /**
     * t's array, run over flat from t's offset alongside its parameter p: t laid out as p, both contiguous or both
     * channels-last ({@link Tensor#sameDenseLayout}).
     */
    private static Object flatArray(String op, Tensor t, Tensor p) {
        if (!t.sameDenseLayout(p)) {   // which also holds p contiguous or channels-last
            throw new IllegalArgumentException(op + ": expected " + Shape.str(p.shape()) + " tensors laid out as their parameter (contiguous or "
                    + "channels-last), got strides " + java.util.Arrays.toString(t.strides()) + " for a parameter's " + java.util.Arrays.toString(p.strides()));
        }
        return CpuStorage.arrayOf(t);
    }
}
