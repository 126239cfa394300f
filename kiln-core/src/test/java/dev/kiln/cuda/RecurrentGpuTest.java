package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.models.CharLSTM;
import dev.kiln.ops.Recurrent;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * recurrent.cu's LSTM and GRU cells on cuda:0 against the CPU's, on fresh random inputs of odd sizes: every output of
 * each kernel, forward and backward, for float64, float32 and (against the CPU in float32 on the same rounded inputs,
 * as autocast runs them) bfloat16 and float16, contiguous and strided inputs; then the sequence layers (per step a GEMM
 * and a cell, backward through time) through the ops, values and all gradients; and the char model, float32 and under
 * bf16 autocast. Skips without a GPU.
 */
class RecurrentGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(RecurrentGpuTest.class); }

    private static final int[][] SIZES = {{1, 1}, {3, 7}, {64, 129}, {257, 33}};   // (B, H)
    private static final DType[] TYPES = {DType.FLOAT64, DType.FLOAT32, DType.BFLOAT16, DType.FLOAT16};

    /** The CPU reference's dtype for t: float32 stands in for the 16-bit types. */
    private static DType ref(DType t) { return t == DType.FLOAT64 ? t : DType.FLOAT32; }

    private static double forwardTol(DType t) { return t == DType.FLOAT64 ? 1e-12 : t == DType.FLOAT32 ? 1e-5 : 1e-2; }

    private static double backwardTol(DType t) { return t == DType.FLOAT64 ? 1e-12 : t == DType.FLOAT32 ? 1e-5 : 2e-2; }

    private static Tensor cpuOut(DType t, int... shape) { return Tensor.empty(shape, ref(t), Device.CPU); }

    private static Tensor gpuOut(DType t, int... shape) { return Tensor.empty(shape, t, GPU); }

    /**
     * A (rows, cols) input scaled by {@code scale}: {CPU tensor, GPU tensor}, each stored transposed when strided (the
     * view is taken on each device: a copy between devices would make it contiguous), so kernels see a strided input.
     */
    private Tensor[] input(DType t, boolean strided, double scale, int rows, int cols) {
        Tensor base = strided ? randn(t, cols, rows).mul(scale) : randn(t, rows, cols).mul(scale);
        return strided ? new Tensor[]{base.t(), gpu(base).t()} : new Tensor[]{base, gpu(base)};
    }

    @Test void lstmCellForwardAndBackward() {
        for (DType t : TYPES) {
            for (int[] s : SIZES) {
                for (boolean strided : new boolean[]{false, true}) {
                    int b = s[0], h = s[1];
                    String what = "lstm_cell " + t + " " + Arrays.toString(s) + (strided ? " strided" : "");
                    Tensor[] gates = input(t, strided, 2, b, 4 * h), c = input(t, strided, 1, b, h);
                    Tensor dh = randn(t, b, h), dcNew = randn(t, b, h);
                    DType r = ref(t);
                    Tensor hC = cpuOut(t, b, h), cC = cpuOut(t, b, h), aC = cpuOut(t, b, 4 * h);
                    Tensor hG = gpuOut(t, b, h), cG = gpuOut(t, b, h), aG = gpuOut(t, b, 4 * h);
                    CPU_BE.lstmCell(gates[0].to(r), c[0].to(r), hC, cC, aC);
                    gpuBe.lstmCell(gates[1], c[1], hG, cG, aG);
                    close(hC.to(t), hG, forwardTol(t), what + " h'");
                    close(cC.to(t), cG, forwardTol(t), what + " c'");
                    close(aC.to(t), aG, forwardTol(t), what + " act");
                    // backward from the GPU's saved values on both sides, so only the backward kernels are compared
                    Tensor dgC = cpuOut(t, b, 4 * h), dcC = cpuOut(t, b, h), dgG = gpuOut(t, b, 4 * h), dcG = gpuOut(t, b, h);
                    CPU_BE.lstmCellBackward(dh.to(r), dcNew.to(r), c[0].to(r), cG.cpu().to(r), aG.cpu().to(r), dgC, dcC);
                    gpuBe.lstmCellBackward(gpu(dh), gpu(dcNew), c[1], cG, aG, dgG, dcG);
                    close(dgC.to(t), dgG, backwardTol(t), what + " dgates");
                    close(dcC.to(t), dcG, backwardTol(t), what + " dc");
                }
            }
        }
    }

    @Test void gruCellForwardAndBackward() {
        for (DType t : TYPES) {
            for (int[] s : SIZES) {
                for (boolean strided : new boolean[]{false, true}) {
                    int b = s[0], h = s[1];
                    String what = "gru_cell " + t + " " + Arrays.toString(s) + (strided ? " strided" : "");
                    Tensor[] gx = input(t, strided, 2, b, 3 * h), hPrev = input(t, strided, 1, b, h);
                    Tensor gh = randn(t, b, 3 * h), dh = randn(t, b, h);
                    DType r = ref(t);
                    Tensor hC = cpuOut(t, b, h), aC = cpuOut(t, b, 4 * h), hG = gpuOut(t, b, h), aG = gpuOut(t, b, 4 * h);
                    CPU_BE.gruCell(gx[0].to(r), gh.to(r), hPrev[0].to(r), hC, aC);
                    gpuBe.gruCell(gx[1], gpu(gh), hPrev[1], hG, aG);
                    close(hC.to(t), hG, forwardTol(t), what + " h'");
                    close(aC.to(t), aG, forwardTol(t), what + " act");
                    Tensor dxC = cpuOut(t, b, 3 * h), dhhC = cpuOut(t, b, 3 * h), dpC = cpuOut(t, b, h);
                    Tensor dxG = gpuOut(t, b, 3 * h), dhhG = gpuOut(t, b, 3 * h), dpG = gpuOut(t, b, h);
                    CPU_BE.gruCellBackward(dh.to(r), hPrev[0].to(r), aG.cpu().to(r), dxC, dhhC, dpC);
                    gpuBe.gruCellBackward(gpu(dh), hPrev[1], aG, dxG, dhhG, dpG);
                    close(dxC.to(t), dxG, backwardTol(t), what + " dgatesX");
                    close(dhhC.to(t), dhhG, backwardTol(t), what + " dgatesH");
                    close(dpC.to(t), dpG, backwardTol(t), what + " dh");
                }
            }
        }
    }

    private static Tensor joined(Tensor... outs) {
        List<Tensor> parts = new ArrayList<>();
        for (Tensor o : outs) parts.add(o.reshape(-1));
        return Tensor.cat(parts, 0);
    }

    /** The layers through the ops on both devices: outputs, final states and every input's gradient. */
    @Test void sequenceLayersMatchTheCpu() {
        for (DType t : new DType[]{DType.FLOAT64, DType.FLOAT32}) {
            double tol = t == DType.FLOAT64 ? 1e-10 : 1e-4;
            int steps = 9, b = 5, h = 33;
            compareGraph("lstm " + t, tol, x -> joined(Recurrent.lstm(x[0], x[1], x[2], x[3])),
                    randn(t, steps, b, 4 * h), randn(t, 4 * h, h).mul(0.2), randn(t, b, h), randn(t, b, h));
            compareGraph("gru " + t, tol, x -> joined(Recurrent.gru(x[0], x[1], x[2], x[3])),
                    randn(t, steps, b, 3 * h), randn(t, 3 * h, h).mul(0.2), randn(t, 3 * h), randn(t, b, h));
            compareGraph("lstm batch-first view " + t, tol, x -> Recurrent.lstm(x[0].transpose(0, 1), x[1], null, null)[0],
                    randn(t, b, steps, 4 * h), randn(t, 4 * h, h).mul(0.2));
        }
    }

    /** The char model on both devices (float32: logits and every parameter's gradient), then the GPU under bf16 autocast. */
    @Test void charLstmMatchesTheCpuAndRunsUnderAutocast() {
        CharLSTM cpu = new CharLSTM(37, 24, 65, 2, new Generator(3));
        CharLSTM gpuModel = new CharLSTM(37, 24, 65, 2, new Generator(3)).to(GPU);
        long[] ids = new long[5 * 11];
        for (int i = 0; i < ids.length; i++) ids[i] = (i * 7L + 3) % 37;
        Tensor x = Tensor.of(ids, 5, 11), w = randn(DType.FLOAT32, 5, 11, 37);
        Tensor lc = cpu.forward(x), lg = gpuModel.forward(x.to(GPU));
        close(lc, lg, 1e-4, "logits");
        lc.mul(w).sum().backward();
        lg.mul(gpu(w)).sum().backward();
        var pc = cpu.namedParameters();
        gpuModel.namedParameters().forEach((name, p) -> close(pc.get(name).grad(), p.grad(), 1e-3, name + " gradient"));
        Tensor low;
        try (Autocast ac = Autocast.enable(DType.BFLOAT16)) {
            low = gpuModel.forward(x.to(GPU));
        }
        assertEquals(DType.BFLOAT16, low.dtype());
        close(lc, low.to(DType.FLOAT32), 5e-2, "bf16 autocast logits");
        gpuModel.zeroGrad();
        low.to(DType.FLOAT32).mul(gpu(w)).sum().backward();
        for (Tensor p : gpuModel.parameters()) assertEquals(DType.FLOAT32, p.grad().dtype());
    }
}
