package dev.kiln.bench;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.autograd.Autocast;
import dev.kiln.cuda.Cuda;
import dev.kiln.data.Batch;
import dev.kiln.data.FashionMnist;
import dev.kiln.data.TensorDataset;
import dev.kiln.dist.DataParallel;
import dev.kiln.dist.ProcessGroup;
import dev.kiln.infer.Predictor;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.CrossEntropyLoss;
import dev.kiln.nn.Dropout;
import dev.kiln.models.CharLSTM;
import dev.kiln.models.GPT;
import dev.kiln.models.Sampling;
import dev.kiln.nn.F;
import dev.kiln.nn.Loss;
import dev.kiln.nn.SequenceCrossEntropyLoss;
import dev.kiln.optim.AdamW;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Linear;
import dev.kiln.nn.MaxPool2d;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Model;
import dev.kiln.nn.Sequential;
import dev.kiln.optim.Adam;
import dev.kiln.optim.OneCycleLR;
import dev.kiln.optim.Optimizer;
import dev.kiln.profile.Profiler;
import dev.kiln.train.GraphedStep;
import dev.kiln.train.ModelZoo;
import dev.kiln.train.Precision;
import dev.kiln.train.TextGeneration;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The workloads of bench/WORKLOADS.md (the same as shared/bench/torch_ref.py), timed the same way: mean over the
 * timed calls after a warm-up, the device synchronised before each clock read. Returns workload name to figure.
 */
public final class Bench {
    private final Device device;
    private final StepTimer timer;
    private final Path fmnistDir;
    private final Consumer<String> log;
    private Path profileDir;
    private boolean cudaGraphs;
    private boolean cudnnBenchmark = true;
    private boolean channelsLast;
    private ProcessGroup group; // data parallel: every model trained is wrapped for this group

    public Bench(Device device, Path fmnistDir, Consumer<String> log) {
        this.device = device;
        this.timer = new StepTimer(device);
        this.fmnistDir = fmnistDir;
        this.log = log;
    }

    /** After timing each training workload, profiles a few more steps into DIR/KEY.txt (table) and DIR/KEY.json (trace). */
    public Bench profileInto(Path dir) {
        this.profileDir = dir;
        return this;
    }

    /**
     * Also times each training workload with its step captured as a CUDA graph and replayed ({@link GraphedStep}),
     * under the key with {@code _graphed} before {@code _train_samples_s}, beside the eager figure (GPU only).
     */
    public Bench cudaGraphs(boolean on) {
        this.cudaGraphs = on;
        return this;
    }

    /** Whether the small image models (cnn, cifar_cnn, resnet_small and the fmnist rows) run channels-last, as kiln train's. */
    public Bench channelsLast(boolean on) {
        this.channelsLast = on;
        return this;
    }

    /** Whether cuDNN times its candidate algorithms per convolution geometry (on by default, as in kiln train). */
    public Bench cudnnBenchmark(boolean on) {
        this.cudnnBenchmark = on;
        return this;
    }

    /**
     * Times torch_ddp.py's workloads instead, as this rank of {@code group}'s job (one process per GPU, the same
     * per-GPU batch at every world size): keys {@code NAME_wN} (eager) and {@code NAME_graphed_wN} (the whole step, its
     * reductions included, replayed as one CUDA graph), whole-job samples (or tokens) per second.
     */
    public Bench dataParallel(ProcessGroup group) {
        this.group = group;
        return this;
    }

