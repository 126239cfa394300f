package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.function.DoubleSupplier;

/**
 * Fused multi-tensor Adam and SGD steps on CUDA (optim.cu): up to Launch.LIST_MAX tensors per launch; and dynamic loss
 * scaling's unscale and scale update, whose flag the steps read on the device.
 */
final class OptimCuda extends CudaFamily {
    private final Kernels.Table adamStep, sgdStep, ampUnscale;
    private final Kernels.Single ampUpdateScale;

    OptimCuda(CudaBackend backend) {
        super(backend);
        adamStep = new Kernels.Table(dev, "optim.cu", "adam_step");
        sgdStep = new Kernels.Table(dev, "optim.cu", "sgd_step");
        ampUnscale = new Kernels.Table(dev, "optim.cu", "amp_unscale");
        ampUpdateScale = new Kernels.Single(dev, "optim.cu", "amp_update_scale");
    }

    /** Chunk of a multi-tensor launch, in elements: MT_CHUNK of optim.cu. */
    private static final int LIST_CHUNK = 4096;

    /**
     * The pointers, sizes and chunk prefix sums of a multi-tensor step: operands[op].get(k) is operand op of
     * parameter k (null lists stay null pointers). Checks one float dtype, matching sizes, contiguity and device.
     */
    private record TensorLists(long[][] ptrs, long[] numel, int[] chunkStart, DType dtype) {}

    private TensorLists tensorLists(String op, List<Tensor> params, List<Tensor> a, List<Tensor> b, List<Tensor> c) {
        int n = params.size();
        DType dt = n == 0 ? DType.FLOAT32 : params.get(0).dtype();
        requireFloat(op, dt);
        List<List<Tensor>> operands = Arrays.asList(params, a, b, c);   // c (and b, a) may be null
        long[][] ptrs = new long[Launch.LIST_OPERANDS][];
        long[] numel = new long[n];
        int[] chunkStart = new int[n + 1];
        for (int o = 0; o < 4; o++) {
            List<Tensor> list = operands.get(o);
            if (list == null) continue;
            if (list.size() != n) throw new IllegalArgumentException(op + ": " + n + " parameters but " + list.size() + " tensors in operand " + o);
            ptrs[o] = new long[n];
            for (int k = 0; k < n; k++) {
                Tensor t = list.get(k), p = params.get(k);
                // the kernels run flat over each tensor from its first element: every operand laid out as its
                // parameter, both contiguous or both channels-last (sameDenseLayout)
                boolean flat = t.sameDenseLayout(p);
                if (t.dtype() != dt || t.numel() != p.numel() || !flat) {
                    throw new IllegalArgumentException(op + ": tensor " + k + " of operand " + o + " is " + t.dtype() + " " + Shape.str(t.shape())
                            + (flat ? "" : " (laid out otherwise)") + ", expected " + dt + " " + Shape.str(p.shape()) + " laid out as its parameter");
                }
                ptrs[o][k] = ptr(t);
            }
        }
        for (int k = 0; k < n; k++) {
            numel[k] = params.get(k).numel();
            chunkStart[k + 1] = Math.toIntExact(chunkStart[k] + (numel[k] + LIST_CHUNK - 1) / LIST_CHUNK);
        }
        return new TensorLists(ptrs, numel, chunkStart, dt);
    }

    /** Blocks for a launch over chunks [from, from + count) of the lists: one per chunk, at most 16 per SM. */
    private int listGrid(TensorLists l, int from, int count) {
        return Math.max(1, Math.min(l.chunkStart()[from + count] - l.chunkStart()[from], dev.multiprocessorCount() * 16));
    }

