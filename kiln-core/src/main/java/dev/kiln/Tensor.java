package dev.kiln;

import dev.kiln.autograd.Autograd;
import dev.kiln.autograd.GradMode;
import dev.kiln.autograd.Node;
import dev.kiln.backend.Backend;
import dev.kiln.backend.BinaryOp;
import dev.kiln.backend.ReduceOp;
import dev.kiln.backend.UnaryOp;
import dev.kiln.ops.Elementwise;
import dev.kiln.ops.Indexing;
import dev.kiln.ops.Matmul;
import dev.kiln.ops.Reductions;
import dev.kiln.ops.Sorting;
import dev.kiln.ops.Views;

import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

/**
 * An n-dimensional array on a device, with a dtype, a shape and strides over a {@link Storage} that views share,
 * and the autograd state ({@code requiresGrad}, {@code grad}, {@code gradFn}). Ops never read device memory on
 * the host: only {@link #item()}, the {@code to*Array()} methods and {@link #toString()} wait for the device.
 */
public final class Tensor implements AutoCloseable {
    // not final only for setData, which moves a parameter to another device or dtype in place
    private Storage storage;
    private DType dtype;
    private final int[] shape;
    private int[] strides;
    private int offset;

    private boolean requiresGrad;
    private Node gradFn;
    private GradSlot slot;   // the gradient and its hooks, made on first use

