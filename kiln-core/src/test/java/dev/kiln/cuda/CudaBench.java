package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.backend.ReduceOp;
import dev.kiln.infer.Predictor;
import dev.kiln.nn.Model;
import dev.kiln.train.ModelZoo;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.function.Supplier;

/**
 * GPU timings for bench/notes-cuda.md: launch overhead and a few ops, timed with device events around many
 * repetitions after a warm-up (median of 5 batches). Run with {@code run.sh bench}.
 */
public final class CudaBench {
    private CudaBench() {}

    static final Device GPU = Device.cuda(0);

    public static void main(String[] args) {
        if (!Cuda.isAvailable()) {
            System.out.println("no CUDA GPU: " + Cuda.unavailableReason());
            return;
        }
        CudaDevice dev = CudaDevice.get(0);
        CudaBackend be = CudaBackend.of(0);
        try {
            System.out.println(DeviceReport.describe().strip());
        } catch (RuntimeException e) {
            System.out.println("device report failed: " + e);
        }
        System.out.println("device: " + dev + ", driver CUDA " + Cuda.driverVersion() + ", NVRTC " + Nvrtc.version());
        Generator g = new Generator(1);
        if (Arrays.asList(args).contains("argsort-flat")) {   // one shape alone, for a profiler
            Tensor flat = Tensor.randn(g, new int[]{1 << 24}, DType.FLOAT32, GPU);
            time("argsort f32 2^24", 4L << 24, () -> flat.argsort(0, false));
            return;
        }
        if (Arrays.asList(args).contains("sorting")) {
            sorting(g);
            return;
        }
        if (Arrays.asList(args).contains("maps")) {
            maps(g, be);
            return;
        }
        if (Arrays.asList(args).contains("gelu-linear")) {
            geluLinear(g, be);
            return;
        }
        if (Arrays.asList(args).contains("bias-grad")) {
            biasGrad(g, be);
            return;
        }
        for (String a : args) {
            if (a.startsWith("infer-")) {   // infer-resnet50[-bf16] etc.: one batch-256 prediction between two marker fills, for Nsight Compute
                String[] parts = a.substring(6).split("-");
                inferOnce(dev, be, ModelZoo.parse(parts[0]), parts.length > 1 && parts[1].equals("bf16") ? DType.BFLOAT16 : DType.FLOAT32);
                return;
            }
        }

        // launch overhead: a 1-element fill, host-side cost per call and device throughput of tiny kernels
        Tensor one = Tensor.zeros(new int[]{1}, DType.FLOAT32, GPU);
        for (int i = 0; i < 2000; i++) be.fill(one, i + 1);
        dev.synchronize();
        int n = 100_000;
        long t0 = System.nanoTime();
        for (int i = 0; i < n; i++) be.fill(one, i + 1);
        long t1 = System.nanoTime();
        dev.synchronize();
        long t2 = System.nanoTime();
        System.out.printf("launch: %.2f us per fill launch on the host (queueing), %.2f us per launch including the device drain%n",
                (t1 - t0) / 1e3 / n, (t2 - t0) / 1e3 / n);
        Tensor small = Tensor.randn(g, new int[]{64}, DType.FLOAT32, GPU);
        time("binary add, 64 elements (op layer, alloc from cache)", 0, () -> small.add(small));

        Tensor big = Tensor.randn(g, new int[]{1 << 26}, DType.FLOAT32, GPU);    // 256 MiB
        Tensor big2 = Tensor.randn(g, new int[]{1 << 26}, DType.FLOAT32, GPU);
        long bytes = 4L << 26;
        time("device copy 256 MiB (cuMemcpyDtoD)", 2 * bytes, () -> { Tensor c = Tensor.empty(big.shape(), DType.FLOAT32, GPU); be.copy(c, big); return c; });
        time("add f32 2^26 (contiguous float4 path)", 3 * bytes, () -> be.binary(BinaryOp.ADD, big, big2));
        Tensor bv = big.reshape(1 << 13, 1 << 13);
        time("add f32 8192x8192 + transposed (strided path)", 3 * bytes, () -> be.binary(BinaryOp.ADD, bv, big2.reshape(1 << 13, 1 << 13).t()));
        time("gelu f32 2^26", 2 * bytes, () -> big.gelu());
        time("sum f32 2^26 -> scalar", bytes, () -> be.reduce(ReduceOp.SUM, big, new int[]{0}, false));
        time("sum f32 8192x8192 over dim 1 (rows)", bytes, () -> be.reduce(ReduceOp.SUM, bv, new int[]{1}, false));
        time("sum f32 8192x8192 over dim 0 (columns)", bytes, () -> be.reduce(ReduceOp.SUM, bv, new int[]{0}, false));
        Tensor logits = Tensor.randn(g, new int[]{8192, 4096}, DType.FLOAT32, GPU);
        time("softmax f32 8192x4096 dim 1", 2 * 4L * 8192 * 4096, () -> be.softmax(logits, 1, false));
        for (int size : new int[]{1024, 4096}) {
            Tensor a = Tensor.randn(g, new int[]{1, size, size}, DType.FLOAT32, GPU), b = Tensor.randn(g, new int[]{1, size, size}, DType.FLOAT32, GPU);
            for (boolean tf32 : new boolean[]{false, true}) {
                Cuda.setAllowTf32(Device.cuda(0), tf32);
                double flops = 2.0 * size * size * size;
                time("matmul f32 " + size + "^3" + (tf32 ? " tf32" : ""), -flops, () -> be.matmul(a, b));
            }
            Cuda.setAllowTf32(Device.cuda(0), false);
            Tensor ah = a.to(DType.BFLOAT16), bh = b.to(DType.BFLOAT16);
            time("matmul bf16 " + size + "^3", -2.0 * size * size * size, () -> be.matmul(ah, bh));
        }
        Tensor x = Tensor.randn(g, new int[]{32, 64, 56, 56}, DType.FLOAT32, GPU), w = Tensor.randn(g, new int[]{64, 64, 3, 3}, DType.FLOAT32, GPU);
        Conv2dParams p = Conv2dParams.of(1, 1, 1, 1);
        double convFlops = 2.0 * 32 * 64 * 56 * 56 * 64 * 9;
        time("conv2d f32 32x64x56x56, 64 3x3", -convFlops, () -> be.conv2d(x, w, null, p));
        Tensor gy = be.conv2d(x, w, null, p);
        time("conv2d backward input", -convFlops, () -> be.conv2dBackwardInput(gy, w, x.shape(), p));
        time("conv2d backward weight", -convFlops, () -> be.conv2dBackwardWeight(gy, x, w.shape(), p));
        Dnn.setEnabled(false);
        time("conv2d f32 (im2col + own GEMM path)", -convFlops, () -> be.conv2d(x, w, null, p));
        Dnn.setEnabled(true);
        Cuda.setAllowTf32(Device.cuda(0), true);
        time("conv2d f32 tf32 (cuDNN)", -convFlops, () -> be.conv2d(x, w, null, p));
        Cuda.setAllowTf32(Device.cuda(0), false);
        System.out.println("allocator: " + dev.allocator().stats());
    }

