/**
 * NVIDIA's libraries for the CUDA backend, through {@code java.lang.foreign}: cuBLAS and cuBLASLt (matrix products),
 * cuDNN 9 (convolution, pooling, batch norm) and NVML (what GPUs there are).
 *
 * <h2>Layers</h2>
 * <ol>
 *   <li>Raw bindings: each library class holds a private {@code H} class of downcall handles, resolved on first use
 *       after the library has loaded ({@code Bind.Library}); a library that cannot be found fails every use with the
 *       same {@link dev.kiln.cuda.CudaException.LibraryNotFound}, a symbol an older version lacks fails only where it
 *       is called. Handles, descriptors, streams and device pointers travel as {@code long}.</li>
 *   <li>Typed wrappers: {@link dev.kiln.cuda.lib.Cublas}, {@link dev.kiln.cuda.lib.CublasLt},
 *       {@link dev.kiln.cuda.lib.Cudnn} and its descriptors, {@link dev.kiln.cuda.lib.Nvml}; every failing status
 *       becomes a {@link dev.kiln.cuda.CudaException} naming the call and the status as the library spells it.</li>
 *   <li>What the backend calls: {@link dev.kiln.cuda.lib.Cublas#matmul} with {@link dev.kiln.cuda.lib.GemmOperand#of}
 *       deciding whether a strided view can be used as it is; cuDNN plans per geometry
 *       ({@link dev.kiln.cuda.lib.ConvPlan}, {@link dev.kiln.cuda.lib.PoolPlan}, {@link dev.kiln.cuda.lib.BatchNormPlan})
 *       cached on the handle; {@link dev.kiln.cuda.lib.DeviceReport#describe()} for {@code kiln devices}.</li>
 * </ol>
 *
 * <h2>For the backend</h2>
 * <pre>{@code
 * // once per device and thread, with the device's context current:
 * Cublas blas = Cublas.create();
 * blas.setStream(device.stream().address());
 * blas.setWorkspace(workspace.address(), Cublas.RECOMMENDED_WORKSPACE_BYTES); // own workspace: graph capture works
 * Cudnn dnn = Cudnn.create();
 * dnn.setStream(device.stream().address());
 *
 * // matmul of a (B, M, K) and b (B, K, N) views into a contiguous c (B, M, N):
 * GemmOperand la = GemmOperand.of(aShape, aStrides), lb = GemmOperand.of(bShape, bStrides); // null: copy contiguous first
 * blas.matmul(dtype, Cuda.allowTf32(), B, M, N, K, aPtr, la, bPtr, lb, cPtr, 1.0, 0.0);
 *
 * // conv2d: descriptors and algorithm made once per geometry, workspace from the caching allocator
 * ConvPlan plan = dnn.conv(dtype, xShape, wShape, params, Cuda.allowTf32());
 * plan.forward(xPtr, wPtr, yPtr, 1, 0, bytes -> allocator.scratch(bytes));
 * }</pre>
 * Device pointers include the tensor's byte offset. Handles are not thread-safe: one per thread and device.
 */
package dev.kiln.cuda.lib;
