package dev.kiln.cuda;

/**
 * A native object one of the bound libraries made and must destroy: a cuBLAS or cuDNN handle, a descriptor, an NVRTC
 * program, an NVML session. {@link #close()} destroys it once; using it afterwards fails clearly instead of passing
 * a dangling pointer to the library.
 */
abstract class NativeHandle implements AutoCloseable {
    /** The library's handle value (a pointer), for hot paths that have checked {@link #isClosed()} some other way. */
    final long address;
    private final String what;
    private boolean closed;

    /** @param what how messages name it ("cuBLAS handle") */
    NativeHandle(String what, long address) {
        this.what = what;
        this.address = address;
    }

    /** The handle value; fails once closed. */
    public final long handle() {
        if (closed) throw new IllegalStateException(what + " is closed");
        return address;
    }

    public final boolean isClosed() { return closed; }

    /** Calls the library's destroy function (and frees what goes with it); runs at most once. */
    protected abstract void destroy(long address);

    @Override public final void close() {
        if (closed) return;
        closed = true;
        destroy(address);
    }
}
