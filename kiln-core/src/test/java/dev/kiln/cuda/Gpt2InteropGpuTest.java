package dev.kiln.cuda;

import dev.kiln.Device;
import dev.kiln.Tensor;
import dev.kiln.io.Safetensors;
import dev.kiln.models.GPT;
import dev.kiln.nn.KvCache;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;


/**
 * Hugging Face GPT-2 checkpoints, written by transformers' save_pretrained (bench/gpt2_interop.py, run where PyTorch
 * and transformers are: the GPU machine; transformers 5.17 there), load with {@link GPT#fromHuggingFace} and give
 * transformers' logits, on the CPU and on the GPU (TF32 off), by a full pass and by steps over the key/value cache.
 * {@code KILN_INTEROP_DIR} names the folder the script wrote into; without it the test is skipped.
 */
class Gpt2InteropGpuTest {
    static Path dir;

    @BeforeAll static void findFiles() {
        String d = System.getenv("KILN_INTEROP_DIR");
        Assumptions.assumeTrue(d != null && Files.isDirectory(Path.of(d, "gpt2-tied")),
                "KILN_INTEROP_DIR (with bench/gpt2_interop.py's output) is not set");
        dir = Path.of(d);
    }

    @ParameterizedTest @ValueSource(strings = {"gpt2-tied", "gpt2-untied"})
    void transformersWeightsGiveTransformersLogits(String name) throws IOException {
        GPT m = GPT.fromHuggingFace(dir.resolve(name));
        Map<String, Tensor> io = Safetensors.read(dir.resolve(name).resolve("io.safetensors")).tensors();
        Tensor ids = io.get("ids"), want = io.get("logits");
        check(name + " cpu", Tensor.noGrad(() -> m.forward(ids)), want);
        check(name + " cpu, cached steps", stepped(m, ids), want);
        GpuTests.requireGpu(Gpt2InteropGpuTest.class);
        Device gpu = Device.cuda(0);
        boolean tf32 = Cuda.allowTf32(gpu);
        Cuda.setAllowTf32(gpu, false);
        try {
            m.to(gpu);
            check(name + " cuda", Tensor.noGrad(() -> m.forward(ids.to(gpu))).cpu(), want);
            check(name + " cuda, cached steps", stepped(m, ids.to(gpu)).cpu(), want);
        } finally {
            Cuda.setAllowTf32(gpu, tf32);
        }
    }

    /** The logits of a 16-token prompt, then one token at a time over the cache. */
    private static Tensor stepped(GPT m, Tensor ids) {
        return Tensor.noGrad(() -> {
            try (KvCache cache = m.newCache()) {
                List<Tensor> parts = new ArrayList<>();
                parts.add(m.forward(ids.narrow(1, 0, 16), cache));
                for (int t = 16; t < ids.size(1); t++) parts.add(m.forward(ids.narrow(1, t, 1), cache));
                return Tensor.cat(parts, 1);
            }
        });
    }

    /** PyTorch's logits against Kiln's, under float32 rounding through two blocks (transformers runs its attention through SDPA). */
    private static void check(String what, Tensor got, Tensor want) { InteropCheck.check(what, got, want, 1e-5); }
}
