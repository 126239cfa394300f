package dev.kiln.ops;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.nn.F;
import dev.kiln.nn.F.Reduction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Bad input fails at once with a message that names the op and the offending shapes or dtypes. */
class OpErrorsTest {

    private static void fails(Class<? extends Throwable> type, Executable body, String... fragments) {
        Throwable e = assertThrows(type, body);
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message '" + e.getMessage() + "' lacks '" + f + "'");
    }

    private static void fails(Executable body, String... fragments) { fails(IllegalArgumentException.class, body, fragments); }

    @Test void addShapeMismatch() {
        fails(() -> Tensor.zeros(2, 3).add(Tensor.zeros(4)), "add:", "[2, 3]", "[4]", "cannot be broadcast");
        fails(() -> Tensor.zeros(2, 3).mul(Tensor.zeros(3, 2)), "mul:", "[2, 3]", "[3, 2]");
    }

    @Test void matmulShapeMismatch() {
        fails(() -> Tensor.zeros(2, 3).matmul(Tensor.zeros(4, 5)), "matmul", "(2x3 and 4x5)");
        fails(() -> Tensor.zeros(2, 2, 3).matmul(Tensor.zeros(2, 4, 5)), "matmul", "[2, 2, 3]", "[2, 4, 5]");
        fails(() -> Tensor.zeros(3).matmul(Tensor.zeros(4)), "matmul", "3 and 4");
        fails(() -> Tensor.zeros(3, 2, 3).matmul(Tensor.zeros(2, 3, 1)), "matmul: batch dimensions", "[3, 2, 3]", "[2, 3, 1]");
        fails(() -> F.linear(Tensor.zeros(8, 784), Tensor.zeros(10, 512), null), "linear", "[8, 784]", "[10, 512]", "784", "512");
    }

    @Test void conv2dBadInput() {
        Tensor w = Tensor.zeros(4, 3, 3, 3);
        fails(() -> F.conv2d(Tensor.zeros(3, 28, 28), w, null, 1, 0),
                "conv2d: expected input of rank 4 (N, C, H, W), got shape [3, 28, 28]");
        fails(() -> F.conv2d(Tensor.zeros(1, 2, 8, 8), w, null, 1, 0), "conv2d", "[1, 2, 8, 8]", "2 channels", "[4, 3, 3, 3]", "expects 3");
        fails(() -> F.conv2d(Tensor.zeros(1, 3, 2, 2), w, null, 1, 0), "conv2d", "larger than the padded input 2x2");
        fails(() -> F.conv2d(Tensor.zeros(1, 3, 8, 8), w, Tensor.zeros(5), 1, 0), "conv2d: expected bias of shape [4], got [5]");
        fails(() -> F.conv2d(Tensor.zeros(1, 6, 8, 8), Tensor.zeros(5, 3, 3, 3), null, Conv2dParams.of(1, 0, 1, 2)),
                "conv2d", "5 output channels", "groups=2");
        fails(() -> F.conv2d(Tensor.zeros(1, 3, 8, 8), Tensor.zeros(new int[]{4, 3, 3, 3}, DType.FLOAT64, Device.CPU), null, 1, 0),
                "conv2d", "float32", "float64");
    }

    @Test void poolBadInput() {
        fails(() -> F.maxPool2d(Tensor.zeros(3, 4, 4), 2, 2, 0), "max_pool2d: expected input of rank 4", "[3, 4, 4]");
        fails(() -> F.avgPool2d(Tensor.zeros(1, 1, 2, 2), 3, 1, 0), "avg_pool2d", "larger than the padded input 2x2");
        fails(() -> F.adaptiveAvgPool2d(Tensor.zeros(1, 1, 4, 4), 0, 2), "adaptive_avg_pool2d", "0x2");
    }

    @Test void catAndStackShapeMismatch() {
        fails(() -> Tensor.cat(List.of(Tensor.zeros(2, 3), Tensor.zeros(2, 4)), 0), "cat", "[2, 3]", "[2, 4]", "except in dimension 0");
        fails(() -> Tensor.cat(List.of(Tensor.zeros(2, 3), Tensor.zeros(3)), 0), "cat", "rank 1");
        fails(() -> Tensor.cat(List.of(), 0), "cat", "non-empty");
        fails(() -> Tensor.stack(List.of(Tensor.zeros(2), Tensor.zeros(3)), 0), "stack", "[2]", "[3]");
    }

