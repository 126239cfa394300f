package dev.kiln.models;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import dev.kiln.optim.Adam;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** The zoo's ResNets: torchvision's parameter counts and state-dict names, shapes, and a small one that learns. */
class ResNetTest {
    @Test void parameterCountsAreTorchvisions() {
        // torchvision.models.resnet18() / 34 / 50 with 1000 classes, and resnet18(num_classes=10)
        assertEquals(11_689_512, ResNet.resnet18(1000, new Generator(0)).parameterCount());
        assertEquals(21_797_672, ResNet.resnet34(1000, new Generator(0)).parameterCount());
        assertEquals(25_557_032, ResNet.resnet50(1000, new Generator(0)).parameterCount());
        assertEquals(11_181_642, ResNet.resnet18(10, new Generator(0)).parameterCount());
    }

    @Test void stateDictNamesAreTorchvisions() {
        Map<String, Tensor> sd = ResNet.resnet50(1000, new Generator(0)).stateDict();
        for (String name : List.of("conv1.weight", "bn1.weight", "bn1.running_var", "bn1.num_batches_tracked", "layer1.0.conv1.weight",
                "layer1.0.conv3.weight", "layer1.0.bn3.bias", "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_mean",
                "layer4.2.conv2.weight", "fc.weight", "fc.bias")) {
            assertTrue(sd.containsKey(name), name + " missing from " + sd.keySet());
        }
        assertEquals(320, sd.size(), "torchvision's resnet50 state dict has 320 entries");
        assertArrayEquals(new int[]{256, 64, 1, 1}, sd.get("layer1.0.downsample.0.weight").shape());
        assertArrayEquals(new int[]{128, 128, 3, 3}, sd.get("layer2.0.conv2.weight").shape());
        Map<String, Tensor> r18 = ResNet.resnet18(1000, new Generator(0)).stateDict();
        assertEquals(122, r18.size(), "torchvision's resnet18 state dict has 122 entries");
        assertFalse(r18.containsKey("layer1.0.downsample.0.weight"), "resnet18's first stage keeps its shape: no downsample");
        assertArrayEquals(new int[]{128, 64, 1, 1}, r18.get("layer2.0.downsample.0.weight").shape());
    }

    @Test void convolutionsStartFromKaimingNormalFanOut() {
        Tensor w = ResNet.resnet18(10, new Generator(3)).stateDict().get("layer3.1.conv2.weight");   // 256 x 256 x 3 x 3
        double[] v = w.toDoubleArray();
        double sq = 0;
        for (double x : v) sq += x * x;
        double std = Math.sqrt(sq / v.length), want = Math.sqrt(2.0 / (256 * 9));
        assertEquals(want, std, want * 0.02);
    }

    @Test void shapesThroughTheNetworks() {
        Tensor x = Tensor.randn(new Generator(1), 2, 3, 64, 64);
        ResNet r18 = ResNet.resnet18(7, new Generator(0));
        r18.eval();
        assertArrayEquals(new int[]{2, 7}, r18.forward(x).shape());
        Tensor small = Tensor.randn(new Generator(1), 3, 1, 28, 28);
        assertArrayEquals(new int[]{3, 10}, ResNet.small(1, 10, new Generator(0)).forward(small).shape());
    }

    /** A few Adam steps on a fixed batch drive the loss down: the residual adds and batch norms pass gradients. */
    @Test void theSmallResNetLearnsAFixedBatch() {
        ResNet m = ResNet.small(3, 4, new Generator(5));
        Tensor x = Tensor.randn(new Generator(6), 8, 3, 32, 32), y = Tensor.of(new long[]{0, 1, 2, 3, 0, 1, 2, 3}, 8);
        Adam opt = new Adam(m.parameters(), 3e-3);
        double first = 0, last = 0;
        for (int step = 0; step < 12; step++) {
            opt.zeroGrad();
            Tensor loss = F.crossEntropy(m.forward(x), y);
            loss.backward();
            opt.step();
            if (step == 0) first = loss.item();
            last = loss.item();
        }
        assertTrue(last < first * 0.5, "loss " + first + " -> " + last);
    }

    @Test void movesToFloat64InPlace() {
        ResNet m = ResNet.small(1, 10, new Generator(0));
        Tensor w = m.stateDict().get("layer2.0.conv1.weight");
        ResNet same = m.to(DType.FLOAT64);
        assertSame(m, same);
        assertSame(w, m.stateDict().get("layer2.0.conv1.weight"));
        assertEquals(DType.FLOAT64, w.dtype());
    }
}