    /** Runs the workloads whose names start with one of {@code only} (all when empty). */
    public Map<String, Object> run(java.util.List<String> only) throws Exception {
        if (group != null) return runDataParallel(only);
        Map<String, Object> res = new LinkedHashMap<>();
        res.put("device", device.isCuda() ? Cuda.device(device).name() : "cpu");
        res.put("kiln", "0.1.0");
        boolean gpu = device.isCuda();
        if (gpu) Cuda.setCudnnBenchmark(cudnnBenchmark);
        {
            for (Object[] c : new Object[][]{{1024, DType.FLOAT32, false}, {2048, DType.FLOAT32, false}, {8192, DType.FLOAT32, false},
                    {8192, DType.FLOAT32, true}, {8192, DType.BFLOAT16, false}}) {
                int n = (Integer) c[0];
                if (!gpu && n > 2048 || gpu && n == 2048) continue;
                DType t = (DType) c[1];
                boolean tf32 = (Boolean) c[2];
                if (!gpu && (tf32 || t != DType.FLOAT32)) continue;
                // the CPU reports GFLOP/s: its ~0.1 TFLOP/s printed as 0.0 at one decimal
                String key = "gemm_" + n + "_" + (tf32 ? "tf32" : t.label()) + (gpu ? "_tflops" : "_gflops");
                if (!want(only, key)) continue;
                if (gpu) Cuda.setAllowTf32(device, tf32);
                Tensor a = Tensor.randn(new Generator(1), new int[]{n, n}, DType.FLOAT32, device).to(t).keep();
                Tensor b = Tensor.randn(new Generator(2), new int[]{n, n}, DType.FLOAT32, device).to(t).keep();
                // the Java side must be compiled (JIT: thousands of calls) for a 1024 product of ~56 us not to be
                // host-bound; 50 warm-up calls left it interpreted in some runs (0.87-1.01 of PyTorch from run to run)
                // on the CPU enough warm-up calls to cycle kiln's 1 GB young generation: fresh heap pages fault (103 GFLOP/s at 1024, not 300)
                double s = timer.perCall(() -> a.matmul(b), gpu ? (n <= 1024 ? 1000 : 20) : 10, gpu ? (n <= 1024 ? 3000 : 3) : (n <= 1024 ? 300 : 70));
                res.put(key, round(2.0 * n * n * n / s / (gpu ? 1e12 : 1e9), 1));
                a.close();
                b.close();
                log.accept(key + " " + res.get(key));
            }
            if (gpu) Cuda.setAllowTf32(device, false);
        }
        if (want(only, "conv_seed")) {
            Conv2d conv = new Conv2d(3, 64, 3, 1, 1, new Generator(3));
            conv.to(device);
            Tensor x = Tensor.randn(new Generator(4), new int[]{16, 3, 224, 224}, DType.FLOAT32, device).keep();
            double s = Tensor.noGrad(() -> timer.perCall(() -> conv.forward(x), gpu ? 50 : 5, gpu ? 10 : 2));
            res.put("conv_seed_fwd_ms", round(s * 1e3, 3));
            log.accept("conv_seed_fwd_ms " + res.get("conv_seed_fwd_ms"));
        }
        if (gpu) AttentionRows.run(device, key -> want(only, key), timer::perCall, (key, ms) -> record(res, key, ms));
        for (String name : new String[]{"mlp", "cnn", "cifar_cnn", "resnet_small"}) {
            for (int bs : new int[]{128, 1024}) {
                for (boolean amp : new boolean[]{false, true}) {
                    String key = name + "_b" + bs + "_" + (amp ? "bf16" : "fp32") + "_train_samples_s";
                    // bf16 on the CPU runs the general kernels: a figure of it would measure nothing worth knowing
                    if (!want(only, key) || (amp && !gpu)) continue;
                    int[] shape = name.equals("cifar_cnn") ? new int[]{3, 32, 32} : new int[]{1, 28, 28};
                    Model m = (name.equals("cifar_cnn") ? cifarCnn(new Generator(0)) : ModelZoo.parse(name.replace('_', '-')).build(new Generator(0)))
                            .channelsLast(channelsLast);
                    record(res, key, trainRate(key, m, shape, bs, gpu ? 100 : 10, amp, false));
                    if (cudaGraphs && gpu) {
                        String gkey = name + "_b" + bs + "_" + (amp ? "bf16" : "fp32") + "_graphed_train_samples_s";
                        Model mg = (name.equals("cifar_cnn") ? cifarCnn(new Generator(0)) : ModelZoo.parse(name.replace('_', '-')).build(new Generator(0)))
                                .channelsLast(channelsLast);
                        res.put(gkey, trainRate(gkey, mg, shape, bs, 100, amp, true));
                        log.accept(gkey + " " + res.get(gkey));
                    }
                }
            }
        }
        // torchvision's ResNets at 224x224 (torch_ref.py's W6), channels-last as `kiln train` runs them on CUDA (resnet50's
        // key says so, as PyTorch's row is channels-last too; PyTorch's resnet18 rows are NCHW, its default); the _nchw rows
        // are Kiln in NCHW
        for (Object[] w : new Object[][]{{"resnet18_224_b64_fp32", ModelZoo.RESNET18, 64, false, 10, true},
                {"resnet18_224_b64_bf16", ModelZoo.RESNET18, 64, true, 10, true}, {"resnet18_224_b64_fp32_nchw", ModelZoo.RESNET18, 64, false, 10, false},
                {"resnet18_224_b64_bf16_nchw", ModelZoo.RESNET18, 64, true, 10, false}, {"resnet50_224_b128_bf16_cl", ModelZoo.RESNET50, 128, true, 1000, true}}) {
            String key = w[0] + "_train_img_s";
            if (!gpu || !want(only, key)) continue;
            ModelZoo zoo = (ModelZoo) w[1];
            int bs = (Integer) w[2], classes = (Integer) w[4];
            boolean amp = (Boolean) w[3];
            int[] shape = {3, 224, 224};
            boolean cl = (Boolean) w[5];
            record(res, key, trainRate(key, zoo.build(new Generator(0), shape, classes).channelsLast(cl), shape, bs, 20, amp, false));
            if (cudaGraphs) {
                String gkey = w[0] + "_graphed_train_img_s";
                res.put(gkey, trainRate(gkey, zoo.build(new Generator(0), shape, classes).channelsLast(cl), shape, bs, 20, amp, true));
                log.accept(gkey + " " + res.get(gkey));
            }
        }
        // torch_ref.py's W7: the 6-layer GPT (its Block layer for layer: LayerNorm, one qkv Linear, causal attention, GELU MLP)
        for (boolean amp : new boolean[]{false, true}) {
            String base = "gpt_6L384_T256_b64_" + (amp ? "bf16" : "fp32");
            if (!want(only, base) || !gpu && amp) continue;   // CPU: fp32, 3 steps after 3 warm-up ones (after 1, C2 ran the GPT at 2/3 speed)
            GPT.Config cfg = new GPT.Config(65, 256, 6, 6, 384, 0, true, true, false, F.GeluApproximation.NONE, 1e-5);
            res.put(base + "_train_tok_s", sequenceRate(base, new GPT(cfg, new Generator(0)), 64, 256, 65, gpu ? 30 : 3, amp, false, true));
            res.putAll(peakMemory);
            log.accept(base + " " + res.get(base + "_train_tok_s"));
            if (cudaGraphs && gpu) {
                res.put(base + "_graphed_train_tok_s", sequenceRate(base, new GPT(cfg, new Generator(0)), 64, 256, 65, 30, amp, true, true));
                log.accept(base + " graphed " + res.get(base + "_graphed_train_tok_s"));
            }
        }
        // torch_ref.py's W9: the character LSTM (embedding 65 -> 128, 2-layer LSTM of 512, linear head), Adam
        for (boolean amp : new boolean[]{false, true}) {
            String base = "lstm_2L512_T128_b64_" + (amp ? "bf16" : "fp32");
            if (!want(only, base) || !gpu && amp) continue;
            res.put(base + "_train_tok_s", sequenceRate(base, new CharLSTM(new Generator(0)), 64, 128, 65, gpu ? 30 : 3, amp, false, false));
            res.putAll(peakMemory);
            log.accept(base + " " + res.get(base + "_train_tok_s"));
            if (cudaGraphs && gpu) {
                res.put(base + "_graphed_train_tok_s", sequenceRate(base, new CharLSTM(new Generator(0)), 64, 128, 65, 30, amp, true, false));
                log.accept(base + " graphed " + res.get(base + "_graphed_train_tok_s"));
            }
        }
        // inference through the Predictor (evaluation mode, batch norms folded, on a GPU one CUDA graph per batch size):
        // batch-1 latency and batch-256 throughput, the input on the device, the logits read back to the host (as
        // bench/torch_infer.py times PyTorch eager, torch.compile and ONNX Runtime's CUDA provider)
        for (Object[] w : new Object[][]{{"cnn", ModelZoo.CNN, new int[]{1, 28, 28}, 10}, {"resnet18", ModelZoo.RESNET18, new int[]{3, 224, 224}, 1000},
                {"resnet50", ModelZoo.RESNET50, new int[]{3, 224, 224}, 1000}}) {
            String name = (String) w[0];
            // on the CPU: the cnn, and ResNet-18 and -50 at batch 1 and 16 (bench/torch_cpu_ref.py infer is PyTorch's side)
            if (!want(only, "infer_" + name)) continue;
            int[] shape = (int[]) w[2], big = batchOf(gpu || name.equals("cnn") ? 256 : 16, shape);
            Model m = ((ModelZoo) w[1]).build(new Generator(0), shape, (Integer) w[3]);
            m.to(device);
            Tensor x1 = Tensor.randn(new Generator(9), batchOf(1, shape), DType.FLOAT32, device).keep();
            Tensor xBig = Tensor.randn(new Generator(9), big, DType.FLOAT32, device).keep();
            try (Predictor p = new Predictor(m, x1)) {
                res.put("infer_" + name + "_b1_fp32_ms", round(timer.perCall(() -> p.predict(x1), gpu ? 300 : 50, 20) * 1e3, 3));
                res.put("infer_" + name + "_b" + big[0] + "_fp32_img_s", Math.round(big[0] / timer.perCall(() -> p.predict(xBig), gpu ? 30 : 3, 5)));
                // eight callers at once, batch 1 each: on a GPU they replay side by side on the predictor's lanes
                if (gpu) res.put("infer_" + name + "_b1_8callers_req_s", Math.round(concurrentRate(p, x1, 8, 200)));
            }
            if (gpu) {   // the same with one lane: the callers queue on one stream
                try (Predictor p = new Predictor(m, x1, new Predictor.Options(true, true, 1))) {
                    res.put("infer_" + name + "_b1_8callers_1lane_req_s", Math.round(concurrentRate(p, x1, 8, 200)));
                }
            }
            if (gpu) {   // the model in bfloat16 (Predictor.Options.withPrecision), float32 inputs and outputs as above
                Model m16 = ((ModelZoo) w[1]).build(new Generator(0), shape, (Integer) w[3]);
                m16.to(device);
                try (Predictor p = new Predictor(m16, x1, Predictor.Options.DEFAULT.withPrecision(DType.BFLOAT16))) {
                    res.put("infer_" + name + "_b1_bf16_ms", round(timer.perCall(() -> p.predict(x1), 300, 20) * 1e3, 3));
                    res.put("infer_" + name + "_b" + big[0] + "_bf16_img_s", Math.round(big[0] / timer.perCall(() -> p.predict(xBig), 30, 5)));
                }
            }
            log.accept("infer_" + name + " " + res.get("infer_" + name + "_b1_fp32_ms") + " ms, " + res.get("infer_" + name + "_b" + big[0] + "_fp32_img_s") + " img/s");
            x1.close();
            xBig.close();
        }
        // text generation, batch 1: the bench GPT (random weights: the speed does not depend on them) picks 240 tokens
        // greedily after a 16-token prompt, one key/value-cached step each (bench/torch_infer.py: Hugging Face's GPT-2 of
        // the same size, generate() with its cache); the bench LSTM likewise, carrying its state (on the CPU 60 tokens,
        // bench/torch_cpu_ref.py generate is PyTorch's side of both)
        for (String name : new String[]{"gpt", "lstm"}) {
            String key = "infer_" + name + "_generate";
            if (!want(only, key)) continue;
            Model lm = name.equals("gpt")
                    ? new GPT(new GPT.Config(65, 256, 6, 6, 384, 0, true, true, false, F.GeluApproximation.NONE, 1e-5), new Generator(0))
                    : new CharLSTM(new Generator(0));
            lm.to(device);
            int[] prompt = new SplittableRandom(5).ints(16, 0, 65).toArray();
            int n = gpu ? 240 : 60;
            // one run to warm up, on the CPU runs for 2 s (the JIT compiles the step's kernels meanwhile: the second of
            // 60 tokens ran at a quarter of the steady speed); then one run timed, on the CPU runs for at least 1 s
            long warm = System.nanoTime() + (gpu ? 0 : 2_000_000_000L);
            do TextGeneration.generate(lm, prompt, n, Sampling.greedy(), new Generator(0), id -> {}); while (System.nanoTime() < warm);
            long t0 = System.nanoTime(), tokens = 0;
            do {
                TextGeneration.generate(lm, prompt, n, Sampling.greedy(), new Generator(0), id -> {});
                tokens += n;
            } while (!gpu && System.nanoTime() - t0 < 1_000_000_000L);
            res.put(key + "_b1_fp32_tok_s", Math.round(tokens / ((System.nanoTime() - t0) / 1e9)));
            log.accept(key + " " + res.get(key + "_b1_fp32_tok_s") + " tokens/s");
        }
        if (fmnistDir != null && fmnistDir.toFile().isDirectory()) {
            for (String name : new String[]{"mlp", "cnn"}) {
                if (!gpu && name.equals("cnn")) continue; // 10 CNN epochs take too long for a 2-core bench
                if (want(only, "fmnist_" + name + "_10ep")) {
                    double[] r = fmnist(name, false);
                    res.put("fmnist_" + name + "_10ep_train_s", round(r[0], 2));
                    res.put("fmnist_" + name + "_10ep_test_acc", round(r[1], 4));
                    log.accept("fmnist_" + name + " " + r[0] + " s, acc " + r[1]);
                    if (cudaGraphs && gpu) {
                        double[] g = fmnist(name, true);
                        res.put("fmnist_" + name + "_10ep_graphed_train_s", round(g[0], 2));
                        res.put("fmnist_" + name + "_10ep_graphed_test_acc", round(g[1], 4));
                        log.accept("fmnist_" + name + " graphed " + g[0] + " s, acc " + g[1]);
                    }
                }
                if (gpu && name.equals("cnn")) {
                    // the CNN to 92% test accuracy (graphed where on; evaluation off the clock): the workload's recipe; Adam 2e-3
                    // annealed per epoch; bfloat16 one-cycle (b1024: 92.24% after 7 of 8 epochs in float32 on the CPU; b1000
                    // fills every step, so no eager last batch). _again: the same once more, with the kernel choices the first
                    // run timed (as a later kiln train finds them on disk); the step's warm-up and graph capture paid again
                    StepRate b1000 = (st, per) -> OneCycleLR.at(1.6e-2, st, 6 * per);
                    for (Object[] w : new Object[][]{{"", 20, 128, false, (StepRate) (st, per) -> 1e-3},
                            {"_b256_cosine", 8, 256, false, (StepRate) (st, per) -> 1e-4 + (2e-3 - 1e-4) * 0.5 * (1 + Math.cos(Math.PI * (st / per) / 8))},
                            {"_b1024_bf16_onecycle", 8, 1024, true, (StepRate) (st, per) -> OneCycleLR.at(8e-3, st, 8 * per)},
                            {"_b1000_bf16_onecycle", 6, 1000, true, b1000}, {"_b1000_bf16_onecycle_again", 6, 1000, true, b1000}}) {
                        String key = "fmnist_cnn_to92" + w[0];
                        if (!want(only, key)) continue;
                        double[] f = fmnist(name, cudaGraphs, (Integer) w[1], 0.92, (Integer) w[2], (Boolean) w[3], (StepRate) w[4]);
                        res.put(key + "_train_s", round(f[0], 2));
                        res.put(key + "_epochs", (long) f[2]);
                        res.put(key + "_test_acc", round(f[1], 4));
                        res.put(key + "_reached", f[1] >= 0.92);   // false: the epochs ran out first (and _train_s is theirs)
                        log.accept(key + ": " + f[0] + " s (the first epoch " + round(f[3], 3) + " s), " + (long) f[2] + " epochs, acc " + f[1] + (f[1] >= 0.92 ? "" : ", 92% not reached"));
                    }
                }
            }
        }
        return res;
    }