    /**
     * Softmax (forward and backward) and a scalar map at the shapes of bench/torch_maps.py (the same timing rule): rows
     * of attention scores (B 64 x H 6 x T 256 rows of 256), a vocabulary, long rows; x * 0.125 over 2^26 elements.
     */
    static void maps(Generator g, CudaBackend be) {
        Tensor scores = Tensor.randn(g, new int[]{98304, 256}, DType.FLOAT32, GPU), scores16 = scores.to(DType.BFLOAT16);
        Tensor gs = Tensor.randn(g, new int[]{98304, 256}, DType.FLOAT32, GPU), gs16 = gs.to(DType.BFLOAT16);
        Tensor ys = be.softmax(scores, 1, false), ys16 = be.softmax(scores16, 1, false);
        Tensor vocab = Tensor.randn(g, new int[]{64, 50257}, DType.FLOAT32, GPU), wide = Tensor.randn(g, new int[]{8192, 4096}, DType.FLOAT32, GPU);
        long sb = 4L * 98304 * 256;
        time("softmax f32 98304x256 dim 1", 2 * sb, () -> be.softmax(scores, 1, false));
        time("softmax bf16 98304x256 dim 1", sb, () -> be.softmax(scores16, 1, false));
        time("softmax backward f32 98304x256 dim 1", 3 * sb, () -> be.softmaxBackward(gs, ys, 1, false));
        time("softmax backward bf16 98304x256 dim 1", 3 * sb / 2, () -> be.softmaxBackward(gs16, ys16, 1, false));
        time("log_softmax f32 64x50257 dim 1", 2 * 4L * 64 * 50257, () -> be.softmax(vocab, 1, true));
        time("softmax f32 8192x4096 dim 1", 2 * 4L * 8192 * 4096, () -> be.softmax(wide, 1, false));
        Tensor big = Tensor.randn(g, new int[]{1 << 26}, DType.FLOAT32, GPU), big16 = big.to(DType.BFLOAT16);
        time("mul scalar f32 2^26", 2 * 4L << 26, () -> be.binaryScalar(BinaryOp.MUL, big, 0.125, false));
        time("mul scalar bf16 2^26", 2 * 2L << 26, () -> be.binaryScalar(BinaryOp.MUL, big16, 0.125, false));
        Tensor heads16 = scores16.reshape(64, 6, 256, 256);
        Tensor future = Tensor.arange(256, GPU).unsqueeze(0).gt(Tensor.arange(256, GPU).unsqueeze(1));
        time("masked_fill bf16 64x6x256x256, a causal 256x256 mask", 2 * 2L * 98304 * 256, () -> heads16.maskedFill(future, Double.NEGATIVE_INFINITY));
        // the general kernel (every layout; what contiguous tensors took before binary_scalar_contig): a misaligned view
        Tensor shifted = big16.narrow(0, 1, (1 << 26) - 1);
        time("mul scalar bf16 2^26 misaligned (general kernel)", 2 * 2L << 26, () -> be.binaryScalar(BinaryOp.MUL, shifted, 0.125, false));
    }

