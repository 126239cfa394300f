package dev.kiln.cuda;

import dev.kiln.DType;

import java.util.Arrays;

/**
 * cuDNN's fused attention for one geometry: the forward and backward graphs cuDNN's frontend builds for scaled
 * dot-product attention (the same ops, so its flash-attention engines take them), each bound to a plan on first use.
 * Made and cached by {@link Cudnn#attention}; {@link Dnn#attention} runs it.
 *
 * <p>Tensors are (B, H, L, d) with any strides whose last is 1 (K and V (B, H, S, d)); the log-sum-exp of each query row
 * (natural log of the scaled scores, as Kiln's own kernels keep it) is (B, H, L) float32. No mask but causal, no
 * dropout: other calls take Kiln's kernels.
 */
final class AttentionPlan implements AutoCloseable {
    /** Geometry and the strides of every bound tensor (q, k, v, o, do, dq, dk, dv), four each. */
    record Key(DType dtype, int b, int h, int l, int s, int d, int dv, boolean causal, float scale, long[] strides) {
        @Override public boolean equals(Object o) {
            return o instanceof Key k && dtype == k.dtype && b == k.b && h == k.h && l == k.l && s == k.s && d == k.d && dv == k.dv
                    && causal == k.causal && scale == k.scale && Arrays.equals(strides, k.strides);
        }

        @Override public int hashCode() { return Arrays.hashCode(strides) * 31 + Arrays.hashCode(new Object[]{dtype, b, h, l, s, d, dv, causal, scale}); }

        long[] of(int tensor) { return Arrays.copyOfRange(strides, 4 * tensor, 4 * tensor + 4); }
    }

    private static final System.Logger LOG = dev.kiln.Logging.logger(AttentionPlan.class);

    static final int Q = 0, K = 1, V = 2, O = 3, DO = 4, DQ = 5, DK = 6, DV = 7;

    private final Key key;
    // [0] forward, [1] backward: the graph bound to a plan (built on first use), whether that failed, the bound uids
    private final CudnnGraph[] graphs = new CudnnGraph[2];
    private final boolean[] failed = new boolean[2];
    private final long[][] uids = new long[2][];
    /** Scratch the backward graph keeps in its workspace before cuDNN's own: dQ in float32, then rowsum(dO * O). */
    private long dqAccBytes, sumBytes;

    AttentionPlan(Key key) { this.key = key; }

    /** Why the last build failed (for tests and debug logs), or null. */
    static volatile String lastFailure;

    /**
     * Runs the forward (tensors q, k, v, o, lse) or the backward (q, k, v, o, do, dq, dk, dv, lse) on the handle's stream,
     * building its plan on first use. False, with nothing queued, when cuDNN has no engine for it.
     */
    boolean run(long handle, boolean forward, long[] tensors, WorkspaceProvider ws) {
        int i = forward ? 0 : 1;
        if (graphs[i] == null && !failed[i]) {
            graphs[i] = build(handle, forward);
            failed[i] = graphs[i] == null;
        }
        CudnnGraph g = graphs[i];
        if (g == null) return false;
        if (forward) {
            g.execute(handle, uids[i], tensors, g.workspaceBytes() == 0 ? 0 : ws.address(g.workspaceBytes()));
        } else {
            long w = ws.address(dqAccBytes + sumBytes + g.workspaceBytes());
            long[] all = java.util.Arrays.copyOf(tensors, tensors.length + 2);
            all[tensors.length] = w;                            // dQ's float32 sums
            all[tensors.length + 1] = w + dqAccBytes;           // rowsum(dO * O)
            g.execute(handle, uids[i], all, w + dqAccBytes + sumBytes);
        }
        return true;
    }

    private CudnnGraph build(long handle, boolean forward) {
        CudnnGraph g = new CudnnGraph();
        String why;
        try {
            uids[forward ? 0 : 1] = forward ? buildForward(g) : buildBackward(g);
            if (g.build(handle)) return g;
            why = "no engine: " + CudnnGraph.lastError();
        } catch (RuntimeException e) {
            why = e.getMessage();
        }
        lastFailure = (forward ? "forward " : "backward ") + describe() + ": " + why;
        LOG.log(System.Logger.Level.DEBUG, "cudnn: attention " + lastFailure);
        g.close();
        return null;
    }

    String describe() {
        return key.dtype + " B " + key.b + " H " + key.h + " L " + key.l + " S " + key.s + " d " + key.d + "/" + key.dv
                + (key.causal ? " causal" : "");
    }