    /** Requests per second of {@code callers} threads each making {@code calls} predictions of x (after a warm-up each). */
    private static double concurrentRate(Predictor p, Tensor x, int callers, int calls) throws Exception {
        try (java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(callers)) {
            java.util.concurrent.CyclicBarrier start = new java.util.concurrent.CyclicBarrier(callers + 1);
            java.util.List<java.util.concurrent.Future<?>> done = new java.util.ArrayList<>();
            for (int t = 0; t < callers; t++) {
                done.add(pool.submit(() -> {
                    for (int i = 0; i < 5; i++) p.predict(x);
                    start.await();
                    for (int i = 0; i < calls; i++) p.predict(x);
                    return null;
                }));
            }
            start.await();
            long t0 = System.nanoTime();
            for (java.util.concurrent.Future<?> f : done) f.get();
            return (double) callers * calls / ((System.nanoTime() - t0) / 1e9);
        }
    }

    private Map<String, Object> runDataParallel(java.util.List<String> only) throws Exception {
        if (!device.isCuda()) throw new IllegalArgumentException("the data-parallel workloads run on GPUs, not " + device);
        Map<String, Object> res = new LinkedHashMap<>();
        res.put("device", Cuda.device(device).name());
        res.put("world", group.world());
        Cuda.setCudnnBenchmark(cudnnBenchmark);
        String w = "_w" + group.world();
        for (Object[] r : new Object[][]{{"resnet18_224_b64_fp32", ModelZoo.RESNET18, 64, false}, {"resnet18_224_b64_bf16", ModelZoo.RESNET18, 64, true},
                {"resnet50_224_b128_bf16_cl", ModelZoo.RESNET50, 128, true}}) {
            String name = (String) r[0];
            if (!want(only, name)) continue;
            int[] shape = {3, 224, 224};
            for (boolean graphed : cudaGraphs ? new boolean[]{false, true} : new boolean[]{false}) {
                String key = name + (graphed ? "_graphed" : "") + w;
                res.put(key, group.world() * trainRate(key, ((ModelZoo) r[1]).build(new Generator(0), shape, 10).channelsLast(name.endsWith("_cl")), shape, (Integer) r[2], 20,
                        (Boolean) r[3], graphed));
                log.accept(key + " " + res.get(key));
            }
        }
        for (boolean amp : new boolean[]{false, true}) {
            String name = "gpt_6L384_T256_b64_" + (amp ? "bf16" : "fp32");
            if (!want(only, name)) continue;
            // torch_ddp.py's GPT: untied head with a bias, learned positions, biased layer norms, exact GELU
            GPT.Config cfg = new GPT.Config(65, 256, 6, 6, 384, 0, true, true, false, F.GeluApproximation.NONE, 1e-5);
            for (boolean graphed : cudaGraphs ? new boolean[]{false, true} : new boolean[]{false}) {
                String key = name + (graphed ? "_graphed" : "") + w;
                res.put(key, group.world() * sequenceRate(key, new GPT(cfg, new Generator(0)), 64, 256, 65, 30, amp, graphed, true));
                log.accept(key + " " + res.get(key));
            }
        }
        return res;
    }

