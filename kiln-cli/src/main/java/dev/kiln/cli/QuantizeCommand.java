package dev.kiln.cli;

import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.backend.QuantFormat;
import dev.kiln.data.Batch;
import dev.kiln.data.DataLoader;
import dev.kiln.data.FashionMnist;
import dev.kiln.data.TrainingData;
import dev.kiln.nn.Model;
import dev.kiln.quant.Calibration;
import dev.kiln.quant.QuantizedModel;
import dev.kiln.train.Evaluation;
import dev.kiln.train.TrainRun;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "quantize", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Quantizes a kiln train (or kiln prune) run to int8 or FP8 E4M3 for inference (CPU or CUDA): per-output-channel weight "
                + "scales, activation scales calibrated on training batches; writes model-int8.safetensors or model-fp8.safetensors beside the "
                + "run's model and reports both test accuracies.")
final class QuantizeCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "RUN", description = "a run folder or its model.safetensors")
    Path run;

    @picocli.CommandLine.ArgGroup(multiplicity = "1")
    Format format;

    static final class Format {
        @Option(names = "--int8", required = true, description = "int8 weights and activations (symmetric, ±127)")
        boolean int8;

        @Option(names = "--fp8", required = true, description = "FP8 E4M3 weights and activations (Hopper's tensor-core format; emulated on the CPU)")
        boolean fp8;

        QuantFormat get() { return fp8 ? QuantFormat.FP8_E4M3 : QuantFormat.INT8; }
    }

    @Option(names = "--calibrate", defaultValue = "8", description = "training batches that set the activation scales (default: ${DEFAULT-VALUE})")
    int calibrate;

    @Option(names = "--percentile", description = "set each activation range at this percentile of |x| (e.g. 99.99) instead of the max")
    Double percentile;

    @Option(names = "--batch-size", defaultValue = "64", description = "calibration batch size (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = "--data", description = "the model's data (default: /usr/share/datasets/fashion-mnist)")
    Path data;

    @Option(names = "--test-limit", defaultValue = "0", description = "evaluate on the first N test images (0: all; default: ${DEFAULT-VALUE})")
    int testLimit;

    @Option(names = "--out", description = "the quantized checkpoint (default: model-int8.safetensors or model-fp8.safetensors beside the model)")
    Path out;

    @Override public Integer call() throws Exception {
        Calibration cal;
        try {
            cal = percentile == null ? Calibration.max(calibrate) : Calibration.percentile(percentile, calibrate);
            if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be >= 1, got " + batchSize);
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        Path file = EvalCommand.checkpointFile(run);
        TrainRun.LoadedCheckpoint loaded = TrainRun.loadCheckpoint(file, null);
        if (QuantizedModel.isQuantized(loaded.metadata())) throw new IllegalArgumentException(file + " is already quantized");
        TrainingData td = TrainingData.open(data == null ? FashionMnist.DEFAULT_DIR : data, loaded.inputShape()[1]);
        Model fp32 = loaded.model();
        List<Tensor> inputs = new ArrayList<>();
        try (DataLoader loader = DataLoader.builder(td.train()).batchSize(batchSize).shuffle(0).build()) {
            for (Batch b : loader) {
                if (inputs.size() == calibrate) break;
                inputs.add(b.inputs());
            }
        }
        double accFp32 = accuracy(fp32, td);   // before quantizing, which converts the model in place
        QuantFormat f = format.get();
        Model q = QuantizedModel.quantize(f, fp32, inputs, cal);
        Path target = out != null ? out : file.resolveSibling("model-" + f.cliName() + ".safetensors");
        Map<String, String> meta = new LinkedHashMap<>(loaded.metadata());
        meta.put("kiln.quant.calibration", cal.method() == Calibration.Method.MAX ? "max" : "percentile " + cal.percentile());
        meta.put("kiln.quant.calibration_batches", Integer.toString(inputs.size()));
        QuantizedModel.save(target, q, meta);
        PrintWriter log = spec.commandLine().getOut();
        double accQ = accuracy(q, td);
        log.printf(Locale.ROOT, "kiln: wrote %s (%s, %d calibration batches of %d, %s)%n", target, f.cliName(), inputs.size(), batchSize,
                meta.get("kiln.quant.calibration"));
        log.printf(Locale.ROOT, "test accuracy fp32 %.2f%%, %s %.2f%% (%+.2f points)%n", 100 * accFp32, f.cliName(), 100 * accQ, 100 * (accQ - accFp32));
        log.flush();
        return 0;
    }

    private double accuracy(Model model, TrainingData td) {
        try (DataLoader loader = DataLoader.builder(TrainingData.head(td.test(), testLimit)).batchSize(1000).device(Device.CPU).build()) {
            return Evaluation.of(model, loader).accuracy();
        }
    }
}
