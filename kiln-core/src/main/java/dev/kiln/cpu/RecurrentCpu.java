package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.Backend;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import static dev.kiln.cpu.CpuStorage.newTensor;

/**
 * The CPU kernels of the Recurrent family: the LSTM and GRU cells and their backward passes, one element of (B, H) at
 * a time, computed in double (the reference the CUDA kernels are checked against). 16-bit tensors go through float32
 * copies and are rounded once on the way out, as the CUDA kernels do. The float32 cells run in vector lanes instead
 * ({@link #lanes}): the double loop's Math.exp and Math.tanh, five an LSTM element, were most of the cell's time.
 * The layers' step products (h·W_hhᵀ each step) run on {@link Sgemm} with the weight packed once ({@link #stepProducts});
 * an LSTM's step is the product and the cell in one parallel loop ({@link #lstmSteps}).
 */
final class RecurrentCpu {
    private RecurrentCpu() {}

    private static FloatValues values(Tensor t) { return FloatValues.of(t, "recurrent cell"); }

    /**
     * {@link Backend#stepProducts} for a float32 B (K, N): B packed once, then each step's h·B on all
     * threads, split by B's columns so that each thread multiplies the same slice of the packed B on every step (the team
     * of {@link Parallel} gives chunk i to the same thread each time: the slice stays in its core's cache).
     */
    static java.util.function.BinaryOperator<Tensor> stepProducts(Tensor b) {
        Sgemm e = Sgemm.PREFERRED;
        int k = b.shape()[0], n = b.shape()[1];
        float[] packed = packedWhole(e, b);
        return (h, addend) -> {
            int m = h.shape()[0];
            int[] sh = h.strides();
            Tensor out = CpuStorage.unsetTensor(new int[]{m, n}, DType.FLOAT32);
            if (addend != null) ElementwiseCpu.copy(out, addend);
            e.packedB(m, n, k, new Sgemm.Mat((float[]) CpuStorage.arrayOf(h), h.offset(), sh[0], sh[1]), packed, (float[]) CpuStorage.arrayOf(out), 0, n, addend != null);
            return out;
        };
    }

    /**
     * length floats from a new tensor of the step's memory: a kept array (FloatArrays), not a new one each sequence;
     * unset (the caller writes all of it) or zeroed.
     */
    private static float[] kept(int length, boolean zeroed) {
        int[] shape = {length};
        return (float[]) CpuStorage.arrayOf(zeroed ? newTensor(shape, DType.FLOAT32) : CpuStorage.unsetTensor(shape, DType.FLOAT32));
    }

    /** B (K, N), any strides, packed whole into the GEMM's panels ({@link Sgemm#packAllB}) in a kept array. */
    private static float[] packedWhole(Sgemm e, Tensor b) {
        int k = b.shape()[0], n = b.shape()[1];
        int[] sb = b.strides();
        float[] packed = kept(Sgemm.packedLength(n, k, e.NR), false);
        e.packAllB(new Sgemm.Mat((float[]) CpuStorage.arrayOf(b), b.offset(), sb[0], sb[1]), k, n, packed);
        return packed;
    }

    /**
     * {@link Backend#lstmSteps} for float32: each step one parallel loop whose tasks each take a block of
     * rows and of hidden units (whole panels of the GEMM, so that each task's product is one run over packed columns):
     * the product for the block's four gates, started from the step's projection (W_hhᵀ packed once, each block's four
     * gate columns side by side), then the cell, on gates in the task's own scratch; backward, dh for the block's units
     * (the later step's dGates by W_hh, packed once as it is) and then the cell's backward. The team gives task i to
     * the same thread every step, so a block's slice of W_hh stays in that core's cache. Each step also writes its h
     * (backward: its dGates) in the GEMM's packed layout for the next step's product, so no thread packs the whole of
     * A again on every step (backward's 64 x 2048 dGates were 512 KB a thread a step). Each element is summed as on
     * the composed path (the same GEMM from the addend, the same lanes), so the results are the same. Tensors that are
     * not float32 rows of unit stride (or outputs not contiguous) take the composed path.
     */
    static Backend.LstmSteps lstmSteps(Tensor wHh, Backend.LstmSteps composed) {
        return new FusedLstm(wHh, composed);
    }

