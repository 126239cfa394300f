package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.backend.Conv2dParams;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.kiln.cuda.Cudnn.CUDNN_DEFAULT_MATH;
import static dev.kiln.cuda.Cudnn.CUDNN_FMA_MATH;
import static dev.kiln.cuda.Cudnn.CUDNN_TENSOR_OP_MATH;
import static dev.kiln.cuda.Cudnn.H;

/**
 * One convolution geometry on one cuDNN handle: x (N, C, H, W), w (K, C/groups, R, S), y (N, K, P, Q), all contiguous
 * NCHW, or x and y channels-last and w KRSC (the layout of cuDNN's NHWC tensor-core kernels). Made once by {@link Cudnn#conv}; each direction's algorithm (and its workspace size) is chosen the first time
 * it runs and kept, so steady-state calls do no descriptor work and no search.
 *
 * <p>Every call computes {@code out = alpha·op(...) + beta·out}: beta 0 assigns, beta 1 accumulates.
 */
public final class ConvPlan implements AutoCloseable {
    /** The geometry a plan is cached under. */
    record Key(DType dtype, int n, int c, int h, int w, int k, int cPerGroup, int r, int s, Conv2dParams p, boolean tf32,
               boolean channelsLast) {}

    /** A chosen algorithm: cudnnConvolution*Algo_t, the math type it runs with, and its workspace. */
    public record Choice(int algo, int mathType, long workspaceBytes, float benchmarkMs) {}

    private enum Dir { FORWARD, BACKWARD_DATA, BACKWARD_FILTER }

    private final Cudnn cudnn;
    private final Key key;
    private final Cudnn.TensorDesc x, y;
    private final Cudnn.FilterDesc w;
    private final Cudnn.ConvDesc conv;
    private final int[] outShape;
    private final Choice[] chosen = new Choice[3];
    private boolean closed;

    ConvPlan(Cudnn cudnn, Key k) {
        this.cudnn = cudnn;
        this.key = k;
        if (k.c() % k.p().groups() != 0 || k.k() % k.p().groups() != 0 || k.c() / k.p().groups() != k.cPerGroup()) {
            throw new IllegalArgumentException("conv2d: weight (" + k.k() + ", " + k.cPerGroup() + ", " + k.r() + ", " + k.s()
                    + ") does not fit input channels " + k.c() + " with groups " + k.p().groups());
        }
        int p = k.p().outH(k.h(), k.r()), q = k.p().outW(k.w(), k.s());
        if (p < 1 || q < 1) {
            throw new IllegalArgumentException("conv2d: kernel " + k.r() + "x" + k.s() + " does not fit input " + k.h() + "x" + k.w()
                    + " with " + k.p());
        }
        this.outShape = new int[]{k.n(), k.k(), p, q};
        Cudnn.TensorDesc xd = null, yd = null;
        Cudnn.FilterDesc wd = null;
        Cudnn.ConvDesc cd = null;
        try {
            xd = k.channelsLast() ? Cudnn.TensorDesc.nhwc(k.dtype(), k.n(), k.c(), k.h(), k.w()) : Cudnn.TensorDesc.nchw(k.dtype(), k.n(), k.c(), k.h(), k.w());
            wd = new Cudnn.FilterDesc(k.dtype(), k.k(), k.cPerGroup(), k.r(), k.s(), k.channelsLast());
            cd = new Cudnn.ConvDesc(k.p(), k.dtype(), requestedMath());
            yd = k.channelsLast() ? Cudnn.TensorDesc.nhwc(k.dtype(), k.n(), k.k(), p, q) : Cudnn.TensorDesc.nchw(k.dtype(), k.n(), k.k(), p, q);
            checkOutputDims(xd, wd, cd);
        } catch (RuntimeException e) {
            for (AutoCloseable c : new AutoCloseable[]{xd, wd, cd, yd}) closeQuietly(c);
            throw e;
        }
        this.x = xd;
        this.w = wd;
        this.conv = cd;
        this.y = yd;
    }