    private static int[] batchOf(int n, int[] shape) {
        int[] out = new int[shape.length + 1];
        out[0] = n;
        System.arraycopy(shape, 0, out, 1, shape.length);
        return out;
    }

    /** Which workloads --only asked for and which it matched (see {@link #requireMatches}). */
    private final OnlyPrefixes selection = new OnlyPrefixes();

    private boolean want(java.util.List<String> only, String name) { return selection.want(only, name); }

    /** res[key] = value, and a line of the log. */
    private void record(Map<String, Object> res, String key, Object value) {
        res.put(key, value);
        log.accept(key + " " + value);
    }

    /**
     * Names the --only prefixes that matched nothing this device runs, so a typo does not pass for a quiet run: an
     * error when nothing ran at all, a line of the log beside the results of the prefixes that did match. Call after
     * {@link #run}.
     */
    public void requireMatches(java.util.List<String> only) { selection.requireMatches(only, device, log); }

    static double round(double v, int digits) {
        double p = Math.pow(10, digits);
        return Math.round(v * p) / p;
    }

    private void sync() {
        if (device.isCuda()) Cuda.synchronize();
    }

    /** The CIFAR-10 CNN of torch_ref.py: two conv-conv-pool blocks of 32 and 64 channels, dense 512. */
    static Sequential cifarCnn(Generator g) {
        return new Sequential(new Conv2d(3, 32, 3, 1, 1, g), new ReLU(), new Conv2d(32, 32, 3, g), new ReLU(),
                new MaxPool2d(2), new Dropout(0.25, g), new Conv2d(32, 64, 3, 1, 1, g), new ReLU(),
                new Conv2d(64, 64, 3, g), new ReLU(), new MaxPool2d(2), new Dropout(0.25, g), new Flatten(),
                new Linear(2304, 512, g), new ReLU(), new Dropout(0.5, g), new Linear(512, 10, g));
    }

