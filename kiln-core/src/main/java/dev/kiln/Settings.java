package dev.kiln;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * Every setting Kiln reads from outside, in one place: read once, from a system property ({@code -Dkiln.x.y})
 * or else an environment variable ({@code KILN_X_Y}), when first asked for. README's "Settings" table lists each
 * one; a value that does not parse is an error naming the variable. Library code asks {@link #get()} instead of
 * reading the environment itself.
 *
 * @param debug          {@code kiln.debug} / {@code KILN_DEBUG}: the command line prints stack traces with its errors
 * @param cacheDir       {@code kiln.cache.dir} / {@code KILN_CACHE_DIR}: compiled kernels and cuDNN algorithm choices
 *                       (default {@code ~/.cache/kiln})
 * @param cudaLibPath    {@code kiln.cuda.lib.path} / {@code KILN_CUDA_LIB_PATH}: folders searched first for the NVIDIA
 *                       libraries (colon-separated)
 * @param cudnn          {@code kiln.cudnn} / {@code KILN_CUDNN}: convolutions and 16-bit attention through cuDNN (off: Kiln's own kernels)
 * @param cudnnBenchmark {@code kiln.cudnn.benchmark} / {@code KILN_CUDNN_BENCHMARK}: the timed algorithm search: cuDNN's
 *                       algorithms once per convolution shape, cuBLASLt's candidates once per matrix-product shape
 *                       (kiln train and kiln bench turn it on for their run)
 * @param cudnnAlgoCache {@code kiln.cudnn.algo.cache} / {@code KILN_CUDNN_ALGO_CACHE}: keep timed choices on disk (cuDNN's algorithms, cuBLASLt's candidates)
 * @param logLevel       {@code kiln.log.level} / {@code KILN_LOG_LEVEL}: the least severe of Kiln's messages printed when
 *                       the application has not configured logging ({@code error}, {@code warning}, {@code info} (default),
 *                       {@code debug}: also each cuDNN algorithm choice, {@code trace}, {@code off}); see {@link Logging}
 * @param convTf32       {@code kiln.conv.tf32} / {@code KILN_CONV_TF32}: the default of each device's
 *                       float32-convolution TF32 setting (on, as PyTorch)
 * @param smallConv      {@code kiln.small.conv} / {@code KILN_SMALL_CONV}: Kiln's direct kernels for convolutions of
 *                       1-3 input channels (and ResNet's 7x7 stem and the 32/64-channel 3x3 weight gradient on tensor
 *                       cores): {@code on}, {@code off}, or {@code all} (also the 3-channel weight gradient of the
 *                       small kernels)
 * @param progress       {@code kiln.progress} / {@code KILN_PROGRESS}: draw the command line's progress bar (the
 *                       launcher sets it when stderr is a terminal)
 * @param attentionComposeMb {@code kiln.attention.compose.mb} / {@code KILN_ATTENTION_COMPOSE_MB}: float64 attention
 *                       on CUDA composes cuBLAS products and the softmax kernels while one call's scores take at most
 *                       this many MB (default 256; faster than the fused SIMT kernel at GPT sizes), and runs the fused
 *                       kernel, whose memory grows only linearly with the sequence, beyond; 0: always fused. 16-bit and
 *                       float32 attention always run the fused tensor-core kernels
 * @param cudaMemoryLimitMb {@code kiln.cuda.memory.limit.mb} / {@code KILN_CUDA_MEMORY_LIMIT_MB}: the most device memory
 *                       (MB) Kiln's allocator reserves per GPU, beyond which a request fails as out of memory (after
 *                       emptying the cache); 0 (default): the device's own limit
 * @param deterministic  {@code kiln.deterministic} / {@code KILN_DETERMINISTIC}: GPU ops that would sum in a varying order
 *                       choose an order-fixed algorithm (cuDNN's deterministic ones, composed 16-bit and float32 attention) or
 *                       refuse to run (atomic index adds), so a run repeats bit for bit (PyTorch's
 *                       {@code use_deterministic_algorithms}); {@code kiln train --deterministic} sets it
 * @param distTimeoutS   {@code kiln.dist.timeout.s} / {@code KILN_DIST_TIMEOUT_S}: seconds a data-parallel job may go
 *                       without any rank making progress before rank 0 names the rank furthest behind (hung) and the
 *                       job is aborted, as for a rank that died (default 600, PyTorch's NCCL timeout)
 * @param dpBucketMb     {@code kiln.dp.bucket.mb} / {@code KILN_DP_BUCKET_MB}: the size of a data-parallel gradient
 *                       bucket (MB; default 25, PyTorch's {@code bucket_cap_mb}): smaller buckets start reducing earlier
 *                       in backward and leave a smaller last reduction after it, larger ones make fewer calls
 * @param dpLastBucketMb {@code kiln.dp.last.bucket.mb} / {@code KILN_DP_LAST_BUCKET_MB}: when above 0, data-parallel
 *                       buckets shrink towards the end of backward: the bucket reduced last holds at most this many MB,
 *                       each one before it at most twice the next, up to {@code kiln.dp.bucket.mb}, so less is left to
 *                       reduce once backward ends (a CNN's stem and first stages make their gradients last). 0
 *                       (default): buckets of equal size
 * @param dpReduceAlone  {@code kiln.dp.reduce.alone} / {@code KILN_DP_REDUCE_ALONE}: a data-parallel job of one process
 *                       still makes its gradients bucket slices and reduces each bucket (through NCCL on a GPU), as
 *                       each rank of a larger job does: the data-parallel step's own cost, measured on one GPU
 *                       (default off: a job of one skips it)
 * @param dpCommHighPriority {@code kiln.dp.comm.high.priority} / {@code KILN_DP_COMM_HIGH_PRIORITY}: the stream NCCL's
 *                       data-parallel reductions run on takes the device's highest priority, so their blocks get the
 *                       SMs backward's kernels free before backward's own next blocks (PyTorch's
 *                       {@code is_high_priority_stream}); default off
 * @param cpuAsm         {@code kiln.cpu.asm} / {@code KILN_CPU_ASM}: on Linux x86-64 processors with AVX2 and FMA (or
 *                       AVX-512F), the float32 GEMM kernel is machine code Kiln writes at start-up (12 ymm accumulators
 *                       where C2's Vector API code keeps 8; at 512 bits C2's tile, 10-25% faster), as are the int8
 *                       product and the 3x3 stride-1 convolutions; off: the Vector API kernel, int8 through the float
 *                       GEMM, the convolutions through im2col (default on)
 * @param cpuThreads     {@code kiln.cpu.threads} / {@code KILN_CPU_THREADS}: the threads the CPU kernels split work over
 *                       (0, default: one per processor the JVM sees)
 * @param cpuTeam        {@code kiln.cpu.team} / {@code KILN_CPU_TEAM}: the CPU's parallel loops run on a team of
 *                       workers, chunk i always to the same thread, as OpenMP runs MKL's (default on; off: the
 *                       fork-join pool for every loop)
 * @param cpuSpinUs      {@code kiln.cpu.spin.us} / {@code KILN_CPU_SPIN_US}: microseconds a team worker spins for the
 *                       next loop before it parks (default 200)
 * @param cpuPoison      {@code kiln.cpu.poison} / {@code KILN_CPU_POISON}: for tests, every float32 array the CPU hands
 *                       out unset, and every one given back, is filled with NaN, so a kernel that reads what it did not
 *                       write shows (default off)
 */
public record Settings(boolean debug, Path cacheDir, List<Path> cudaLibPath, boolean cudnn, boolean cudnnBenchmark,
                       boolean cudnnAlgoCache, System.Logger.Level logLevel, boolean convTf32, SmallConv smallConv, boolean progress,
                       long attentionComposeMb, long cudaMemoryLimitMb, boolean deterministic, long distTimeoutS, long dpBucketMb,
                       long dpLastBucketMb, boolean dpReduceAlone, boolean dpCommHighPriority, boolean cpuAsm, long cpuThreads,
                       boolean cpuTeam, long cpuSpinUs, boolean cpuPoison) {

    /** {@code kiln.small.conv}: which convolutions take Kiln's direct few-channel kernels on CUDA. */
    public enum SmallConv {
        /** None: cuDNN (or im2col + GEMM) for every convolution. */
        OFF,
        /** Forward and input gradient for 1-3 input channels; the weight gradient for 1 channel; ResNet's 7x7 stem's forward and weight gradient. */
        ON,
        /** As ON, and the weight gradient for 3 channels too (measured slower than cuDNN at batch 1024). */
        ALL
    }

    public Settings {
        cudaLibPath = List.copyOf(cudaLibPath);
    }

    private static volatile Settings current;

    /** The process's settings, read from system properties and the environment on the first call. */
    public static Settings get() {
        Settings s = current;
        if (s == null) {
            synchronized (Settings.class) {
                if (current == null) current = read(System::getProperty, System.getenv());
                s = current;
            }
        }
        return s;
    }

    /** Reads the settings from the given properties and environment (tests pass their own). */
    public static Settings read(UnaryOperator<String> properties, Map<String, String> env) {
        Source src = new Source(properties, env);
        Path cache = src.value("kiln.cache.dir").map(Path::of)
                .orElseGet(() -> Path.of(System.getProperty("user.home"), ".cache", "kiln"));
        List<Path> libPath = new ArrayList<>();
        src.value("kiln.cuda.lib.path").ifPresent(v -> {
            for (String d : v.split(":")) if (!d.isBlank()) libPath.add(Path.of(d));
        });
        SmallConv small = src.value("kiln.small.conv").map(v -> switch (v.toLowerCase(Locale.ROOT)) {
            case "1", "on", "true", "yes" -> SmallConv.ON;
            case "0", "off", "false", "no" -> SmallConv.OFF;
            case "all" -> SmallConv.ALL;
            default -> throw src.bad("kiln.small.conv", v, "on, off or all");
        }).orElse(SmallConv.ON);
        return new Settings(src.flag("kiln.debug", false), cache, libPath, src.flag("kiln.cudnn", true),
                src.flag("kiln.cudnn.benchmark", false), src.flag("kiln.cudnn.algo.cache", true), src.value("kiln.log.level").map(v -> level(src, v)).orElse(System.Logger.Level.INFO),
                src.flag("kiln.conv.tf32", true), small, src.flag("kiln.progress", false), src.count("kiln.attention.compose.mb", 256),
                src.count("kiln.cuda.memory.limit.mb", 0), src.flag("kiln.deterministic", false), src.count("kiln.dist.timeout.s", 600),
                src.count("kiln.dp.bucket.mb", 25), src.count("kiln.dp.last.bucket.mb", 0),
                src.flag("kiln.dp.reduce.alone", false), src.flag("kiln.dp.comm.high.priority", false), src.flag("kiln.cpu.asm", true),
                src.count("kiln.cpu.threads", 0), src.flag("kiln.cpu.team", true), src.count("kiln.cpu.spin.us", 200), src.flag("kiln.cpu.poison", false));
    }

    /**
     * The explicit path of one NVIDIA library: {@code kiln.lib.<name>} / {@code KILN_LIB_<NAME>} (a file or a
     * folder), e.g. {@code KILN_LIB_CUBLAS}; empty when not set. Read when the library is loaded.
     */
    public static Optional<String> libraryPath(String name) {
        return new Source(System::getProperty, System.getenv()).value("kiln.lib." + name);
    }

    private static System.Logger.Level level(Source src, String v) {
        try {
            return Logging.parseLevel(v);
        } catch (IllegalArgumentException e) {
            throw src.bad("kiln.log.level", v, "error, warning, info, debug, trace, all or off");
        }
    }

    /** The environment variable that carries a property: {@code kiln.log.level} is {@code KILN_LOG_LEVEL}. */
    public static String envName(String property) {
        return property.replace('.', '_').replace('-', '_').toUpperCase(Locale.ROOT);
    }

    private record Source(UnaryOperator<String> properties, Map<String, String> env) {
        Optional<String> value(String property) {
            String v = properties.apply(property);
            if (v == null) v = env.get(envName(property));
            return v == null || v.isBlank() ? Optional.empty() : Optional.of(v.trim());
        }

        boolean flag(String property, boolean dflt) {
            return value(property).map(v -> switch (v.toLowerCase(Locale.ROOT)) {
                case "1", "on", "true", "yes" -> true;
                case "0", "off", "false", "no" -> false;
                default -> throw bad(property, v, "1/on/true or 0/off/false");
            }).orElse(dflt);
        }

        long count(String property, long dflt) {
            return value(property).map(v -> {
                try {
                    long n = Long.parseLong(v);
                    if (n >= 0) return n;
                } catch (NumberFormatException e) {
                    // reported below
                }
                throw bad(property, v, "a whole number >= 0");
            }).orElse(dflt);
        }

        IllegalArgumentException bad(String property, String v, String expected) {
            return new IllegalArgumentException(property + " / " + envName(property) + " is '" + v + "'; expected " + expected);
        }
    }
}
