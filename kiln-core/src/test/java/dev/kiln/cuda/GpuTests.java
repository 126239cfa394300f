package dev.kiln.cuda;

import org.junit.jupiter.api.Assumptions;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** The guard every GPU test class starts with: on a machine without a GPU it says so in the build log and skips. */
public final class GpuTests {
    private GpuTests() {}

    private static final Set<String> ANNOUNCED = ConcurrentHashMap.newKeySet();

    /**
     * A GPU class's first check. {@link GpuTestCondition} already skips classes named {@code *GpuTest} without a GPU
     * (each test reported skipped); this also covers a class run some other way.
     */
    public static void requireGpu(Class<?> testClass) {
        if (!Cuda.isAvailable()) announceSkip(testClass);
        Assumptions.assumeTrue(Cuda.isAvailable(), () -> "no CUDA GPU: skipping (" + Cuda.unavailableReason() + ")");
    }

    /** Says once per class in the build log that its tests are skipped, and why. */
    static void announceSkip(Class<?> testClass) {
        if (ANNOUNCED.add(testClass.getName())) {
            System.out.println("[gpu] " + testClass.getSimpleName() + " skipped: no CUDA GPU here (" + shortReason() + ")");
        }
    }

    /** Why there is no GPU, without the list of every folder the library search tried. */
    static String shortReason() {
        String why = Cuda.unavailableReason();
        int cut = why.indexOf(". Looked in");
        return cut > 0 ? why.substring(0, cut) : why;
    }
}
