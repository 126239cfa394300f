package dev.kiln.bench;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Backend;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.Pool2dParams;
import dev.kiln.cpu.CpuBackend;
import dev.kiln.cpu.Parallel;

import java.util.Arrays;
import java.util.function.Supplier;

/**
 * CPU kernel benchmark: float32 GEMM throughput and the convolutions of the benchmark CNNs. Each case is warmed
 * up, then timed several times; the median is printed. Calls the backend directly, so only kernel time counts.
 * Run: {@code java --add-modules jdk.incubator.vector -Xms4g -Xmx4g -XX:+AlwaysPreTouch -cp target/classes
 * dev.kiln.bench.CpuBench [all|gemm|conv|pool|quant|blas]}. The fixed, pre-touched heap matters on VMs: without it, runs
 * sometimes paid page faults on every large output allocation (see bench/results/cpu-2026-11-21.md).
 * {@code blas} (not in {@code all}) times Kiln's GEMM beside the machine's OpenBLAS in the same process.
 */
public final class CpuBench {
    private CpuBench() {}

    private static final Backend CPU = CpuBackend.INSTANCE;
    private static final Generator GEN = new Generator(42);
    private static double lastMinMs;

    public static void main(String[] args) {
        String only = args.length > 0 ? args[0] : "all";
        System.out.printf("threads %d, vector %s%n", Parallel.THREADS, jdk.incubator.vector.FloatVector.SPECIES_PREFERRED);
        if (only.equals("all") || only.equals("gemm")) gemm();
        if (only.equals("all") || only.equals("conv")) conv();
        if (only.equals("all") || only.equals("pool")) pool();
        if (only.equals("all") || only.equals("quant")) quant();
        if (only.equals("blas")) BlasPair.run();
    }

    /**
     * Inference at fp32 and int8 ({@link dev.kiln.quant.QuantizedModel}): the zoo's MLP and CNN at batch 1 and 256 (random
     * weights and inputs: speed does not depend on them; calibrated on the input itself), and the int8 GEMM alone
     * against the float GEMM at a Linear layer's shapes.
     */
    private static void quant() {
        for (int[] s : new int[][]{{1, 784, 512}, {256, 784, 512}, {256, 512, 512}}) {
            int m = s[0], k = s[1], n = s[2];
            Tensor a = Tensor.randn(GEN, 1, m, k), wt = Tensor.randn(GEN, 1, k, n);
            byte[] qa = new byte[m * k], qb = new byte[n * k];
            new java.util.Random(1).nextBytes(qa);
            new java.util.Random(2).nextBytes(qb);
            for (int i = 0; i < qa.length; i++) qa[i] = (byte) Math.max(-127, qa[i]);
            for (int i = 0; i < qb.length; i++) qb[i] = (byte) Math.max(-127, qb[i]);
            float[] scales = new float[n], c = new float[m * n];
            Arrays.fill(scales, 1f);
            double ops = 2.0 * m * n * k;
            medianMs(() -> CPU.matmul(a, wt));
            double fp32 = lastMinMs; // the fastest run: on a shared machine, what the code does undisturbed
            medianMs(() -> {
                dev.kiln.cpu.Int8Gemm.gemm(qa, m, k, qb, n, 1f, scales, null, false, c);
                return null;
            });
            double int8 = lastMinMs;
            System.out.printf("linear gemm %3dx%3dx%3d (MxKxN)  best fp32 %8.3f ms %6.1f GFLOP/s   int8 %8.3f ms %6.1f GOP/s   x%.2f%n",
                    m, k, n, fp32, ops / fp32 / 1e6, int8, ops / int8 / 1e6, fp32 / int8);
        }
        for (dev.kiln.train.ModelZoo kind : new dev.kiln.train.ModelZoo[]{dev.kiln.train.ModelZoo.MLP, dev.kiln.train.ModelZoo.CNN}) {
            for (int batch : new int[]{1, 256}) {
                dev.kiln.nn.Model model = kind.build(new Generator(1)).eval();
                Tensor x = Tensor.rand(GEN, batch, 1, 28, 28);
                dev.kiln.nn.Model q = dev.kiln.quant.QuantizedModel.quantize(dev.kiln.backend.QuantFormat.INT8, kind.build(new Generator(1)), java.util.List.of(x),
                        dev.kiln.quant.Calibration.max(1));   // a second copy: quantize converts in place
                medianMs(() -> Tensor.noGrad(() -> model.forward(x)));
                double fp32 = lastMinMs;
                medianMs(() -> q.forward(x));
                double int8 = lastMinMs;
                System.out.printf("inference %-4s batch %3d  best fp32 %8.3f ms (%8.0f img/s)   int8 %8.3f ms (%8.0f img/s)   x%.2f%n",
                        kind.cliName(), batch, fp32, batch * 1000 / fp32, int8, batch * 1000 / int8, fp32 / int8);
                if (batch > 1 && model instanceof dev.kiln.nn.Sequential fs && q instanceof dev.kiln.nn.Sequential qs) layerTimes(fs, qs, x);
            }
        }
    }

