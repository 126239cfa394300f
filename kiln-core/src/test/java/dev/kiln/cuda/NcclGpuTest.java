package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.dist.JobEnvironment;
import dev.kiln.dist.NcclProcessGroup;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.*;

/**
 * NCCL through Kiln's binding on one GPU, a job of one (the two-GPU checks run under kiln launch on the 2-GPU machine):
 * the version, and each collective leaving a world of one's tensor as it was, on fresh random inputs. Skips without a
 * GPU, without libnccl, or without NCCL_NVLS_ENABLE=0 in the environment.
 */
class NcclGpuTest extends GpuBackendComparison {
    @BeforeAll static void requireNccl() {
        setUpGpu(NcclGpuTest.class);
        Assumptions.assumeTrue(Nccl.available(), "libnccl not found");
        Assumptions.assumeTrue("0".equals(System.getenv("NCCL_NVLS_ENABLE")), "NCCL_NVLS_ENABLE=0 is not set");
    }

    @Test void versionAndAJobOfOne() throws Exception {
        assertTrue(Nccl.version().matches("\\d+\\.\\d+\\.\\d+"), Nccl.version());
        JobEnvironment one = new JobEnvironment(0, 0, 1, "127.0.0.1", 29531, "t");
        try (NcclProcessGroup g = NcclProcessGroup.connect(one, GPU, Duration.ofSeconds(10), Duration.ofSeconds(10))) {
            for (DType t : new DType[]{DType.FLOAT32, DType.BFLOAT16, DType.FLOAT64}) {
                Tensor x = randn(t, 1000), gx = gpu(x);
                g.allReduceSum(gx);
                close(x, gx, 0, "all-reduce of one " + t);
                g.broadcast(gx, 0);
                close(x, gx, 0, "broadcast of one " + t);
                Tensor out = gpu(randn(t, 1000));
                g.communicator().allGather(gx, out);
                close(x, out, 0, "all-gather of one " + t);
                g.communicator().reduceScatterSum(gx, out);
                close(x, out, 0, "reduce-scatter of one " + t);
            }
        }
    }
}
