package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.autograd.AutocastPolicy;
import dev.kiln.autograd.Autograd;
import dev.kiln.autograd.GradMode;
import dev.kiln.backend.Backend;

import java.util.Arrays;
import java.util.function.BinaryOperator;

import static dev.kiln.Backends.get;

/**
 * The Recurrent family: the LSTM and GRU cells with PyTorch's formulas and gate orders (i, f, g, o; r, z, n) as fused
 * backend ops, and a layer over a whole sequence. The layer takes the input projection of every step at once (one
 * GEMM, made by the caller), then runs per step one GEMM (h·W_hhᵀ) and the fused cell, saving each step's state and
 * activated gates in three buffers; its backward runs through time in one recorded op (per step the fused cell's
 * backward and one GEMM, then one GEMM for dW_hh over all steps), as cuDNN does. Several outputs are views of one
 * recorded buffer, so the engine sums their gradients into it. Under autocast the ops run in the low precision, as
 * PyTorch's {@code lstm_cell}; the kernels compute 16-bit values in float32. The composites of ops
 * ({@link #compositeLstmCell}, {@link #compositeGruCell}) are what the fused cells must match.
 */
public final class Recurrent {
    private Recurrent() {}

    /**
     * One LSTM step: gates (B, 4H) are the pre-activations {@code x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh} in the order i, f,
     * g, o, c (B, H) the cell state. Returns {h', c'} (B, H): {@code c' = σ(f)·c + σ(i)·tanh(g)}, {@code h' = σ(o)·tanh(c')}.
     */
    public static Tensor[] lstmCell(Tensor gates, Tensor c) {
        gates = Autocast.cast(AutocastPolicy.LSTM, gates);
        c = Autocast.cast(AutocastPolicy.LSTM, c);
        int[] bh = state("lstm_cell", "c", c);
        int b = bh[0], h = bh[1];
        shape("lstm_cell", "gates", gates, b, 4 * h);
        same("lstm_cell", c, gates);
        Backend be = get(c.device());
        Tensor out = empty(c, 2, b, h), act = empty(c, b, 4 * h), cNew = row(out, 1), cIn = c;
        be.lstmCell(gates, c, row(out, 0), cNew, act);
        Autograd.record("lstm_cell", out, g -> {
            Tensor dGates = empty(g, b, 4 * h), dc = empty(g, b, h);
            be.lstmCellBackward(row(g, 0), row(g, 1), cIn, cNew, act, dGates, dc);
            return new Tensor[]{dGates, dc};
        }, gates, c);
        return new Tensor[]{out.select(0, 0), out.select(0, 1)};
    }

    /**
     * One GRU step: gatesX = x·W_ihᵀ + b_ih and gatesH = h·W_hhᵀ + b_hh (B, 3H) in the order r, z, n, h (B, H). Returns
     * h' = (1 - z)·n + z·h with r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r·h_n).
     */
    public static Tensor gruCell(Tensor gatesX, Tensor gatesH, Tensor h) {
        gatesX = Autocast.cast(AutocastPolicy.GRU, gatesX);
        gatesH = Autocast.cast(AutocastPolicy.GRU, gatesH);
        h = Autocast.cast(AutocastPolicy.GRU, h);
        int[] bh = state("gru_cell", "h", h);
        int b = bh[0], hid = bh[1];
        shape("gru_cell", "gatesX", gatesX, b, 3 * hid);
        shape("gru_cell", "gatesH", gatesH, b, 3 * hid);
        same("gru_cell", h, gatesX, gatesH);
        Backend be = get(h.device());
        Tensor out = empty(h, b, hid), act = empty(h, b, 4 * hid), hIn = h;
        be.gruCell(gatesX, gatesH, h, out, act);
        return Autograd.record("gru_cell", out, g -> {
            Tensor dx = empty(g, b, 3 * hid), dh = empty(g, b, 3 * hid), dPrev = empty(g, b, hid);
            be.gruCellBackward(g, hIn, act, dx, dh, dPrev);
            return new Tensor[]{dx, dh, dPrev};
        }, gatesX, gatesH, h);
    }