    /** A tensor over {@code storage}; backends and view ops use this, users use the factories. */
    public Tensor(Storage storage, int[] shape, int[] strides, int offset) {
        if (shape.length != strides.length) throw new IllegalArgumentException("shape and strides differ in rank");
        for (int d : shape) if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + Shape.str(shape));
        this.storage = storage;
        this.dtype = storage.dtype();
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
    }

    /** A contiguous tensor over {@code storage}. */
    public Tensor(Storage storage, int[] shape) { this(storage, shape, Shape.contiguousStrides(shape), 0); }

    // ------------------------------------------------------------------ factories

    public static Tensor of(float[] data, int... shape) { return fromArray(data, data.length, DType.FLOAT32, shape); }
    public static Tensor of(double[] data, int... shape) { return fromArray(data, data.length, DType.FLOAT64, shape); }
    public static Tensor of(long[] data, int... shape) { return fromArray(data, data.length, DType.INT64, shape); }
    public static Tensor of(int[] data, int... shape) { return fromArray(data, data.length, DType.INT32, shape); }

    /** A 1-D float32 tensor of the values. */
    public static Tensor of(float... data) { return of(data, data.length); }

    public static Tensor scalar(double value) { return full(new int[0], value, DType.FLOAT32, Device.CPU); }
    public static Tensor scalar(double value, DType dtype, Device device) { return full(new int[0], value, dtype, device); }

    private static Tensor fromArray(Object data, int length, DType dtype, int[] shape) {
        int[] s = shape.length == 0 && length != 1 ? new int[]{length} : shape;
        if (Shape.numel(s) != length) {
            throw new IllegalArgumentException("Tensor.of: " + length + " values do not fill shape " + Shape.str(s));
        }
        return Backends.cpu().fromHost(data, dtype, s.clone());
    }

    /** A tensor made from raw host data of the given dtype (see {@link Backend#fromHost}). */
    public static Tensor fromHost(Object array, DType dtype, int[] shape, Device device) {
        return Backends.get(device).fromHost(array, dtype, shape.clone());
    }

    public static Tensor empty(int[] shape, DType dtype, Device device) {
        Storage s = Backends.get(device).allocate(dtype, Shape.numel(shape));
        return new Tensor(s, shape.clone());
    }

    public static Tensor full(int[] shape, double value, DType dtype, Device device) {
        Tensor t = empty(shape, dtype, device);
        Backends.get(device).fill(t, value);
        return t;
    }

    public static Tensor zeros(int... shape) { return full(shape, 0, DType.FLOAT32, Device.CPU); }
    public static Tensor zeros(int[] shape, DType dtype, Device device) { return full(shape, 0, dtype, device); }

    public static Tensor ones(int... shape) { return full(shape, 1, DType.FLOAT32, Device.CPU); }
    public static Tensor ones(int[] shape, DType dtype, Device device) { return full(shape, 1, dtype, device); }

    /** Uniform on [0, 1). */
    public static Tensor rand(Generator g, int... shape) { return rand(g, shape, DType.FLOAT32, Device.CPU); }

    public static Tensor rand(Generator g, int[] shape, DType dtype, Device device) {
        return uniform(g, shape, 0, 1, dtype, device);
    }

    public static Tensor uniform(Generator g, int[] shape, double lo, double hi, DType dtype, Device device) {
        requireFloating(dtype, "uniform");
        Tensor t = empty(shape, dtype, device);
        Backends.get(device).uniform(t, g.nextSeed(), lo, hi);
        return t;
    }

    /** Standard normal. */
    public static Tensor randn(Generator g, int... shape) { return randn(g, shape, DType.FLOAT32, Device.CPU); }

    public static Tensor randn(Generator g, int[] shape, DType dtype, Device device) {
        requireFloating(dtype, "randn");
        Tensor t = empty(shape, dtype, device);
        Backends.get(device).normal(t, g.nextSeed(), 0, 1);
        return t;
    }

    /** 0, 1, ..., n-1 as int64. */
    public static Tensor arange(int n, Device device) {
        long[] v = new long[n];
        for (int i = 0; i < n; i++) v[i] = i;
        return Backends.get(device).fromHost(v, DType.INT64, new int[]{n});
    }

    private static void requireFloating(DType dtype, String op) {
        if (!dtype.isFloating()) throw new IllegalArgumentException(op + ": needs a floating dtype, got " + dtype);
    }

    // ------------------------------------------------------------------ metadata

    public DType dtype() { return dtype; }

    public Device device() { return storage.device(); }

    public int[] shape() { return shape.clone(); }

    public int[] strides() { return strides.clone(); }

    public int offset() { return offset; }

    public Storage storage() { return storage; }

    public int dim() { return shape.length; }

    public int size(int dim) { return shape[Shape.dim(dim, shape.length, "size")]; }

    public long numel() { return Shape.numel(shape); }

    public boolean isContiguous() {
        int expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && strides[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    /** Whether this 4-D tensor is laid out channels-last (N, H, W, C in memory), as cuDNN's tensor cores want. */
    public boolean isChannelsLast() {
        return shape.length == 4 && Shape.sameLayout(shape, strides, Shape.channelsLastStrides(shape));
    }

    /**
     * The same values laid out channels-last (a copy; this tensor when it already is): PyTorch's
     * {@code x.to(memory_format=torch.channels_last)}. CUDA convolutions, batch norm, pooling and elementwise ops
     * keep the layout, so one conversion of the input batch makes a conv net's activations channels-last.
     */
    public Tensor toChannelsLast() {
        if (prefersChannelsLast()) return this;
        if (!isChannelsLast()) return Views.toChannelsLast(this, dtype);
        // C == 1 or H == W == 1: the memory is both layouts already; a view with channels-last strides says which the
        // ops after it keep (as PyTorch's strides for size-1 dims do), so a one-channel image makes a conv net channels-last
        return view(shape[0], shape[2], shape[3], shape[1]).permute(0, 3, 1, 2);
    }

    /**
     * Whether this tensor is channels-last and not also contiguous; where it is both (a 4-D tensor with C == 1 or H == W == 1),
     * whether its strides are literally the channels-last ones (as {@link #toChannelsLast()} leaves them).
     */
    public boolean prefersChannelsLast() {
        if (!isChannelsLast()) return false;
        if (!isContiguous()) return true;
        int[] cl = Shape.channelsLastStrides(shape);
        return Arrays.equals(strides, cl) && !Arrays.equals(strides, Shape.contiguousStrides(shape));
    }

    /** An uninitialised tensor of this shape in this one's memory format: channels-last when it prefers it, else contiguous. */
    public Tensor emptyLike(DType dtype) {
        Storage s = backend().allocate(dtype, numel());
        return new Tensor(s, shape.clone(), prefersChannelsLast() ? Shape.channelsLastStrides(shape) : Shape.contiguousStrides(shape), 0);
    }

    Backend backend() {
        if (storage.isReleased()) {
            throw new IllegalStateException("tensor " + Shape.str(shape) + " on " + device() + " was used after its memory was released");
        }
        return Backends.get(device());
    }

    // ------------------------------------------------------------------ autograd

    public boolean requiresGrad() { return requiresGrad; }

    /** Marks a leaf tensor as needing a gradient. Returns this. */
    public Tensor requiresGrad(boolean value) {
        if (gradFn != null && !value) throw new IllegalStateException("requiresGrad(false) on a non-leaf tensor; use detach()");
        if (value && !dtype.isFloating()) throw new IllegalArgumentException("only floating tensors can require grad, this is " + dtype);
        this.requiresGrad = value;
        return this;
    }

    public Tensor grad() { return slot == null ? null : slot.grad; }

    public void setGrad(Tensor g) {
        if (g != null && !Arrays.equals(g.shape, shape)) {
            throw new IllegalArgumentException("setGrad: gradient shape " + Shape.str(g.shape) + " differs from tensor shape " + Shape.str(shape));
        }
        slot().grad = g;
        slot.ownsGrad = false;
    }

    private GradSlot slot() {
        if (slot == null) slot = new GradSlot();
        return slot;
    }

    public Node gradFn() { return gradFn; }

    public boolean isLeaf() { return gradFn == null; }

    /** Used by {@link Autograd#record}: makes this tensor the output of a recorded op. */
    public void attachGradFn(Node node) {
        this.gradFn = node;
        this.requiresGrad = true;
    }

    /** Backward from a scalar (gradient 1). */
    public void backward() {
        if (numel() != 1) throw new IllegalStateException("backward() needs a scalar output, got shape " + Shape.str(shape) + "; pass a gradient");
        backward(Tensor.full(shape, 1, dtype, device()), false);
    }

    public void backward(Tensor gradient, boolean retainGraph) {
        if (!Arrays.equals(gradient.shape, shape)) {
            throw new IllegalArgumentException("backward: gradient shape " + Shape.str(gradient.shape) + " differs from output shape " + Shape.str(shape));
        }
        Autograd.backward(this, gradient, retainGraph);
    }

    /** A hook that may replace the gradient flowing into this tensor. */
    public void registerHook(UnaryOperator<Tensor> hook) { slot().addHook(hook); }

    /** A hook called on a leaf after its {@code grad} has been accumulated (data parallel all-reduce uses it). */
    public void registerPostAccumulateHook(Consumer<Tensor> hook) { slot().addPostAccumulateHook(hook); }

    /** Internal: whether gradient hooks see this tensor's gradient (the engine then leaves that memory alone). */
    public boolean hasGradHooks() { return slot != null && slot.hooks != null; }

    /** Internal: runs the gradient hooks. */
    public Tensor applyGradHooks(Tensor g) {
        if (hasGradHooks()) for (UnaryOperator<Tensor> h : slot.hooks) g = h.apply(g);
        return g;
    }

    /**
     * Internal: {@code grad += g} for a leaf, then the post-accumulate hooks. {@code unshared}: the engine knows no
     * other tensor can see g's memory, so the leaf may keep it instead of copying.
     */
    public void accumulateGrad(Tensor g, boolean unshared) { slot().accumulate(this, g, unshared); }

    /**
     * Makes {@code buffer} (this leaf's shape, dtype, device and memory format ({@link #sameDenseLayout}); kept by the
     * caller) where this leaf's gradient lives whenever a backward pass starts it from none: the gradient is written
     * into it (converted to its dtype; an op whose backward can write there directly does, see
     * {@code Autograd.gradientDestination}) and {@link #grad()} is the buffer. Data parallel training makes each
     * parameter's gradient a slice of its bucket this way (PyTorch's {@code gradient_as_bucket_view}), so the bucket
     * needs no copy before its reduction. null: gradients are tensors of their own again. {@link #zeroGrad()} forgets
     * the gradient but keeps the buffer.
     */
    public void setGradBuffer(Tensor buffer) {
        if (gradFn != null) throw new IllegalStateException("setGradBuffer on a non-leaf tensor (the output of " + gradFn.op() + ")");
        if (buffer != null && (buffer.dtype != dtype || !buffer.device().equals(device()) || !buffer.sameDenseLayout(this))) {
            throw new IllegalArgumentException("setGradBuffer: a " + (prefersChannelsLast() ? "channels-last " : "contiguous ") + dtype + " buffer of shape "
                    + Shape.str(shape) + " on " + device() + " expected, got " + buffer.dtype + " " + Shape.str(buffer.shape) + " strides "
                    + Arrays.toString(buffer.strides) + " on " + buffer.device());
        }
        if (buffer != null || slot != null) slot().buffer = buffer;
    }

    /**
     * One shape and one dense memory order (both contiguous, or both channels-last): kernels that run flat over each from
     * its first element pair the elements by position (the fused optimizer steps over a filter, its gradient, its state).
     */
    public boolean sameDenseLayout(Tensor other) {
        return Arrays.equals(shape, other.shape) && (isContiguous() ? other.isContiguous() : isChannelsLast() && other.isChannelsLast());
    }

    /** The gradient buffer ({@link #setGradBuffer}), or null. */
    public Tensor gradBuffer() { return slot == null ? null : slot.buffer; }

    /** Keeps this tensor's memory when the enclosing {@link MemoryScope} closes (optimizer state, statistics, metrics); returns this. */
    public Tensor keep() {
        MemoryScope.escape(storage);
        return this;
    }

    /** A tensor over the same memory that is cut from the graph. */
    public Tensor detach() { return new Tensor(storage, shape, strides, offset); }

    /**
     * Makes this leaf tensor take {@code source}'s data: its storage, dtype, device, strides and offset (PyTorch's
     * {@code param.data = source}). This is how {@code Layer.to} moves parameters and buffers to another device or
     * dtype in place, so the same Tensor object stays valid wherever it is held (a layer's final field, an
     * optimizer built earlier). {@code requiresGrad} and the gradient hooks stay; a gradient, now of the wrong
     * dtype or device, is dropped. The new data is kept out of any open {@link MemoryScope} (as {@link #keep()}).
     * Views taken of this tensor before the call keep the old data. Not recorded by autograd.
     *
     * @throws IllegalStateException when this tensor is not a leaf
     * @throws IllegalArgumentException when the shapes differ, or this tensor requires grad and the new dtype is not floating
     */
    public void setData(Tensor source) {
        if (gradFn != null) throw new IllegalStateException("setData on a non-leaf tensor (the output of " + gradFn.op() + ")");
        if (!Arrays.equals(source.shape, shape)) {
            throw new IllegalArgumentException("setData: new data of shape " + Shape.str(source.shape) + " for a tensor of shape " + Shape.str(shape));
        }
        if (requiresGrad && !source.dtype.isFloating()) throw new IllegalArgumentException("setData: a tensor that requires grad cannot take " + source.dtype + " data");
        if (source == this) return;
        zeroGrad();
        if (slot != null && (source.dtype != dtype || !source.device().equals(device()))) slot.buffer = null;   // a buffer of the old kind
        this.storage = source.storage;
        this.dtype = source.dtype;
        this.strides = source.strides;
        this.offset = source.offset;
        keep();
    }

    /** Drops the gradient (PyTorch's zero_grad(set_to_none=True)) and returns its memory to the pool. */
    public void zeroGrad() { if (slot != null) slot.clear(); }

    // ------------------------------------------------------------------ device and dtype

    public Tensor to(Device device) {
        if (device.equals(device())) return this;
        return Views.toDevice(this, device);
    }

    public Tensor to(DType target) {
        if (target == dtype) return this;
        return Elementwise.cast(this, target);
    }

    public Tensor cpu() { return to(Device.CPU); }

    /** A contiguous tensor with the same values: this one when already contiguous. */
    public Tensor contiguous() { return isContiguous() ? this : Views.contiguous(this); }

    /** Always a fresh contiguous copy (not part of the graph). */
    public Tensor contiguousCopy() {
        Tensor out = empty(shape, dtype, device());
        backend().copy(out, this);
        return out;
    }

    /** Copies src's values into this tensor (in place, outside autograd); src broadcasts to this shape. */
    public Tensor copyFrom(Tensor src) {
        if (!src.device().equals(device())) src = src.to(device());
        Tensor s = Arrays.equals(src.shape, shape) ? src : src.expand(shape);
        backend().copy(this, s);
        return this;
    }

    /** Releases the memory behind this tensor and every view of it (GPU memory returns to the pool at once). */
    @Override public void close() { storage.release(); }

    // ------------------------------------------------------------------ reading values (waits for the device)

    public double item() {
        if (numel() != 1) throw new IllegalStateException("item() needs a one-element tensor, got shape " + Shape.str(shape));
        Object a = backend().toHost(this);
        return HostArrays.get(a, dtype, 0);
    }

    public float[] toFloatArray() { return (float[]) backend().toHost(to(DType.FLOAT32)); }

    public double[] toDoubleArray() { return (double[]) backend().toHost(to(DType.FLOAT64)); }

    public long[] toLongArray() { return (long[]) backend().toHost(to(DType.INT64)); }

    /** The raw host array for this dtype (see {@link Backend#toHost}). */
    public Object toHostArray() { return backend().toHost(this); }

    @Override public String toString() {
        StringBuilder sb = new StringBuilder("tensor(");
        if (storage.isReleased()) return sb.append("<released>, shape=").append(Shape.str(shape)).append(')').toString();
        long n = numel();
        if (n <= 64) {
            double[] v = toDoubleArray();
            sb.append(Arrays.toString(v));
        } else {
            sb.append("...");
        }
        sb.append(", shape=").append(Shape.str(shape)).append(", dtype=").append(dtype).append(", device=").append(device());
        if (gradFn != null) sb.append(", grad_fn=").append(gradFn.op());
        else if (requiresGrad) sb.append(", requires_grad=true");
        return sb.append(')').toString();
    }

    // ------------------------------------------------------------------ views

    public Tensor view(int... newShape) { return Views.reshape(this, newShape); }

    public Tensor reshape(int... newShape) { return Views.reshape(this, newShape); }

    public Tensor flatten() { return reshape(-1); }

    /** Flattens dimensions start..end (inclusive) into one. */
    public Tensor flatten(int start, int end) { return Views.flatten(this, start, end); }

    public Tensor transpose(int d0, int d1) { return Views.transpose(this, d0, d1); }

    /** Transpose of a 2-D tensor. */
    public Tensor t() {
        if (dim() != 2) throw new IllegalArgumentException("t(): expects a 2-D tensor, got shape " + Shape.str(shape));
        return transpose(0, 1);
    }

    public Tensor permute(int... dims) { return Views.permute(this, dims); }

    /** Elements start..start+length-1 along dim (a view). */
    public Tensor narrow(int dim, int start, int length) { return Views.narrow(this, dim, start, length); }

    /** Elements start, start+step, ... below end along dim (a view). */
    public Tensor slice(int dim, int start, int end, int step) { return Views.slice(this, dim, start, end, step); }

    /** Index {@code index} along dim, removing that dimension (a view). */
    public Tensor select(int dim, int index) { return Views.select(this, dim, index); }

    public Tensor expand(int... newShape) { return Views.expand(this, newShape); }

    public Tensor squeeze(int dim) { return Views.squeeze(this, dim); }

    /** Removes every dimension of size 1. */
    public Tensor squeeze() { return Views.squeezeAll(this); }

    public Tensor unsqueeze(int dim) { return Views.unsqueeze(this, dim); }

    // ------------------------------------------------------------------ elementwise

    public Tensor add(Tensor o) { return Elementwise.binary(BinaryOp.ADD, this, o); }
    public Tensor add(double s) { return Elementwise.binaryScalar(BinaryOp.ADD, this, s, false); }

    public Tensor sub(Tensor o) { return Elementwise.binary(BinaryOp.SUB, this, o); }
    public Tensor sub(double s) { return Elementwise.binaryScalar(BinaryOp.SUB, this, s, false); }

    /** {@code s - this}. */
    public Tensor rsub(double s) { return Elementwise.binaryScalar(BinaryOp.SUB, this, s, true); }

    public Tensor mul(Tensor o) { return Elementwise.binary(BinaryOp.MUL, this, o); }
    public Tensor mul(double s) { return Elementwise.binaryScalar(BinaryOp.MUL, this, s, false); }

    public Tensor div(Tensor o) { return Elementwise.binary(BinaryOp.DIV, this, o); }
    public Tensor div(double s) { return Elementwise.binaryScalar(BinaryOp.DIV, this, s, false); }

    /** {@code s / this}. */
    public Tensor rdiv(double s) { return Elementwise.binaryScalar(BinaryOp.DIV, this, s, true); }

    public Tensor pow(Tensor o) { return Elementwise.binary(BinaryOp.POW, this, o); }
    public Tensor pow(double s) { return Elementwise.binaryScalar(BinaryOp.POW, this, s, false); }

    /** Elementwise maximum of two tensors. */
    public Tensor maximum(Tensor o) { return Elementwise.binary(BinaryOp.MAX, this, o); }

    public Tensor minimum(Tensor o) { return Elementwise.binary(BinaryOp.MIN, this, o); }

    public Tensor neg() { return Elementwise.unary(UnaryOp.NEG, this); }

    public Tensor exp() { return Elementwise.unary(UnaryOp.EXP, this); }

    public Tensor log() { return Elementwise.unary(UnaryOp.LOG, this); }

    public Tensor sqrt() { return Elementwise.unary(UnaryOp.SQRT, this); }

    public Tensor abs() { return Elementwise.unary(UnaryOp.ABS, this); }

    public Tensor relu() { return Elementwise.unary(UnaryOp.RELU, this); }

    public Tensor gelu() { return Elementwise.unary(UnaryOp.GELU, this); }

    public Tensor silu() { return Elementwise.unary(UnaryOp.SILU, this); }

    public Tensor sigmoid() { return Elementwise.unary(UnaryOp.SIGMOID, this); }

    public Tensor tanh() { return Elementwise.unary(UnaryOp.TANH, this); }

    /** Sine (and below, cosine) of radians. */
    public Tensor sin() { return Elementwise.unary(UnaryOp.SIN, this); }
    public Tensor cos() { return Elementwise.unary(UnaryOp.COS, this); }

    public Tensor clamp(double min, double max) { return Elementwise.clamp(this, min, max); }

    public Tensor eq(Tensor o) { return Elementwise.binary(BinaryOp.EQ, this, o); }
    public Tensor eq(double s) { return Elementwise.binaryScalar(BinaryOp.EQ, this, s, false); }

    public Tensor ne(Tensor o) { return Elementwise.binary(BinaryOp.NE, this, o); }

    public Tensor lt(Tensor o) { return Elementwise.binary(BinaryOp.LT, this, o); }
    public Tensor lt(double s) { return Elementwise.binaryScalar(BinaryOp.LT, this, s, false); }

    public Tensor le(Tensor o) { return Elementwise.binary(BinaryOp.LE, this, o); }

    public Tensor gt(Tensor o) { return Elementwise.binary(BinaryOp.GT, this, o); }
    public Tensor gt(double s) { return Elementwise.binaryScalar(BinaryOp.GT, this, s, false); }

    public Tensor ge(Tensor o) { return Elementwise.binary(BinaryOp.GE, this, o); }
    public Tensor ge(double s) { return Elementwise.binaryScalar(BinaryOp.GE, this, s, false); }

    /** {@code cond ? a : b}, broadcasting all three. */
    public static Tensor where(Tensor cond, Tensor a, Tensor b) { return Elementwise.where(cond, a, b); }

    /** This tensor with {@code value} wherever mask is true. */
    public Tensor maskedFill(Tensor mask, double value) { return Elementwise.maskedFill(this, mask, value); }

    // ------------------------------------------------------------------ reductions

    public Tensor sum() { return Reductions.reduce(ReduceOp.SUM, this, null, false); }
    public Tensor sum(int dim, boolean keepdim) { return Reductions.reduce(ReduceOp.SUM, this, new int[]{dim}, keepdim); }
    public Tensor sum(int[] dims, boolean keepdim) { return Reductions.reduce(ReduceOp.SUM, this, dims, keepdim); }

    public Tensor mean() { return Reductions.mean(this, null, false); }
    public Tensor mean(int dim, boolean keepdim) { return Reductions.mean(this, new int[]{dim}, keepdim); }
    public Tensor mean(int[] dims, boolean keepdim) { return Reductions.mean(this, dims, keepdim); }

    /** Variance over dims, unbiased (Bessel) or not. */
    public Tensor var(int[] dims, boolean unbiased, boolean keepdim) { return Reductions.var(this, dims, unbiased, keepdim); }

    public Tensor max() { return Reductions.reduce(ReduceOp.MAX, this, null, false); }
    public Tensor max(int dim, boolean keepdim) { return Reductions.reduce(ReduceOp.MAX, this, new int[]{dim}, keepdim); }

    public Tensor min() { return Reductions.reduce(ReduceOp.MIN, this, null, false); }
    public Tensor min(int dim, boolean keepdim) { return Reductions.reduce(ReduceOp.MIN, this, new int[]{dim}, keepdim); }

    /** Running sums along dim (PyTorch's cumsum); bool and integer tensors sum as int64. */
    public Tensor cumsum(int dim) { return Reductions.cumsum(this, dim); }

    public Tensor argmax(int dim, boolean keepdim) { return Reductions.argReduce(true, this, dim, keepdim); }

    public Tensor argmin(int dim, boolean keepdim) { return Reductions.argReduce(false, this, dim, keepdim); }

    /** Sums broadcast dimensions away so the result has {@code target} shape (the adjoint of expand). */
    public Tensor sumTo(int[] target) { return Reductions.sumTo(this, target); }

    // ------------------------------------------------------------------ linear algebra, indexing

    public Tensor matmul(Tensor o) { return Matmul.matmul(this, o); }

    public Tensor gather(int dim, Tensor index) { return Indexing.gather(this, dim, index); }

    /** Values in order along a dimension, with the int64 indices they came from (what sort and topk return). */
    public record Sorted(Tensor values, Tensor indices) {}

    /** Sorted along dim (stable: equal values keep their order; NaN above every number). */
    public Sorted sort(int dim, boolean descending) { return Sorting.sort(this, dim, descending); }

    /** The int64 indices that sort this tensor along dim (stable; NaN above every number). */
    public Tensor argsort(int dim, boolean descending) { return Sorting.argsort(this, dim, descending); }

    /** The k largest (or smallest) values along dim, in order, and their indices; the first of equal values win. */
    public Sorted topk(int k, int dim, boolean largest) { return Sorting.topk(this, k, dim, largest); }

    public Tensor indexSelect(int dim, Tensor index) { return Indexing.indexSelect(this, dim, index); }

    public static Tensor cat(List<Tensor> tensors, int dim) { return Views.cat(tensors, dim); }

    public static Tensor stack(List<Tensor> tensors, int dim) { return Views.stack(tensors, dim); }

    /** Runs body with gradient recording off (a no-grad scope). */
    public static <T> T noGrad(java.util.function.Supplier<T> body) {
        try (GradMode g = GradMode.disabled()) {
            return body.get();
        }
    }
}
