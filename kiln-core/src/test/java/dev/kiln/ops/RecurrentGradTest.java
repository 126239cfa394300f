package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.GradCheck;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The Recurrent family on the CPU: the fused LSTM and GRU cells and the sequence layers against float64 finite
 * differences and against the composites of ops (values and gradients), 16-bit cells against float32, autocast, and
 * the argument checks.
 */
class RecurrentGradTest {
    /** Every output flattened into one tensor, so one gradient check sees them all. */
    private static Tensor joined(Tensor... outs) {
        List<Tensor> parts = new ArrayList<>();
        for (Tensor t : outs) parts.add(t.reshape(-1));
        return Tensor.cat(parts, 0);
    }

    @Test void lstmCellGradient() {
        GradCheck.check(x -> joined(Recurrent.lstmCell(x[0], x[1])), randn(1, 3, 20), randn(2, 3, 5));
        GradCheck.check(x -> Recurrent.lstmCell(x[0], x[1])[0], randn(3, 2, 12), randn(4, 2, 3));   // h' alone
        GradCheck.check(x -> Recurrent.lstmCell(x[0], x[1])[1], randn(5, 2, 12), randn(6, 2, 3));   // c' alone
        GradCheck.check(x -> joined(Recurrent.lstmCell(x[0].t(), x[1])), randn(7, 8, 1), randn(8, 1, 2));   // strided gates
    }

    @Test void gruCellGradient() {
        GradCheck.check(x -> Recurrent.gruCell(x[0], x[1], x[2]), randn(11, 3, 15), randn(12, 3, 15), randn(13, 3, 5));
        GradCheck.check(x -> Recurrent.gruCell(x[0].t(), x[1], x[2].t()), randn(14, 6, 2), randn(15, 2, 6), randn(16, 2, 2));
    }

    /** The fused cells give the composites' values and gradients, float64 and float32. */
    @Test void fusedCellsMatchTheComposite() {
        for (DType t : new DType[]{DType.FLOAT64, DType.FLOAT32}) {
            double tol = t == DType.FLOAT64 ? 1e-12 : 1e-5;
            compare("lstm_cell " + t, tol, x -> joined(Recurrent.lstmCell(x[0], x[1])), x -> joined(Recurrent.compositeLstmCell(x[0], x[1])),
                    randn(21, 5, 28).mul(2).to(t), randn(22, 5, 7).to(t));
            compare("gru_cell " + t, tol, x -> Recurrent.gruCell(x[0], x[1], x[2]), x -> Recurrent.compositeGruCell(x[0], x[1], x[2]),
                    randn(23, 5, 21).mul(2).to(t), randn(24, 5, 21).to(t), randn(25, 5, 7).to(t));
        }
    }

    @Test void lstmSequenceGradient() {
        GradCheck.check(x -> joined(Recurrent.lstm(x[0], x[1], x[2], x[3])), randn(31, 4, 2, 12), randn(32, 12, 3).mul(0.5), randn(33, 2, 3), randn(34, 2, 3));
        GradCheck.check(x -> Recurrent.lstm(x[0], x[1], null, null)[0], randn(35, 3, 1, 8), randn(36, 8, 2));
        // strided projections (batch first, transposed), only the final states in the loss
        GradCheck.check(x -> {
            Tensor[] r = Recurrent.lstm(x[0].transpose(0, 1), x[1], x[2], x[3]);
            return joined(r[1], r[2]);
        }, randn(37, 3, 4, 8), randn(38, 8, 2), randn(39, 3, 2), randn(40, 3, 2));
    }

    @Test void gruSequenceGradient() {
        GradCheck.check(x -> joined(Recurrent.gru(x[0], x[1], x[2], x[3])), randn(41, 4, 2, 9), randn(42, 9, 3).mul(0.5), randn(43, 9), randn(44, 2, 3));
        GradCheck.check(x -> Recurrent.gru(x[0], x[1], null, null)[1], randn(45, 3, 2, 6), randn(46, 6, 2));
    }

    /** The layers give what a loop of composite cells (with autograd through every step) gives. */
    @Test void sequencesMatchAStepByStepComposite() {
        compare("lstm", 1e-11, x -> joined(Recurrent.lstm(x[0], x[1], x[2], x[3])), x -> joined(compositeLstm(x[0], x[1], x[2], x[3])),
                randn(51, 6, 3, 20), randn(52, 20, 5).mul(0.5), randn(53, 3, 5), randn(54, 3, 5));
        compare("gru", 1e-11, x -> joined(Recurrent.gru(x[0], x[1], x[2], x[3])), x -> joined(compositeGru(x[0], x[1], x[2], x[3])),
                randn(55, 6, 3, 15), randn(56, 15, 5).mul(0.5), randn(57, 15), randn(58, 3, 5));
    }

    static Tensor[] compositeLstm(Tensor xGates, Tensor wHh, Tensor h, Tensor c) {
        List<Tensor> out = new ArrayList<>();
        for (int t = 0; t < xGates.size(0); t++) {
            Tensor[] hc = Recurrent.compositeLstmCell(xGates.select(0, t).add(h.matmul(wHh.t())), c);
            h = hc[0];
            c = hc[1];
            out.add(h);
        }
        return new Tensor[]{Tensor.stack(out, 0), h, c};
    }

