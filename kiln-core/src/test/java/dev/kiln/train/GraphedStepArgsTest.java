package dev.kiln.train;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Linear;
import dev.kiln.optim.Adam;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** What a graphed step refuses before it touches a device (runs without a GPU). */
class GraphedStepArgsTest {
    private final Linear model = new Linear(4, 2, new Generator(1));
    private final Adam opt = new Adam(model.parameters(), 1e-3);

    @Test void needsACudaDevice() {
        var e = assertThrows(IllegalArgumentException.class, () -> new GraphedStep(model, new CrossEntropyLoss(), opt, new int[]{8, 4},
                DType.FLOAT32, new int[]{8}, DType.INT64, Device.CPU));
        assertTrue(e.getMessage().contains("needs a CUDA device"), e.getMessage());
    }

    @Test void refusesLossScalingWithoutAScalerAndNoWarmup() {
        var fp16 = assertThrows(IllegalArgumentException.class, () -> new GraphedStep(model, new CrossEntropyLoss(), opt, new int[]{8, 4},
                DType.FLOAT32, new int[]{8}, DType.INT64, Device.cuda(0), Precision.FP16, null, 3));
        assertTrue(fp16.getMessage().contains("needs a GradScaler"), fp16.getMessage());
        var warm = assertThrows(IllegalArgumentException.class, () -> new GraphedStep(model, new CrossEntropyLoss(), opt, new int[]{8, 4},
                DType.FLOAT32, new int[]{8}, DType.INT64, Device.cuda(0), Precision.FP32, 0));
        assertTrue(warm.getMessage().contains("warm-up"), warm.getMessage());
        Trainer t = new Trainer(model, new CrossEntropyLoss(), opt, null, Precision.FP16);
        assertDoesNotThrow(() -> t.useCudaGraphs(true), "an fp16 step's loss scaling is decided on the device, so it can be graphed");
    }

    @Test void trainConfigChecksTheOption() {
        Path p = Path.of("x");
        var e = assertThrows(IllegalArgumentException.class, () -> new TrainConfig(ModelZoo.MLP, 1, 128, OptimizerKind.ADAM, 1e-3, 0,
                Device.CPU, p, p, 0, 0, Precision.FP32, true));
        assertTrue(e.getMessage().contains("--cuda-graphs needs a CUDA device"), e.getMessage());
        assertTrue(new TrainConfig(ModelZoo.MLP, 1, 128, OptimizerKind.ADAM, 1e-3, 0, Device.cuda(0), p, p, 0, 0, Precision.FP16, true).cudaGraphs());
        assertFalse(new TrainConfig(ModelZoo.MLP, 1, 128, OptimizerKind.ADAM, 1e-3, 0, Device.CPU, p, p, 0, 0).cudaGraphs());
    }
}