    /**
     * One LSTM layer over a sequence, time first. xGates (T, B, 4H) is the input projection of every step with both
     * biases ({@code x·W_ihᵀ + b_ih + b_hh}), wHh (4H, H), h0 and c0 (B, H) or null for zeros. Returns {output
     * (T, B, H), h_n, c_n (B, H)}.
     */
    public static Tensor[] lstm(Tensor xGates, Tensor wHh, Tensor h0, Tensor c0) {
        xGates = Autocast.cast(AutocastPolicy.LSTM, xGates);
        wHh = Autocast.cast(AutocastPolicy.LSTM, wHh);
        h0 = Autocast.cast(AutocastPolicy.LSTM, h0);
        c0 = Autocast.cast(AutocastPolicy.LSTM, c0);
        int[] tbh = sequence("lstm", 4, xGates, wHh, null, h0, c0);
        int steps = tbh[0], b = tbh[1], h = tbh[2];
        Backend be = get(xGates.device());
        Tensor y = empty(xGates, steps + 2, b, h);        // h_0 .. h_T, then c_T
        Tensor cs = empty(xGates, steps + 1, b, h);       // c_0 .. c_T
        Tensor act = empty(xGates, steps, b, 4 * h);      // each step's activated gates
        Backend.LstmSteps layer = be.lstmSteps(wHh);
        try (GradMode off = GradMode.disabled()) {
            initial(be, row(y, 0), h0);
            initial(be, row(cs, 0), c0);
            for (int t = 0; t < steps; t++) layer.forward(row(y, t), row(xGates, t), row(cs, t), row(y, t + 1), row(cs, t + 1), row(act, t));
            be.copy(row(y, steps + 1), row(cs, steps));
        }
        boolean wGrad = wHh.requiresGrad();
        Autograd.record("lstm", y, g -> {
            Tensor dx = empty(g, steps, b, 4 * h), dc = row(g, steps + 1);
            for (int t = steps - 1; t >= 0; t--) {
                Tensor dcPrev = empty(g, b, h);
                // dL/dh_{t+1}: through the next step's gates (h_{t+1}·W_hhᵀ), plus row t + 1 of g, the output's gradient
                layer.backward(t < steps - 1 ? row(dx, t + 1) : null, row(g, t + 1), dc, row(cs, t), row(cs, t + 1), row(act, t), row(dx, t), dcPrev);
                if (t < steps - 1) dc.close();           // made by the step before (the first is a row of g)
                dc = dcPrev;
            }
            return new Tensor[]{dx, wGrad ? weightGrad(dx, y, steps) : null, layer.hiddenGradient(row(dx, 0), null), dc};
        }, xGates, wHh, h0, c0);
        return new Tensor[]{y.narrow(0, 1, steps), y.select(0, steps), y.select(0, steps + 1)};
    }

    /**
     * One GRU layer over a sequence, time first. xGates (T, B, 3H) is the input projection of every step
     * ({@code x·W_ihᵀ + b_ih}), wHh (3H, H), bHh (3H) or null (added to each step's h·W_hhᵀ, inside n's reset
     * product as PyTorch), h0 (B, H) or null for zeros. Returns {output (T, B, H), h_n (B, H)}.
     */
    public static Tensor[] gru(Tensor xGates, Tensor wHh, Tensor bHh, Tensor h0) {
        xGates = Autocast.cast(AutocastPolicy.GRU, xGates);
        wHh = Autocast.cast(AutocastPolicy.GRU, wHh);
        bHh = Autocast.cast(AutocastPolicy.GRU, bHh);
        h0 = Autocast.cast(AutocastPolicy.GRU, h0);
        int[] tbh = sequence("gru", 3, xGates, wHh, bHh, h0, null);
        int steps = tbh[0], b = tbh[1], h = tbh[2];
        Backend be = get(xGates.device());
        Tensor y = empty(xGates, steps + 1, b, h);        // h_0 .. h_T
        Tensor act = empty(xGates, steps, b, 4 * h);      // each step's r, z, n and h_n
        Tensor w = wHh, bias = bHh;
        try (GradMode off = GradMode.disabled()) {
            initial(be, row(y, 0), h0);
            BinaryOperator<Tensor> product = be.stepProducts(w.t());
            Tensor biasRows = bias == null ? null : new Tensor(bias.storage(), new int[]{b, 3 * h}, new int[]{0, bias.strides()[0]}, bias.offset());
            for (int t = 0; t < steps; t++) {   // each step's temporaries are released at once (a scope would keep T)
                Tensor gh = product.apply(row(y, t), biasRows);
                be.gruCell(row(xGates, t), gh, row(y, t), row(y, t + 1), row(act, t));
                gh.close();
            }
        }
        boolean wGrad = wHh.requiresGrad(), bGrad = bHh != null && bHh.requiresGrad();
        Autograd.record("gru", y, g -> {
            Tensor dx = empty(g, steps, b, 3 * h), dgh = empty(g, steps, b, 3 * h), dh = row(g, steps);
            BinaryOperator<Tensor> back = be.stepProducts(w);
            for (int t = steps - 1; t >= 0; t--) {
                Tensor direct = empty(g, b, h);
                be.gruCellBackward(dh, row(y, t), row(act, t), row(dx, t), row(dgh, t), direct);
                if (t < steps - 1) dh.close();           // made by the step before (the first is a row of g)
                Tensor sum = back.apply(row(dgh, t), direct);   // h_t's paths: z·h_t and h_t·W_hhᵀ
                direct.close();
                dh = t > 0 ? sum.add(row(g, t)) : sum;
                if (t > 0) sum.close();
            }
            return new Tensor[]{dx, wGrad ? weightGrad(dgh, y, steps) : null, bGrad ? dgh.sum(new int[]{0, 1}, false) : null, dh};
        }, xGates, wHh, bHh, h0);
        return new Tensor[]{y.narrow(0, 1, steps), y.select(0, steps)};
    }