    @Test void indexDtypesAndRanges() {
        Tensor x = Tensor.zeros(2, 3);
        fails(() -> x.gather(1, Tensor.zeros(2, 1)), "gather: index must be int64, got float32");
        fails(() -> x.gather(1, Tensor.of(new long[]{0, 1}, 2)), "gather", "rank", "[2]");
        fails(IndexOutOfBoundsException.class, () -> x.gather(1, Tensor.of(new long[]{0, 3}, 2, 1)), "gather", "index 3", "size 3");
        fails(() -> x.indexSelect(0, Tensor.of(new int[]{0}, 1)), "index_select: index must be int64, got int32");
        fails(() -> F.embedding(Tensor.of(new float[]{0, 1}), Tensor.zeros(4, 2)), "embedding: ids must be integer", "float32");
        fails(IndexOutOfBoundsException.class, () -> F.embedding(Tensor.of(new long[]{1, 4}, 2), Tensor.zeros(4, 2)),
                "embedding", "4 rows", "[4, 2]", "index 4");
    }

    @Test void crossEntropyTargets() {
        Tensor logits = Tensor.zeros(4, 3);
        fails(() -> F.crossEntropy(logits, Tensor.zeros(4)), "cross_entropy: target must be int64 class indices, got float32");
        fails(() -> F.crossEntropy(logits, Tensor.of(new long[]{0, 1, 2}, 3)), "cross_entropy: expected target of shape [4]", "[4, 3]", "got [3]");
        fails(IndexOutOfBoundsException.class, () -> F.crossEntropy(logits, Tensor.of(new long[]{0, 1, 3, 2}, 4)),
                "cross_entropy: target class out of range for 3 classes", "index 3");
        fails(IndexOutOfBoundsException.class, () -> F.crossEntropy(logits, Tensor.of(new long[]{0, -1, 2, 2}, 4)),
                "cross_entropy", "out of range");
        fails(() -> F.crossEntropy(logits, Tensor.of(new long[]{0, 1, 2, 2}, 4), 1.5, -100, Reduction.MEAN), "label smoothing", "1.5");
        fails(() -> F.nllLoss(logits, Tensor.zeros(new int[]{4}, DType.INT32, Device.CPU), -100, Reduction.MEAN), "nll_loss", "int32");
    }

    @Test void lossAndNormShapes() {
        fails(() -> F.mseLoss(Tensor.zeros(4, 1), Tensor.zeros(4), Reduction.MEAN), "mse_loss", "[4, 1]", "[4]");
        fails(() -> F.binaryCrossEntropyWithLogits(Tensor.zeros(4), Tensor.zeros(5), Reduction.MEAN), "binary_cross_entropy_with_logits", "[4]", "[5]");
        fails(() -> F.layerNorm(Tensor.zeros(2, 5), new int[]{4}, null, null, 1e-5), "layer_norm", "[4]", "[2, 5]");
        fails(() -> F.layerNorm(Tensor.zeros(2, 4), new int[]{4}, Tensor.zeros(3), null, 1e-5), "layer_norm: expected weight of shape [4], got [3]");
        fails(() -> F.batchNorm(Tensor.zeros(1, 3), null, null, null, null, true, 0.1, 1e-5), "batch_norm", "more than 1 value per channel", "[1, 3]");
        fails(() -> F.batchNorm(Tensor.zeros(2, 3), Tensor.zeros(4), Tensor.ones(3), null, null, false, 0.1, 1e-5), "batch_norm", "running_mean", "[3]", "[4]");
        fails(() -> F.dropout(Tensor.zeros(3), 1.5, true, new Generator(1)), "dropout", "1.5");
        fails(() -> F.scaledDotProductAttention(Tensor.zeros(2, 4), Tensor.zeros(3, 5), Tensor.zeros(3, 5), false),
                "scaled_dot_product_attention", "[2, 4]", "[3, 5]");
    }

    @Test void viewErrors() {
        fails(() -> Tensor.zeros(2, 3).reshape(4, 2), "reshape", "[4, 2]", "[2, 3]");
        fails(() -> Tensor.zeros(2, 3).expand(2, 4), "expand", "[2, 3]", "[2, 4]");
        fails(() -> Tensor.zeros(2, 3).select(1, 3), "select", "index 3", "size 3");
        fails(() -> Tensor.zeros(2, 3).permute(0, 0), "permute", "repeats");
        fails(() -> Tensor.zeros(2, 3).sum(2, false), "sum: dimension 2 out of range for a tensor of rank 2");
        fails(() -> Tensor.zeros(2).clamp(1, 0), "clamp", "min 1.0 is greater than max 0.0");
        fails(() -> Tensor.zeros(2, 3).maskedFill(Tensor.zeros(3, 3).gt(0), 1), "masked_fill", "[3, 3]", "[2, 3]");
    }
}