    private static final class FusedLstm implements Backend.LstmSteps {
        private final Sgemm e = Sgemm.PREFERRED;
        private final Tensor w;
        private final Backend.LstmSteps composed;
        private final int hid, units;
        private float[] gateColumns, asIs;   // W_hhᵀ by blocks' gates, W_hh: packed on first use (kept arrays of the step)
        private final Packed packedH = new Packed(), packedGates = new Packed();   // h and dGates in A's packed layout, step to step

        FusedLstm(Tensor w, Backend.LstmSteps composed) {
            this.w = w;
            this.composed = composed;
            hid = w.shape()[1];
            units = Math.min(Parallel.THREADS, (hid + e.NR - 1) / e.NR);
        }

        private int u0(int p) { return Sgemm.split(hid, units, p, e.NR); }

        /** Blocks of rows per block of units: the threads the unit blocks leave, at most one a kernel's tile of rows. */
        private int rowBlocks(int m) { return Math.max(1, Math.min(Parallel.THREADS / units, (m + e.MR - 1) / e.MR)); }

        /** One task's block: rows [r0, r0 + rows), hidden units [u0, u0 + n). */
        private interface Block { void run(int r0, int rows, int u0, int n); }

        /** Each block of units and rows of a step of m rows, a task each, on all threads. */
        private void eachBlock(int m, Block body) {
            int rowBlocks = rowBlocks(m);
            Parallel.range(units * rowBlocks, 1, (lo, hi) -> {
                for (int task = lo; task < hi; task++) {
                    int p = task % units, r0 = Sgemm.split(m, rowBlocks, task / units, e.MR), u0 = u0(p);
                    body.run(r0, Sgemm.split(m, rowBlocks, task / units + 1, e.MR) - r0, u0, u0(p + 1) - u0);
                }
            });
        }

        /** Columns of {@link #gateColumns}: each block's four gates, each padded to whole panels. */
        private int width() { return 4 * u0(units - 1) + 4 * Sgemm.roundUp(hid - u0(units - 1), e.NR); }

        /**
         * W_hhᵀ (H, 4H) packed whole, block p's gates i, f, g, o at packed columns 4·u0(p) + gate·(its width in panels);
         * kept in the bound {@link WeightCache} if there is one (text generation runs a sequence of one step a token:
         * packing took half its time).
         */
        private float[] gateColumns() {
            if (gateColumns != null) return gateColumns;
            int[] st = w.strides();
            float[] wa = (float[]) CpuStorage.arrayOf(w);
            WeightCache cache = WeightCache.active();
            gateColumns = cache == null ? packGateColumns(wa, st, kept(width() * hid, false))
                    : cache.get(wa, new WeightCache.Key(w.offset(), 4 * hid, hid, java.util.List.of(e, "lstm gate columns", units, st[0], st[1])),
                            () -> packGateColumns(wa, st, new float[width() * hid]));
            return gateColumns;
        }

        private float[] packGateColumns(float[] wa, int[] st, float[] dst) {
            Sgemm.Mat wt = new Sgemm.Mat(wa, w.offset(), st[1], st[0]);
            int width = width();
            for (int pc = 0; pc < hid; pc += e.KC) {
                int kc = Math.min(e.KC, hid - pc);
                for (int p = 0; p < units; p++) {
                    int u0 = u0(p), n = u0(p + 1) - u0, wp = Sgemm.roundUp(n, e.NR);
                    for (int g = 0; g < 4; g++) e.packB(wt, pc, g * hid + u0, kc, n, dst, pc * width + (4 * u0 + g * wp) * kc);
                }
            }
            return dst;
        }

        private float[] asIs() { return asIs != null ? asIs : (asIs = packedWhole(e, w)); }

