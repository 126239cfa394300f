package dev.kiln.compress;

import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Model;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;
import dev.kiln.optim.Adam;
import dev.kiln.train.LrSchedule;
import dev.kiln.train.ModelZoo;
import dev.kiln.train.OptimizerKind;
import dev.kiln.train.Precision;
import dev.kiln.train.TrainConfig;
import dev.kiln.train.TrainListener;
import dev.kiln.train.TrainRun;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Magnitude and 2:4 pruning: exact amounts, valid masks, and pruned weights that stay zero while fine-tuning. */
class PruningTest {
    @TempDir Path dir;

    private static Sequential net() {
        Generator g = new Generator(3);
        return new Sequential(new Conv2d(1, 4, 3, g), new ReLU(), new Conv2d(4, 8, 3, g), new ReLU(), new Flatten(),
                new Linear(8 * 4 * 4, 20, g), new ReLU(), new Linear(20, 10, g));
    }

    private static long zeros(Tensor t) {
        long n = 0;
        for (float v : t.toFloatArray()) if (v == 0) n++;
        return n;
    }

    @Test void perLayerPruningRemovesExactlyTheAmountFromEachLayerAndKeepsTheLargest() {
        Sequential m = net();
        Map<String, float[]> before = new java.util.LinkedHashMap<>();
        Pruning.prunableWeights(m).forEach((k, w) -> before.put(k, w.toFloatArray()));
        PruneMasks masks = Pruning.magnitude(m, 0.3, Pruning.Scope.PER_LAYER);
        assertEquals(List.of("0.weight", "2.weight", "5.weight", "7.weight"), List.copyOf(masks.names()));
        for (var e : Pruning.prunableWeights(m).entrySet()) {
            Tensor w = e.getValue();
            assertEquals(Math.round(0.3 * w.numel()), zeros(w), e.getKey());
            // every pruned magnitude is at most every kept one
            float[] orig = before.get(e.getKey()), now = w.toFloatArray();
            float maxPruned = 0, minKept = Float.MAX_VALUE;
            for (int i = 0; i < orig.length; i++) {
                if (now[i] == 0) maxPruned = Math.max(maxPruned, Math.abs(orig[i]));
                else {
                    minKept = Math.min(minKept, Math.abs(orig[i]));
                    assertEquals(orig[i], now[i], "a kept weight is unchanged");
                }
            }
            assertTrue(maxPruned <= minKept, e.getKey() + ": pruned " + maxPruned + " > kept " + minKept);
        }
        assertEquals(0, zeros(m.stateDict().get("5.bias")), "biases are not pruned");
    }

    @Test void globalPruningHitsTheTotalExactlyWithOneThreshold() {
        Sequential m = net();
        Pruning.magnitude(m, 0.5, Pruning.Scope.GLOBAL);
        long total = 0, zero = 0;
        for (Tensor w : Pruning.prunableWeights(m).values()) {
            total += w.numel();
            zero += zeros(w);
        }
        assertEquals(Math.round(0.5 * total), zero);
        assertEquals((double) zero / total, Pruning.sparsity(m), 1e-12);
        // ties (the zeros of a first round) are counted once: pruning again to a larger amount adds exactly the difference
        Pruning.magnitude(m, 0.75, Pruning.Scope.GLOBAL);
        assertEquals(0.75, Pruning.sparsity(m), 1.0 / total);
    }

    @Test void twoOfFourKeepsExactlyTheTwoLargestOfEveryFour() {
        float[] w = {0.1f, -0.9f, 0.5f, 0.2f, 3, 3, 3, 3, 0, 0, -1, 0.5f};
        assertArrayEquals(new float[]{0, 1, 1, 0, 1, 1, 0, 0, 0, 0, 1, 1}, Pruning.twoOfFourMask(w));
        Sequential m = net();
        PruneMasks masks = Pruning.twoOfFour(m);
        assertFalse(masks.names().contains("0.weight"), "1 channel x 3x3 = 9 per row: not a multiple of 4, left dense");
        assertEquals(List.of("2.weight", "5.weight", "7.weight"), List.copyOf(masks.names()));
        for (String name : masks.names()) {
            float[] v = m.stateDict().get(name).toFloatArray();
            for (int g = 0; g < v.length; g += 4) {
                int kept = 0;
                for (int i = g; i < g + 4; i++) if (v[i] != 0) kept++;
                assertEquals(2, kept, name + " group at " + g);
            }
        }
        assertEquals(0.5, masks.sparsity(), 0);
    }

    @Test void theCubicScheduleRampsToTheAmount() {
        assertEquals(0.5 * (1 - Math.pow(2.0 / 3, 3)), Pruning.scheduledAmount(0.5, 1, 3), 1e-12);
        assertEquals(0.5, Pruning.scheduledAmount(0.5, 3, 3), 0);
        assertThrows(IllegalArgumentException.class, () -> Pruning.scheduledAmount(0.5, 4, 3));
    }