    /**
     * A transformer MLP's input gradient through the tanh GELU at the GPT workload's shape (16,384 tokens, 1,536 -> 384,
     * bf16): cuBLASLt's DGELU epilogue against the product and the gradient op run apart (the composed path).
     */
    static void geluLinear(Generator g, CudaBackend be) {
        int n = 16384, in = 1536, out = 384;
        Tensor gOut = Tensor.randn(g, new int[]{n, out}, DType.BFLOAT16, GPU), w = Tensor.randn(g, new int[]{out, in}, DType.BFLOAT16, GPU);
        Tensor h = Tensor.randn(g, new int[]{n, in}, DType.BFLOAT16, GPU);
        double flops = -2.0 * n * in * out;
        time("linearAfter input gradient, tanh GELU, DGELU epilogue, bf16 16384x384 . 384x1536", flops,
                () -> be.linearAfterBackwardInput(BinaryOp.GELU_TANH_BACKWARD, gOut, w, h));
        time("linearAfter input gradient, tanh GELU, product then op, bf16 16384x384 . 384x1536", flops, () -> {
            Tensor product = gOut.matmul(w), dh = be.binary(BinaryOp.GELU_TANH_BACKWARD, product, h);
            product.close();
            return dh;
        });
    }

    /**
     * linear's weight and bias gradients at the bench GPT's four shapes (16,384 tokens): the product with cuBLASLt's BGRADB
     * epilogue, the product alone, the column sums alone (Kiln's 16-byte kernel), and linearBackwardWeight as it runs.
     */
    static void biasGrad(Generator g, CudaBackend be) {
        CudaDevice dev = CudaDevice.get(0);
        int n = 16384;
        for (DType t : new DType[]{DType.BFLOAT16, DType.FLOAT32}) {
            for (int[] s : new int[][]{{1152, 384}, {384, 384}, {1536, 384}, {384, 1536}}) {
                int out = s[0], in = s[1];
                Tensor gOut = Tensor.randn(g, new int[]{n, out}, t, GPU), x = Tensor.randn(g, new int[]{n, in}, t, GPU);
                Tensor dw = Tensor.zeros(new int[]{out, in}, DType.FLOAT32, GPU), db = Tensor.zeros(new int[]{out}, DType.FLOAT32, GPU);
                String shape = t + " " + n + "x" + out + ", " + n + "x" + in;
                double flops = -2.0 * n * in * out;
                long gp = be.ptr(gOut), xp = be.ptr(x), dwp = be.ptr(dw), dbp = be.ptr(db);
                time("dW with BGRADB epilogue " + shape, flops, () -> {
                    Blas.tryLtTo(dev, dev.allowTf32(), t, DType.FLOAT32, CublasLt.Epilogue.BGRADB, false, true, in, out, n, xp, in, gp, out, 0,
                            dwp, in, dbp);
                    return Tensor.zeros(new int[]{0}, DType.FLOAT32, GPU);
                });
                time("dW alone " + shape, flops, () -> {
                    Blas.tryLtTo(dev, dev.allowTf32(), t, DType.FLOAT32, CublasLt.Epilogue.DEFAULT, false, true, in, out, n, xp, in, gp, out, 0,
                            dwp, in, 0);
                    return Tensor.zeros(new int[]{0}, DType.FLOAT32, GPU);
                });
                time("column sums alone " + shape, (double) n * out * t.byteSize(), () -> be.reduce(ReduceOp.SUM, gOut, new int[]{0}, false));
                time("linearBackwardWeight " + shape, flops, () -> {
                    be.linearBackwardWeight(gOut, x, dw, db);
                    return Tensor.zeros(new int[]{0}, DType.FLOAT32, GPU);
                });
            }
        }
    }