        @Override public void forward(Tensor h, Tensor xGates, Tensor c, Tensor hNew, Tensor cNew, Tensor act) {
            if (!(hid % F.length() == 0 && rows(h) && rows(xGates) && rows(c) && out(hNew) && out(cNew) && out(act))) {
                composed.forward(h, xGates, c, hNew, cNew, act);
                return;
            }
            float[] pb = gateColumns();
            int m = h.shape()[0], width = width();
            int mPad = Sgemm.roundUp(m, e.MR);
            Sgemm.Mat x = mat(xGates), cm = mat(c);
            float[] pa = packedH.of(e, h, hid), next = packedH.next(mPad * hid);
            float[] hn = (float[]) CpuStorage.arrayOf(hNew), cn = (float[]) CpuStorage.arrayOf(cNew), ac = (float[]) CpuStorage.arrayOf(act);
            eachBlock(m, (r0, rows, u0, n) -> {
                int wp = Sgemm.roundUp(n, e.NR), ld = 4 * wp;
                float[] s = scratch(rows * ld);
                for (int b = 0; b < rows; b++) {   // the step's projection first: the product adds to it
                    for (int g = 0; g < 4; g++) System.arraycopy(x.data(), x.off() + (r0 + b) * x.rs() + g * hid + u0, s, b * ld + g * wp, n);
                }
                e.packedBoth(rows, ld, hid, pa, mPad, r0, pb, width, 4 * u0, s, 0, ld, true, e.localScratch().tile);
                for (int b = 0; b < rows; b++) lstmGates(s, b * ld, wp, ac, act.offset() + (r0 + b) * 4 * hid + u0, hid, n);
            });
            // the state in a loop of its own, the same blocks (see ElementwiseCpu.sigmoid)
            eachBlock(m, (r0, rows, u0, n) -> {
                for (int b = 0; b < rows; b++) {
                    int row = r0 + b;
                    lstmState(ac, act.offset() + row * 4 * hid + u0, hid, cm.data(), cm.off() + row * cm.rs() + u0, hn, hNew.offset() + row * hid + u0,
                            cn, cNew.offset() + row * hid + u0, n);
                }
                e.packBlock(new Sgemm.Mat(hn, hNew.offset(), hid, 1), r0, rows, u0, u0 + n, m, hid, next);   // the next step's A
            });
            packedH.wrote(hNew);
        }

        @Override public void backward(Tensor dGatesNext, Tensor dhOut, Tensor dcNew, Tensor c, Tensor cNew, Tensor act, Tensor dGates, Tensor dc) {
            if (!(hid % F.length() == 0 && (dGatesNext == null || rows(dGatesNext)) && (dhOut == null || rows(dhOut)) && rows(dcNew) && rows(c) && rows(cNew)
                    && rows(act) && out(dGates) && out(dc))) {
                composed.backward(dGatesNext, dhOut, dcNew, c, cNew, act, dGates, dc);
                return;
            }
            float[] pb = dGatesNext == null ? null : asIs();
            int m = c.shape()[0], mPad = Sgemm.roundUp(m, e.MR);
            float[] pa = dGatesNext == null ? null : packedGates.of(e, dGatesNext, 4 * hid), next = packedGates.next(mPad * 4 * hid);
            Sgemm.Mat dho = dhOut == null ? null : mat(dhOut);
            Sgemm.Mat dn = mat(dcNew), cm = mat(c), nm = mat(cNew), am = mat(act);
            float[] dg = (float[]) CpuStorage.arrayOf(dGates), dcs = (float[]) CpuStorage.arrayOf(dc);
            eachBlock(m, (r0, rows, u0, n) -> {
                float[] s = scratch(rows * n);   // dL/dh of the block's units
                for (int b = 0; b < rows; b++) {
                    if (dho == null) java.util.Arrays.fill(s, b * n, b * n + n, 0f);
                    else System.arraycopy(dho.data(), dho.off() + (r0 + b) * dho.rs() + u0, s, b * n, n);
                }
                if (pa != null) e.packedBoth(rows, n, 4 * hid, pa, mPad, r0, pb, Sgemm.roundUp(hid, e.NR), u0, s, 0, n, true, e.localScratch().tile);
                for (int b = 0; b < rows; b++) {
                    int row = r0 + b, go = dGates.offset() + row * 4 * hid + u0, co = dc.offset() + row * hid + u0;
                    lstmBackward(s, b * n, dn.data(), dn.off() + row * dn.rs() + u0, cm.data(), cm.off() + row * cm.rs() + u0,
                            nm.data(), nm.off() + row * nm.rs() + u0, am.data(), am.off() + row * am.rs() + u0, hid, dg, go, hid, dcs, co, n);
                }
                Sgemm.Mat written = new Sgemm.Mat(dg, dGates.offset(), 4 * hid, 1);
                for (int g = 0; g < 4; g++) e.packBlock(written, r0, rows, g * hid + u0, g * hid + u0 + n, m, 4 * hid, next);
            });
            packedGates.wrote(dGates);
        }

