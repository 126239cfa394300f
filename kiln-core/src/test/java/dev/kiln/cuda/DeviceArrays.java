package dev.kiln.cuda;


import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/** Test helper: Java arrays to and from device memory on one device's stream; frees everything on close. */
final class DeviceArrays implements AutoCloseable, WorkspaceProvider {
    final CudaDevice dev;
    private final List<CudaDevice.Buffer> buffers = new ArrayList<>();
    int workspaceRequests;

    DeviceArrays(CudaDevice dev) { this.dev = dev; }

    long alloc(long bytes) {
        CudaDevice.Buffer b = dev.allocate(Math.max(bytes, 256));
        buffers.add(b);
        dev.zero(b.address(), Math.max(bytes, 256));
        return b.address();
    }

    @Override public long address(long bytes) {
        workspaceRequests++;
        return alloc(bytes);
    }

    long upload(float[] a) { return upload(MemorySegment.ofArray(a), a.length * 4L); }

    long upload(double[] a) { return upload(MemorySegment.ofArray(a), a.length * 8L); }

    long upload(short[] a) { return upload(MemorySegment.ofArray(a), a.length * 2L); }

    private long upload(MemorySegment heap, long bytes) {
        long d = alloc(bytes);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(Math.max(bytes, 1), 16);
            host.copyFrom(heap);
            dev.copyHostToDevice(host, d, bytes);
            dev.synchronize();
        }
        return d;
    }

    float[] floats(long d, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(n * 4L, 16);
            dev.copyDeviceToHost(d, host, n * 4L);
            return host.toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    double[] doubles(long d, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(n * 8L, 16);
            dev.copyDeviceToHost(d, host, n * 8L);
            return host.toArray(ValueLayout.JAVA_DOUBLE);
        }
    }

    short[] shorts(long d, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(n * 2L, 16);
            dev.copyDeviceToHost(d, host, n * 2L);
            return host.toArray(ValueLayout.JAVA_SHORT);
        }
    }

    @Override public void close() {
        dev.synchronize();
        for (CudaDevice.Buffer b : buffers) b.close();
        buffers.clear();
    }

    // ---- 16-bit formats

    static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int rounding = 0x7FFF + ((bits >>> 16) & 1); // round to nearest even
        return (short) ((bits + rounding) >>> 16);
    }

    static float fromBf16(short b) { return Float.intBitsToFloat((b & 0xFFFF) << 16); }
}
