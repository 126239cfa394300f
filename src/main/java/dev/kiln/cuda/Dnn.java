package dev.kiln.cuda;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.backend.Conv2dParams;

/** Convolutions through cuDNN, when the library is present (filled in when the cuDNN bindings land). */
final class Dnn {
    private Dnn() {}

    static boolean available(DType t) { return false; }

    static Tensor conv2d(CudaBackend be, Tensor x, Tensor w, Tensor bias, Conv2dParams p) { throw new UnsupportedOperationException(); }

    static Tensor conv2dBackwardInput(CudaBackend be, Tensor gy, Tensor w, int[] inputShape, Conv2dParams p) { throw new UnsupportedOperationException(); }

    static Tensor conv2dBackwardWeight(CudaBackend be, Tensor gy, Tensor x, int[] weightShape, Conv2dParams p) { throw new UnsupportedOperationException(); }
}
