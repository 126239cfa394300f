/**
 * TensorBoard event files from Java: {@link dev.kiln.tensorboard.SummaryWriter} writes scalars and histograms as
 * TFRecords of {@code tensorflow.Event} messages, encoded by protobuf-java's {@code DynamicMessage} over
 * descriptors built in Java.
 */
package dev.kiln.tensorboard;
