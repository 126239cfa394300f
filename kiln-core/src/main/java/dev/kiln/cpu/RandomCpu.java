package dev.kiln.cpu;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.HostArrays;
import dev.kiln.Tensor;

import static dev.kiln.cpu.CpuStorage.arrayOf;

/**
 * The CPU kernels of the Random family: uniform and normal fills from the counter-based generator
 * ({@link Generator#uniformAt}), so element i depends only on (seed, i), whatever the thread split.
 */
final class RandomCpu {
    private RandomCpu() {}

    static void uniform(Tensor out, long seed, double lo, double hi) { fill(out, seed, lo, hi, false); }

    static void normal(Tensor out, long seed, double mean, double std) { fill(out, seed, mean, std, true); }

    /** U(a, b), or N(a, b^2) when normal. */
    private static void fill(Tensor out, long seed, double a, double b, boolean normal) {
        Object arr = arrayOf(out);
        DType t = out.dtype();
        int n = (int) out.numel(), off = out.offset();
        Parallel.range(n, 1 << 14, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                double v;
                if (normal) {
                    // Box-Muller on two uniforms of the stream; u1 kept away from 0
                    double u1 = Generator.uniformAt(seed, 2L * i) + 0x1.0p-25, u2 = Generator.uniformAt(seed, 2L * i + 1);
                    v = a + b * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
                } else {
                    v = a + (b - a) * Generator.uniformAt(seed, i);
                }
                HostArrays.set(arr, t, off + i, v);
            }
        });
    }
}