    /** Where a Sequential's inference time goes: each layer alone on the output of the ones before it, best of runs. */
    private static void layerTimes(dev.kiln.nn.Sequential fp32, dev.kiln.nn.Sequential int8, Tensor x) {
        Tensor xf = x, xq = x;
        for (int i = 0; i < fp32.size(); i++) {
            dev.kiln.nn.Layer lf = fp32.get(i), lq = int8.get(i);
            Tensor inF = xf, inQ = xq;
            medianMs(() -> Tensor.noGrad(() -> ((dev.kiln.nn.Forward) lf).forward(inF)));
            double f = lastMinMs;
            medianMs(() -> Tensor.noGrad(() -> ((dev.kiln.nn.Forward) lq).forward(inQ)));
            double q = lastMinMs;
            System.out.printf("  layer %2d %-18s fp32 %8.3f ms   int8 %-18s %8.3f ms%n", i, lf.getClass().getSimpleName(), f, lq.getClass().getSimpleName(), q);
            xf = Tensor.noGrad(() -> ((dev.kiln.nn.Forward) lf).forward(inF));
            xq = Tensor.noGrad(() -> ((dev.kiln.nn.Forward) lq).forward(inQ));
        }
    }

    private static void gemm() {
        int[][] shapes = {{256, 256, 256}, {1024, 1024, 1024}, {2048, 2048, 2048},
                {128, 784, 512}, {128, 512, 10}, {512, 128, 784}, {784, 128, 512},
                {16384, 384, 1152}, {16384, 1536, 384}};   // the GPT's (64 x 256 tokens) qkv and second MLP products
        for (int[] s : shapes) {
            int m = s[0], k = s[1], n = s[2];
            Tensor a = Tensor.randn(GEN, 1, m, k), b = Tensor.randn(GEN, 1, k, n);
            double flops = 2.0 * m * n * k;
            double ms = medianMs(() -> CPU.matmul(a, b));
            System.out.printf("gemm %4dx%4dx%4d (MxKxN) %9.3f ms %6.1f GFLOP/s  (best %6.1f)%n", m, k, n, ms, flops / ms / 1e6, flops / lastMinMs / 1e6);
        }
        // the backward products of a Linear layer see transposed views
        Tensor x = Tensor.randn(GEN, 1, 1024, 1024), w = Tensor.randn(GEN, 1, 1024, 1024);
        double flops = 2.0 * 1024 * 1024 * 1024;
        double ms = medianMs(() -> CPU.matmul(x, w.transpose(1, 2)));
        System.out.printf("gemm 1024 A·Bᵀ             %9.3f ms %6.1f GFLOP/s  (best %6.1f)%n", ms, flops / ms / 1e6, flops / lastMinMs / 1e6);
        ms = medianMs(() -> CPU.matmul(x.transpose(1, 2), w));
        System.out.printf("gemm 1024 Aᵀ·B             %9.3f ms %6.1f GFLOP/s  (best %6.1f)%n", ms, flops / ms / 1e6, flops / lastMinMs / 1e6);
    }

