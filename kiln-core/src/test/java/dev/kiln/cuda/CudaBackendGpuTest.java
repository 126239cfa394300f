package dev.kiln.cuda;

import dev.kiln.MemoryScope;

import dev.kiln.Backends;
import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.backend.UnaryOp;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
/** The backend itself on cuda:0: transfers, clear errors, device memory held steady, the allocator. Skips without a GPU. */
class CudaBackendGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(CudaBackendGpuTest.class); }

    @Test void transfersRoundTripEveryDtype() {
        for (DType t : DType.values()) {
            Tensor c = randn(DType.FLOAT64, 3, 5, 7).mul(10).to(t);
            Tensor g = gpu(c);
            assertEquals(GPU, g.device());
            assertArrayEquals(c.toDoubleArray(), g.toDoubleArray(), 0.0, t + " round trip");
            assertArrayEquals(c.toDoubleArray(), g.cpu().toDoubleArray(), 0.0, t + " cpu()");
        }
    }

    @Test void errorsAreClear() {
        Tensor g = gpu(randn(DType.FLOAT32, 3)), c = randn(DType.FLOAT32, 3);
        IllegalArgumentException mixed = assertThrows(IllegalArgumentException.class, () -> g.add(c));
        assertTrue(mixed.getMessage().contains("cuda:0") && mixed.getMessage().contains("cpu"), mixed.getMessage());
        CudaException.OutOfMemory oom = assertThrows(CudaException.OutOfMemory.class,
                () -> Tensor.empty(new int[]{1 << 20, 1 << 20, 64}, DType.FLOAT32, GPU));
        assertTrue(oom.getMessage().contains("out of memory") && oom.getMessage().contains("bytes"), oom.getMessage());
        // the device still works afterwards
        close(g.cpu().add(1), g.add(1), 0, "after OOM");
        g.close();
        IllegalStateException released = assertThrows(IllegalStateException.class, () -> g.add(1));
        assertTrue(released.getMessage().contains("released"), released.getMessage());
        if (Cuda.deviceCount() == 1) {
            assertThrows(CudaException.NoDevice.class, () -> Backends.get(Device.cuda(1)));
        }
    }

    @Test void tenThousandTrainingStepsHoldDeviceMemorySteady() {
        CudaAllocator alloc = CudaDevice.get(0).allocator();
        Generator g = new Generator(7);
        Tensor w1 = Tensor.randn(g, new int[]{16, 32}, DType.FLOAT32, GPU).mul(0.3).detach().requiresGrad(true);
        Tensor b1 = Tensor.zeros(new int[]{32}, DType.FLOAT32, GPU).requiresGrad(true);
        Tensor w2 = Tensor.randn(g, new int[]{32, 4}, DType.FLOAT32, GPU).mul(0.3).detach().requiresGrad(true);
        Tensor b2 = Tensor.zeros(new int[]{4}, DType.FLOAT32, GPU).requiresGrad(true);
        Tensor x = Tensor.randn(g, new int[]{64, 16}, DType.FLOAT32, GPU);
        Tensor y = x.matmul(Tensor.randn(g, new int[]{16, 4}, DType.FLOAT32, GPU)).tanh().detach();
        List<Tensor> params = List.of(w1, b1, w2, b2);
        CudaAllocator.Stats warm = null;
        double first = 0, last = 0;
        long t0 = System.nanoTime();
        int steps = 10_000;
        for (int step = 0; step < steps; step++) {
            try (MemoryScope scope = MemoryScope.open()) {
                Tensor h = x.matmul(w1).add(b1).relu();
                Tensor loss = h.matmul(w2).add(b2).sub(y).pow(2).mean();
                loss.backward();
                Tensor.noGrad(() -> {
                    for (Tensor p : params) p.copyFrom(p.sub(p.grad().mul(0.05)));
                    return null;
                });
                for (Tensor p : params) p.zeroGrad();
                if (step == 0) first = loss.item();
                if (step == steps - 1) last = loss.item();
            }
            if (step == 20) warm = alloc.stats();
        }
        double seconds = (System.nanoTime() - t0) / 1e9;
        CudaAllocator.Stats end = alloc.stats();
        System.out.printf("training loop: %d steps in %.2f s (%.1f us/step); loss %.5f -> %.5f; allocator after step 20: %s; at the end: %s%n",
                steps, seconds, seconds * 1e6 / steps, first, last, warm, end);
        assertTrue(last < first * 0.5, "the loss should fall: " + first + " -> " + last);
        assertEquals(warm.allocCalls(), end.allocCalls(), "cuMemAlloc was called after the first steps");
        assertEquals(warm.reservedBytes(), end.reservedBytes(), "reserved device memory grew");
        // other tests' garbage may be collected (and its blocks returned) during the loop, so allocated may only fall
        assertTrue(end.allocatedBytes() <= warm.allocatedBytes(), "allocated device memory grew: " + warm + " -> " + end);
    }

    @Test void allocatorReusesBlocks() {
        CudaAllocator alloc = CudaDevice.get(0).allocator();
        List<Tensor> ts = new ArrayList<>();
        for (int i = 0; i < 10; i++) ts.add(Tensor.empty(new int[]{1000 + i}, DType.FLOAT32, GPU));
        ts.forEach(Tensor::close);
        long calls = alloc.stats().allocCalls();
        for (int i = 0; i < 10; i++) Tensor.empty(new int[]{1000 + i}, DType.FLOAT32, GPU).close();
        assertEquals(calls, alloc.stats().allocCalls(), "freed blocks of the same size class were not reused: " + alloc.stats());
        assertEquals(512, CudaAllocator.roundSize(1));
        assertEquals(2L << 20, CudaAllocator.roundSize((1L << 20) + 1));
    }
}
