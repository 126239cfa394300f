package dev.kiln.bench;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.data.DataLoader;
import dev.kiln.data.FashionMnist;
import dev.kiln.data.TrainingData;
import dev.kiln.backend.QuantFormat;
import dev.kiln.cuda.Cuda;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Model;
import dev.kiln.ops.Matmul;
import dev.kiln.ops.Quantized;
import dev.kiln.quant.QuantizedModel;
import dev.kiln.quant.QuantizedRows;
import dev.kiln.train.Evaluation;
import dev.kiln.train.Precision;
import dev.kiln.train.TrainRun;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The table of issue 17: for each variant of a trained model (fp32, bf16, int8, FP8, pruned, 2:4), its test accuracy,
 * its checkpoint's size on disk and its inference time at batch 1 and 256 on one device. The variants are checkpoints
 * that {@code kiln train}, {@code kiln prune} and {@code kiln quantize} wrote; bf16 is the fp32 checkpoint run under
 * bf16 autocast (its size: the weights stored as bf16). {@code --test-limit N} evaluates the first N test images
 * (bf16 on the CPU is emulated, about 50x slower than fp32; {@code --no-bf16} leaves it out). {@code --channels-last} runs
 * every variant's images channels-last, as {@code kiln predict} does on CUDA. One JSON line per variant on stdout, then a markdown table.
 *
 * <pre>QuantBench --device cuda --data DIR --label cnn fp32=runs/cnn/model.safetensors int8=runs/cnn/model-int8.safetensors ...</pre>
 */
public final class QuantBench {
    private QuantBench() {}

