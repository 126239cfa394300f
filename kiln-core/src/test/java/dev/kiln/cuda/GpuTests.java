package dev.kiln.cuda;

import org.junit.jupiter.api.Assumptions;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** The guard every GPU test class starts with: on a machine without a GPU it says so in the build log and skips. */
public final class GpuTests {
    private GpuTests() {}

    private static final Set<String> ANNOUNCED = ConcurrentHashMap.newKeySet();

    public static void requireGpu(Class<?> testClass) {
        if (!Cuda.isAvailable() && ANNOUNCED.add(testClass.getName())) {
            String why = Cuda.unavailableReason();
            int cut = why.indexOf(". Looked in");
            System.out.println("[gpu] " + testClass.getSimpleName() + " skipped: no CUDA GPU here (" + (cut > 0 ? why.substring(0, cut) : why) + ")");
        }
        Assumptions.assumeTrue(Cuda.isAvailable(), () -> "no CUDA GPU: skipping (" + Cuda.unavailableReason() + ")");
    }
}
