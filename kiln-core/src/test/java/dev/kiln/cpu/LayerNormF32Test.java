package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import static dev.kiln.cpu.FloatPathAssert.close;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The float32 vector layer norm (LayerNormF32) against the double-precision path on the same values (float64 inputs):
 * forward and every backward output, on fresh random inputs: with and without weight and bias, with an addend, rows of
 * whole vectors and rows with a scalar tail, one case with its values at a mean of 40, and the shortest rows the
 * vector path takes.
 */
class LayerNormF32Test {
    private final Generator gen = new Generator(11);

    private static Tensor f64(Tensor t) { return t == null ? null : t.to(DType.FLOAT64); }

    @Test void matchesTheDoublePath() {
        int min = LayerNormF32.MIN_ROW;
        for (int n : new int[]{min, min + 3, 384, 4 * min + 7}) {
            for (double offset : new double[]{0, 40}) {
                for (int variant = 0; variant < 3; variant++) {
                    boolean affine = variant < 2, withAddend = variant == 1;
                    String what = "n " + n + " offset " + offset + " variant " + variant;
                    int rows = 37;
                    Tensor x = Tensor.randn(gen, 5, rows, n).add(offset).select(0, 2), g = Tensor.randn(gen, rows, n);
                    Tensor w = affine ? Tensor.randn(gen, n) : null, b = affine ? Tensor.randn(gen, n) : null;
                    Tensor addend = withAddend ? Tensor.randn(gen, rows, n) : null;
                    Tensor[] want = NormalizationCpu.layerNorm(f64(x), f64(w), f64(b), n, 1e-5);
                    Tensor[] got = NormalizationCpu.layerNorm(x, w, b, n, 1e-5);
                    close(want[0], got[0], 2e-6, what + " y");
                    close(want[1], got[1], 1e-6, what + " mean");
                    close(want[2], got[2], 1e-5, what + " invstd");
                    Tensor dw64 = Tensor.zeros(new int[]{n}, DType.FLOAT64, Device.CPU), db64 = Tensor.zeros(new int[]{n}, DType.FLOAT64, Device.CPU);
                    Tensor dw = Tensor.zeros(n), db = Tensor.zeros(n);
                    Tensor dx64 = NormalizationCpu.layerNormBackward(f64(g), f64(x), f64(w), want[1], want[2], n, true, f64(addend), affine ? dw64 : null, db64);
                    Tensor dx = NormalizationCpu.layerNormBackward(g, x, w, got[1], got[2], n, true, addend, affine ? dw : null, db);
                    close(dx64, dx, 1e-5, what + " dx");
                    if (affine) close(dw64, dw, 1e-5, what + " dweight");
                    close(db64, db, 1e-5, what + " dbias");
                    Tensor none = NormalizationCpu.layerNormBackward(g, x, w, got[1], got[2], n, false, null, affine ? dw : null, db);
                    assertEquals(null, none, what + ": no input gradient asked");
                    close(db64, db, 1e-5, what + " dbias without dx");
                }
            }
        }
    }
}