    private static void conv() {
        // MNIST CNN at batch 128: 1x28x28 -> conv 32 k3 -> 32x26x26 -> conv 64 k3 -> 64x24x24
        convCase("mnist conv1  128x1x28x28  -> 32 k3", new int[]{128, 1, 28, 28}, new int[]{32, 1, 3, 3}, Conv2dParams.of(1, 0, 1, 1), true);
        convCase("mnist conv2  128x32x26x26 -> 64 k3", new int[]{128, 32, 26, 26}, new int[]{64, 32, 3, 3}, Conv2dParams.of(1, 0, 1, 1), true);
        // CIFAR CNN: 3x32x32, 32/64 channels, pad 1
        convCase("cifar conv1  128x3x32x32  -> 32 k3p1", new int[]{128, 3, 32, 32}, new int[]{32, 3, 3, 3}, Conv2dParams.of(1, 1, 1, 1), true);
        convCase("cifar conv2  128x32x16x16 -> 64 k3p1", new int[]{128, 32, 16, 16}, new int[]{64, 32, 3, 3}, Conv2dParams.of(1, 1, 1, 1), true);
        convCase("imagenet-ish 16x3x224x224 -> 64 k3p1", new int[]{16, 3, 224, 224}, new int[]{64, 3, 3, 3}, Conv2dParams.of(1, 1, 1, 1), false);
        // the small ResNet's (kiln bench's resnet_small, batch 128): its three stages at 28, 14 and 7 pixels a side
        convCase("resnet1 128x32x28x28 -> 32 k3p1", new int[]{128, 32, 28, 28}, new int[]{32, 32, 3, 3}, Conv2dParams.of(1, 1, 1, 1), true);
        convCase("resnet2 128x32x28x28 -> 64 k3s2p1", new int[]{128, 32, 28, 28}, new int[]{64, 32, 3, 3}, Conv2dParams.of(2, 1, 1, 1), true);
        convCase("resnet2 128x64x14x14 -> 64 k3p1", new int[]{128, 64, 14, 14}, new int[]{64, 64, 3, 3}, Conv2dParams.of(1, 1, 1, 1), true);
        convCase("resnet2 128x32x28x28 -> 64 k1s2", new int[]{128, 32, 28, 28}, new int[]{64, 32, 1, 1}, Conv2dParams.of(2, 0, 1, 1), true);
        convCase("resnet3 128x64x14x14 -> 128 k3s2p1", new int[]{128, 64, 14, 14}, new int[]{128, 64, 3, 3}, Conv2dParams.of(2, 1, 1, 1), true);
        convCase("resnet3 128x128x7x7 -> 128 k3p1", new int[]{128, 128, 7, 7}, new int[]{128, 128, 3, 3}, Conv2dParams.of(1, 1, 1, 1), true);
    }

    private static void pool() {
        // the MNIST CNN's pooling after conv2
        Tensor x = Tensor.randn(GEN, 128, 64, 24, 24);
        Pool2dParams pool = Pool2dParams.of(2, 2, 0);
        Tensor[] yi = CPU.maxPool2d(x, pool);
        Tensor gy = Tensor.randn(GEN, yi[0].shape());
        double fwd = medianMs(() -> CPU.maxPool2d(x, pool)[0]);
        double bwd = medianMs(() -> CPU.maxPool2dBackward(gy, yi[1], x.shape(), pool));
        System.out.printf("max_pool2d 128x64x24x24 k2s2            fwd %7.2f ms  bwd %7.2f ms%n", fwd, bwd);
    }

    private static void convCase(String name, int[] xs, int[] ws, Conv2dParams p, boolean backward) {
        Tensor x = Tensor.randn(GEN, xs), w = Tensor.randn(GEN, ws), bias = Tensor.randn(GEN, ws[0]);
        Tensor y = CPU.conv2d(x, w, bias, p);
        double flops = 2.0 * y.numel() * ws[1] * ws[2] * ws[3];
        double fwd = medianMs(() -> CPU.conv2d(x, w, bias, p));
        double fwdBest = lastMinMs;
        System.out.printf("conv %-38s fwd %7.2f ms (best %7.2f, %5.1f GFLOP/s)", name, fwd, fwdBest, flops / fwdBest / 1e6);
        if (backward) {
            Tensor gy = Tensor.randn(GEN, y.shape());
            double bi = medianMs(() -> CPU.conv2dBackwardInput(gy, w, xs, p)), biBest = lastMinMs;
            double bw = medianMs(() -> CPU.conv2dBackwardWeight(gy, x, ws, p)), bwBest = lastMinMs;
            System.out.printf("  bwd-input %7.2f ms (best %7.2f)  bwd-weight %7.2f ms (best %7.2f)  total %7.2f ms (best %7.2f)",
                    bi, biBest, bw, bwBest, fwd + bi + bw, fwdBest + biBest + bwBest);
        }
        System.out.println();
    }

    /**
     * Warms up for about a second (at least 3 runs), then returns the median of up to 15 timed runs (about 2 s).
     * The fastest run is kept too ({@link #lastMinMs}): on a shared machine it shows what the code does undisturbed.
     */
    private static double medianMs(Supplier<Tensor> f) {
        long warmEnd = System.nanoTime() + 1_000_000_000L;
        for (int i = 0; i < 3 || System.nanoTime() < warmEnd; i++) f.get();
        double[] t = new double[15];
        int runs = 0;
        long end = System.nanoTime() + 2_000_000_000L;
        while (runs < t.length && (runs < 3 || System.nanoTime() < end)) {
            long t0 = System.nanoTime();
            f.get();
            t[runs++] = (System.nanoTime() - t0) / 1e6;
        }
        double[] r = Arrays.copyOf(t, runs);
        Arrays.sort(r);
        lastMinMs = r[0];
        return r[runs / 2];
    }

}
