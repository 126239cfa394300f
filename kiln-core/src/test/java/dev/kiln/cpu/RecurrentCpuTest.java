package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The float32 LSTM and GRU cells in vector lanes (RecurrentCpu's lanes) against the double loop they replaced for
 * float32 (run here on float64 copies of the same values): forward outputs and backward gradients, pre-activations from
 * -40 to 40 (sigmoid and tanh saturated both ways), a hidden size that leaves a masked part-vector after the lanes, rows offset
 * into a larger tensor (a step's row of the sequence). And the layers' step products against a triple loop.
 */
class RecurrentCpuTest {
    private static void close(Tensor want, Tensor got, String what) {
        Tensor w64 = want.contiguous().to(DType.FLOAT64), g64 = got.contiguous().to(DType.FLOAT64);
        double[] w = (double[]) CpuStorage.arrayOf(w64), g = (double[]) CpuStorage.arrayOf(g64);
        int wo = w64.offset(), go = g64.offset();
        for (int i = 0; i < want.numel(); i++) {
            double a = w[wo + i], b = g[go + i];
            assertEquals(a, b, 2e-6 * (1 + Math.abs(a)), what + " element " + i);
        }
    }

    private final java.util.SplittableRandom random = new java.util.SplittableRandom(11);

    private Tensor wide(int rows, int cols, double spread) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) v[i] = (float) (random.nextGaussian() * spread);
        return Tensor.of(v, rows, cols);
    }

    @Test void laneCellMatchesTheDoubleLoop() {
        for (int hid : new int[]{37, 64}) {
            int rows = 5;
            float[] g = new float[rows * 4 * hid];
            for (int i = 0; i < g.length; i++) g[i] = (float) (random.nextGaussian() * 12);
            for (int r = 0; r < rows; r++) {   // saturated both ways, and exactly zero
                g[r * 4 * hid] = 40;
                g[r * 4 * hid + 1] = -40;
                g[r * 4 * hid + 2 * hid + 1] = -40;
                g[r * 4 * hid + 3] = 0;
            }
            Tensor gates = Tensor.of(g, rows, 4 * hid), c = wide(rows, hid, 3);
            // the outputs as rows 1 .. rows of larger tensors: offset views, as a sequence's step writes them
            Tensor[] f32 = cell(gates, c, DType.FLOAT32), f64 = cell(gates, c, DType.FLOAT64);
            String[] names = {"h", "cNew", "act"};
            for (int k = 0; k < 3; k++) close(f64[k], f32[k], "hid " + hid + " " + names[k]);

            Tensor dh = wide(rows, hid, 1), dcNew = wide(rows, hid, 1);
            Tensor[] b32 = cellBackward(dh, dcNew, c, f32[1], f32[2], DType.FLOAT32), b64 = cellBackward(dh, dcNew, c, f32[1], f32[2], DType.FLOAT64);
            close(b64[0], b32[0], "hid " + hid + " dGates");
            close(b64[1], b32[1], "hid " + hid + " dc");
        }
    }

    @Test void laneGruCellMatchesTheDoubleLoop() {
        for (int hid : new int[]{37, 64}) {
            int rows = 5;
            Tensor gx = wide(rows, 3 * hid, 12), gh = wide(rows, 3 * hid, 12), h = wide(rows, hid, 1);
            Tensor[] f32 = gru(gx, gh, h, DType.FLOAT32), f64 = gru(gx, gh, h, DType.FLOAT64);
            close(f64[0], f32[0], "hid " + hid + " hNew");
            close(f64[1], f32[1], "hid " + hid + " act");
            Tensor d = wide(rows, hid, 1);
            Tensor[] b32 = gruBackward(d, h, f32[1], DType.FLOAT32), b64 = gruBackward(d, h, f32[1], DType.FLOAT64);
            String[] names = {"dGatesX", "dGatesH", "dh"};
            for (int k = 0; k < 3; k++) close(b64[k], b32[k], "hid " + hid + " " + names[k]);
        }
    }

    private static Tensor[] gru(Tensor gx, Tensor gh, Tensor h, DType t) {
        int rows = h.shape()[0], hid = h.shape()[1];
        Tensor hNew = row1(rows, hid, t), act = row1(rows, 4 * hid, t);
        RecurrentCpu.gruCell(gx.to(t), gh.to(t), h.to(t), hNew, act);
        return new Tensor[]{hNew, act};
    }

    private static Tensor[] gruBackward(Tensor d, Tensor h, Tensor act, DType t) {
        int rows = h.shape()[0], hid = h.shape()[1];
        Tensor dx = row1(rows, 3 * hid, t), dg = row1(rows, 3 * hid, t), dh = row1(rows, hid, t);
        RecurrentCpu.gruCellBackward(d.to(t), h.to(t), act.to(t), dx, dg, dh);
        return new Tensor[]{dx, dg, dh};
    }

    private static Tensor row1(int rows, int cols, DType t) { return Tensor.zeros(new int[]{rows + 1, cols}, t, dev.kiln.Device.CPU).narrow(0, 1, rows); }

    private static Tensor[] cell(Tensor gates, Tensor c, DType t) {
        int rows = c.shape()[0], hid = c.shape()[1];
        Tensor h = row1(rows, hid, t), cNew = row1(rows, hid, t), act = row1(rows, 4 * hid, t);
        RecurrentCpu.lstmCell(gates.to(t), c.to(t), h, cNew, act);
        return new Tensor[]{h, cNew, act};
    }

    private static Tensor[] cellBackward(Tensor dh, Tensor dcNew, Tensor c, Tensor cNew, Tensor act, DType t) {
        int rows = c.shape()[0], hid = c.shape()[1];
        Tensor dGates = row1(rows, 4 * hid, t), dc = row1(rows, hid, t);
        RecurrentCpu.lstmCellBackward(dh.to(t), dcNew.to(t), c.to(t), cNew.to(t), act.to(t), dGates, dc);
        return new Tensor[]{dGates, dc};
    }

    private final dev.kiln.Generator gen = new dev.kiln.Generator(13);

    /**
     * A recurrent layer's step products (B packed once, then h·B + addend on all threads by columns) against the triple
     * loop: B a transposed view (as W_hhᵀ), h a row of a larger buffer, the addend full, a broadcast row, or none; k past
     * one slab, n past whole panels, fewer rows than a tile; the same B for several h.
     */
    @ParameterizedTest(name = "{0}x{1}x{2}")
    @CsvSource({"1,3,1", "5,37,45", "9,400,33", "64,512,2048", "20,900,130"})
    void stepProductsMatchTripleLoop(int m, int k, int n) {
        Tensor w = Tensor.randn(gen, n, k), b = w.t();
        java.util.function.BinaryOperator<Tensor> products = CpuBackend.INSTANCE.stepProducts(b);
        for (int variant = 0; variant < 3; variant++) {
            Tensor hs = Tensor.randn(gen, 3, m, k), h = hs.select(0, 1);
            Tensor addend = switch (variant) {
                case 0 -> null;
                case 1 -> Tensor.randn(gen, m, n);
                default -> Tensor.randn(gen, n).unsqueeze(0).expand(m, n);
            };
            Tensor c = products.apply(h, addend);
            assertArrayEquals(new int[]{m, n}, c.shape());
            float[] x = h.contiguous().toFloatArray(), y = b.contiguous().toFloatArray(), got = c.toFloatArray();
            float[] add = addend == null ? null : addend.contiguous().toFloatArray();
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double s = add == null ? 0 : add[i * n + j], t = Math.abs(s);
                    for (int q = 0; q < k; q++) {
                        s += (double) x[i * k + q] * y[q * n + j];
                        t += Math.abs((double) x[i * k + q] * y[q * n + j]);
                    }
                    assertEquals(s, got[i * n + j], 1e-5 * Math.sqrt(k) * t + 1e-30, "variant " + variant + " C[" + i + "][" + j + "]");
                }
            }
        }
    }

    /**
     * The fused LSTM steps (product and cell per block of units, one parallel loop a step) against the composed ones
     * (step products, then the cell) over a few steps each way: the projection a strided view (batch-first input), h and
     * c rows of the sequence's buffers. Equal bit for bit where the hidden size fills whole panels (each element summed
     * in the same order); otherwise the composed path's last columns are edge tiles (the tile's sum added to C once):
     * within rounding.
     */
    @ParameterizedTest(name = "B {0}, H {1}")
    @CsvSource({"1,1", "5,37", "9,100", "64,512", "3,64", "20,96"})
    void fusedLstmStepsMatchTheComposedOnes(int m, int hid) {
        int steps = 3;
        CpuBackend be = CpuBackend.INSTANCE;
        Tensor w = Tensor.randn(gen, 4 * hid, hid).mul(0.5), xg = Tensor.randn(gen, m, steps, 4 * hid).transpose(0, 1);
        Tensor h0 = Tensor.randn(gen, m, hid), c0 = Tensor.randn(gen, m, hid);
        dev.kiln.backend.Backend.LstmSteps fused = be.lstmSteps(w);
        java.util.function.BinaryOperator<Tensor> forward = be.stepProducts(w.t()), backward = be.stepProducts(w);
        Tensor[] f = sequenceBuffers(m, hid, steps, h0, c0), c = sequenceBuffers(m, hid, steps, h0, c0);   // y, cs, act
        for (int t = 0; t < steps; t++) {
            fused.forward(f[0].select(0, t), xg.select(0, t), f[1].select(0, t), f[0].select(0, t + 1), f[1].select(0, t + 1), f[2].select(0, t));
            Tensor gates = forward.apply(c[0].select(0, t), xg.select(0, t));
            be.lstmCell(gates, c[1].select(0, t), c[0].select(0, t + 1), c[1].select(0, t + 1), c[2].select(0, t));
        }
        String[] names = {"h", "c", "act"};
        for (int k = 0; k < 3; k++) same(c[k], f[k], hid, "forward " + names[k]);

        // backward through the fused forward's states: dL/dh of each step's output, dL/dc of the last
        Tensor g = Tensor.randn(gen, steps + 1, m, hid), dcLast = Tensor.randn(gen, m, hid);
        Tensor dxF = Tensor.zeros(steps, m, 4 * hid), dxC = Tensor.zeros(steps, m, 4 * hid);
        Tensor dcF = dcLast, dcC = dcLast, dh = g.select(0, steps);
        for (int t = steps - 1; t >= 0; t--) {
            Tensor prevF = Tensor.zeros(m, hid), prevC = Tensor.zeros(m, hid);
            fused.backward(t < steps - 1 ? dxF.select(0, t + 1) : null, g.select(0, t + 1), dcF, f[1].select(0, t), f[1].select(0, t + 1),
                    f[2].select(0, t), dxF.select(0, t), prevF);
            be.lstmCellBackward(dh, dcC, f[1].select(0, t), f[1].select(0, t + 1), f[2].select(0, t), dxC.select(0, t), prevC);
            dh = backward.apply(dxC.select(0, t), t > 0 ? g.select(0, t) : null);
            dcF = prevF;
            dcC = prevC;
        }
        same(dxC, dxF, hid, "dGates");
        same(dcC, dcF, hid, "dc_0");
        same(dh, fused.hiddenGradient(dxF.select(0, 0), null), hid, "dh_0");
        // a projection whose rows are not unit-stride takes the composed path, with the same result
        Tensor xt = xg.select(0, 0).t().contiguous().t(), hA = Tensor.zeros(m, hid), cA = Tensor.zeros(m, hid), aA = Tensor.zeros(m, 4 * hid);
        Tensor hB = Tensor.zeros(m, hid), cB = Tensor.zeros(m, hid), aB = Tensor.zeros(m, 4 * hid);
        fused.forward(h0, xt, c0, hA, cA, aA);
        fused.forward(h0, xg.select(0, 0), c0, hB, cB, aB);
        same(hB, hA, hid, "strided projection h");
    }

    /** y (h_0 .. h_T), cs (c_0 .. c_T) and act of a sequence, h_0 and c_0 given. */
    private static Tensor[] sequenceBuffers(int m, int hid, int steps, Tensor h0, Tensor c0) {
        Tensor y = Tensor.zeros(steps + 1, m, hid), cs = Tensor.zeros(steps + 1, m, hid);
        CpuBackend.INSTANCE.copy(y.select(0, 0), h0);
        CpuBackend.INSTANCE.copy(cs.select(0, 0), c0);
        return new Tensor[]{y, cs, Tensor.zeros(steps, m, 4 * hid)};
    }

    /** Bit for bit where hid fills whole panels of every kernel (a multiple of 32), else within float32 rounding. */
    private static void same(Tensor want, Tensor got, int hid, String what) {
        if (hid % 32 == 0) assertArrayEquals(want.contiguous().toFloatArray(), got.contiguous().toFloatArray(), what + ": not the composed path's result");
        else close(want, got, what);
    }
}