    public static void main(String[] args) throws Exception {
        Device device = Device.CPU;
        Path data = FashionMnist.DEFAULT_DIR;
        String label = "model";
        int testLimit = 0;
        boolean gemm = false, bf16 = true, channelsLast = false;
        Map<String, Path> variants = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--device" -> device = Device.parse(args[++i]);
                case "--data" -> data = Path.of(args[++i]);
                case "--label" -> label = args[++i];
                case "--test-limit" -> testLimit = Integer.parseInt(args[++i]);
                case "--gemm" -> gemm = true;
                case "--no-bf16" -> bf16 = false;
                case "--channels-last" -> channelsLast = true;
                default -> {
                    int eq = args[i].indexOf('=');
                    if (eq < 1) throw new IllegalArgumentException("expected --device, --data, --label, --test-limit, --gemm, --no-bf16, --channels-last or VARIANT=CHECKPOINT, got " + args[i]);
                    variants.put(args[i].substring(0, eq), Path.of(args[i].substring(eq + 1)));
                }
            }
        }
        if (gemm) {
            gemms(device);
            return;
        }
        List<String> rows = new ArrayList<>();
        for (var v : variants.entrySet()) {
            rows.add(measure(label, v.getKey(), v.getValue(), device, data, testLimit, Precision.FP32, channelsLast));
            if (bf16 && v.getKey().equals("fp32")) rows.add(measure(label, "bf16", v.getValue(), device, data, testLimit, Precision.BF16, channelsLast));
        }
        System.out.println();
        System.out.println("| model | variant | device | test accuracy | size on disk | batch 1 ms | batch 256 ms | batch 256 img/s |");
        System.out.println("|---|---|---|---:|---:|---:|---:|---:|");
        rows.forEach(System.out::println);
    }

    /** One variant's row: prints its JSON line and returns its markdown row. */
    private static String measure(String label, String variant, Path file, Device device, Path data, int testLimit,
                                  Precision precision, boolean channelsLast) throws Exception {
        Safetensors.Contents c = Safetensors.read(file);
        TrainRun.LoadedCheckpoint loaded = TrainRun.loadCheckpoint(file, c, null);
        Model model = loaded.model();
        model.to(device).eval();
        model.channelsLast(channelsLast);
        long bytes = precision == Precision.BF16 ? bf16Bytes(c, file) : Files.size(file);
        TrainingData td = TrainingData.open(data, loaded.inputShape()[1]);
        double accuracy;
        int images;
        try (DataLoader loader = DataLoader.builder(TrainingData.head(td.test(), testLimit)).batchSize(1000).device(device).build()) {
            Evaluation ev = Evaluation.of(model, loader, precision);
            accuracy = ev.accuracy();
            images = ev.samples();
        }
        double ms1 = time(model, device, precision, 1, loaded.inputShape()), ms256 = time(model, device, precision, 256, loaded.inputShape());
        String quant = QuantizedModel.isQuantized(c.metadata()) ? QuantizedModel.formatOf(c.metadata()).cliName() : "none";
        System.out.printf(Locale.ROOT, "{\"model\":\"%s\",\"variant\":\"%s\",\"device\":\"%s\",\"quant\":\"%s\",\"accuracy\":%.4f,\"test_images\":%d,\"bytes\":%d,"
                        + "\"batch1_ms\":%.4f,\"batch256_ms\":%.4f,\"batch256_img_s\":%.0f}%n",
                label, variant, device, quant, accuracy, images, bytes, ms1, ms256, 256_000 / ms256);
        System.out.flush();
        return String.format(Locale.ROOT, "| %s | %s | %s | %.2f%% | %.2f MB | %.3f | %.2f | %.0f |", label, variant, device, 100 * accuracy,
                bytes / 1e6, ms1, ms256, 256_000 / ms256);
    }

    /**
     * One linear layer's product, y = x·Wᵀ + b with x (M, K) and W (N, K) on the device, in fp32, bf16 (autocast, CUDA only) and the
     * two 8-bit formats (their input quantization and dequantizing pass included): median milliseconds, the device
     * synchronised after each product (nothing read back), and the speed-up over fp32.
     */
    private static void gemms(Device device) {
        int[][] shapes = device.isCuda() ? new int[][]{{256, 784, 512}, {256, 4096, 4096}, {4096, 4096, 4096}, {8192, 8192, 8192}}
                : new int[][]{{256, 784, 512}, {256, 4096, 4096}};
        for (int[] s : shapes) {
            int m = s[0], k = s[1], n = s[2];
            Generator g = new Generator(2);
            Tensor x = Tensor.randn(g, m, k).to(device).keep(), w = Tensor.randn(g, n, k).mul(0.05), b = Tensor.randn(g, n).to(device).keep();
            Tensor wd = w.to(device).keep();
            Map<String, Double> ms = new LinkedHashMap<>();
            ms.put("fp32", time(device, () -> Matmul.linear(x, wd, b)));
            if (device.isCuda()) {   // the CPU's bf16 is emulated, ~50x slower than fp32
                ms.put("bf16", time(device, () -> {
                    try (var ac = Precision.BF16.autocast()) {
                        return Matmul.linear(x, wd, b);
                    }
                }));
            }
            for (QuantFormat f : QuantFormat.values()) {
                QuantizedRows q = QuantizedRows.of(f, w.toFloatArray(), n, k);
                Tensor codes = Tensor.fromHost(q.codes(), DType.UINT8, new int[]{n, k}, Device.CPU).to(device).keep();
                Tensor sc = Tensor.of(q.scales(), n).to(device).keep();
                double inputScale = QuantizedRows.scaleFor(f, 4.5);
                ms.put(f.cliName(), time(device, () -> Quantized.linear(f, x, codes, sc, b, inputScale, false)));
            }
            double ops = 2.0 * m * n * k;
            StringBuilder json = new StringBuilder(String.format(Locale.ROOT, "{\"gemm\":\"%dx%dx%d\",\"device\":\"%s\"", m, k, n, device));
            for (var e : ms.entrySet()) {
                json.append(String.format(Locale.ROOT, ",\"%s_ms\":%.4f,\"%s_gops\":%.0f,\"%s_speedup\":%.2f", e.getKey(), e.getValue(), e.getKey(),
                        ops / e.getValue() / 1e6, e.getKey(), ms.get("fp32") / e.getValue()));
            }
            System.out.println(json.append('}'));
            System.out.flush();
        }
    }

    /** Median milliseconds of {@code product} (its result dropped), the device synchronised after each. */
    private static double time(Device device, java.util.function.Supplier<Tensor> product) {
        return medianMillis(() -> {
            try (MemoryScope ignored = MemoryScope.open()) {
                product.get();
                if (device.isCuda()) Cuda.synchronize();
            }
        }, 5, 0, 100, 1_000_000_000L);
    }

    /**
     * The median milliseconds of {@code pass} without autograd: warm-up passes until at least {@code warmPasses} and
     * {@code warmNanos} (at most 5 s), then timed passes until {@code maxPasses} or {@code nanos} (at least 5).
     */
    private static double medianMillis(Runnable pass, int warmPasses, long warmNanos, int maxPasses, long nanos) {
        List<Double> ms = new ArrayList<>();
        Tensor.noGrad(() -> {
            long warm = System.nanoTime();
            for (int i = 0; (i < warmPasses || System.nanoTime() - warm < warmNanos) && System.nanoTime() - warm < 5_000_000_000L; i++) pass.run();
            long start = System.nanoTime();
            while (ms.size() < maxPasses && (ms.size() < 5 || System.nanoTime() - start < nanos)) {
                long t0 = System.nanoTime();
                pass.run();
                ms.add((System.nanoTime() - t0) / 1e6);
            }
            return null;
        });
        ms.sort(null);
        return ms.get(ms.size() / 2);
    }

    /** The checkpoint's size with its floating-point tensors stored as bf16 (written to a temporary file and measured). */
    private static long bf16Bytes(Safetensors.Contents c, Path file) throws Exception {
        Map<String, Tensor> half = new LinkedHashMap<>();
        for (var e : c.tensors().entrySet()) half.put(e.getKey(), e.getValue().dtype().isFloating() ? e.getValue().to(DType.BFLOAT16) : e.getValue());
        Path tmp = Files.createTempFile("kiln-bf16", ".safetensors");
        try {
            Safetensors.write(tmp, half, c.metadata());
            return Files.size(tmp);
        } finally {
            Files.delete(tmp);
        }
    }

    /**
     * The median milliseconds of one forward pass of a batch already on the device, its logits read back to the host
     * (which waits for the GPU), after warm-up runs (20 and 1 s, at most 5 s); runs until 200 timed passes or 1.5 seconds, at least 5.
     */
    private static double time(Model model, Device device, Precision precision, int batch, int[] inputShape) {
        int[] shape = new int[inputShape.length + 1];
        shape[0] = batch;
        System.arraycopy(inputShape, 0, shape, 1, inputShape.length);
        Tensor x = Tensor.rand(new Generator(1), shape).to(device).keep();
        Runnable pass = () -> {
            try (MemoryScope ignored = MemoryScope.open(); var ac = precision.autocast()) {
                model.forward(x).toFloatArray();
            }
        };
        // warm up until the JIT has compiled the path: 20 passes and 1 s, or 5 s (the CPU's emulated bf16)
        return medianMillis(pass, 20, 1_000_000_000L, 200, 1_500_000_000L);
    }
}

