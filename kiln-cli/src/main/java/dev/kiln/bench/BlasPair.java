package dev.kiln.bench;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.cpu.CpuBackend;
import dev.kiln.cpu.Parallel;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Arrays;

/**
 * Kiln's float32 GEMM against OpenBLAS's {@code cblas_sgemm} (the library Debian's PyTorch multiplies with) in one
 * process, call by call: each round times one Kiln product and one OpenBLAS product back to back, in alternating
 * order, and the figure that counts is the median over rounds of the pair's speed ratio. On a shared VM the host's
 * load drifts over seconds, so two separate processes (or two separate timing loops) compare different machines;
 * a pair of neighbouring calls sees the same one. Run with the JVM's {@code --enable-native-access=ALL-UNNAMED};
 * {@code OPENBLAS_CORETYPE} picks OpenBLAS's kernels (Haswell for AVX2, as beside {@code -XX:UseAVX=2}), and
 * {@code OPENBLAS_THREAD_TIMEOUT=4} stops its idle threads spinning into Kiln's calls.
 */
final class BlasPair {
    private BlasPair() {}

    private static final int ROW_MAJOR = 101, NO_TRANS = 111;

    static void run() {
        SymbolLookup lib;
        try {   // loaded for good: OpenBLAS's threads outlive any call
            lib = SymbolLookup.libraryLookup("libopenblas.so.0", Arena.global());
        } catch (IllegalArgumentException e) {
            System.out.println("blas: libopenblas.so.0 is not installed (Debian: libopenblas0-pthread); nothing to compare against");
            return;
        }
        Linker linker = Linker.nativeLinker();
        ValueLayout i32 = ValueLayout.JAVA_INT, f32 = ValueLayout.JAVA_FLOAT, ptr = ValueLayout.ADDRESS;
        MethodHandle sgemm = linker.downcallHandle(lib.find("cblas_sgemm").orElseThrow(),
                FunctionDescriptor.ofVoid(i32, i32, i32, i32, i32, i32, f32, ptr, i32, ptr, i32, f32, ptr, i32));
        MethodHandle setThreads = linker.downcallHandle(lib.find("openblas_set_num_threads").orElseThrow(), FunctionDescriptor.ofVoid(i32));
        MethodHandle coreName = linker.downcallHandle(lib.find("openblas_get_corename").orElseThrow(), FunctionDescriptor.of(ptr));
        try {
            setThreads.invokeExact(Parallel.THREADS);
            String core = ((MemorySegment) coreName.invokeExact()).reinterpret(64).getString(0);
            System.out.printf("blas: OpenBLAS core %s, %d threads each%n", core, Parallel.THREADS);
            // the square sizes of issue 13's goal, then the MLP's layer products (batch 128: forward, input and weight gradient)
            int[][] shapes = {{1024, 1024, 1024}, {2048, 2048, 2048}, {128, 784, 512}, {128, 512, 784}, {784, 128, 512}};
            for (int[] s : shapes) {
                try (Arena operands = Arena.ofConfined()) {   // each shape's native copies freed after it
                    pair(s[0], s[1], s[2], sgemm, operands);
                }
            }
        } catch (Throwable e) {
            throw new IllegalStateException("blas: calling OpenBLAS failed", e);
        }
    }

    /** m x k times k x n. */
    private static void pair(int m, int k, int n, MethodHandle sgemm, Arena arena) throws Throwable {
        Generator gen = new Generator(7);
        Tensor a = Tensor.randn(gen, 1, m, k), b = Tensor.randn(gen, 1, k, n);
        MemorySegment na = native32(a, arena), nb = native32(b, arena), nc = arena.allocate((long) m * n * 4, 64);
        double mflop = 2.0 * m * n * k / 1e6; // so mflop / ms is GFLOP/s
        int rounds = mflop > 10_000 ? 12 : mflop > 1_000 ? 40 : 200;
        double[] kiln = new double[rounds], blas = new double[rounds], ratio = new double[rounds];
        for (int r = -rounds / 4; r < rounds; r++) { // the first quarter warms both up
            boolean kilnFirst = (r & 1) == 0;
            double tb = 0, tk = 0;
            for (int half = 0; half < 2; half++) {
                long t0 = System.nanoTime();
                if (kilnFirst == (half == 0)) {
                    CpuBackend.INSTANCE.matmul(a, b);
                    tk = (System.nanoTime() - t0) / 1e6;
                } else {
                    sgemm.invokeExact(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1f, na, k, nb, n, 0f, nc, n);
                    tb = (System.nanoTime() - t0) / 1e6;
                }
            }
            if (r >= 0) {
                kiln[r] = tk;
                blas[r] = tb;
                ratio[r] = tb / tk;
            }
        }
        Arrays.sort(kiln);
        Arrays.sort(blas);
        Arrays.sort(ratio);
        System.out.printf("blas: gemm %4dx%4dx%4d (MxKxN)  Kiln median %6.1f GFLOP/s  OpenBLAS median %6.1f  Kiln/OpenBLAS median of %d pairs %.3f (quartiles %.3f-%.3f)%n",
                m, k, n, mflop / kiln[rounds / 2], mflop / blas[rounds / 2], rounds, ratio[rounds / 2], ratio[rounds / 4], ratio[3 * rounds / 4]);
    }

    private static MemorySegment native32(Tensor t, Arena arena) {
        float[] v = t.toFloatArray();
        MemorySegment s = arena.allocate((long) v.length * 4, 64);
        MemorySegment.copy(v, 0, s, ValueLayout.JAVA_FLOAT, 0, v.length);
        return s;
    }
}
