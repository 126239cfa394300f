package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.MemoryScope;
import dev.kiln.data.Batch;
import dev.kiln.data.DataLoader;
import dev.kiln.data.TokenChunks;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Text batches on the GPU: TokenChunks is no TensorDataset and has no transform, yet goes through the pinned buffers. */
class TextDataGpuTest {
    static final Device GPU = Device.cuda(0);

    @BeforeEach void needsAGpu() {
        GpuTests.requireGpu(TextDataGpuTest.class);
    }

    /** Two epochs' inputs and targets, as host arrays, in the order they came. */
    static List<long[]> twoEpochs(DataLoader loader, Device expected) {
        List<long[]> out = new ArrayList<>();
        for (int epoch = 0; epoch < 2; epoch++) {
            for (Batch b : loader) {
                try (MemoryScope s = MemoryScope.open()) {
                    assertEquals(expected, b.inputs().device());
                    assertEquals(DType.INT64, b.inputs().dtype());
                    out.add(b.inputs().toLongArray());
                    out.add(b.targets().toLongArray());
                }
            }
        }
        return out;
    }

    @Test void tokenChunksReachTheGpuAsTheCpuGetsThem() {
        SplittableRandom rng = new SplittableRandom(1);
        int[] tokens = new int[20_000];
        for (int i = 0; i < tokens.length; i++) tokens[i] = rng.nextInt(50_257);
        TokenChunks chunks = TokenChunks.shuffled(tokens, 64, 3);
        List<long[]> cpu;
        try (DataLoader l = DataLoader.builder(chunks).batchSize(24).build()) { cpu = twoEpochs(l, Device.CPU); }
        for (int workers : new int[]{0, 2}) {
            try (DataLoader l = DataLoader.builder(chunks).batchSize(24).workers(workers).device(GPU).build()) {
                List<long[]> gpu = twoEpochs(l, GPU);
                assertTrue(l.pinnedBytes() > 0, "batches went through pinned buffers");
                assertEquals(cpu.size(), gpu.size());
                for (int i = 0; i < cpu.size(); i++) assertArrayEquals(cpu.get(i), gpu.get(i), workers + " workers, batch part " + i);
            }
        }
    }
}
