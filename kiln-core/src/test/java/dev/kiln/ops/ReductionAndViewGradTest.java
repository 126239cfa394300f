package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.GradCheck;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static dev.kiln.GradCheck.randn;
import static org.junit.jupiter.api.Assertions.*;

/** Reductions, view ops, cat/stack and indexing: gradients against finite differences, plus forward values. */
class ReductionAndViewGradTest {

    // ---------------------------------------------------------------- reductions

    @Test void sumAndMeanOverDimsWithAndWithoutKeepdim() {
        for (boolean keep : new boolean[]{false, true}) {
            GradCheck.check(x -> x[0].sum(1, keep), randn(1, 2, 3, 4));
            GradCheck.check(x -> x[0].sum(new int[]{0, 2}, keep), randn(2, 2, 3, 4));
            GradCheck.check(x -> x[0].mean(-1, keep), randn(3, 2, 3, 4));
            GradCheck.check(x -> x[0].mean(new int[]{0, 1}, keep), randn(4, 2, 3, 4));
        }
        GradCheck.check(x -> x[0].sum(), randn(5, 3, 4));
        GradCheck.check(x -> x[0].mean(), randn(6, 3, 4));
        // over a transposed view
        GradCheck.check(x -> x[0].t().sum(1, false), randn(7, 4, 3));
    }

    @Test void maxAndMinOverDims() {
        for (boolean keep : new boolean[]{false, true}) {
            GradCheck.check(x -> x[0].max(1, keep), randn(11, 3, 5, 2));
            GradCheck.check(x -> x[0].min(0, keep), randn(12, 3, 5, 2));
        }
        GradCheck.check(x -> x[0].max(), randn(13, 4, 3));
        GradCheck.check(x -> x[0].t().min(), randn(14, 4, 3));
    }

    @Test void maxGradientSplitsBetweenTies() {
        Tensor x = Tensor.of(new double[]{1, 3, 3, 0}, 4).requiresGrad(true);
        x.max().backward();
        assertArrayEquals(new double[]{0, 0.5, 0.5, 0}, x.grad().toDoubleArray());
    }

    @Test void varianceBiasedAndUnbiased() {
        for (boolean unbiased : new boolean[]{false, true}) {
            for (boolean keep : new boolean[]{false, true}) {
                GradCheck.check(x -> x[0].var(new int[]{1}, unbiased, keep), randn(21, 3, 5));
            }
            GradCheck.check(x -> x[0].var(new int[]{0, 2}, unbiased, false), randn(22, 2, 3, 4));
        }
        Tensor x = Tensor.of(new double[]{1, 2, 3, 4}, 4);
        assertEquals(1.25, x.var(new int[]{0}, false, false).item(), 1e-12);
        assertEquals(5.0 / 3, x.var(new int[]{0}, true, false).item(), 1e-12);
    }

    @Test void cumsumGradientsAlongEachDim() {
        for (int d = -1; d < 3; d++) {
            int dim = d;
            GradCheck.check(x -> x[0].cumsum(dim), randn(31 + d, 3, 5, 4));
        }
        GradCheck.check(x -> x[0].t().cumsum(1), randn(35, 4, 6));   // a transposed view
        GradCheck.check(x -> x[0].cumsum(0).cumsum(0), randn(36, 7));   // a cumsum of a cumsum: the reverse sums twice
        GradCheck.check(x -> x[0].cumsum(0), randn(37));   // a scalar
    }

    @Test void cumsumValuesAndDtypes() {
        Tensor x = Tensor.of(new double[]{1, 2, 3, 4, 5, 6}, 2, 3);
        assertArrayEquals(new double[]{1, 3, 6, 4, 9, 15}, x.cumsum(1).toDoubleArray());
        assertArrayEquals(new double[]{1, 2, 3, 5, 7, 9}, x.cumsum(-2).toDoubleArray());
        assertArrayEquals(new double[]{1, 3, 6, 4, 9, 15}, x.to(DType.FLOAT32).cumsum(1).toDoubleArray());
        // float32 sums in double: 2^24 + 1 + 1 is exact there, not in float
        Tensor f = Tensor.of(new float[]{16_777_216f, 1f, 1f}, 3);
        assertArrayEquals(new double[]{16_777_216, 16_777_216, 16_777_218}, f.cumsum(0).toDoubleArray());
        // bool and integers sum as int64, exactly beyond 2^53
        Tensor b = Tensor.of(new double[]{1, -1, 2, 0, 3}, 5).gt(0);
        assertEquals(DType.INT64, b.cumsum(0).dtype());
        assertArrayEquals(new long[]{1, 1, 2, 2, 3}, b.cumsum(0).toLongArray());
        long big = 1L << 53;
        assertArrayEquals(new long[]{big, big + 1, big + 2}, Tensor.of(new long[]{big, 1, 1}, 3).cumsum(0).toLongArray());
        assertArrayEquals(new long[]{1, 3, 6}, Tensor.of(new int[]{1, 2, 3}, 3).cumsum(0).toLongArray());
        assertEquals(0, Tensor.zeros(new int[]{2, 0}, DType.FLOAT32, dev.kiln.Device.CPU).cumsum(1).numel());
        assertThrows(IllegalArgumentException.class, () -> x.cumsum(2));
    }