    static Tensor[] compositeGru(Tensor xGates, Tensor wHh, Tensor bHh, Tensor h) {
        List<Tensor> out = new ArrayList<>();
        for (int t = 0; t < xGates.size(0); t++) {
            h = Recurrent.compositeGruCell(xGates.select(0, t), h.matmul(wHh.t()).add(bHh), h);
            out.add(h);
        }
        return new Tensor[]{Tensor.stack(out, 0), h};
    }

    /** bfloat16 and float16 cells: computed in float32 and rounded once, so within a 16-bit rounding of float32's. */
    @Test void sixteenBitCellsFollowFloat32() {
        for (DType t : new DType[]{DType.BFLOAT16, DType.FLOAT16}) {
            Tensor gates = randn(61, 4, 24).to(t), c = randn(62, 4, 6).to(t), gx = randn(63, 4, 18).to(t), h = randn(64, 4, 6).to(t);
            Tensor[] low = Recurrent.lstmCell(gates, c), ref = Recurrent.lstmCell(gates.to(DType.FLOAT32), c.to(DType.FLOAT32));
            assertEquals(t, low[0].dtype());
            assertArrayEquals(ref[0].toFloatArray(), low[0].toFloatArray(), 1e-2f, t + " h'");
            assertArrayEquals(ref[1].toFloatArray(), low[1].toFloatArray(), 2e-2f, t + " c'");
            Tensor g = Recurrent.gruCell(gx, gx.mul(0.5), h), gr = Recurrent.gruCell(gx.to(DType.FLOAT32), gx.mul(0.5).to(DType.FLOAT32), h.to(DType.FLOAT32));
            assertArrayEquals(gr.toFloatArray(), g.toFloatArray(), 2e-2f, t + " gru h'");
        }
    }

    /** Under autocast the cells and layers run in the low precision and float32 inputs get float32 gradients. */
    @Test void autocastRunsInTheLowPrecision() {
        Tensor gates = randn(71, 2, 8).to(DType.FLOAT32).requiresGrad(true), c = randn(72, 2, 2).to(DType.FLOAT32).requiresGrad(true);
        Tensor xg = randn(73, 3, 2, 8).to(DType.FLOAT32).requiresGrad(true), w = randn(74, 8, 2).to(DType.FLOAT32).requiresGrad(true);
        Tensor[] cell, seq;
        try (Autocast ac = Autocast.enable(DType.BFLOAT16)) {
            cell = Recurrent.lstmCell(gates, c);
            seq = Recurrent.lstm(xg, w, null, null);
        }
        assertEquals(DType.BFLOAT16, cell[0].dtype());
        assertEquals(DType.BFLOAT16, seq[0].dtype());
        joined(cell).to(DType.FLOAT32).sum().backward();
        joined(seq).to(DType.FLOAT32).sum().backward();
        for (Tensor t : new Tensor[]{gates, c, xg, w}) assertEquals(DType.FLOAT32, t.grad().dtype());
        Tensor[] ref = Recurrent.lstm(xg.detach(), w.detach(), null, null);
        assertArrayEquals(ref[0].toFloatArray(), seq[0].toFloatArray(), 3e-2f, "bf16 layer against float32");
    }

    @Test void argumentErrorsNameTheShapes() {
        Tensor g = randn(81, 2, 12), c = randn(82, 2, 3);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Recurrent.lstmCell(randn(83, 2, 10), c)).getMessage()
                .contains("gates of shape [2, 12], got [2, 10]"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Recurrent.lstmCell(g, randn(84, 3))).getMessage().contains("rank 2"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Recurrent.lstmCell(g.to(DType.FLOAT32), c)).getMessage().contains("one dtype"));
        assertThrows(IllegalArgumentException.class, () -> Recurrent.gruCell(randn(85, 2, 9), randn(86, 2, 8), c));
        Tensor xg = randn(87, 4, 2, 12), w = randn(88, 12, 3);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Recurrent.lstm(xg, randn(89, 12, 4), null, null)).getMessage().contains("wHh"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Recurrent.lstm(xg, w, randn(90, 3, 3), null)).getMessage()
                .contains("h0 of shape [2, 3], got [3, 3]"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Recurrent.lstm(xg, w, null, randn(91, 2, 4))).getMessage().contains("c0"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Recurrent.lstm(randn(92, 0, 2, 12), w, null, null)).getMessage().contains("at least one step"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Recurrent.gru(randn(93, 4, 2, 9), randn(94, 9, 3), randn(95, 8), null)).getMessage()
                .contains("bHh of shape [9], got [8]"));
    }

    /** Runs fused and reference on separate leaves of the same values; compares outputs and every input's gradient. */
    private static void compare(String what, double tol, Function<Tensor[], Tensor> fused, Function<Tensor[], Tensor> reference, Tensor... inputs) {
        Tensor[] a = new Tensor[inputs.length], b = new Tensor[inputs.length];
        for (int i = 0; i < inputs.length; i++) {
            a[i] = inputs[i].detach().contiguousCopy().requiresGrad(true);
            b[i] = inputs[i].detach().contiguousCopy().requiresGrad(true);
        }
        Tensor ya = fused.apply(a), yb = reference.apply(b);
        assertArrayEquals(yb.toDoubleArray(), ya.toDoubleArray(), tol, what + " forward");
        Tensor w = randn(99, ya.shape()).to(ya.dtype());
        ya.mul(w).sum().backward();
        yb.mul(w).sum().backward();
        for (int i = 0; i < inputs.length; i++) {
            assertArrayEquals(b[i].grad().toDoubleArray(), a[i].grad().toDoubleArray(), tol * 10, what + " gradient of input " + i);
        }
    }
}