        @Override public Tensor hiddenGradient(Tensor dGates, Tensor addend) {
            if (!(rows(dGates) && (addend == null || addend.dtype() == DType.FLOAT32))) return composed.hiddenGradient(dGates, addend);
            int m = dGates.shape()[0];
            Tensor out = CpuStorage.unsetTensor(new int[]{m, hid}, DType.FLOAT32);
            if (addend != null) ElementwiseCpu.copy(out, addend);
            e.packedB(m, hid, 4 * hid, mat(dGates), asIs(), (float[]) CpuStorage.arrayOf(out), 0, hid, addend != null);
            return out;
        }

        /** A float32 matrix whose rows are unit-stride. */
        private static boolean rows(Tensor t) { return t.dtype() == DType.FLOAT32 && (t.strides()[1] == 1 || t.shape()[1] == 1); }

        private static boolean out(Tensor t) { return t.dtype() == DType.FLOAT32 && t.isContiguous(); }

        private static Sgemm.Mat mat(Tensor t) {
            return new Sgemm.Mat((float[]) CpuStorage.arrayOf(t), t.offset(), t.strides()[0], 1);
        }
    }

    /**
     * A step's operand in the GEMM's packed A layout, written by the step before: two buffers in turn (one read while the
     * other is written), and which tensor the last one holds (a row of the layer's buffer, known by storage and offset).
     */
    private static final class Packed {
        private final float[][] buffers = new float[2][0];
        private int turn;
        private dev.kiln.Storage storage;
        private int offset = -1, rows;

        /** The packed copy of a (m, k): the one the last step wrote when a is that tensor, else a packed here. */
        float[] of(Sgemm e, Tensor a, int k) {
            int m = a.shape()[0];
            if (a.storage() == storage && a.offset() == offset && m == rows) return buffers[turn];
            float[] dst = buffers[turn] = kept(Sgemm.packedLength(m, k, e.MR), false);   // packA writes all, padding too
            Sgemm.Mat am = FusedLstm.mat(a);
            for (int pc = 0; pc < k; pc += e.KC) e.packA(am, 0, pc, m, Math.min(e.KC, k - pc), dst, pc * Sgemm.roundUp(m, e.MR));
            return dst;
        }

        /** The buffer this step writes (its rows past m stay zero, as packing pads them). */
        float[] next(int length) {
            if (buffers[1 - turn].length != length) buffers[1 - turn] = kept(length, true);
            return buffers[1 - turn];
        }

        void wrote(Tensor t) {
            turn = 1 - turn;
            storage = t.storage();
            offset = t.offset();
            rows = t.shape()[0];
        }
    }

