package dev.kiln.cpu;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.ops.Normalization;

import java.util.Arrays;
import java.util.function.Supplier;

/**
 * Not a test: times the CPU's parallel loops and the GPT and LSTM steps' products and elementwise ops one by one, in
 * the cases {@code bench/torch_cpu_ref.py ops} times PyTorch's, to see where a many-core step loses to PyTorch's.
 * Run: {@code java --add-modules jdk.incubator.vector -cp ... dev.kiln.cpu.ManyCoreProbe}.
 */
public final class ManyCoreProbe {
    private ManyCoreProbe() {}

    private static final Generator GEN = new Generator(7);
    private static volatile long sink;

    public static void main(String[] args) throws Exception {
        System.out.printf("threads %d, kernel %s, spin %s us, team %s%n", Parallel.THREADS, Sgemm.PREFERRED.kernel.getClass().getSimpleName(),
                dev.kiln.Settings.get().cpuSpinUs(), dev.kiln.Settings.get().cpuTeam());
        loops();
        // the LSTM's step products (h·W_hhᵀ with W_hhᵀ contiguous, and dGates·W_hh), the GPT's Linear products
        gemm("lstm step 64x512x2048", 64, 512, 2048, false, false);
        gemm("lstm back 64x2048x512", 64, 2048, 512, false, false);
        packedB("lstm step, W_hhT packed once", 64, 512, 2048);
        packedB("lstm back, W_hh packed once", 64, 2048, 512);
        gemm("gpt qkv 16384x384x1152 (B^T)", 16384, 384, 1152, false, true);
        gemm("gpt fc 16384x384x1536 (B^T)", 16384, 384, 1536, false, true);
        gemm("gpt fc2 16384x1536x384 (B^T)", 16384, 1536, 384, false, true);
        gemm("gpt dX fc2 16384x384x1536", 16384, 384, 1536, false, false);
        gemm("gpt dW fc 1536x16384x384 (A^T)", 1536, 16384, 384, true, false);
        gemm("gpt dW qkv 1152x16384x384 (A^T)", 1152, 16384, 384, true, false);
        gemm("lstm dW 2048x8192x512 (A^T)", 2048, 8192, 512, true, false);
        gemm("lstm dW 2048x8192x128 (A^T)", 2048, 8192, 128, true, false);
        gemm("square 2048", 2048, 2048, 2048, false, false);
        Tensor x = Tensor.randn(GEN, 16384, 1536), y = Tensor.randn(GEN, 16384, 1536), small = Tensor.randn(GEN, 64, 2048), small2 = Tensor.randn(GEN, 64, 2048);
        Tensor ln = Tensor.randn(GEN, 16384, 384), lw = Tensor.randn(GEN, 384), lb = Tensor.randn(GEN, 384);
        Tensor gates = Tensor.randn(GEN, 64, 2048), c = Tensor.randn(GEN, 64, 512), h = Tensor.empty(new int[]{64, 512}, dev.kiln.DType.FLOAT32, dev.kiln.Device.CPU);
        Tensor cNew = Tensor.empty(new int[]{64, 512}, dev.kiln.DType.FLOAT32, dev.kiln.Device.CPU), act = Tensor.randn(GEN, 64, 2048);
        time("lstm cell 64x512", () -> { CpuBackend.INSTANCE.lstmCell(gates, c, h, cNew, act); return null; });
        fusedSteps(64, 512);
        time("gelu 16384x1536", () -> x.gelu());
        time("add 16384x1536", () -> x.add(y));
        time("add 64x2048", () -> small.add(small2));
        time("layernorm 16384x384", () -> Normalization.layerNorm(ln, new int[]{384}, lw, lb, 1e-5));
        time("empty 16384x1536", () -> Tensor.empty(new int[]{16384, 1536}, dev.kiln.DType.FLOAT32, dev.kiln.Device.CPU));
        time("new float[16384*1536]", () -> { float[] f = new float[16384 * 1536]; sink += f.length; return null; });
    }