    @Test void prunedWeightsStayZeroThroughAdamStepsWhenTheMasksAreReapplied() {
        Sequential m = net();
        Adam opt = new Adam(m.parameters(), 0.01);
        Tensor x = Tensor.randn(new Generator(1), 8, 1, 8, 8);
        long[] y = {0, 1, 2, 3, 4, 5, 6, 7};
        for (int s = 0; s < 3; s++) { // momentum built before pruning would move pruned weights
            opt.zeroGrad();
            dev.kiln.nn.F.crossEntropy(m.forward(x), Tensor.of(y, 8)).backward();
            opt.step();
        }
        PruneMasks masks = Pruning.magnitude(m, 0.6, Pruning.Scope.GLOBAL);
        double sparsity = Pruning.sparsity(m);
        for (int s = 0; s < 5; s++) {
            opt.zeroGrad();
            dev.kiln.nn.F.crossEntropy(m.forward(x), Tensor.of(y, 8)).backward();
            opt.step();
            masks.apply();
        }
        assertEquals(sparsity, Pruning.sparsity(m), 0);
        assertEquals(sparsity, PruneMasks.fromZeros(m).sparsity(), 0, "the masks come back from the zeros");
    }

    /** A ResNet's convolutions sit in blocks and shortcuts: all of them are found, pruned, and held at zero while it trains. */
    @Test void aResNetsConvolutionsArePrunedAndStayPrunedThroughAdamSteps() {
        for (boolean twoOfFour : new boolean[]{false, true}) {
            Model m = dev.kiln.models.ResNet.small(1, 10, new Generator(2));
            PruneMasks masks = twoOfFour ? Pruning.twoOfFour(m) : Pruning.magnitude(m, 0.5, Pruning.Scope.GLOBAL);
            for (String name : List.of("layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "layer3.1.conv2.weight", "fc.weight")) {
                assertTrue(masks.names().contains(name), name + " in " + masks.names());
            }
            assertEquals(twoOfFour, !masks.names().contains("conv1.weight"), "2:4 leaves the 1-channel 3x3 stem dense");
            assertFalse(masks.names().stream().anyMatch(n -> n.contains("bn")), "batch norms are not pruned");
            Adam opt = new Adam(m.parameters(), 0.01);
            Tensor x = Tensor.randn(new Generator(1), 4, 1, 12, 12), y = Tensor.of(new long[]{0, 1, 2, 3}, 4);
            double sparsity = Pruning.sparsity(m);
            for (int s = 0; s < 2; s++) {
                opt.zeroGrad();
                dev.kiln.nn.F.crossEntropy(m.forward(x), y).backward();
                opt.step();
                masks.apply();
            }
            assertEquals(sparsity, Pruning.sparsity(m), 0, (twoOfFour ? "2:4" : "magnitude") + ": the zeros stay zero");
            PruneMasks back = PruneMasks.fromZeros(m);
            for (String name : masks.names()) assertArrayEquals(masks.mask(name).toFloatArray(), back.mask(name).toFloatArray(), 0f, name + "'s mask comes back from its zeros");
        }
    }

    @Test void fineTuningThroughTrainRunKeepsTheMaskAndSavesZeros() throws Exception {
        Path data = dev.kiln.train.TinyRuns.data(dir.resolve("data"), 40, 20), out = dir.resolve("ft");
        TrainConfig cfg = new TrainConfig(ModelZoo.MLP, 2, 8, OptimizerKind.ADAM, 1e-3, 1, Device.CPU, data, out, 0, 0, Precision.FP32, false, LrSchedule.CONSTANT);
        Model start = ModelZoo.MLP.build(new Generator(5));
        TrainRun.StartFrom from = new TrainRun.StartFrom(start.stateDict(), model -> Pruning.twoOfFour(model)::apply, Map.of());
        TrainRun.finetune(cfg, new PrintWriter(new StringWriter()), TrainListener.NONE, from);
        Map<String, Tensor> saved = Safetensors.read(out.resolve("model.safetensors")).tensors();
        for (String name : List.of("1.weight", "4.weight", "7.weight")) {
            float[] v = saved.get(name).toFloatArray();
            for (int g = 0; g < v.length; g += 4) {
                int kept = 0;
                for (int i = g; i < g + 4; i++) if (v[i] != 0) kept++;
                assertEquals(2, kept, name + " group at " + g + " after two epochs of fine-tuning");
            }
        }
        assertNotEquals(start.stateDict().get("1.bias").toFloatArray()[0], saved.get("1.bias").toFloatArray()[0], "it did train");
    }
}