    // ---- the graphs (cuDNN frontend's composite SDPA, without dropout, bias or padding)

    private long[] scoreDims() { return new long[]{key.b, key.h, key.l, key.s}; }

    private long[] scoreStrides() { return new long[]{(long) key.h * key.l * key.s, (long) key.l * key.s, key.s, 1}; }

    private long[] rowDims() { return new long[]{key.b, key.h, key.l, 1}; }

    private long[] rowStrides() { return new long[]{(long) key.h * key.l, key.l, 1, 1}; }

    private static long[] swapLast(long[] x) { return new long[]{x[0], x[1], x[3], x[2]}; }

    private CudnnGraph.Tensor io(CudnnGraph g, int tensor, int rows, int cols) {
        return g.tensor(Cudnn.dataType(key.dtype), new long[]{key.b, key.h, rows, cols}, key.of(tensor), false);
    }

    private CudnnGraph.Tensor scores(CudnnGraph g, int dataType) { return g.tensor(dataType, scoreDims(), scoreStrides(), true); }

    private CudnnGraph.Tensor rows(CudnnGraph g, boolean virtual) {
        return g.tensor(Cudnn.CUDNN_DATA_FLOAT, rowDims(), rowStrides(), virtual);
    }

    /** S = scale * Q K^T, with the upper triangle -inf when causal. */
    private CudnnGraph.Tensor scaledScores(CudnnGraph g, CudnnGraph.Tensor q, CudnnGraph.Tensor kT, CudnnGraph.Tensor scale) {
        int f = Cudnn.CUDNN_DATA_FLOAT;
        CudnnGraph.Tensor s = scores(g, f);
        g.matmul(q, kT, s);
        CudnnGraph.Tensor scaled = scores(g, f);
        g.pointwise(CudnnGraph.MUL, f, s, scale, null, scaled, 0);
        if (!key.causal) return scaled;
        CudnnGraph.Tensor row = scores(g, CudnnGraph.INT32), col = scores(g, CudnnGraph.INT32), keep = scores(g, CudnnGraph.BOOLEAN);
        g.pointwise(CudnnGraph.GEN_INDEX, f, scaled, null, null, row, 2);
        g.pointwise(CudnnGraph.GEN_INDEX, f, scaled, null, null, col, 3);
        g.pointwise(CudnnGraph.CMP_GE, CudnnGraph.BOOLEAN, row, col, null, keep, 0);
        CudnnGraph.Tensor masked = scores(g, f);
        g.pointwise(CudnnGraph.BINARY_SELECT, f, scaled, g.scalar(f, Double.NEGATIVE_INFINITY, 4), keep, masked, 0);
        return masked;
    }

    private long[] buildForward(CudnnGraph g) {
        int f = Cudnn.CUDNN_DATA_FLOAT;
        CudnnGraph.Tensor q = io(g, Q, key.l, key.d);
        CudnnGraph.Tensor kT = g.tensor(Cudnn.dataType(key.dtype), new long[]{key.b, key.h, key.d, key.s}, swapLast(key.of(K)), false);
        CudnnGraph.Tensor v = io(g, V, key.s, key.dv);
        CudnnGraph.Tensor o = io(g, O, key.l, key.dv);
        CudnnGraph.Tensor lse = rows(g, false);
        CudnnGraph.Tensor s = scaledScores(g, q, kT, g.scalar(f, key.scale, 4));
        // softmax with its statistics: max, exp(s - max), sum, lse = max + log(sum), p = exp / sum
        // (p in the inputs' 16-bit type: cuDNN takes the second product's A in the i/o type, as its frontend sets it)
        CudnnGraph.Tensor max = rows(g, true), sub = scores(g, f), exp = scores(g, f), sum = rows(g, true), log = rows(g, true);
        CudnnGraph.Tensor p = scores(g, Cudnn.dataType(key.dtype));
        g.reduction(CudnnGraph.MAX, s, max);
        g.pointwise(CudnnGraph.SUB, f, s, max, null, sub, 0);
        g.pointwise(CudnnGraph.EXP, f, sub, null, null, exp, 0);
        g.reduction(CudnnGraph.SUM, exp, sum);
        g.pointwise(CudnnGraph.LOG, f, sum, null, null, log, 0);
        g.pointwise(CudnnGraph.ADD, f, max, log, null, lse, 0);
        g.pointwise(CudnnGraph.DIV, f, exp, sum, null, p, 0);
        g.matmul(p, v, o);
        return new long[]{q.uid(), kT.uid(), v.uid(), o.uid(), lse.uid()};
    }