    /**
     * The fused LSTM steps (Backend.lstmSteps), step after step as a layer runs them: each step's h (backward: dGates)
     * the one the step before wrote, so that its packed copy is used.
     */
    private static void fusedSteps(int m, int hid) {
        // W_hh and the activated gates as a trained layer has them (1 / sqrt(H) scale, gates in (0, 1)), so that the repeated
        // backward steps neither grow to infinities nor fade to subnormals (either slows the arithmetic)
        var steps = CpuBackend.INSTANCE.lstmSteps(Tensor.randn(GEN, 4 * hid, hid).mul(0.2 / Math.sqrt(hid)));
        Tensor y = Tensor.randn(GEN, 2, m, hid), cs = Tensor.randn(GEN, 2, m, hid), x = Tensor.randn(GEN, m, 4 * hid), act = Tensor.randn(GEN, m, 4 * hid);
        int[] t = {0};
        report("lstm fused step " + m + "x" + hid + " forward", run(() -> {
            int i = t[0]++ & 1;
            steps.forward(y.select(0, i), x, cs.select(0, i), y.select(0, 1 - i), cs.select(0, 1 - i), act);
            return null;
        }, 0), 0);
        Tensor dx = Tensor.randn(GEN, 2, m, 4 * hid).mul(0.01), g = Tensor.randn(GEN, m, hid), dc = Tensor.randn(GEN, 2, m, hid);
        report("lstm fused step " + m + "x" + hid + " backward", run(() -> {
            int i = t[0]++ & 1;
            steps.backward(dx.select(0, i), g, dc.select(0, i), cs.select(0, 0), cs.select(0, 1), act, dx.select(0, 1 - i), dc.select(0, 1 - i));
            return null;
        }, 0), 0);
    }

    /** A parallel loop of THREADS empty chunks: back to back, and after 1 ms idle (the workers parked). */
    private static void loops() throws Exception {
        long[] t = new long[20_000];
        for (int r = 0; r < 2; r++) {
            for (int i = 0; i < t.length; i++) {
                long t0 = System.nanoTime();
                Parallel.range(Parallel.THREADS, 1, (lo, hi) -> sink += lo);
                t[i] = System.nanoTime() - t0;
            }
        }
        report("loop back to back", t, 0);
        long[] idle = new long[300];
        for (int i = 0; i < idle.length; i++) {
            Thread.sleep(1);
            long t0 = System.nanoTime();
            Parallel.range(Parallel.THREADS, 1, (lo, hi) -> sink += lo);
            idle[i] = System.nanoTime() - t0;
        }
        report("loop after 1 ms idle", idle, 0);
    }

    private static void gemm(String name, int m, int k, int n, boolean aT, boolean bT) {
        Tensor a = aT ? Tensor.randn(GEN, k, m).t() : Tensor.randn(GEN, m, k);
        Tensor b = bT ? Tensor.randn(GEN, n, k).t() : Tensor.randn(GEN, k, n);
        long[] t = run(() -> a.matmul(b), (long) m * n * k);
        report(name, t, 2.0 * m * n * k);
    }

    /** The product with B packed once beforehand ({@link Sgemm#packedB}). */
    private static void packedB(String name, int m, int k, int n) {
        Sgemm e = Sgemm.PREFERRED;
        float[] a = Tensor.randn(GEN, m, k).toFloatArray(), b = Tensor.randn(GEN, k, n).toFloatArray();
        float[] pb = new float[Sgemm.packedLength(n, k, e.NR)];
        e.packAllB(new Sgemm.Mat(b, 0, n, 1), k, n, pb);
        long[] t = run(() -> {
            float[] c = new float[m * n];
            e.packedB(m, n, k, new Sgemm.Mat(a, 0, k, 1), pb, c, 0, n, false);
            return c;
        }, 0);
        report(name, t, 2.0 * m * n * k);
    }

    private static void time(String name, Supplier<Object> op) {
        report(name, run(op, 1 << 24), 0);
    }

    /** Warms up for at least 1 s (and 10 calls), then times calls for 2 s (at least 15, at most 400). */
    private static long[] run(Supplier<Object> op, long work) {
        long end = System.nanoTime() + 1_000_000_000L;
        for (int i = 0; i < 10 || System.nanoTime() < end; i++) close(op.get());
        long[] t = new long[400];
        int n = 0;
        end = System.nanoTime() + 2_000_000_000L;
        while (n < t.length && (n < 15 || System.nanoTime() < end)) {
            long t0 = System.nanoTime();
            Object r = op.get();
            t[n++] = System.nanoTime() - t0;
            close(r);
        }
        return Arrays.copyOf(t, n);
    }

    private static void close(Object r) {
        if (r instanceof Tensor x) x.close();
    }

    private static void report(String name, long[] t, double flops) {
        long[] s = t.clone();
        Arrays.sort(s);
        double med = s[s.length / 2] / 1e3, best = s[0] / 1e3;
        System.out.printf("%-34s median %10.1f us  best %10.1f us%s%n", name, med, best,
                flops > 0 ? String.format("  %7.1f GFLOP/s (median)", flops / med / 1e3) : "");
    }
}
