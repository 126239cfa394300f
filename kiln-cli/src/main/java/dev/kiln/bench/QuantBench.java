package dev.kiln.bench;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.data.DataLoader;
import dev.kiln.data.FashionMnist;
import dev.kiln.data.TrainingData;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Model;
import dev.kiln.quant.QuantizedModel;
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
 * (bf16 on the CPU is emulated, about 50x slower than fp32). One JSON line per variant on stdout, then a markdown table.
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
        Map<String, Path> variants = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--device" -> device = Device.parse(args[++i]);
                case "--data" -> data = Path.of(args[++i]);
                case "--label" -> label = args[++i];
                case "--test-limit" -> testLimit = Integer.parseInt(args[++i]);
                default -> {
                    int eq = args[i].indexOf('=');
                    if (eq < 1) throw new IllegalArgumentException("expected --device, --data, --label, --test-limit or VARIANT=CHECKPOINT, got " + args[i]);
                    variants.put(args[i].substring(0, eq), Path.of(args[i].substring(eq + 1)));
                }
            }
        }
        List<String> rows = new ArrayList<>();
        for (var v : variants.entrySet()) {
            rows.add(measure(label, v.getKey(), v.getValue(), device, data, testLimit, Precision.FP32));
            if (v.getKey().equals("fp32")) rows.add(measure(label, "bf16", v.getValue(), device, data, testLimit, Precision.BF16));
        }
        System.out.println();
        System.out.println("| model | variant | device | test accuracy | size on disk | batch 1 ms | batch 256 ms | batch 256 img/s |");
        System.out.println("|---|---|---|---:|---:|---:|---:|---:|");
        rows.forEach(System.out::println);
    }

    /** One variant's row: prints its JSON line and returns its markdown row. */
    private static String measure(String label, String variant, Path file, Device device, Path data, int testLimit,
                                  Precision precision) throws Exception {
        Safetensors.Contents c = Safetensors.read(file);
        TrainRun.LoadedCheckpoint loaded = TrainRun.loadCheckpoint(file, c, null);
        Model model = loaded.model();
        model.to(device).eval();
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
     * (which waits for the GPU), after warm-up runs; runs until 200 timed passes or 1.5 seconds, at least 5.
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
        List<Double> ms = new ArrayList<>();
        Tensor.noGrad(() -> {
            long warm = System.nanoTime();
            for (int i = 0; i < 20 && System.nanoTime() - warm < 2_000_000_000L; i++) pass.run();
            long start = System.nanoTime();
            while (ms.size() < 200 && (ms.size() < 5 || System.nanoTime() - start < 1_500_000_000L)) {
                long t0 = System.nanoTime();
                pass.run();
                ms.add((System.nanoTime() - t0) / 1e6);
            }
            return null;
        });
        ms.sort(null);
        return ms.get(ms.size() / 2);
    }
}
