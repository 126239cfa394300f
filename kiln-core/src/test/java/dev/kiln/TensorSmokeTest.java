package dev.kiln;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class TensorSmokeTest {
    @Test void addBroadcastsAndBackwardSumsToShape() {
        Tensor a = Tensor.of(new float[]{1, 2, 3, 4, 5, 6}, 2, 3).requiresGrad(true);
        Tensor b = Tensor.of(new float[]{10, 20, 30}, 3).requiresGrad(true);
        Tensor c = a.add(b);
        assertArrayEquals(new float[]{11, 22, 33, 14, 25, 36}, c.toFloatArray());
        c.sum().backward();
        assertArrayEquals(new float[]{1, 1, 1, 1, 1, 1}, a.grad().toFloatArray());
        assertArrayEquals(new float[]{2, 2, 2}, b.grad().toFloatArray());
    }

    @Test void matmulMatchesHandComputed() {
        Tensor a = Tensor.of(new float[]{1, 2, 3, 4}, 2, 2);
        Tensor b = Tensor.of(new float[]{5, 6, 7, 8}, 2, 2);
        assertArrayEquals(new float[]{19, 22, 43, 50}, a.matmul(b).toFloatArray());
        assertArrayEquals(new float[]{26, 30, 38, 44}, a.t().matmul(b).toFloatArray());
    }

    @Test void matmulShapeErrorNamesBothShapes() {
        var e = assertThrows(IllegalArgumentException.class, () -> Tensor.zeros(128, 784).matmul(Tensor.zeros(512, 10)));
        assertTrue(e.getMessage().contains("mat1 and mat2 shapes cannot be multiplied (128x784 and 512x10)"), e.getMessage());
    }

    @Test void gradcheckComposite() {
        GradCheck.check(x -> x[0].mul(x[1]).add(x[0].exp()).div(x[1].pow(2).add(1)).tanh().sum(1, false),
                GradCheck.randn(1, 3, 4), GradCheck.randn(2, 4));
    }

    @Test void catAndViews() {
        Tensor a = Tensor.of(new float[]{1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor t = a.t();
        assertFalse(t.isContiguous());
        assertArrayEquals(new float[]{1, 4, 2, 5, 3, 6}, t.toFloatArray());
        assertArrayEquals(new float[]{1, 2, 3, 4, 5, 6, 1, 4, 2, 5, 3, 6},
                Tensor.cat(List.of(a.reshape(6), t.reshape(6)), 0).toFloatArray());
    }
}