    private Tensor randomLabels(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        long[] y = new long[n];
        for (int i = 0; i < n; i++) y[i] = r.nextInt(10);
        return Tensor.of(y, n).to(device).keep();
    }

    /** Training samples per second; amp: forward and loss under bfloat16 autocast, as torch_ref.py's amp=True. */
    private <M extends Layer & Forward> long trainRate(String key, M m, int[] shape, int bs, int steps, boolean amp, boolean graphed) throws java.io.IOException {
        m.to(device);
        Tensor x = Tensor.randn(new Generator(5), batchOf(bs, shape), DType.FLOAT32, device).keep();
        double s = secondsPerStep(key, m, new Adam(m.parameters(), 1e-3), F::crossEntropy, x, randomLabels(bs, 6), steps, 10, amp, graphed, null);
        return Math.round(bs / s);
    }

    private final Map<String, Object> peakMemory = new LinkedHashMap<>(); // the eager steps' peak device memory

    /** Tokens per second of a next-token training step on random ids (B, T) of a V-token vocabulary. */
    private <M extends Layer & Forward> long sequenceRate(String key, M m, int b, int t, int v, int steps, boolean amp, boolean graphed,
                                                          boolean adamW) throws java.io.IOException {
        m.to(device);
        Optimizer opt = adamW ? new AdamW(m.parameters(), 1e-3) : new Adam(m.parameters(), 1e-3);
        SplittableRandom r = new SplittableRandom(5);
        long[] raw = new long[b * t];
        for (int i = 0; i < raw.length; i++) raw[i] = r.nextInt(v);
        Tensor ids = Tensor.of(raw, b, t).to(device).keep();
        double s = secondsPerStep(graphed ? key + "_graphed" : key, m, opt, new SequenceCrossEntropyLoss(), ids, ids, steps, device.isCuda() ? 5 : 3, amp,
                graphed, graphed || group != null || !device.isCuda() ? null : key + "_peak_mem_mb");
        release(m, opt);
        ids.close();
        return Math.round((double) b * t / s);
    }

