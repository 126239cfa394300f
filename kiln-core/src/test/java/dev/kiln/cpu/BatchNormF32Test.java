package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.BatchNormParams;
import org.junit.jupiter.api.Test;

import static dev.kiln.cpu.FloatPathAssert.close;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The float32 vector batch norm (BatchNormF32) against the double-precision path on the same values (float64 inputs):
 * forward (training and eval, plain, ReLU, residual + ReLU without affine) and every backward output, on fresh
 * random inputs, one case with its values at a mean of 40 (the variance then comes from a difference of large sums),
 * one with runs that are not a whole number of vectors, and channels whose sums span several blocks.
 */
class BatchNormF32Test {
    private final Generator gen = new Generator(5);

    @Test void matchesTheDoublePath() {
        // the last two: a channel's sums span several blocks, runs longer than a block (cut) and short runs of many images
        int[][] shapes = {{3, 5, 7, 9}, {2, 4, 33, 35}, {4, 3, 6, 6}, {2, 2, 41, 1}, {3, 2, 70, 70}, {40, 2, 11, 13}};
        for (int[] s : shapes) {
            assertTrue(BatchNormF32.applies(Tensor.zeros(s)), "the vector path takes " + java.util.Arrays.toString(s));
            for (double offset : new double[]{0, 40}) {
                for (boolean training : new boolean[]{true, false}) {
                    for (int variant = 0; variant < 3; variant++) {
                        boolean relu = variant > 0, res = variant == 2, affine = variant != 2;
                        String what = java.util.Arrays.toString(s) + " offset " + offset + (training ? " training" : " eval") + " variant " + variant;
                        int c = s[1];
                        Tensor x = Tensor.randn(gen, s).add(offset), r = res ? Tensor.randn(gen, s) : null, g = Tensor.randn(gen, s);
                        Tensor w = affine ? Tensor.randn(gen, c) : null, b = affine ? Tensor.randn(gen, c) : null;
                        Tensor rm = Tensor.randn(gen, c).add(offset), rv = Tensor.uniform(gen, new int[]{c}, 0.5, 2, DType.FLOAT32, Device.CPU);
                        Tensor rm64 = rm.to(DType.FLOAT64), rv64 = rv.to(DType.FLOAT64);
                        BatchNormParams p = new BatchNormParams(training, 0.1, 1e-5, relu);
                        Tensor[] want = NormalizationCpu.batchNorm(x.to(DType.FLOAT64), f64(w), f64(b), rm64, rv64, null, f64(r), p);
                        Tensor[] got = NormalizationCpu.batchNorm(x, w, b, rm, rv, null, r, p);
                        close(want[0], got[0], 2e-6, what + " y");
                        close(want[1], got[1], 1e-6, what + " mean");
                        close(want[2], got[2], 1e-5, what + " invstd");
                        close(rm64, rm, 1e-6, what + " running mean");
                        close(rv64, rv, 1e-5, what + " running var");
                        // one ReLU mask (the float32 output's) on both sides
                        Tensor mask = relu ? got[0] : null;
                        Tensor dw64 = affine ? Tensor.zeros(new int[]{c}, DType.FLOAT64, Device.CPU) : null, db64 = affine ? Tensor.zeros(new int[]{c}, DType.FLOAT64, Device.CPU) : null;
                        Tensor dw = affine ? Tensor.zeros(c) : null, db = affine ? Tensor.zeros(c) : null;
                        Tensor[] gw = NormalizationCpu.batchNormBackward(g.to(DType.FLOAT64), f64(mask), x.to(DType.FLOAT64), f64(w), want[1], want[2], p,
                                res, true, dw64, db64);
                        Tensor[] gg = NormalizationCpu.batchNormBackward(g, mask, x, w, got[1], got[2], p, res, true, dw, db);
                        close(gw[0], gg[0], 1e-5, what + " dx");
                        if (affine) {
                            close(dw64, dw, 1e-5, what + " dweight");
                            close(db64, db, 1e-5, what + " dbias");
                        }
                        if (res) close(gw[3], gg[3], 0, what + " dresidual");
                    }
                }
            }
        }
    }

    private static Tensor f64(Tensor t) { return t == null ? null : t.to(DType.FLOAT64); }
}