    private long[] buildBackward(CudnnGraph g) {
        int f = Cudnn.CUDNN_DATA_FLOAT, t = Cudnn.dataType(key.dtype);
        CudnnGraph.Tensor q = io(g, Q, key.l, key.d);
        CudnnGraph.Tensor kT = g.tensor(t, new long[]{key.b, key.h, key.d, key.s}, swapLast(key.of(K)), false);
        CudnnGraph.Tensor vT = g.tensor(t, new long[]{key.b, key.h, key.dv, key.s}, swapLast(key.of(V)), false);
        CudnnGraph.Tensor o = io(g, O, key.l, key.dv), dO = io(g, DO, key.l, key.dv);
        CudnnGraph.Tensor dq = io(g, DQ, key.l, key.d), dk = io(g, DK, key.s, key.d), dv = io(g, DV, key.s, key.dv);
        CudnnGraph.Tensor lse = rows(g, false);
        CudnnGraph.Tensor scale = g.scalar(f, key.scale, 4);
        // rowsum(dO * O), kept in the workspace
        CudnnGraph.Tensor prod = g.tensor(f, new long[]{key.b, key.h, key.l, key.dv},
                new long[]{(long) key.h * key.l * key.dv, (long) key.l * key.dv, (long) key.h * key.dv, 1}, true);
        CudnnGraph.Tensor rowSum = rows(g, true), softmaxSum = rows(g, false);
        g.pointwise(CudnnGraph.MUL, f, dO, o, null, prod, 0);
        g.reduction(CudnnGraph.SUM, prod, rowSum);
        g.pointwise(CudnnGraph.MUL, f, rowSum, g.scalar(f, 1, 4), null, softmaxSum, 0);
        // P = exp(S - lse); dV = P^T dO
        CudnnGraph.Tensor s = scaledScores(g, q, kT, scale);
        CudnnGraph.Tensor centred = scores(g, f), p = scores(g, f);
        g.pointwise(CudnnGraph.SUB, f, s, lse, null, centred, 0);
        g.pointwise(CudnnGraph.EXP, f, centred, null, null, p, 0);
        long[] tDims = {key.b, key.h, key.s, key.l}, tStrides = {(long) key.h * key.l * key.s, (long) key.l * key.s, 1, key.s};
        CudnnGraph.Tensor pT = g.tensor(t, tDims, tStrides, true);
        g.reshape(p, pT);
        g.matmul(pT, dO, dv);
        // dS = P (dO V^T - rowsum) scale; dK = dS^T Q; dQ = dS K (accumulated in float32, then cast)
        CudnnGraph.Tensor dp = scores(g, f), dpc = scores(g, f), ds0 = scores(g, f), ds = scores(g, f);
        g.matmul(dO, vT, dp);
        g.pointwise(CudnnGraph.SUB, f, dp, softmaxSum, null, dpc, 0);
        g.pointwise(CudnnGraph.MUL, f, dpc, p, null, ds0, 0);
        g.pointwise(CudnnGraph.MUL, f, ds0, scale, null, ds, 0);
        CudnnGraph.Tensor dsT = g.tensor(t, tDims, tStrides, true);
        g.reshape(ds, dsT);
        g.matmul(dsT, q, dk);
        CudnnGraph.Tensor k = g.tensor(t, new long[]{key.b, key.h, key.s, key.d}, key.of(K), true);
        g.reshape(kT, k);
        CudnnGraph.Tensor dqAcc = g.tensor(f, new long[]{key.b, key.h, key.l, key.d},
                new long[]{(long) key.h * key.l * key.d, (long) key.l * key.d, key.d, 1}, false);
        g.matmul(ds, k, dqAcc);
        g.pointwise(CudnnGraph.IDENTITY, f, dqAcc, null, null, dq, 0);
        dqAccBytes = align(4L * key.b * key.h * key.l * key.d);
        sumBytes = align(4L * key.b * key.h * key.l);
        return new long[]{q.uid(), kT.uid(), vT.uid(), o.uid(), dO.uid(), dq.uid(), dk.uid(), dv.uid(), lse.uid(), dqAcc.uid(), softmaxSum.uid()};
    }

    private static long align(long bytes) { return (bytes + 255) / 256 * 256; }

    @Override public void close() {
        for (int i = 0; i < 2; i++) {
            if (graphs[i] != null) graphs[i].close();
            graphs[i] = null;
        }
    }
}