    /**
     * Frees a finished workload's parameters, gradients, buffers and optimizer state now rather than when the collector
     * gets to them, so the next workload's peak memory is its own (torch_gpt_memory.py deletes each model likewise).
     */
    private static void release(Layer m, Optimizer opt) {
        for (Tensor p : m.parameters()) {
            for (Tensor st : opt.exportState(p).tensors().values()) st.close();
            p.zeroGrad();
            p.close();
        }
        for (Tensor buf : m.namedBuffers().values()) buf.close();
    }

    /**
     * Seconds per training step of m on (x, y): zeroGrad, forward and loss (under bfloat16 autocast when amp, as
     * torch_ref.py's amp=True), backward, the optimizer; replayed as one CUDA graph when graphed (3 eager warm-up calls
     * and a capture, which the 10 warm-up calls cover). peakKey (eager only): also the peak device memory of one step.
     */
    private <M extends Layer & Forward> double secondsPerStep(String profileKey, M m, Optimizer opt, Loss loss, Tensor x, Tensor y, int steps,
                                                              int warm, boolean amp, boolean graphed, String peakKey) throws java.io.IOException {
        DataParallel dp = group == null ? null : DataParallel.of(m, group);
        if (graphed) {
            try (GraphedStep gs = new GraphedStep(m, loss, opt, x.shape(), x.dtype(), y.shape(), y.dtype(), device,
                    amp ? Precision.BF16 : Precision.FP32, GraphedStep.DEFAULT_WARMUP)) {
                if (dp != null) gs.dataParallel(dp);
                Supplier<Object> replayed = () -> gs.step(x, y);
                double s = timer.perCall(replayed, steps, 10);
                if (!gs.captured()) throw new IllegalStateException(profileKey + ": the step was never captured");
                if (profileDir != null) profile(profileKey, replayed);
                return s;
            }
        }
        Supplier<Object> step = () -> {
            opt.zeroGrad();
            Tensor l;
            try (Autocast ac = amp ? Autocast.enable(DType.BFLOAT16) : Autocast.disabled()) {
                l = loss.forward(m.forward(x), y);
            }
            l.backward();
            if (dp != null) dp.finish();
            opt.step();
            return l;
        };
        double s = device.isCuda() ? timer.perCall(step, steps, warm) : timer.cpuStep(step, steps, warm);
        if (peakKey != null) {
            Cuda.resetPeakMemory(device);
            timer.perCall(step, 1, 0);
            peakMemory.put(peakKey, Math.round(Cuda.peakMemoryBytes(device) / 1e6));
        }
        if (profileDir != null) profile(profileKey, step);
        return s;
    }

