package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Tensor;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * cuBLASLt's timed choice outlives the process: a handle times a product's candidates and writes its pick to the file; a
 * new handle reading that file takes the pick without timing (nothing more written) and computes the same product.
 */
class CublasLtChoicesGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireGpu() { setUpGpu(CublasLtChoicesGpuTest.class); }

    @Test void aTimedChoiceIsTakenByTheNextProcess(@TempDir Path dir) throws Exception {
        CudaDevice dev = CudaDevice.get(0);
        Assumptions.assumeTrue(Blas.lt(dev) != null, "no cuBLASLt");
        CudaBackend be = CudaBackend.of(0);
        int m = 384, n = 256, k = 320;
        // column-major D (m x n) = Aᵀ·B with A k x m and B k x n: row-major d (n, m) = b (n, k) · a (m, k)ᵀ
        Tensor a = gpu(randn(DType.BFLOAT16, m, k)), b = gpu(randn(DType.BFLOAT16, n, k));
        Tensor d1 = Tensor.zeros(new int[]{n, m}, DType.BFLOAT16, GPU), d2 = Tensor.zeros(new int[]{n, m}, DType.BFLOAT16, GPU);
        Tensor workspace = Tensor.zeros(new int[]{(int) (Cublas.RECOMMENDED_WORKSPACE_BYTES / 4)}, DType.FLOAT32, GPU);
        Path file = TimedChoicesFile.fileFor(dir, "cublaslt", String.valueOf(Cublas.libraryVersion()), dev.name());
        dev.makeCurrent();
        long stream = dev.stream().address();
        CublasLt first = CublasLt.create(), second = CublasLt.create();
        try {
            first.setTimedChoices(new TimedChoicesFile(file));
            assertTrue(first.matmul(DType.BFLOAT16, false, CublasLt.Epilogue.DEFAULT, false, true, false, m, n, k, be.ptr(a), k, be.ptr(b), k,
                    be.ptr(d1), m, 0, be.ptr(workspace), Cublas.RECOMMENDED_WORKSPACE_BYTES, stream, true), "cuBLASLt took the product");
            assertTrue(first.timed(DType.BFLOAT16, CublasLt.Epilogue.DEFAULT, m, n, k));
            Assumptions.assumeTrue(Files.exists(file), "one candidate only: nothing to time, nothing kept");
            String kept = Files.readString(file);
            assertEquals(1, kept.lines().count(), kept);

            second.setTimedChoices(new TimedChoicesFile(file));
            assertTrue(second.matmul(DType.BFLOAT16, false, CublasLt.Epilogue.DEFAULT, false, true, false, m, n, k, be.ptr(a), k, be.ptr(b), k,
                    be.ptr(d2), m, 0, be.ptr(workspace), Cublas.RECOMMENDED_WORKSPACE_BYTES, stream, true));
            assertTrue(second.timed(DType.BFLOAT16, CublasLt.Epilogue.DEFAULT, m, n, k), "the kept choice counts as timed");
            assertEquals(kept, Files.readString(file), "the second handle timed nothing, so wrote nothing");
            close(d1.to(Device.CPU), d2, 2e-2, "the first handle's product");
            Tensor expected = b.to(Device.CPU).to(DType.FLOAT32).matmul(a.to(Device.CPU).to(DType.FLOAT32).transpose(0, 1));
            close(expected, d2.to(DType.FLOAT32), 2e-2, "the product itself");
        } finally {
            first.close();
            second.close();
        }
    }
}
