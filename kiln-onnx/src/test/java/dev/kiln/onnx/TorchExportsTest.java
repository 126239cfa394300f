package dev.kiln.onnx;

import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.autograd.GradMode;
import dev.kiln.cuda.Cuda;
import dev.kiln.io.Safetensors;
import dev.kiln.nn.Model;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Models PyTorch exported to ONNX run in Kiln with PyTorch's outputs. bench/torch_onnx_export.py writes them where
 * PyTorch is installed (the GPU machine): NAME.onnx and NAME.safetensors (its input and PyTorch's output for it);
 * KILN_TORCH_ONNX_DIR names that folder. Each model runs on the CPU and, where there is one, the GPU.
 */
class TorchExportsTest {
    @Test void pytorchExportsRunInKilnWithPyTorchsOutputs() throws Exception {
        String dir = System.getenv("KILN_TORCH_ONNX_DIR");
        Assumptions.assumeTrue(dir != null, "KILN_TORCH_ONNX_DIR is not set (bench/torch_onnx_export.py writes the exports where PyTorch is)");
        List<Path> files;
        try (Stream<Path> s = Files.list(Path.of(dir))) {
            files = s.filter(p -> p.toString().endsWith(".onnx")).sorted().toList();
        }
        assertFalse(files.isEmpty(), "no .onnx file in " + dir);
        List<Device> devices = new ArrayList<>(List.of(Device.CPU));
        if (Cuda.isAvailable()) devices.add(Device.cuda(0));
        // PyTorch's outputs are float32 (computed on the CPU): compare with float32 convolutions, not TF32's
        boolean tf32 = Cuda.isAvailable() && Cuda.allowTf32Conv(Device.cuda(0));
        if (tf32) Cuda.setAllowTf32Conv(Device.cuda(0), false);
        try {
            check(files, devices);
        } finally {
            if (tf32) Cuda.setAllowTf32Conv(Device.cuda(0), true);
        }
    }

    private static void check(List<Path> files, List<Device> devices) throws Exception {
        for (Path f : files) {
            String name = f.getFileName().toString().replace(".onnx", "");
            Safetensors.Contents data = Safetensors.read(f.resolveSibling(name + ".safetensors"));
            float[] expected = data.tensors().get("expected").toFloatArray();
            Model m = OnnxImport.read(f);
            for (Device d : devices) {
                m.to(d);
                float[] got;
                try (GradMode off = GradMode.disabled()) {
                    got = m.forward(data.tensors().get("input").to(d)).toFloatArray();
                }
                assertEquals(expected.length, got.length, name + " on " + d + ": output size");
                double maxDiff = 0, maxRef = 0;
                for (int i = 0; i < got.length; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(got[i] - expected[i]));
                    maxRef = Math.max(maxRef, Math.abs(expected[i]));
                }
                System.out.printf("[onnx-import] %s (PyTorch's export) on %s: max difference %.2e of max |output| %.2e%n", name, d, maxDiff, maxRef);
                assertTrue(maxDiff <= 1e-4 * Math.max(1, maxRef), name + " on " + d + ": Kiln's outputs differ from PyTorch's by " + maxDiff);
            }
        }
    }
}