    /** A task's gates or dh, grown as needed; one per thread (the team's threads keep theirs). */
    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[1][0]);

    private static float[] scratch(int length) {
        float[][] s = SCRATCH.get();
        if (s[0].length < length) s[0] = new float[length];
        return s[0];
    }

    /** One (B, H) element's work: row b, column j. */
    @FunctionalInterface
    private interface Element {
        void run(int b, int j);
    }

    /** Runs body over the rows x hidden elements, rows split over the cores. */
    private static void forEach(int rows, int hidden, Element body) {
        Parallel.range(rows, Math.max(1, Parallel.GRAIN / Math.max(1, 16 * hidden)), (lo, hi) -> {
            for (int b = lo; b < hi; b++) for (int j = 0; j < hidden; j++) body.run(b, j);
        });
    }

    private static double sigmoid(double v) { return 1 / (1 + Math.exp(-v)); }

    private static boolean is16(DType t) { return t == DType.BFLOAT16 || t == DType.FLOAT16; }

    /** The tensor as float32 (a copy) when it is 16-bit, else itself. */
    private static Tensor wide(Tensor t) { return is16(t.dtype()) ? t.detach().to(DType.FLOAT32) : t; }

    /** A float32 stand-in for a 16-bit output, else the output itself. */
    private static Tensor target(Tensor out) {
        if (!out.isContiguous()) throw new IllegalArgumentException("recurrent cell: outputs must be contiguous, got shape " + dev.kiln.Shape.str(out.shape()));
        return is16(out.dtype()) ? newTensor(out.shape(), DType.FLOAT32) : out;
    }

    /** Rounds the float32 stand-ins into their 16-bit outputs. */
    private static void finish(Tensor[] outs, Tensor[] targets) {
        for (int k = 0; k < outs.length; k++) if (outs[k] != targets[k]) ElementwiseCpu.copy(outs[k], targets[k]);
    }

    static void lstmCell(Tensor gates, Tensor c, Tensor h, Tensor cNew, Tensor act) {
        DTypeChecks.requireAnyFloat("lstm_cell", gates.dtype());
        int rows = c.shape()[0], hid = c.shape()[1];
        Tensor[] outs = {h, cNew, act}, ts = {target(h), target(cNew), target(act)};
        FloatValues gv = values(wide(gates)), cv = values(wide(c)), hv = values(ts[0]), nv = values(ts[1]), av = values(ts[2]);
        if (!lanes(Cell.LSTM, rows, hid, gv, cv, hv, nv, av)) forEach(rows, hid, (b, j) -> {
            int g0 = b * 4 * hid + j, e = b * hid + j;
            double i = sigmoid(gv.get(g0)), f = sigmoid(gv.get(g0 + hid)), g = Math.tanh(gv.get(g0 + 2 * hid)), o = sigmoid(gv.get(g0 + 3 * hid));
            double cn = f * cv.get(e) + i * g;
            nv.set(e, cn);
            hv.set(e, o * Math.tanh(cn));
            av.set(g0, i);
            av.set(g0 + hid, f);
            av.set(g0 + 2 * hid, g);
            av.set(g0 + 3 * hid, o);
        });
        finish(outs, ts);
    }

    static void lstmCellBackward(Tensor dh, Tensor dcNew, Tensor c, Tensor cNew, Tensor act, Tensor dGates, Tensor dc) {
        int rows = c.shape()[0], hid = c.shape()[1];
        Tensor[] outs = {dGates, dc}, ts = {target(dGates), target(dc)};
        FloatValues dhv = values(wide(dh)), dnv = values(wide(dcNew)), cv = values(wide(c)), nv = values(wide(cNew)), av = values(wide(act));
        FloatValues dgv = values(ts[0]), dcv = values(ts[1]);
        if (!lanes(Cell.LSTM_BACKWARD, rows, hid, dhv, dnv, cv, nv, av, dgv, dcv)) forEach(rows, hid, (b, j) -> {
            int g0 = b * 4 * hid + j, e = b * hid + j;
            double i = av.get(g0), f = av.get(g0 + hid), g = av.get(g0 + 2 * hid), o = av.get(g0 + 3 * hid);
            double tc = Math.tanh(nv.get(e)), dhe = dhv.get(e);
            double dct = dnv.get(e) + dhe * o * (1 - tc * tc);   // dL/dc' through both paths
            dgv.set(g0, dct * g * i * (1 - i));
            dgv.set(g0 + hid, dct * cv.get(e) * f * (1 - f));
            dgv.set(g0 + 2 * hid, dct * i * (1 - g * g));
            dgv.set(g0 + 3 * hid, dhe * tc * o * (1 - o));
            dcv.set(e, dct * f);
        });
        finish(outs, ts);
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final FloatVector ONE = FloatVector.broadcast(F, 1f);

    /** The four cell kernels that run in lanes; each names its operands' order where it is written. */
    private enum Cell { LSTM, LSTM_BACKWARD, GRU, GRU_BACKWARD }

    /**
     * A float32 cell kernel in vector lanes, when every operand is float32 and a row's units are whole vectors; false,
     * doing nothing, otherwise (the double loop then runs). Operands in the order of the kernel's own arrays (see each *Lanes method).
     */
    private static boolean lanes(Cell cell, int rows, int hid, FloatValues... v) {
        if (hid % F.length() != 0) return false;
        for (FloatValues x : v) if (!(x instanceof FloatValues.Floats)) return false;
        float[][] a = new float[v.length][];
        int[] o = new int[v.length];
        for (int k = 0; k < v.length; k++) {
            a[k] = ((FloatValues.Floats) v[k]).a();
            o[k] = ((FloatValues.Floats) v[k]).off();
        }
        // a loop of its own for each cell, so that C2 compiles each cell's exps apart (see ElementwiseCpu.sigmoid)
        int grain = Math.max(1, Parallel.GRAIN / Math.max(1, 16 * hid));
        switch (cell) {
            case LSTM -> {
                Parallel.range(rows, grain, (lo, hi) -> { for (int b = lo; b < hi; b++) lstmGates(a[0], o[0] + b * 4 * hid, hid, a[4], o[4] + b * 4 * hid, hid, hid); });
                Parallel.range(rows, grain, (lo, hi) -> {
                    for (int b = lo; b < hi; b++) {
                        int e = b * hid;
                        lstmState(a[4], o[4] + b * 4 * hid, hid, a[1], o[1] + e, a[2], o[2] + e, a[3], o[3] + e, hid);
                    }
                });
            }
            case LSTM_BACKWARD -> Parallel.range(rows, grain, (lo, hi) -> { for (int b = lo; b < hi; b++) lstmBackwardLanes(a, o, b, hid); });
            case GRU -> {
                // r and z, side by side in each operand, then the rest in a loop of its own
                Parallel.range(rows, grain, (lo, hi) -> {
                    for (int b = lo; b < hi; b++) sigmoidOfSum(a[0], o[0] + b * 3 * hid, a[1], o[1] + b * 3 * hid, a[4], o[4] + b * 4 * hid, 2 * hid);
                });
                Parallel.range(rows, grain, (lo, hi) -> { for (int b = lo; b < hi; b++) gruForwardLanes(a, o, b, hid); });
            }
            case GRU_BACKWARD -> Parallel.range(rows, grain, (lo, hi) -> { for (int b = lo; b < hi; b++) gruBackwardLanes(a, o, b, hid); });
        }
        return true;
    }

    /** Operand k's lanes from element i. */
    private static FloatVector at(float[][] a, int[] o, int k, int i) { return load(a[k], o[k] + i); }

    private static void put(FloatVector x, float[][] a, int[] o, int k, int i) { store(x, a[k], o[k] + i); }

    // Whole vectors only, no masks: rows whose units are not whole vectors take the double loop (lanes) or the composed
    // steps (FusedLstm). A masked tail doubled every load and store C2 parses, and the cells need their budget (see ElementwiseCpu.sigmoid).
    private static FloatVector load(float[] a, int i) { return FloatVector.fromArray(F, a, i); }

    private static void store(FloatVector x, float[] a, int i) { x.intoArray(a, i); }

    /** dst[di, di + n) = sigmoid(x[xi..] + y[yi..]). */
    private static void sigmoidOfSum(float[] x, int xi, float[] y, int yi, float[] dst, int di, int n) {
        for (int j = 0; j < n; j += F.length()) {
            FloatVector v = load(x, xi + j).add(load(y, yi + j));
            store(ElementwiseCpu.sigmoid(v, ElementwiseCpu.exp(v.abs().neg())), dst, di + j);
        }
    }

    // LSTM forward operands: 0 gates, 1 c, 2 h, 3 cNew, 4 act (gates' and act's rows 4H wide: i, f, g, o)

    /** The four gates of n units activated into act by one exp: sigmoid's exp(-|x|), tanh's exp(-2|x|) for g. */
    private static void lstmGates(float[] gates, int gi, int gs, float[] act, int ai, int as, int n) {
        for (int q = 0; q < 4; q++) {
            float by = q == 2 ? -2f : -1f;
            for (int j = 0; j < n; j += F.length()) {
                FloatVector v = load(gates, gi + q * gs + j), e = ElementwiseCpu.exp(v.abs().mul(by));
                store(q == 2 ? ElementwiseCpu.tanh(v, e) : ElementwiseCpu.sigmoid(v, e), act, ai + q * as + j);
            }
        }
    }

    /** c' = f·c + i·g and h' = o·tanh(c') from the activated gates (act's as apart from ai). */
    private static void lstmState(float[] act, int ai, int as, float[] c, int ci, float[] h, int hi, float[] cNew, int ni, int n) {
        for (int j = 0; j < n; j += F.length()) {
            int k = ai + j;
            FloatVector cn = load(act, k + as).mul(load(c, ci + j)).add(load(act, k).mul(load(act, k + 2 * as)));
            store(cn, cNew, ni + j);
            store(load(act, k + 3 * as).mul(ElementwiseCpu.tanh(cn, ElementwiseCpu.exp(cn.abs().mul(-2f)))), h, hi + j);
        }
    }

    // LSTM backward operands: 0 dh, 1 dcNew, 2 c, 3 cNew, 4 act, 5 dGates, 6 dc
    private static void lstmBackwardLanes(float[][] a, int[] o, int b, int hid) {
        int g0 = b * 4 * hid, e = b * hid;
        lstmBackward(a[0], o[0] + e, a[1], o[1] + e, a[2], o[2] + e, a[3], o[3] + e, a[4], o[4] + g0, hid, a[5], o[5] + g0, hid, a[6], o[6] + e, hid);
    }

    /** The LSTM cell's gradients on n units of a row: act's four gates as apart from ai, dGates' gs apart from gi. */
    private static void lstmBackward(float[] dh, int dhi, float[] dcNew, int dni, float[] c, int ci, float[] cNew, int ni,
                                     float[] act, int ai, int as, float[] dGates, int gi, int gs, float[] dc, int dci, int n) {
        for (int j = 0; j < n; j += F.length()) {
            int k = ai + j, q = gi + j;
            FloatVector i = load(act, k), f = load(act, k + as), g = load(act, k + 2 * as), out = load(act, k + 3 * as);
            FloatVector cn = load(cNew, ni + j), tc = ElementwiseCpu.tanh(cn, ElementwiseCpu.exp(cn.abs().mul(-2f))), dhe = load(dh, dhi + j);
            FloatVector dct = load(dcNew, dni + j).add(dhe.mul(out).mul(ONE.sub(tc.mul(tc))));   // dL/dc' through both paths
            store(dct.mul(g).mul(i).mul(ONE.sub(i)), dGates, q);
            store(dct.mul(load(c, ci + j)).mul(f).mul(ONE.sub(f)), dGates, q + gs);
            store(dct.mul(i).mul(ONE.sub(g.mul(g))), dGates, q + 2 * gs);
            store(dhe.mul(tc).mul(out).mul(ONE.sub(out)), dGates, q + 3 * gs);
            store(dct.mul(f), dc, dci + j);
        }
    }

    // GRU forward operands: 0 gatesX, 1 gatesH (rows 3H wide: r, z, n), 2 h, 3 hNew, 4 act (rows 4H wide: r, z, n, hn)
    private static void gruForwardLanes(float[][] a, int[] o, int b, int hid) {
        int g0 = b * 3 * hid, a0 = b * 4 * hid, e = b * hid;
        for (int j = 0; j < hid; j += F.length()) {
            int q = g0 + j, r0 = a0 + j;
            FloatVector r = at(a, o, 4, r0), z = at(a, o, 4, r0 + hid);
            FloatVector hn = at(a, o, 1, q + 2 * hid), pre = at(a, o, 0, q + 2 * hid).add(r.mul(hn));
            FloatVector n = ElementwiseCpu.tanh(pre, ElementwiseCpu.exp(pre.abs().mul(-2f)));
            put(ONE.sub(z).mul(n).add(z.mul(at(a, o, 2, e + j))), a, o, 3, e + j);
            put(n, a, o, 4, r0 + 2 * hid);
            put(hn, a, o, 4, r0 + 3 * hid);
        }
    }

    // GRU backward operands: 0 dhNew, 1 h, 2 act, 3 dGatesX, 4 dGatesH, 5 dh
    private static void gruBackwardLanes(float[][] a, int[] o, int b, int hid) {
        for (int j = 0; j < hid; j += F.length()) {
            int g0 = b * 3 * hid + j, a0 = b * 4 * hid + j, e = b * hid + j;
            FloatVector r = at(a, o, 2, a0), z = at(a, o, 2, a0 + hid), n = at(a, o, 2, a0 + 2 * hid), hn = at(a, o, 2, a0 + 3 * hid);
            FloatVector d = at(a, o, 0, e);
            FloatVector dn = d.mul(ONE.sub(z)).mul(ONE.sub(n.mul(n)));   // through tanh, to n's pre-activation
            FloatVector dr = dn.mul(hn).mul(r).mul(ONE.sub(r)), dz = d.mul(at(a, o, 1, e).sub(n)).mul(z).mul(ONE.sub(z));
            put(dr, a, o, 3, g0);
            put(dz, a, o, 3, g0 + hid);
            put(dn, a, o, 3, g0 + 2 * hid);
            put(dr, a, o, 4, g0);
            put(dz, a, o, 4, g0 + hid);
            put(dn.mul(r), a, o, 4, g0 + 2 * hid);
            put(d.mul(z), a, o, 5, e);
        }
    }

    static void gruCell(Tensor gatesX, Tensor gatesH, Tensor h, Tensor hNew, Tensor act) {
        DTypeChecks.requireAnyFloat("gru_cell", gatesX.dtype());
        int rows = h.shape()[0], hid = h.shape()[1];
        Tensor[] outs = {hNew, act}, ts = {target(hNew), target(act)};
        FloatValues xv = values(wide(gatesX)), gv = values(wide(gatesH)), hv = values(wide(h)), nv = values(ts[0]), av = values(ts[1]);
        if (!lanes(Cell.GRU, rows, hid, xv, gv, hv, nv, av)) forEach(rows, hid, (b, j) -> {
            int g0 = b * 3 * hid + j, a0 = b * 4 * hid + j, e = b * hid + j;
            double r = sigmoid(xv.get(g0) + gv.get(g0)), z = sigmoid(xv.get(g0 + hid) + gv.get(g0 + hid));
            double hn = gv.get(g0 + 2 * hid), n = Math.tanh(xv.get(g0 + 2 * hid) + r * hn);
            nv.set(e, (1 - z) * n + z * hv.get(e));
            av.set(a0, r);
            av.set(a0 + hid, z);
            av.set(a0 + 2 * hid, n);
            av.set(a0 + 3 * hid, hn);
        });
        finish(outs, ts);
    }

    static void gruCellBackward(Tensor dhNew, Tensor h, Tensor act, Tensor dGatesX, Tensor dGatesH, Tensor dh) {
        int rows = h.shape()[0], hid = h.shape()[1];
        Tensor[] outs = {dGatesX, dGatesH, dh}, ts = {target(dGatesX), target(dGatesH), target(dh)};
        FloatValues dv = values(wide(dhNew)), hv = values(wide(h)), av = values(wide(act));
        FloatValues dxv = values(ts[0]), dgv = values(ts[1]), dhv = values(ts[2]);
        if (!lanes(Cell.GRU_BACKWARD, rows, hid, dv, hv, av, dxv, dgv, dhv)) forEach(rows, hid, (b, j) -> {
            int g0 = b * 3 * hid + j, a0 = b * 4 * hid + j, e = b * hid + j;
            double r = av.get(a0), z = av.get(a0 + hid), n = av.get(a0 + 2 * hid), hn = av.get(a0 + 3 * hid), d = dv.get(e);
            double dn = d * (1 - z) * (1 - n * n);   // through tanh, to n's pre-activation
            double dr = dn * hn * r * (1 - r), dz = d * (hv.get(e) - n) * z * (1 - z);
            dxv.set(g0, dr);
            dxv.set(g0 + hid, dz);
            dxv.set(g0 + 2 * hid, dn);
            dgv.set(g0, dr);
            dgv.set(g0 + hid, dz);
            dgv.set(g0 + 2 * hid, dn * r);
            dhv.set(e, d * z);
        });
        finish(outs, ts);
    }
}