    /** dW_hh = Σ_t dGates_tᵀ·h_{t-1}: one GEMM over all steps, (T·B, kH)ᵀ by (T·B, H) (h_0 .. h_{T-1} are y's first T rows). */
    private static Tensor weightGrad(Tensor dGates, Tensor y, int steps) {
        int[] s = dGates.shape();
        Tensor prev = Views.sliceRaw(y, 0, 0, steps, 1).reshape(steps * s[1], y.shape()[2]);
        return dGates.reshape(steps * s[1], s[2]).t().matmul(prev);
    }

    /** The LSTM cell composed of ops (slices, sigmoid, tanh, products): the reference the fused cell must match. */
    static Tensor[] compositeLstmCell(Tensor gates, Tensor c) {
        int h = c.size(1);
        Tensor i = gates.narrow(1, 0, h).sigmoid(), f = gates.narrow(1, h, h).sigmoid();
        Tensor g = gates.narrow(1, 2 * h, h).tanh(), o = gates.narrow(1, 3 * h, h).sigmoid();
        Tensor cNew = f.mul(c).add(i.mul(g));
        return new Tensor[]{o.mul(cNew.tanh()), cNew};
    }

    /** The GRU cell composed of ops: the reference the fused cell must match. */
    static Tensor compositeGruCell(Tensor gatesX, Tensor gatesH, Tensor h) {
        int n = h.size(1);
        Tensor r = gatesX.narrow(1, 0, n).add(gatesH.narrow(1, 0, n)).sigmoid();
        Tensor z = gatesX.narrow(1, n, n).add(gatesH.narrow(1, n, n)).sigmoid();
        Tensor cand = gatesX.narrow(1, 2 * n, n).add(r.mul(gatesH.narrow(1, 2 * n, n))).tanh();
        return z.rsub(1).mul(cand).add(z.mul(h));
    }

    // ---------------------------------------------------------------- buffers and checks

    /** Row i of a contiguous buffer (or of a gradient) as a view outside autograd. */
    private static Tensor row(Tensor t, int i) {
        int[] s = t.shape(), st = t.strides();
        return new Tensor(t.storage(), Arrays.copyOfRange(s, 1, s.length), Arrays.copyOfRange(st, 1, st.length), t.offset() + i * st[0]);
    }

    private static Tensor empty(Tensor like, int... shape) { return Tensor.empty(shape, like.dtype(), like.device()); }

    /** Row 0 of a state buffer: the given initial state, or zeros. */
    private static void initial(Backend be, Tensor dst, Tensor value) {
        if (value == null) be.fill(dst, 0);
        else be.copy(dst, value);
    }

    /** (B, H) of a rank-2 state. */
    private static int[] state(String op, String what, Tensor t) {
        Checks.rank(op, what, t, 2);
        Checks.floating(op, t);
        return t.shape();
    }

    private static void shape(String op, String what, Tensor t, int... expected) {
        if (t != null && !Arrays.equals(t.shape(), expected)) {
            throw new IllegalArgumentException(op + ": expected " + what + " of shape " + Shape.str(expected) + ", got " + Shape.str(t.shape()));
        }
    }

    /** One device and one floating dtype for every tensor given (null ones skipped). */
    private static void same(String op, Tensor first, Tensor... others) {
        DType t = first.dtype();
        Device d = first.device();
        for (Tensor o : others) {
            if (o == null) continue;
            Checks.sameDevice(op, first, o);
            if (o.dtype() != t) throw new IllegalArgumentException(op + ": expected one dtype, got " + t + " and " + o.dtype());
        }
        if (!t.isFloating()) throw new IllegalArgumentException(op + ": expected floating tensors on " + d + ", got " + t);
    }

    /** Checks a layer's arguments for gate count k; returns {T, B, H}. */
    private static int[] sequence(String op, int k, Tensor xGates, Tensor wHh, Tensor bHh, Tensor h0, Tensor c0) {
        Checks.rank(op, "wHh (" + k + "H, H)", wHh, 2);
        int h = wHh.shape()[1];
        shape(op, "wHh", wHh, k * h, h);
        Checks.rank(op, "xGates (T, B, " + k + "H)", xGates, 3);
        int steps = xGates.shape()[0], b = xGates.shape()[1];
        if (steps < 1 || b < 1) throw new IllegalArgumentException(op + ": expected at least one step and one sequence, got xGates of shape " + Shape.str(xGates.shape()));
        shape(op, "xGates", xGates, steps, b, k * h);
        shape(op, "bHh", bHh, k * h);
        shape(op, "h0", h0, b, h);
        shape(op, "c0", c0, b, h);
        same(op, xGates, wHh, bHh, h0, c0);
        return new int[]{steps, b, h};
    }
}
