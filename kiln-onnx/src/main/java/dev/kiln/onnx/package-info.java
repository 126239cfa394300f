/**
 * ONNX models from Java: {@link dev.kiln.onnx.OnnxExport} writes Kiln's image models (the zoo's mlp, cnn, cnn-bn and
 * ResNets) as opset-17 {@code onnx.ModelProto} files, encoded by protobuf-java's {@code DynamicMessage} over descriptors
 * built in Java, as kiln-tensorboard does for its event files.
 */
package dev.kiln.onnx;