    private void profile(String key, Supplier<Object> step) throws java.io.IOException {
        java.nio.file.Files.createDirectories(profileDir);
        if (group != null) key += "_rank" + group.rank();     // each rank its own files
        Profiler prof = Profiler.start();
        try {
            timer.perCall(step, 5, 0);
        } finally {
            prof.close();
        }
        java.nio.file.Files.writeString(profileDir.resolve(key + ".txt"), prof.summary());
        prof.writeChromeTrace(profileDir.resolve(key + ".json"));
    }

    /** 10 epochs of Fashion-MNIST, data resident on the device, batch 128, Adam 1e-3: {seconds, test accuracy}. */
    private double[] fmnist(String name, boolean graphed) throws Exception { return fmnist(name, graphed, 10, 0, 128, false, (st, per) -> 1e-3); }

    /** A learning rate for each step: step counts from 0 over the run, perEpoch steps an epoch. */
    private interface StepRate { double at(long step, long perEpoch); }

    /**
     * Up to {@code epochs} epochs of Fashion-MNIST (data resident on the device, Adam at {@code lr}'s rates, float32 or
     * bfloat16 autocast); when {@code stopAt} > 0 the test accuracy is measured after each epoch, off the clock, and
     * training stops once it reaches stopAt. Returns {training seconds, test accuracy, epochs run, the first epoch's seconds}.
     */
    private double[] fmnist(String name, boolean graphed, int epochs, double stopAt, int batch, boolean bf16, StepRate lr) throws Exception {
        TensorDataset train = FashionMnist.load(fmnistDir, true), test = FashionMnist.load(fmnistDir, false);
        Batch all = train.batch(range(train.size())), allTest = test.batch(range(test.size()));
        Tensor xtr = all.inputs().to(device).keep(), ytr = all.targets().to(device).keep();
        Tensor xte = allTest.inputs().to(device).keep(), yte = allTest.targets().to(device).keep();
        Model m = ModelZoo.parse(name).build(new Generator(0));
        m.to(device);
        m.channelsLast(channelsLast);
        int n = train.size();
        long perEpoch = (n + batch - 1) / batch, step = 0;
        Optimizer opt = new Adam(m.parameters(), lr.at(0, perEpoch));
        GraphedStep graph = graphed ? new GraphedStep(m, new CrossEntropyLoss(), opt, new int[]{batch, 1, 28, 28}, DType.FLOAT32,
                new int[]{batch}, DType.INT64, device, bf16 ? Precision.BF16 : Precision.FP32, GraphedStep.DEFAULT_WARMUP) : null;
        Generator shuffle = new Generator(0);
        sync();
        long t = System.nanoTime(), training = 0, first = 0;
        double acc = 0;
        int ep = 0;
        while (ep < epochs) {
            m.train();
            Tensor permDev = Tensor.rand(shuffle, new int[]{n}, DType.FLOAT32, device).argsort(0, false).keep();   // an epoch's order
            for (int i = 0; i < n; i += batch) {
                opt.setLr(lr.at(step++, perEpoch));
                try (MemoryScope scope = MemoryScope.open(); Autocast ac = bf16 ? Autocast.enable(DType.BFLOAT16) : Autocast.disabled()) {
                    Tensor idx = permDev.narrow(0, i, Math.min(batch, n - i));
                    if (graph != null) {
                        graph.step(xtr.indexSelect(0, idx), ytr.indexSelect(0, idx)); // the last, partial batch runs eagerly
                        continue;
                    }
                    opt.zeroGrad();
                    F.crossEntropy(m.forward(xtr.indexSelect(0, idx)), ytr.indexSelect(0, idx)).backward();
                    opt.step();
                }
            }
            permDev.close();
            ep++;
            if (stopAt > 0) {
                sync();
                training += System.nanoTime() - t;
                if (ep == 1) first = training;
                acc = testAccuracy(m, xte, yte);
                if (acc >= stopAt) break;
                sync();
                t = System.nanoTime();
            }
        }
        if (stopAt <= 0) {
            sync();
            training = System.nanoTime() - t;
            acc = testAccuracy(m, xte, yte);
        }
        if (graph != null) graph.close();
        return new double[]{training / 1e9, acc, ep, first / 1e9};
    }

    private static <M extends Layer & Forward> double testAccuracy(M m, Tensor xte, Tensor yte) {
        m.eval();
        double correct = 0;
        try (MemoryScope s = MemoryScope.open()) {
            for (int i = 0; i < xte.size(0); i += 1000) {
                Tensor xs = xte.narrow(0, i, Math.min(1000, xte.size(0) - i)), ys = yte.narrow(0, i, xs.size(0));
                Tensor logits = Tensor.noGrad(() -> m.forward(xs));
                correct += logits.argmax(1, false).eq(ys).to(DType.INT64).sum().item();
            }
        }
        return correct / xte.size(0);
    }

    private static int[] range(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) r[i] = i;
        return r;
    }
}