    @Test void argmaxAndArgmin() {
        Tensor x = Tensor.of(new double[]{1, 7, 7, 2, 0, 5}, 2, 3);
        assertArrayEquals(new long[]{1, 2}, x.argmax(1, false).toLongArray());
        assertArrayEquals(new long[]{0, 1}, x.argmin(1, false).toLongArray());
        assertArrayEquals(new long[]{1, 0, 0}, x.argmax(0, false).toLongArray());
        assertArrayEquals(new int[]{2, 1}, x.argmax(1, true).shape());
        assertEquals(DType.INT64, x.argmax(1, false).dtype());
        // transposed input
        assertArrayEquals(new long[]{1, 0, 0}, x.t().argmax(1, false).toLongArray());
    }

    // ---------------------------------------------------------------- views

    @Test void viewOpsGradients() {
        GradCheck.check(x -> x[0].reshape(4, 6), randn(31, 2, 3, 4));
        GradCheck.check(x -> x[0].t().reshape(-1), randn(32, 3, 4)); // reshape of a non-contiguous view copies
        GradCheck.check(x -> x[0].transpose(0, 2), randn(33, 2, 3, 4));
        GradCheck.check(x -> x[0].permute(2, 0, 1).mul(x[0].permute(2, 0, 1)), randn(34, 2, 3, 4));
        GradCheck.check(x -> x[0].slice(1, 1, 4, 2), randn(35, 2, 5));
        GradCheck.check(x -> x[0].narrow(0, 1, 2), randn(36, 4, 3));
        GradCheck.check(x -> x[0].select(1, -1), randn(37, 2, 3, 2));
        GradCheck.check(x -> x[0].expand(3, 2, 4), randn(38, 2, 1));
        GradCheck.check(x -> x[0].squeeze(1).unsqueeze(0), randn(39, 3, 1, 2));
        GradCheck.check(x -> x[0].squeeze(), randn(40, 1, 3, 1));
        GradCheck.check(x -> x[0].flatten(1, 2), randn(41, 2, 3, 2));
        GradCheck.check(x -> x[0].t().contiguous(), randn(42, 2, 3));
    }

    @Test void viewsShareMemoryWithTheirBase() {
        Tensor a = Tensor.of(new double[]{1, 2, 3, 4, 5, 6}, 2, 3);
        assertSame(a.storage(), a.t().storage());
        assertSame(a.storage(), a.slice(1, 0, 3, 2).storage());
        assertArrayEquals(new double[]{1, 3, 4, 6}, a.slice(1, 0, 3, 2).toDoubleArray());
        assertArrayEquals(new double[]{4, 5, 6}, a.select(0, 1).toDoubleArray());
        assertArrayEquals(new double[]{1, 4, 2, 5, 3, 6}, a.permute(1, 0).toDoubleArray());
    }

    // ---------------------------------------------------------------- cat, stack

    @Test void catGradientsSplitBack() {
        GradCheck.check(x -> Tensor.cat(List.of(x[0], x[1], x[2]), 1), randn(51, 2, 1), randn(52, 2, 3), randn(53, 2, 2));
        GradCheck.check(x -> Tensor.cat(List.of(x[0].t(), x[1]), 0), randn(54, 3, 2), randn(55, 1, 3));
        GradCheck.check(x -> Tensor.cat(List.of(x[0], x[0].mul(2)), -1), randn(56, 2, 2));
    }