    /** The output shape (N, K, P, Q). */
    public int[] outputShape() { return outShape.clone(); }

    /**
     * Math type asked for: TF32 allowed → tensor-op math; float32 without TF32 → FMA only (CUDNN_DEFAULT_MATH would
     * allow TF32 on Ampere+); 16-bit data → tensor ops; float64 → default.
     */
    private int requestedMath() {
        return switch (key.dtype()) {
            case FLOAT32 -> key.tf32() ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
            case BFLOAT16, FLOAT16 -> CUDNN_TENSOR_OP_MATH;
            case FLOAT64 -> CUDNN_DEFAULT_MATH;
            case INT64, INT32, UINT8, BOOL -> throw new IllegalArgumentException("cuDNN conv: unsupported dtype " + key.dtype());
        };
    }

    /** Whether a candidate's math type is acceptable: float32 without TF32 must stay on FMA. */
    private boolean mathAllowed(int math) {
        return !(key.dtype() == DType.FLOAT32 && !key.tf32()) || math == CUDNN_FMA_MATH;
    }

    private void checkOutputDims(Cudnn.TensorDesc xd, Cudnn.FilterDesc wd, Cudnn.ConvDesc cd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment d = a.allocate(ValueLayout.JAVA_INT, 4);
            Cudnn.LIB.check("cudnnGetConvolution2dForwardOutputDim", (int) H.convOutputDim.invokeExact(cd.address, xd.address, wd.address,
                    d.asSlice(0, 4), d.asSlice(4, 4), d.asSlice(8, 4), d.asSlice(12, 4)));
            int[] got = d.toArray(ValueLayout.JAVA_INT);
            if (!java.util.Arrays.equals(got, outShape)) {
                throw new IllegalStateException("conv2d: cuDNN's output shape " + java.util.Arrays.toString(got)
                        + " differs from Kiln's " + java.util.Arrays.toString(outShape));
            }
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    // ---- the three directions

    /** y = alpha·conv(x, w) + beta·y. */
    public void forward(long xPtr, long wPtr, long yPtr, double alpha, double beta, WorkspaceProvider ws) {
        run(Dir.FORWARD, "cudnnConvolutionForward", xPtr, wPtr, yPtr, alpha, beta, ws, (c, work) ->
                (int) H.convForward.invokeExact(cudnn.handle(), cudnn.scalar[0], x.address, xPtr, w.address, wPtr, conv.address,
                        c.algo(), work, c.workspaceBytes(), cudnn.scalar[1], y.address, yPtr));
    }

    /** dx = alpha·(gradient of conv w.r.t. x, given dy and w) + beta·dx. */
    public void backwardData(long dyPtr, long wPtr, long dxPtr, double alpha, double beta, WorkspaceProvider ws) {
        run(Dir.BACKWARD_DATA, "cudnnConvolutionBackwardData", dxPtr, wPtr, dyPtr, alpha, beta, ws, (c, work) ->
                (int) H.convBackwardData.invokeExact(cudnn.handle(), cudnn.scalar[0], w.address, wPtr, y.address, dyPtr, conv.address,
                        c.algo(), work, c.workspaceBytes(), cudnn.scalar[1], x.address, dxPtr));
    }

    /** dw = alpha·(gradient of conv w.r.t. w, given x and dy) + beta·dw. */
    public void backwardFilter(long xPtr, long dyPtr, long dwPtr, double alpha, double beta, WorkspaceProvider ws) {
        run(Dir.BACKWARD_FILTER, "cudnnConvolutionBackwardFilter", xPtr, dwPtr, dyPtr, alpha, beta, ws, (c, work) ->
                (int) H.convBackwardFilter.invokeExact(cudnn.handle(), cudnn.scalar[0], x.address, xPtr, y.address, dyPtr, conv.address,
                        c.algo(), work, c.workspaceBytes(), cudnn.scalar[1], w.address, dwPtr));
    }

    /** One direction's cuDNN call with its chosen algorithm and workspace; returns cuDNN's status. */
    @FunctionalInterface
    private interface Call {
        int run(Choice c, long work) throws Throwable;
    }

    /** What the three directions share: the choice (x, w, y as the descriptors name them), workspace, math type, alpha and beta. */
    private void run(Dir dir, String function, long xPtr, long wPtr, long yPtr, double alpha, double beta, WorkspaceProvider ws, Call call) {
        Choice c = choice(dir, xPtr, wPtr, yPtr, ws);
        long work = c.workspaceBytes() == 0 ? 0 : ws.address(c.workspaceBytes());
        conv.setMathType(c.mathType());
        cudnn.setScalar(0, key.dtype(), alpha);
        cudnn.setScalar(1, key.dtype(), beta);
        try {
            int st = call.run(c, work);
            if (st != 0) throw Cudnn.LIB.failure(function, st, describe(c));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    // ---- algorithm choice, once per direction

    /** The algorithm chosen for forward, backward data and backward filter (null where not yet run). */
    public Choice[] choices() { return chosen.clone(); }

    /**
     * Chooses (once) the algorithm for {@code dir}. {@code xOrDx}, {@code wOrDw}, {@code yOrDy} are only used by
     * {@link Cudnn.AlgoSearch#BENCHMARK}, which runs the candidates; the output it scribbles on goes to scratch.
     */
    private Choice choice(Dir dir, long xOrDx, long wOrDw, long yOrDy, WorkspaceProvider ws) {
        Choice c = chosen[dir.ordinal()];
        if (c != null) return c;
        if (closed) throw new IllegalStateException("conv plan is closed");
        conv.setMathType(requestedMath());
        double searchMs = 0;   // wall time of a timed search, for the debug log (what a first run pays)
        if (cudnn.algoSearch() == Cudnn.AlgoSearch.BENCHMARK) {
            TimedChoices cache = cudnn.timedChoices();
            String cacheKey = dir + " " + describeGeometry() + (Cuda.deterministic() ? " deterministic" : "");
            int[] hit = cache == null ? null : cache.get(cacheKey);
            if (hit != null) {
                conv.setMathType(hit[1]);
                c = new Choice(hit[0], hit[1], workspaceSize(dir, hit[0]), 0);
            } else {
                long t0 = System.nanoTime();
                c = benchmark(dir, xOrDx, wOrDw, yOrDy, ws);
                searchMs = (System.nanoTime() - t0) / 1e6;
                if (cache != null) cache.put(cacheKey, c.algo(), c.mathType());
            }
        } else {
            c = heuristic(dir);
        }
        chosen[dir.ordinal()] = c;
        if (LOG.isLoggable(System.Logger.Level.DEBUG)) LOG.log(System.Logger.Level.DEBUG, "cudnn: " + dir + " " + describe(c) + " (" + cudnn.algoSearch()
                + (c.benchmarkMs() > 0 ? ", " + c.benchmarkMs() + " ms" : cudnn.algoSearch() == Cudnn.AlgoSearch.BENCHMARK ? ", cached" : "")
                + (searchMs > 0 ? String.format(", the search %.1f ms", searchMs) : "") + ")");
        return c;
    }

    private static final int MAX_CANDIDATES = 16;

    /** At debug level (KILN_LOG_LEVEL=debug, --log-level debug): each algorithm chosen (geometry, algorithm, math, workspace), once. */
    private static final System.Logger LOG = dev.kiln.Logging.logger(ConvPlan.class);

    private Choice heuristic(Dir dir) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment count = a.allocate(ValueLayout.JAVA_INT);
            MemorySegment perf = a.allocate(Cudnn.PERF_SIZE * MAX_CANDIDATES, 8);
            long h = cudnn.handle();
            String call;
            int st = switch (dir) {
                case FORWARD -> {
                    call = "cudnnGetConvolutionForwardAlgorithm_v7";
                    yield (int) H.getFwdAlgo.invokeExact(h, x.address, w.address, conv.address, y.address, MAX_CANDIDATES, count, perf);
                }
                case BACKWARD_DATA -> {
                    call = "cudnnGetConvolutionBackwardDataAlgorithm_v7";
                    yield (int) H.getBwdDataAlgo.invokeExact(h, w.address, y.address, conv.address, x.address, MAX_CANDIDATES, count, perf);
                }
                case BACKWARD_FILTER -> {
                    call = "cudnnGetConvolutionBackwardFilterAlgorithm_v7";
                    yield (int) H.getBwdFilterAlgo.invokeExact(h, x.address, y.address, conv.address, w.address, MAX_CANDIDATES, count, perf);
                }
            };
            Cudnn.LIB.check(call, st);
            return pick(dir, call, perf, count.get(ValueLayout.JAVA_INT, 0));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    private Choice benchmark(Dir dir, long xOrDx, long wOrDw, long yOrDy, WorkspaceProvider ws) {
        // One block from the provider: scratch for the output the search overwrites, then the search's workspace.
        long elem = key.dtype().byteSize();
        long outBytes = switch (dir) {
            case FORWARD -> elem * outShape[0] * outShape[1] * outShape[2] * outShape[3];
            case BACKWARD_DATA -> elem * key.n() * key.c() * key.h() * key.w();
            case BACKWARD_FILTER -> elem * key.k() * key.cPerGroup() * key.r() * key.s();
        };
        long outAligned = (outBytes + 255) & ~255L;
        long limit = cudnn.benchmarkWorkspaceLimit();
        long block = ws.address(outAligned + limit);
        long scratchOut = block, work = block + outAligned;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment count = a.allocate(ValueLayout.JAVA_INT);
            MemorySegment perf = a.allocate(Cudnn.PERF_SIZE * MAX_CANDIDATES, 8);
            long h = cudnn.handle();
            String call;
            int st = switch (dir) {
                case FORWARD -> {
                    call = "cudnnFindConvolutionForwardAlgorithmEx";
                    yield (int) H.findFwdAlgo.invokeExact(h, x.address, xOrDx, w.address, wOrDw, conv.address, y.address, scratchOut,
                            MAX_CANDIDATES, count, perf, work, limit);
                }
                case BACKWARD_DATA -> {
                    call = "cudnnFindConvolutionBackwardDataAlgorithmEx";
                    yield (int) H.findBwdDataAlgo.invokeExact(h, w.address, wOrDw, y.address, yOrDy, conv.address, x.address, scratchOut,
                            MAX_CANDIDATES, count, perf, work, limit);
                }
                case BACKWARD_FILTER -> {
                    call = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
                    yield (int) H.findBwdFilterAlgo.invokeExact(h, x.address, xOrDx, y.address, yOrDy, conv.address, w.address, scratchOut,
                            MAX_CANDIDATES, count, perf, work, limit);
                }
            };
            Cudnn.LIB.check(call, st);
            return pick(dir, call, perf, count.get(ValueLayout.JAVA_INT, 0));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    /** The first candidate (cuDNN sorts them best first) that succeeded and whose math type is allowed. */
    private Choice pick(Dir dir, String call, MemorySegment perf, int count) {
        StringBuilder seen = new StringBuilder();
        for (int i = 0; i < count; i++) {
            long o = i * Cudnn.PERF_SIZE;
            seen.append(" algo ").append(perf.get(ValueLayout.JAVA_INT, o + Cudnn.PERF_ALGO)).append(" status ")
                    .append(perf.get(ValueLayout.JAVA_INT, o + Cudnn.PERF_STATUS)).append(" math ").append(perf.get(ValueLayout.JAVA_INT, o + Cudnn.PERF_MATH))
                    .append(" ").append(perf.get(ValueLayout.JAVA_FLOAT, o + Cudnn.PERF_TIME)).append(" ms ")
                    .append(perf.get(ValueLayout.JAVA_LONG, o + Cudnn.PERF_MEMORY)).append(" B;");
        }
        if (LOG.isLoggable(System.Logger.Level.DEBUG)) LOG.log(System.Logger.Level.DEBUG, "cudnn: " + call + " " + describeGeometry() + ":" + seen);
        for (int i = 0; i < count; i++) {
            long o = i * Cudnn.PERF_SIZE;
            int algo = perf.get(ValueLayout.JAVA_INT, o + Cudnn.PERF_ALGO);
            int status = perf.get(ValueLayout.JAVA_INT, o + Cudnn.PERF_STATUS);
            int math = perf.get(ValueLayout.JAVA_INT, o + Cudnn.PERF_MATH);
            float ms = perf.get(ValueLayout.JAVA_FLOAT, o + Cudnn.PERF_TIME);
            if (status != 0 || !mathAllowed(math) || !determinismAllowed(perf, o)) continue;
            conv.setMathType(math);
            long bytes = workspaceSize(dir, algo);
            return new Choice(algo, math, bytes, ms);
        }
        // float32 without TF32 and no candidate reported as FMA: take the best one that succeeded, run with FMA math
        for (int i = 0; i < count && key.dtype() == DType.FLOAT32 && !key.tf32(); i++) {
            long o = i * Cudnn.PERF_SIZE;
            if (perf.get(ValueLayout.JAVA_INT, o + Cudnn.PERF_STATUS) != 0 || !determinismAllowed(perf, o)) continue;
            int algo = perf.get(ValueLayout.JAVA_INT, o + Cudnn.PERF_ALGO);
            conv.setMathType(CUDNN_FMA_MATH);
            return new Choice(algo, CUDNN_FMA_MATH, workspaceSize(dir, algo), perf.get(ValueLayout.JAVA_FLOAT, o + Cudnn.PERF_TIME));
        }
        throw new IllegalStateException(call + ": no usable" + (Cuda.deterministic() ? " deterministic" : "") + " algorithm for " + describeGeometry()
                + " (candidates:" + seen + ")");
    }

    /** In deterministic mode only the candidates cuDNN reports CUDNN_DETERMINISTIC (1). */
    private static boolean determinismAllowed(MemorySegment perf, long o) {
        return !Cuda.deterministic() || perf.get(ValueLayout.JAVA_INT, o + Cudnn.PERF_DETERMINISM) == 1;
    }

    private long workspaceSize(Dir dir, int algo) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment size = a.allocate(ValueLayout.JAVA_LONG);
            long h = cudnn.handle();
            String call;
            int st = switch (dir) {
                case FORWARD -> {
                    call = "cudnnGetConvolutionForwardWorkspaceSize";
                    yield (int) H.fwdWorkspace.invokeExact(h, x.address, w.address, conv.address, y.address, algo, size);
                }
                case BACKWARD_DATA -> {
                    call = "cudnnGetConvolutionBackwardDataWorkspaceSize";
                    yield (int) H.bwdDataWorkspace.invokeExact(h, w.address, y.address, conv.address, x.address, algo, size);
                }
                case BACKWARD_FILTER -> {
                    call = "cudnnGetConvolutionBackwardFilterWorkspaceSize";
                    yield (int) H.bwdFilterWorkspace.invokeExact(h, x.address, y.address, conv.address, w.address, algo, size);
                }
            };
            Cudnn.LIB.check(call, st);
            return size.get(ValueLayout.JAVA_LONG, 0);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    private String describe(Choice c) {
        return describeGeometry() + ", algo " + c.algo() + ", math " + c.mathType() + ", workspace " + c.workspaceBytes();
    }

    private String describeGeometry() {
        return key.dtype() + " x (" + key.n() + ", " + key.c() + ", " + key.h() + ", " + key.w() + ") w (" + key.k() + ", "
                + key.cPerGroup() + ", " + key.r() + ", " + key.s() + ") " + key.p() + (key.tf32() ? " tf32" : "") + (key.channelsLast() ? " nhwc" : "");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        for (AutoCloseable c : new AutoCloseable[]{x, w, conv, y}) closeQuietly(c);
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c == null) return;
        try {
            c.close();
        } catch (Exception ignored) {
            // a descriptor that fails to destroy leaks a few bytes of host memory; nothing to do about it
        }
    }
}
