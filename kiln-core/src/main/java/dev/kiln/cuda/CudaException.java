package dev.kiln.cuda;

import java.util.List;

/** A failing call into an NVIDIA library: names the call and the status, as the library spells it. */
public class CudaException extends RuntimeException {
    private final String call;
    private final int status;

    public CudaException(String library, String call, int status, String statusName, String detail) {
        super(library + ": " + call + " failed with " + statusName + " (" + status + ")" + (detail == null || detail.isBlank() ? "" : ": " + detail));
        this.call = call;
        this.status = status;
    }

    protected CudaException(String message) {
        super(message);
        this.call = "";
        this.status = -1;
    }

    public String call() { return call; }

    public int status() { return status; }

    /** The device ran out of memory, even after the caching allocator released its free blocks. */
    public static final class OutOfMemory extends CudaException {
        public OutOfMemory(String message) { super(message); }
    }

    /** A library Kiln needs is not on this machine; the message lists where Kiln looked. */
    public static final class LibraryNotFound extends CudaException {
        public LibraryNotFound(String name, List<String> tried) {
            super("could not find the NVIDIA library '" + name + "'. Looked in: "
                    + String.join(", ", tried.size() > 12 ? tried.subList(0, 12) : tried) + (tried.size() > 12 ? ", ..." : "")
                    + ". Install the NVIDIA driver / CUDA toolkit, or point KILN_LIB_" + name.replace('-', '_').toUpperCase()
                    + " (or KILN_CUDA_LIB_PATH) at it.");
        }
    }

    /** The library was found but does not export a function Kiln calls (an older version). */
    public static final class MissingSymbol extends CudaException {
        public MissingSymbol(String library, String symbol) {
            super(symbol + " is not exported by the " + library + " library that was loaded (an older version?)");
        }
    }

    /** No usable GPU: no driver, no device, or an index past the device count. */
    public static final class NoDevice extends CudaException {
        public NoDevice(String message) { super(message); }
    }
}
