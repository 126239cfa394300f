package dev.kiln.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

import static dev.kiln.cuda.NativeLibrary.INT;
import static dev.kiln.cuda.NativeLibrary.PTR;
import static dev.kiln.cuda.NativeLibrary.SIZE_T;

/**
 * One operation graph of cuDNN's graph ("backend") API, built op by op, then bound to the first engine configuration
 * of cuDNN's heuristics that finalizes into an execution plan. Fused attention ({@link AttentionPlan}) is written this
 * way: cuDNN recognises the graph of products, scale, mask and softmax, and runs its own fused kernels for it.
 *
 * <p>Tensors are numbered as they are made (the uid a variant pack names them by); by-value scalars live in this
 * graph's memory and go into every variant pack by themselves. Not thread-safe: used under its handle's lock.
 */
final class CudnnGraph implements AutoCloseable {
    // cudnnBackendDescriptorType_t
    private static final int POINTWISE = 0, ENGINECFG = 3, ENGINEHEUR = 4, EXECUTION_PLAN = 5, OP_POINTWISE = 13, OPERATIONGRAPH = 15,
            VARIANT_PACK = 16, TENSOR = 17, MATMUL = 18, OP_MATMUL = 19, REDUCTION = 21, OP_REDUCTION = 22, OP_RESHAPE = 31;
    // cudnnBackendAttributeType_t
    private static final int T_HANDLE = 0, T_DATA_TYPE = 1, T_BOOLEAN = 2, T_INT64 = 3, T_VOID_PTR = 6, T_HEUR_MODE = 8,
            T_POINTWISE_MODE = 14, T_DESCRIPTOR = 15, T_REDUCTION_OP = 18;
    // cudnnBackendAttributeName_t
    private static final int POINTWISE_MODE = 0, POINTWISE_MATH_PREC = 1, POINTWISE_AXIS = 9, ENGINEHEUR_MODE = 200,
            ENGINEHEUR_OPERATION_GRAPH = 201, ENGINEHEUR_RESULTS = 202, PLAN_HANDLE = 400, PLAN_ENGINE_CONFIG = 401,
            PLAN_WORKSPACE_SIZE = 402, OP_POINTWISE_PW_DESCRIPTOR = 750, OP_POINTWISE_XDESC = 751, OP_POINTWISE_BDESC = 752,
            OP_POINTWISE_YDESC = 753, OP_POINTWISE_TDESC = 758, OPERATIONGRAPH_HANDLE = 800, OPERATIONGRAPH_OPS = 801,
            TENSOR_BYTE_ALIGNMENT = 900, TENSOR_DATA_TYPE = 901, TENSOR_DIMENSIONS = 902, TENSOR_STRIDES = 903, TENSOR_UNIQUE_ID = 906,
            TENSOR_IS_VIRTUAL = 907, TENSOR_IS_BY_VALUE = 908, VARIANT_PACK_UNIQUE_IDS = 1000, VARIANT_PACK_DATA_POINTERS = 1001,
            VARIANT_PACK_WORKSPACE = 1003, MATMUL_COMP_TYPE = 1500, OP_MATMUL_ADESC = 1520, OP_MATMUL_BDESC = 1521,
            OP_MATMUL_CDESC = 1522, OP_MATMUL_DESC = 1523, REDUCTION_OPERATOR = 1600, REDUCTION_COMP_TYPE = 1601,
            OP_REDUCTION_XDESC = 1610, OP_REDUCTION_YDESC = 1611, OP_REDUCTION_DESC = 1612, OP_RESHAPE_XDESC = 2200,
            OP_RESHAPE_YDESC = 2201;
    /** cudnnBackendHeurMode_t: A (the fast heuristic) first, then the fallback list. */
    private static final int HEUR_MODE_A = 3, HEUR_MODE_FALLBACK = 2;

    // cudnnPointwiseMode_t
    static final int ADD = 0, MUL = 1, DIV = 6, SUB = 9, EXP = 13, LOG = 15, IDENTITY = 21, CMP_GE = 303, GEN_INDEX = 501, BINARY_SELECT = 601;
    // cudnnReduceTensorOp_t
    static final int SUM = 0, MAX = 3;
    // cudnnDataType_t beyond Cudnn's
    static final int INT32 = 4, BOOLEAN = 11;

