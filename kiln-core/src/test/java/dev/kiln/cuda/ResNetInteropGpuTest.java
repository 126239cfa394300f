package dev.kiln.cuda;

import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.io.Safetensors;
import dev.kiln.models.ResNet;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;


/**
 * torchvision's ResNets, saved by PyTorch as safetensors state dicts (bench/resnet_interop.py, run where PyTorch is:
 * the GPU machine), load into Kiln's {@link ResNet} and give PyTorch's logits in evaluation mode, on the CPU and on
 * the GPU (TF32 off, so both are float32 arithmetic). {@code KILN_INTEROP_DIR} names the folder the script wrote;
 * without it the test is skipped.
 */
class ResNetInteropGpuTest {
    static Path dir;

    @BeforeAll static void findFiles() {
        String d = System.getenv("KILN_INTEROP_DIR");
        Assumptions.assumeTrue(d != null && Files.isDirectory(Path.of(d)), "KILN_INTEROP_DIR (bench/resnet_interop.py's output) is not set");
        dir = Path.of(d);
    }

    @ParameterizedTest @ValueSource(strings = {"resnet18", "resnet50"})
    void torchvisionWeightsGiveTorchvisionsLogits(String name) throws IOException {
        Safetensors.Contents weights = Safetensors.read(dir.resolve(name + ".safetensors"));
        Map<String, Tensor> io = Safetensors.read(dir.resolve(name + "-io.safetensors")).tensors();
        Tensor x = io.get("input"), want = io.get("logits");
        int classes = want.shape()[1];
        ResNet m = name.equals("resnet18") ? ResNet.resnet18(classes, new Generator(0)) : ResNet.resnet50(classes, new Generator(0));
        m.loadStateDict(weights.tensors());
        m.eval();
        check(name + " cpu", Tensor.noGrad(() -> m.forward(x)), want);
        GpuTests.requireGpu(ResNetInteropGpuTest.class);
        Device gpu = Device.cuda(0);
        boolean tf32 = Cuda.allowTf32Conv(gpu);
        Cuda.setAllowTf32Conv(gpu, false);
        try {
            m.to(gpu);
            check(name + " cuda", Tensor.noGrad(() -> m.forward(x.to(gpu))).cpu(), want);
        } finally {
            Cuda.setAllowTf32Conv(gpu, tf32);
        }
    }

    /** PyTorch's logits against Kiln's, under float32 rounding through ~50 layers. */
    private static void check(String what, Tensor got, Tensor want) { InteropCheck.check(what, got, want, 1e-4); }
}