    @Test void padAndUpsampleGradientsAndValues() {
        GradCheck.check(x -> dev.kiln.nn.F.pad(x[0], new int[]{1, 2}, 0.5), randn(71, 2, 3));
        GradCheck.check(x -> dev.kiln.nn.F.pad(x[0], new int[]{0, 1, 2, 0, 1, 1}, 0), randn(72, 2, 3, 4));
        GradCheck.check(x -> dev.kiln.nn.F.pad(x[0], new int[]{-1, 1, 1, -2}, 0), randn(73, 5, 4));   // crop and pad at once
        GradCheck.check(x -> dev.kiln.nn.F.upsampleNearest(x[0], 2), randn(74, 1, 2, 3, 2));
        Tensor x = Tensor.of(new double[]{1, 2, 3, 4}, 1, 1, 2, 2);
        assertArrayEquals(new double[]{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, new dev.kiln.nn.Upsample(2).forward(x).toDoubleArray());
        assertArrayEquals(new double[]{9, 1, 2, 9, 9, 3, 4, 9}, dev.kiln.nn.F.pad(x.reshape(2, 2), new int[]{1, 1}, 9).toDoubleArray());
        assertArrayEquals(new double[]{0, 0, 1, 2, 3, 4}, dev.kiln.nn.F.pad(x.reshape(2, 2), new int[]{0, 0, 1, 0}, 0).toDoubleArray());
        assertArrayEquals(new double[]{2, 4}, dev.kiln.nn.F.pad(x.reshape(2, 2), new int[]{-1, 0}, 0).toDoubleArray());
        assertThrows(IllegalArgumentException.class, () -> dev.kiln.nn.F.pad(x, new int[]{1}, 0));
        assertThrows(IllegalArgumentException.class, () -> dev.kiln.nn.F.pad(x, new int[]{-2, -1}, 0));
        assertThrows(IllegalArgumentException.class, () -> dev.kiln.nn.F.upsampleNearest(x.reshape(4), 2));
    }

    @Test void stackGradients() {
        GradCheck.check(x -> Tensor.stack(List.of(x[0], x[1]), 0), randn(61, 2, 3), randn(62, 2, 3));
        GradCheck.check(x -> Tensor.stack(List.of(x[0], x[1].t()), -1), randn(63, 2, 3), randn(64, 3, 2));
        Tensor s = Tensor.stack(List.of(Tensor.of(new double[]{1, 2}, 2), Tensor.of(new double[]{3, 4}, 2)), 1);
        assertArrayEquals(new int[]{2, 2}, s.shape());
        assertArrayEquals(new double[]{1, 3, 2, 4}, s.toDoubleArray());
    }

    // ---------------------------------------------------------------- indexing

    @Test void gatherGradientScattersBackAndAddsRepeats() {
        Tensor idx = Tensor.of(new long[]{0, 2, 2, 1, 0, 0}, 2, 3);
        GradCheck.check(x -> x[0].gather(1, idx), randn(71, 2, 4));
        GradCheck.check(x -> x[0].t().gather(0, Tensor.of(new long[]{1, 0, 1, 1}, 2, 2)), randn(72, 2, 2));
        Tensor x = Tensor.of(new double[]{10, 11, 12, 13}, 1, 4).requiresGrad(true);
        Tensor y = x.gather(1, Tensor.of(new long[]{3, 3, 0}, 1, 3));
        assertArrayEquals(new double[]{13, 13, 10}, y.toDoubleArray());
        y.sum().backward();
        assertArrayEquals(new double[]{1, 0, 0, 2}, x.grad().toDoubleArray());
    }

    @Test void indexSelectGradientAddsRepeats() {
        Tensor idx = Tensor.of(new long[]{2, 0, 2}, 3);
        GradCheck.check(x -> x[0].indexSelect(0, idx), randn(81, 3, 2));
        GradCheck.check(x -> x[0].indexSelect(1, idx), randn(82, 2, 4));
        GradCheck.check(x -> x[0].t().indexSelect(0, idx), randn(83, 2, 3));
        Tensor x = Tensor.of(new double[]{1, 2, 3}, 3).requiresGrad(true);
        x.indexSelect(0, idx).sum().backward();
        assertArrayEquals(new double[]{1, 0, 2}, x.grad().toDoubleArray());
    }

    @Test void embeddingGradient() {
        Tensor ids = Tensor.of(new long[]{1, 3, 1, 0, 2, 3}, 2, 3);
        GradCheck.check(w -> dev.kiln.nn.F.embedding(ids, w[0]), randn(91, 4, 3));
        // as in PyTorch, a negative id does not wrap: it is out of range
        assertThrows(IndexOutOfBoundsException.class, () -> dev.kiln.nn.F.embedding(Tensor.of(new long[]{-1}, 1),
                Tensor.of(new double[]{1, 2, 3, 4, 5, 6}, 3, 2)));
    }
}
