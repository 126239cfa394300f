package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;

/**
 * The LSTM and GRU cells on CUDA (recurrent.cu): one launch per step forward and one backward, a thread per element of
 * the (B, H) state. Any floating dtype (16-bit computed in float32); strided inputs are copied to contiguous
 * temporaries, outputs must be contiguous (the sequence op hands in views of its buffers).
 */
final class RecurrentCuda extends CudaFamily {
    private final Kernels.Table lstmCell, lstmCellBackward, gruCell, gruCellBackward;

    RecurrentCuda(CudaBackend backend) {
        super(backend);
        lstmCell = new Kernels.Table(dev, "recurrent.cu", "lstm_cell");
        lstmCellBackward = new Kernels.Table(dev, "recurrent.cu", "lstm_cell_backward");
        gruCell = new Kernels.Table(dev, "recurrent.cu", "gru_cell");
        gruCellBackward = new Kernels.Table(dev, "recurrent.cu", "gru_cell_backward");
    }

    void lstmCell(Tensor gates, Tensor c, Tensor h, Tensor cNew, Tensor act) {
        DType t = gates.dtype();
        requireAnyFloat("lstm_cell", t);
        outputs("lstm_cell", t, h, cNew, act);
        Tensor[] in = {gates, c}, ic = contiguousAll(in, t);
        long n = h.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(h)).ptr(ptr(cNew)).ptr(ptr(act)).ptr(ptr(ic[0])).ptr(ptr(ic[1])).i64(n).i64(c.shape()[1])
                    .go(dev, lstmCell.get(t), grid(n), BLOCK);
        }
        dropAll(ic, in);
    }

    void lstmCellBackward(Tensor dh, Tensor dcNew, Tensor c, Tensor cNew, Tensor act, Tensor dGates, Tensor dc) {
        DType t = act.dtype();
        requireAnyFloat("lstm_cell_backward", t);
        outputs("lstm_cell_backward", t, dGates, dc);
        Tensor[] in = {dh, dcNew, c, cNew, act}, ic = contiguousAll(in, t);
        long n = dc.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(dGates)).ptr(ptr(dc)).ptr(ptr(ic[0])).ptr(ptr(ic[1])).ptr(ptr(ic[2])).ptr(ptr(ic[3])).ptr(ptr(ic[4]))
                    .i64(n).i64(c.shape()[1]).go(dev, lstmCellBackward.get(t), grid(n), BLOCK);
        }
        dropAll(ic, in);
    }

    void gruCell(Tensor gatesX, Tensor gatesH, Tensor h, Tensor hNew, Tensor act) {
        DType t = gatesX.dtype();
        requireAnyFloat("gru_cell", t);
        outputs("gru_cell", t, hNew, act);
        Tensor[] in = {gatesX, gatesH, h}, ic = contiguousAll(in, t);
        long n = hNew.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(hNew)).ptr(ptr(act)).ptr(ptr(ic[0])).ptr(ptr(ic[1])).ptr(ptr(ic[2])).i64(n).i64(h.shape()[1])
                    .go(dev, gruCell.get(t), grid(n), BLOCK);
        }
        dropAll(ic, in);
    }

    void gruCellBackward(Tensor dhNew, Tensor h, Tensor act, Tensor dGatesX, Tensor dGatesH, Tensor dh) {
        DType t = act.dtype();
        requireAnyFloat("gru_cell_backward", t);
        outputs("gru_cell_backward", t, dGatesX, dGatesH, dh);
        Tensor[] in = {dhNew, h, act}, ic = contiguousAll(in, t);
        long n = dh.numel();
        if (n > 0) {
            Launch.args().ptr(ptr(dGatesX)).ptr(ptr(dGatesH)).ptr(ptr(dh)).ptr(ptr(ic[0])).ptr(ptr(ic[1])).ptr(ptr(ic[2])).i64(n)
                    .i64(h.shape()[1]).go(dev, gruCellBackward.get(t), grid(n), BLOCK);
        }
        dropAll(ic, in);
    }

    /** The kernels write outputs flat: each must be contiguous and of the call's dtype. */
    private static void outputs(String op, DType t, Tensor... outs) {
        for (Tensor o : outs) {
            if (!o.isContiguous() || o.dtype() != t) {
                throw new IllegalArgumentException(op + ": outputs must be contiguous " + t + ", got " + o.dtype() + " of shape " + Shape.str(o.shape())
                        + (o.isContiguous() ? "" : " (strided)"));
            }
        }
    }

    private Tensor[] contiguousAll(Tensor[] in, DType t) {
        Tensor[] out = new Tensor[in.length];
        for (int k = 0; k < in.length; k++) out[k] = contiguous(in[k], t);
        return out;
    }

    private static void dropAll(Tensor[] temps, Tensor[] originals) {
        for (int k = 0; k < temps.length; k++) drop(temps[k], originals[k]);
    }
}
