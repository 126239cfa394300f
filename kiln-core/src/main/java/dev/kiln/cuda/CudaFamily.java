package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;

/**
 * What every op family's CUDA class shares: its backend and device, and short names for the backend's helpers
 * (device pointers, temporaries, grid sizes), so a launcher reads the same in every family.
 */
abstract class CudaFamily {
    static final int BLOCK = CudaBackend.BLOCK;

    final CudaBackend backend;
    final CudaDevice dev;

    CudaFamily(CudaBackend backend) {
        this.backend = backend;
        this.dev = backend.cudaDevice();
    }

    final long ptr(Tensor t) { return backend.ptr(t); }

    final Tensor newTensor(int[] shape, DType dtype) { return backend.newTensor(shape, dtype); }

    final Tensor contiguous(Tensor t, DType dtype) { return backend.contiguous(t, dtype); }

    final Tensor contiguous(Tensor t) { return backend.contiguous(t); }

    final Tensor newChannelsLast(int[] shape, DType dtype) { return backend.newChannelsLast(shape, dtype); }

    final Tensor channelsLast(Tensor t, DType dtype) { return backend.channelsLast(t, dtype); }

    final Tensor channelsLast(Tensor t) { return backend.channelsLast(t); }

    final Tensor alignedChannelsLast(Tensor t, DType dtype) { return backend.alignedChannelsLast(t, dtype); }

    final int grid(long n) { return backend.grid(n); }

    static void drop(Tensor temp, Tensor original) { CudaBackend.drop(temp, original); }

    /** Threads per block for a kernel that gives each row of n elements one block. */
    static int rowThreads(long n) { return n >= 2048 ? 1024 : n >= 512 ? 512 : n >= 128 ? 128 : 32; }

    static void requireFloat(String op, DType t) {
        if (t != DType.FLOAT32 && t != DType.FLOAT64) throw new IllegalArgumentException(op + ": fused kernel takes float32 or float64, got " + t);
    }

    static void requireAnyFloat(String op, DType t) {
        if (!t.isFloating()) throw new IllegalArgumentException(op + ": takes a floating-point tensor, got " + t);
    }
}
