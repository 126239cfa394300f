package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.HostArrays;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.CpuStorage.arrayOf;
import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernels of the Softmax family: softmax / log-softmax along a dimension and their gradient. The dimension
 * is moved innermost so each row is one contiguous pass, computed in double for every dtype but float32, whose rows
 * go through the Vector API.
 */
final class SoftmaxCpu {
    private SoftmaxCpu() {}

    static Tensor softmax(Tensor x, int dim, boolean log) {
        if (x.dim() == 0) return softmax(x.detach().reshape(1), 0, log).reshape();
        int[] perm = Shape.moveToEnd(x.dim(), dim);
        Tensor xp = rowMajor(x, perm);
        int n = x.shape()[dim], rows = (int) (x.numel() / Math.max(n, 1)), xo = xp.offset();
        Tensor yp = CpuStorage.unsetTensor(xp.shape(), x.dtype());
        Object a = arrayOf(xp), y = arrayOf(yp);
        DType t = x.dtype();
        Parallel.range(rows, Math.max(1, 2048 / Math.max(n, 1)), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                if (t == DType.FLOAT32) {
                    rowF32((float[]) a, xo + r * n, (float[]) y, r * n, n, log);
                    continue;
                }
                int i = xo + r * n, o = r * n;
                double mx = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < n; j++) mx = Math.max(mx, HostArrays.get(a, t, i + j));
                double s = 0;
                for (int j = 0; j < n; j++) s += Math.exp(HostArrays.get(a, t, i + j) - mx);
                double ls = Math.log(s);
                for (int j = 0; j < n; j++) {
                    double z = HostArrays.get(a, t, i + j) - mx;
                    HostArrays.set(y, t, o + j, log ? z - ls : Math.exp(z) / s);
                }
            }
        });
        return inOrder(yp, perm);
    }

    static Tensor softmaxBackward(Tensor gy, Tensor y, int dim, boolean log) {
        int[] perm = Shape.moveToEnd(y.dim(), dim);
        Tensor gp = rowMajor(gy, perm), yp = rowMajor(y, perm);
        int n = y.shape()[dim], rows = (int) (y.numel() / Math.max(n, 1)), go = gp.offset(), yo = yp.offset();
        Tensor out = CpuStorage.unsetTensor(gp.shape(), y.dtype());
        Object g = arrayOf(gp), yy = arrayOf(yp), o = arrayOf(out);
        DType t = y.dtype();
        Parallel.range(rows, Math.max(1, 2048 / Math.max(n, 1)), (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                int gi = go + r * n, yi = yo + r * n, b = r * n;
                if (t == DType.FLOAT32) {
                    rowBackwardF32((float[]) g, gi, (float[]) yy, yi, (float[]) o, b, n, log);
                    continue;
                }
                double s = 0;
                for (int j = 0; j < n; j++) s += log ? HostArrays.get(g, t, gi + j) : HostArrays.get(g, t, gi + j) * HostArrays.get(yy, t, yi + j);
                for (int j = 0; j < n; j++) {
                    double gj = HostArrays.get(g, t, gi + j), yj = HostArrays.get(yy, t, yi + j);
                    HostArrays.set(o, t, b + j, log ? gj - Math.exp(yj) * s : yj * (gj - s));
                }
            }
        });
        return inOrder(out, perm);
    }

    /** x with the softmax dim moved last, as rows of contiguous memory (x's own storage when it already is). */
    private static Tensor rowMajor(Tensor x, int[] perm) { return x.detach().permute(perm).contiguous(); }

    /** A result computed in moved order (contiguous) back in the original dim order, contiguous. */
    private static Tensor inOrder(Tensor y, int[] perm) { return y.permute(Shape.inversePermutation(perm)).contiguous(); }

    // ---- float32 rows in lanes: the maximum, exp(x - max) by ElementwiseCpu's exp (adds, multiplies and fmas only, so
    // compiled and interpreted code agree), sums in lane order in double (Lanes.sum); about 1e-7 relative from the
    // double path, and several times faster (4096 rows of 1024 on 2 cores: 45 ms before)

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /** Row x[i, i + n) into y[o, o + n). */
    private static void rowF32(float[] x, int i, float[] y, int o, int n, boolean log) {
        int vec = F.loopBound(n);
        FloatVector vm = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
        for (int j = 0; j < vec; j += F.length()) vm = vm.max(FloatVector.fromArray(F, x, i + j));   // NaN wins, as Math.max
        float mx = Lanes.max(vm);
        for (int j = vec; j < n; j++) mx = Math.max(mx, x[i + j]);
        FloatVector vmx = FloatVector.broadcast(F, mx), vs = FloatVector.zero(F);
        double tail = 0;
        for (int j = 0; j < vec; j += F.length()) {
            FloatVector e = ElementwiseCpu.exp(FloatVector.fromArray(F, x, i + j).sub(vmx));
            vs = vs.add(e);
            if (!log) e.intoArray(y, o + j);
        }
        for (int j = vec; j < n; j++) {
            float e = ElementwiseCpu.exp(x[i + j] - mx);
            tail += e;
            if (!log) y[o + j] = e;
        }
        double sum = Lanes.sum(vs) + tail;
        if (log) {   // (x - max) - log(sum): x - max is exact near the maximum, where the output is largest
            float ls = (float) Math.log(sum);
            FloatVector vls = FloatVector.broadcast(F, ls);
            for (int j = 0; j < vec; j += F.length()) FloatVector.fromArray(F, x, i + j).sub(vmx).sub(vls).intoArray(y, o + j);
            for (int j = vec; j < n; j++) y[o + j] = x[i + j] - mx - ls;
        } else {
            float inv = (float) (1 / sum);
            FloatVector vinv = FloatVector.broadcast(F, inv);
            for (int j = 0; j < vec; j += F.length()) FloatVector.fromArray(F, y, o + j).mul(vinv).intoArray(y, o + j);
            for (int j = vec; j < n; j++) y[o + j] *= inv;
        }
    }

    /** gx = y (g - sum(g y)) for softmax, g - exp(y) sum(g) for log_softmax: rows g[gi..], y[yi..] into gx[o..]. */
    private static void rowBackwardF32(float[] g, int gi, float[] y, int yi, float[] gx, int o, int n, boolean log) {
        int vec = F.loopBound(n);
        FloatVector vs = FloatVector.zero(F);
        double tail = 0;
        for (int j = 0; j < vec; j += F.length()) {
            FloatVector gv = FloatVector.fromArray(F, g, gi + j);
            vs = log ? vs.add(gv) : gv.fma(FloatVector.fromArray(F, y, yi + j), vs);
        }
        for (int j = vec; j < n; j++) tail += log ? g[gi + j] : (double) g[gi + j] * y[yi + j];
        float s = (float) (Lanes.sum(vs) + tail);
        FloatVector vsum = FloatVector.broadcast(F, s);
        for (int j = 0; j < vec; j += F.length()) {
            FloatVector gv = FloatVector.fromArray(F, g, gi + j), yv = FloatVector.fromArray(F, y, yi + j);
            (log ? gv.sub(ElementwiseCpu.exp(yv).mul(vsum)) : yv.mul(gv.sub(vsum))).intoArray(gx, o + j);
        }
        for (int j = vec; j < n; j++) gx[o + j] = log ? g[gi + j] - ElementwiseCpu.exp(y[yi + j]) * s : y[yi + j] * (g[gi + j] - s);
    }
}