    void adamStep(List<Tensor> params, List<Tensor> grads, List<Tensor> expAvg, List<Tensor> expAvgSq, DoubleSupplier lr,
                                   double beta1, double beta2, double eps, double weightDecay, boolean decoupled, long step, Tensor skip,
                                   List<Tensor> skipped) {
        TensorLists l = tensorLists("adam_step", params, grads, expAvg, expAvgSq);
        if (skipped != null) l.ptrs()[4] = scalarPtrs("adam_step", skipped, params.size());
        // the kernel computes the bias corrections for t = (step - 1) + 1, or inside a capture (step - 1) + replays so far,
        // and inside a capture reads the learning rate from the graph's live scalar
        long replay = dev.replayCounter(), lrLive = dev.liveScalar(lr), skipFlag = skip == null ? 0 : scalarPtr("adam_step", skip);
        Kernels.Fn fn = adamStep.get(l.dtype());
        for (int from = 0; from < params.size(); from += Launch.LIST_MAX) {
            int count = Math.min(Launch.LIST_MAX, params.size() - from);
            Launch.args().tensorList(l.ptrs(), l.numel(), l.chunkStart(), from, count)
                    .f64(beta1).f64(beta2).f64(eps).f64(weightDecay).i32(decoupled ? 1 : 0)
                    .ptr(replay).ptr(lrLive).f64(lr.getAsDouble()).f64(step - 1).ptr(skipFlag)
                    .go(dev, fn, listGrid(l, from, count), BLOCK);
        }
    }

    void sgdStep(List<Tensor> params, List<Tensor> grads, List<Tensor> momentumBufs, DoubleSupplier lr, double momentum,
                                  double dampening, double weightDecay, boolean nesterov, boolean first, Tensor skip) {
        TensorLists l = tensorLists("sgd_step", params, grads, momentumBufs, null);
        long lrLive = dev.liveScalar(lr), skipFlag = skip == null ? 0 : scalarPtr("sgd_step", skip);
        Kernels.Fn fn = sgdStep.get(l.dtype());
        for (int from = 0; from < params.size(); from += Launch.LIST_MAX) {
            int count = Math.min(Launch.LIST_MAX, params.size() - from);
            Launch.args().tensorList(l.ptrs(), l.numel(), l.chunkStart(), from, count)
                    .ptr(lrLive).f64(lr.getAsDouble()).f64(momentum).f64(1 - dampening).f64(weightDecay)
                    .i32(nesterov ? 1 : 0).i32(first ? 1 : 0).i32(momentumBufs != null ? 1 : 0).ptr(skipFlag)
                    .go(dev, fn, listGrid(l, from, count), BLOCK);
        }
    }

    void ampUnscale(List<Tensor> grads, Tensor scale, Tensor foundInf) {
        long scalePtr = scalarPtr("amp_unscale", scale), foundPtr = scalarPtr("amp_unscale", foundInf);
        if (grads.isEmpty()) return;
        TensorLists l = tensorLists("amp_unscale", grads, null, null, null);
        Kernels.Fn fn = ampUnscale.get(l.dtype());
        for (int from = 0; from < grads.size(); from += Launch.LIST_MAX) {
            int count = Math.min(Launch.LIST_MAX, grads.size() - from);
            Launch.args().tensorList(l.ptrs(), l.numel(), l.chunkStart(), from, count).ptr(scalePtr).ptr(foundPtr)
                    .go(dev, fn, listGrid(l, from, count), BLOCK);
        }
    }

    void ampUpdateScale(Tensor scale, Tensor cleanSteps, Tensor skippedSteps, Tensor foundInf, double growthFactor, double backoffFactor,
                        int growthInterval) {
        String op = "amp_update_scale";
        Launch.args().ptr(scalarPtr(op, scale)).ptr(scalarPtr(op, cleanSteps)).ptr(scalarPtr(op, skippedSteps)).ptr(scalarPtr(op, foundInf))
                .f64(growthFactor).f64(backoffFactor).i32(growthInterval)
                .go(dev, ampUpdateScale.get(), 1, 32);
    }

    /** The device pointer of a flag or count: a one-element float64 tensor on this device. */
    private long scalarPtr(String op, Tensor t) {
        if (t.dtype() != DType.FLOAT64 || t.numel() != 1 || !t.device().equals(backend.device())) {
            throw new IllegalArgumentException(op + ": flags and counts are one-element float64 tensors on " + backend.device() + ", got "
                    + t.dtype() + " " + Shape.str(t.shape()) + " on " + t.device());
        }
        return ptr(t);
    }

    private long[] scalarPtrs(String op, List<Tensor> ts, int n) {
        if (ts.size() != n) throw new IllegalArgumentException(op + ": " + n + " parameters but " + ts.size() + " skipped counts");
        long[] out = new long[n];
        for (int k = 0; k < n; k++) out[k] = scalarPtr(op, ts.get(k));
        return out;
    }
}