    /** Sorting and running sums at the shapes of bench/torch_sorting.py (the same timing rule), for a same-run ratio. */
    static void sorting(Generator g) {
        Tensor vocab = Tensor.randn(g, new int[]{64, 50257}, DType.FLOAT32, GPU);
        Tensor rows = Tensor.randn(g, new int[]{8192, 1024}, DType.FLOAT32, GPU);
        Tensor flat = Tensor.randn(g, new int[]{1 << 24}, DType.FLOAT32, GPU);
        Tensor square = Tensor.randn(g, new int[]{4096, 4096}, DType.FLOAT32, GPU);
        long vb = 4L * 64 * 50257, rb = 4L * 8192 * 1024, fb = 4L << 24, sb = 4L * 4096 * 4096;
        time("argsort f32 64x50257 dim 1", vb, () -> vocab.argsort(1, true));
        time("argsort f32 8192x1024 dim 1", rb, () -> rows.argsort(1, false));
        time("argsort f32 2^24", fb, () -> flat.argsort(0, false));
        Tensor few = rows.narrow(0, 0, 256).contiguous(), rows16 = rows.to(DType.BFLOAT16), flat64 = flat.narrow(0, 0, 1 << 22).to(DType.FLOAT64);
        time("argsort f32 256x1024 dim 1", 4L * 256 * 1024, () -> few.argsort(1, false));
        time("argsort bf16 8192x1024 dim 1", rb / 2, () -> rows16.argsort(1, false));
        time("argsort f64 2^22", 8L << 22, () -> flat64.argsort(0, false));
        time("topk 50 f32 64x50257 dim 1", vb, () -> vocab.topk(50, 1, true).values());
        time("cumsum f32 64x50257 dim 1", 2 * vb, () -> vocab.cumsum(1));
        time("cumsum f32 4096x4096 dim 1", 2 * sb, () -> square.cumsum(1));
        time("cumsum f32 4096x4096 dim 0", 2 * sb, () -> square.cumsum(0));
    }

    /**
     * A ResNet's batch-256 prediction (the Predictor's graph, as kiln bench's infer rows run it), timed, then once more
     * between two 1-element fills that mark it in a profiler's kernel list.
     */
    static void inferOnce(CudaDevice dev, CudaBackend be, ModelZoo zoo, DType precision) {
        Cuda.setCudnnBenchmark(true);
        Model m = zoo.build(new Generator(0), new int[]{3, 224, 224}, 1000);
        m.to(GPU);
        Tensor x = Tensor.randn(new Generator(9), new int[]{256, 3, 224, 224}, DType.FLOAT32, GPU).keep();
        Tensor mark = Tensor.zeros(new int[]{1}, DType.FLOAT32, GPU);
        try (Predictor p = new Predictor(m, x, Predictor.Options.DEFAULT.withPrecision(precision))) {
            for (int i = 0; i < 5; i++) p.predict(x).close();
            long t0 = System.nanoTime();
            for (int i = 0; i < 20; i++) p.predict(x).close();
            double ms = (System.nanoTime() - t0) / 1e6 / 20;
            System.out.printf("infer %s b256 %s: %.3f ms a batch, %.0f img/s%n", zoo.cliName(), precision, ms, 256 / ms * 1e3);
            be.fill(mark, 1);
            p.predict(x).close();
            be.fill(mark, 2);
            dev.synchronize();
        }
    }

    /** Times op (which returns a tensor to release) with events: median of 5 batches; work > 0 bytes, < 0 flops. */
    static void time(String what, double work, Supplier<Tensor> op) {
        CudaDevice dev = CudaDevice.get(0);
        for (int i = 0; i < 3; i++) op.get().close();
        dev.synchronize();
        MemorySegment start = Driver.eventCreate(0), end = Driver.eventCreate(0);
        int reps = 1;
        // pick repetitions so one batch takes about 20 ms
        Driver.eventRecord(start, dev.stream());
        op.get().close();
        Driver.eventRecord(end, dev.stream());
        Driver.eventSynchronize(end);
        float once = Driver.eventElapsedMillis(start, end);
        reps = (int) Math.max(1, Math.min(2000, 20 / Math.max(once, 1e-3)));
        double[] ms = new double[5];
        for (int b = 0; b < ms.length; b++) {
            Driver.eventRecord(start, dev.stream());
            for (int i = 0; i < reps; i++) op.get().close();
            Driver.eventRecord(end, dev.stream());
            Driver.eventSynchronize(end);
            ms[b] = Driver.eventElapsedMillis(start, end) / reps;
        }
        Driver.eventDestroy(start);
        Driver.eventDestroy(end);
        Arrays.sort(ms);
        double med = ms[2];
        String rate = work > 0 ? String.format("%8.1f GB/s", work / (med * 1e-3) / 1e9)
                : work < 0 ? String.format("%8.1f TFLOP/s", -work / (med * 1e-3) / 1e12) : "";
        System.out.printf("%-55s %10.4f ms  %s  (spread %.4f-%.4f ms, %d reps)%n", what, med, rate, ms[0], ms[4], reps);
    }
}