    private static final class H {
        static final MethodHandle create = Cudnn.LIB.bind("cudnnBackendCreateDescriptor", INT, ValueLayout.ADDRESS);
        static final MethodHandle destroy = Cudnn.LIB.bind("cudnnBackendDestroyDescriptor", PTR);
        static final MethodHandle set = Cudnn.LIB.bind("cudnnBackendSetAttribute", PTR, INT, INT, PTR, ValueLayout.ADDRESS);
        static final MethodHandle get = Cudnn.LIB.bind("cudnnBackendGetAttribute", PTR, INT, INT, PTR, ValueLayout.ADDRESS, ValueLayout.ADDRESS);
        static final MethodHandle finalize = Cudnn.LIB.bind("cudnnBackendFinalize", PTR);
        static final MethodHandle execute = Cudnn.LIB.bind("cudnnBackendExecute", PTR, PTR, PTR);
        static final MethodHandle lastError = Cudnn.LIB.bind("cudnnGetLastErrorString",
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, SIZE_T));
    }

    /** A tensor of the graph: its descriptor and uid. */
    record Tensor(long desc, long uid) {}

    private final Arena arena = Arena.ofShared();
    private final List<Long> owned = new ArrayList<>();   // every descriptor made, destroyed on close
    private final List<Long> ops = new ArrayList<>();
    private final List<long[]> scalars = new ArrayList<>(); // {uid, host address}
    private long nextUid = 1, plan, workspace = -1;

    // ---- tensors

    /** A tensor bound at execution (virtual false) or an intermediate cuDNN keeps to itself (virtual true). */
    Tensor tensor(int dataType, long[] dims, long[] strides, boolean virtual) {
        return describe(dataType, dims, strides, virtual ? TENSOR_IS_VIRTUAL : TENSOR_IS_BY_VALUE, virtual);
    }

    /** A scalar passed by value (a float, or an int32 when {@code dataType} is INT32), broadcast over {@code rank} dims. */
    Tensor scalar(int dataType, double value, int rank) {
        long[] ones = new long[rank];
        java.util.Arrays.fill(ones, 1);
        MemorySegment v = arena.allocate(8, 8);
        if (dataType == INT32) v.set(ValueLayout.JAVA_INT, 0, (int) value);
        else v.set(ValueLayout.JAVA_FLOAT, 0, (float) value);
        Tensor t = describe(dataType, ones, ones, TENSOR_IS_BY_VALUE, true);
        scalars.add(new long[]{t.uid(), v.address()});
        return t;
    }

    /** A tensor descriptor with the next uid, 16-byte alignment and {@code flag} (virtual or by-value) set to {@code on}. */
    private Tensor describe(int dataType, long[] dims, long[] strides, int flag, boolean on) {
        long d = create(TENSOR);
        long uid = nextUid++;
        setInt(d, TENSOR_DATA_TYPE, T_DATA_TYPE, dataType);
        setLongs(d, TENSOR_DIMENSIONS, dims);
        setLongs(d, TENSOR_STRIDES, strides);
        setLongs(d, TENSOR_UNIQUE_ID, uid);
        setLongs(d, TENSOR_BYTE_ALIGNMENT, 16);
        setBool(d, flag, on);
        finalizeDesc(d, "tensor");
        return new Tensor(d, uid);
    }

    // ---- operations

    /** y = mode(x, b, t) element-wise (b and t optional: null), computed in {@code mathType}; {@code axis} for GEN_INDEX. */
    void pointwise(int mode, int mathType, Tensor x, Tensor b, Tensor t, Tensor y, int axis) {
        long pw = create(POINTWISE);
        setInt(pw, POINTWISE_MODE, T_POINTWISE_MODE, mode);
        setInt(pw, POINTWISE_MATH_PREC, T_DATA_TYPE, mathType);
        if (mode == GEN_INDEX) setLongs(pw, POINTWISE_AXIS, axis);
        finalizeDesc(pw, "pointwise");
        long op = create(OP_POINTWISE);
        setDesc(op, OP_POINTWISE_PW_DESCRIPTOR, pw);
        setDesc(op, OP_POINTWISE_XDESC, x.desc());
        if (b != null) setDesc(op, OP_POINTWISE_BDESC, b.desc());
        if (t != null) setDesc(op, OP_POINTWISE_TDESC, t.desc());
        setDesc(op, OP_POINTWISE_YDESC, y.desc());
        finalizeDesc(op, "pointwise operation");
        ops.add(op);
    }

    /** y = x reduced by {@code operator} (SUM or MAX) over the dims where y has extent 1, in float32. */
    void reduction(int operator, Tensor x, Tensor y) {
        long r = create(REDUCTION);
        setInt(r, REDUCTION_OPERATOR, T_REDUCTION_OP, operator);
        setInt(r, REDUCTION_COMP_TYPE, T_DATA_TYPE, Cudnn.CUDNN_DATA_FLOAT);
        finalizeDesc(r, "reduction");
        long op = create(OP_REDUCTION);
        setDesc(op, OP_REDUCTION_DESC, r);
        setDesc(op, OP_REDUCTION_XDESC, x.desc());
        setDesc(op, OP_REDUCTION_YDESC, y.desc());
        finalizeDesc(op, "reduction operation");
        ops.add(op);
    }

    /** c = a b over the last two dims, batched over the leading ones, accumulated in float32. */
    void matmul(Tensor a, Tensor b, Tensor c) {
        long m = create(MATMUL);
        setInt(m, MATMUL_COMP_TYPE, T_DATA_TYPE, Cudnn.CUDNN_DATA_FLOAT);
        finalizeDesc(m, "matmul");
        long op = create(OP_MATMUL);
        setDesc(op, OP_MATMUL_ADESC, a.desc());
        setDesc(op, OP_MATMUL_BDESC, b.desc());
        setDesc(op, OP_MATMUL_CDESC, c.desc());
        setDesc(op, OP_MATMUL_DESC, m);
        finalizeDesc(op, "matmul operation");
        ops.add(op);
    }

    /** y = x seen with y's dims and strides (a transpose, when the strides swap). */
    void reshape(Tensor x, Tensor y) {
        long op = create(OP_RESHAPE);
        setDesc(op, OP_RESHAPE_XDESC, x.desc());
        setDesc(op, OP_RESHAPE_YDESC, y.desc());
        finalizeDesc(op, "reshape operation");
        ops.add(op);
    }

    // ---- plan and execution

    /**
     * Makes the operation graph on {@code handle} and the plan of the first engine configuration, heuristic A's then
     * the fallback list's, that finalizes. False when none does (cuDNN has no fused kernel for this graph here).
     */
    boolean build(long handle) {
        long graph = create(OPERATIONGRAPH);
        setHandle(graph, OPERATIONGRAPH_HANDLE, handle);
        try (Arena a = Arena.ofConfined()) {
            MemorySegment arr = a.allocate(8L * ops.size(), 8);
            for (int i = 0; i < ops.size(); i++) arr.setAtIndex(ValueLayout.JAVA_LONG, i, ops.get(i));
            set(graph, OPERATIONGRAPH_OPS, T_DESCRIPTOR, ops.size(), arr);
        }
        if (!tryFinalize(graph)) return false;
        for (int mode : new int[]{HEUR_MODE_A, HEUR_MODE_FALLBACK}) {
            for (long cfg : engineConfigs(graph, mode)) {
                long p = create(EXECUTION_PLAN);
                setHandle(p, PLAN_HANDLE, handle);
                setDesc(p, PLAN_ENGINE_CONFIG, cfg);
                if (tryFinalize(p)) {
                    plan = p;
                    workspace = getLong(p, PLAN_WORKSPACE_SIZE);
                    return true;
                }
            }
        }
        return false;
    }

    /** The plan's own workspace in bytes (after {@link #build}). */
    long workspaceBytes() { return workspace; }

    /** cudnnGetLastErrorString: what cuDNN said about the last failure on this thread. */
    static String lastError() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(1024);
            H.lastError.invokeExact(buf, 1024L);
            return NativeLibrary.cString(buf);
        } catch (Throwable t) {
            return "";
        }
    }

    /** Runs the plan on the handle's stream with the bound tensors' device pointers and the workspace. */
    void execute(long handle, long[] uids, long[] pointers, long workspaceAddress) {
        if (plan == 0) throw new IllegalStateException("cuDNN graph: execute before a successful build");
        int n = uids.length + scalars.size();
        long pack = 0;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ids = a.allocate(8L * n, 8), ptrs = a.allocate(8L * n, 8), ws = a.allocate(8, 8);
            for (int i = 0; i < uids.length; i++) {
                ids.setAtIndex(ValueLayout.JAVA_LONG, i, uids[i]);
                ptrs.setAtIndex(ValueLayout.JAVA_LONG, i, pointers[i]);
            }
            for (int i = 0; i < scalars.size(); i++) {
                ids.setAtIndex(ValueLayout.JAVA_LONG, uids.length + i, scalars.get(i)[0]);
                ptrs.setAtIndex(ValueLayout.JAVA_LONG, uids.length + i, scalars.get(i)[1]);
            }
            ws.set(ValueLayout.JAVA_LONG, 0, workspaceAddress);
            pack = createTransient(VARIANT_PACK, a);
            set(pack, VARIANT_PACK_UNIQUE_IDS, T_INT64, n, ids);
            set(pack, VARIANT_PACK_DATA_POINTERS, T_VOID_PTR, n, ptrs);
            set(pack, VARIANT_PACK_WORKSPACE, T_VOID_PTR, 1, ws);
            check("cudnnBackendFinalize(variant pack)", (int) H.finalize.invokeExact(pack));
            check("cudnnBackendExecute", (int) H.execute.invokeExact(handle, plan, pack));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        } finally {
            if (pack != 0) destroy(pack);
        }
    }

    @Override public void close() {
        for (int i = owned.size() - 1; i >= 0; i--) destroy(owned.get(i));
        owned.clear();
        arena.close();
    }

    // ---- descriptor plumbing

    /** The engine configurations heuristic {@code mode} ranks for the graph, best first (empty when it has none). */
    private List<Long> engineConfigs(long graph, int mode) {
        long heur = create(ENGINEHEUR);
        setDesc(heur, ENGINEHEUR_OPERATION_GRAPH, graph);
        setInt(heur, ENGINEHEUR_MODE, T_HEUR_MODE, mode);
        List<Long> out = new ArrayList<>();
        if (!tryFinalize(heur)) return out;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment count = a.allocate(8, 8);
            check("cudnnBackendGetAttribute(heuristic count)", (int) H.get.invokeExact(heur, ENGINEHEUR_RESULTS, T_DESCRIPTOR, 0L, count, MemorySegment.NULL));
            long n = count.get(ValueLayout.JAVA_LONG, 0);
            if (n <= 0) return out;
            MemorySegment cfgs = a.allocate(8 * n, 8);
            for (int i = 0; i < n; i++) cfgs.setAtIndex(ValueLayout.JAVA_LONG, i, create(ENGINECFG));
            check("cudnnBackendGetAttribute(heuristic results)", (int) H.get.invokeExact(heur, ENGINEHEUR_RESULTS, T_DESCRIPTOR, n, count, cfgs));
            for (int i = 0; i < count.get(ValueLayout.JAVA_LONG, 0); i++) out.add(cfgs.getAtIndex(ValueLayout.JAVA_LONG, i));
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
        return out;
    }

    private long create(int type) {
        try (Arena a = Arena.ofConfined()) {
            long d = createTransient(type, a);
            owned.add(d);
            return d;
        }
    }

    private static long createTransient(int type, Arena a) {
        try {
            MemorySegment out = a.allocate(8, 8);
            check("cudnnBackendCreateDescriptor(" + type + ")", (int) H.create.invokeExact(type, out));
            return out.get(ValueLayout.JAVA_LONG, 0);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    private static void destroy(long d) {
        try {
            int ignored = (int) H.destroy.invokeExact(d);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    private static boolean tryFinalize(long d) {
        try {
            return (int) H.finalize.invokeExact(d) == 0;
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    private static void finalizeDesc(long d, String what) {
        try {
            int status = (int) H.finalize.invokeExact(d);
            if (status != 0) throw Cudnn.LIB.failure("cudnnBackendFinalize(" + what + ")", status, lastError());
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    private static void set(long d, int name, int type, long count, MemorySegment values) {
        try {
            int status = (int) H.set.invokeExact(d, name, type, count, values);
            if (status != 0) throw Cudnn.LIB.failure("cudnnBackendSetAttribute(" + name + ")", status, lastError());
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    private static void setInt(long d, int name, int type, int v) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(4, 4);
            s.set(ValueLayout.JAVA_INT, 0, v);
            set(d, name, type, 1, s);
        }
    }

    private static void setBool(long d, int name, boolean v) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(1, 1);   // C bool
            s.set(ValueLayout.JAVA_BYTE, 0, (byte) (v ? 1 : 0));
            set(d, name, T_BOOLEAN, 1, s);
        }
    }

    private static void setLongs(long d, int name, long... v) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(8L * v.length, 8);
            for (int i = 0; i < v.length; i++) s.setAtIndex(ValueLayout.JAVA_LONG, i, v[i]);
            set(d, name, T_INT64, v.length, s);
        }
    }

    private static void setDesc(long d, int name, long desc) { setWord(d, name, T_DESCRIPTOR, desc); }

    private static void setHandle(long d, int name, long handle) { setWord(d, name, T_HANDLE, handle); }

    /** One 8-byte value (a descriptor or a handle: both pointers). */
    private static void setWord(long d, int name, int type, long v) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(8, 8);
            s.set(ValueLayout.JAVA_LONG, 0, v);
            set(d, name, type, 1, s);
        }
    }

    private static long getLong(long d, int name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment count = a.allocate(8, 8), v = a.allocate(8, 8);
            check("cudnnBackendGetAttribute(" + name + ")", (int) H.get.invokeExact(d, name, T_INT64, 1L, count, v));
            return v.get(ValueLayout.JAVA_LONG, 0);
        } catch (Throwable t) {
            throw NativeLibrary.rethrow(t);
        }
    }

    private static void check(String call, int status) {
        if (status != 0) throw Cudnn.LIB.failure(call, status, lastError());
    }
}
