package dev.kiln.cli;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Model;
import dev.kiln.onnx.OnnxExport;
import dev.kiln.train.LanguageModelRun;
import dev.kiln.train.TrainRun;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

@Command(name = "export", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Writes an image classifier trained by 'kiln train' (mlp, cnn, cnn-bn, the ResNets) as an ONNX model (opset 17): input "
                + "'input' (N, C, H, W) float32, output 'logits' (N, classes). With --check-data DIR it also writes DIR/input.npy (a random "
                + "batch of 4) and DIR/expected.npy (Kiln's logits for it), for bench/onnx_check.py to compare with onnxruntime.")
final class ExportCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "RUN", description = "a run folder written by kiln train (runs/latest), or its model.safetensors")
    Path checkpoint;

    @Option(names = "--onnx", required = true, paramLabel = "FILE", description = "the .onnx file to write")
    Path onnx;

    @Option(names = "--check-data", paramLabel = "DIR", description = "also write input.npy and expected.npy there")
    Path checkData;

    @Override public Integer call() throws IOException {
        Path file = EvalCommand.checkpointFile(checkpoint);
        Safetensors.Contents contents = Safetensors.read(file);
        if (LanguageModelRun.isLanguageModel(contents.metadata())) {
            throw new IllegalArgumentException(file + " holds a language model; ONNX export covers the image models (mlp, cnn, cnn-bn, resnet*)");
        }
        TrainRun.LoadedCheckpoint loaded = TrainRun.loadCheckpoint(file, contents, null);
        Model model = loaded.model();
        int[] in = loaded.inputShape();
        OnnxExport.write(model, in, onnx);
        var out = spec.commandLine().getOut();
        out.println("kiln export: wrote " + onnx + " (" + loaded.kind().cliName() + ", ONNX opset " + OnnxExport.OPSET + ", input (N, "
                + Arrays.stream(in).mapToObj(Integer::toString).collect(Collectors.joining(", ")) + "))");
        if (checkData != null) {
            Files.createDirectories(checkData);
            Tensor x = Tensor.randn(new Generator(0), new int[]{4, in[0], in[1], in[2]}, dev.kiln.DType.FLOAT32, dev.kiln.Device.CPU);
            Tensor y;
            model.eval();
            try (GradMode ignored = GradMode.disabled()) {
                y = model.forward(x);
            }
            writeNpy(checkData.resolve("input.npy"), x);
            writeNpy(checkData.resolve("expected.npy"), y);
            out.println("kiln export: wrote " + checkData.resolve("input.npy") + " and expected.npy; check with: python3 bench/onnx_check.py "
                    + onnx + " " + checkData);
        }
        out.flush();
        return 0;
    }

    /** A float32 tensor as NumPy's .npy (format 1.0: magic, header length, a dict padded to 64 bytes, little-endian data). */
    static void writeNpy(Path file, Tensor t) throws IOException {
        float[] v = t.toFloatArray();
        String shape = Arrays.stream(t.shape()).mapToObj(Integer::toString).collect(Collectors.joining(", ", "(", t.dim() == 1 ? ",)" : ")"));
        StringBuilder header = new StringBuilder("{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }");
        while ((10 + header.length() + 1) % 64 != 0) header.append(' ');
        header.append('\n');
        ByteBuffer b = ByteBuffer.allocate(10 + header.length() + 4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put((byte) 0x93).put("NUMPY".getBytes(StandardCharsets.US_ASCII)).put((byte) 1).put((byte) 0).putShort((short) header.length());
        b.put(header.toString().getBytes(StandardCharsets.US_ASCII));
        b.asFloatBuffer().put(v);
        Files.write(file, b.array());
    }
}
