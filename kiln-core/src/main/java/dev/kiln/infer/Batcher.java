package dev.kiln.infer;

import dev.kiln.Tensor;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * Dynamic batching in front of a {@link Predictor}: single examples submitted from many threads are grouped into one
 * batch of up to {@code maxBatch}, waiting at most {@code maxWait} after the first of them arrived, so a request's
 * added latency is bounded and a busy server runs few large batches instead of many of one. One worker thread runs
 * the batches.
 */
public final class Batcher implements AutoCloseable {
    private record Request(Tensor example, CompletableFuture<float[]> result) {}

    private final Predictor predictor;
    private final int maxBatch;
    private final long maxWaitNanos;
    private final BlockingQueue<Request> queue = new LinkedBlockingQueue<>();
    private final Thread worker;
    private volatile boolean closed;

    public Batcher(Predictor predictor, int maxBatch, Duration maxWait) {
        if (maxBatch < 1) throw new IllegalArgumentException("Batcher: maxBatch must be >= 1, got " + maxBatch);
        if (maxWait.isNegative()) throw new IllegalArgumentException("Batcher: maxWait must be >= 0, got " + maxWait);
        this.predictor = predictor;
        this.maxBatch = maxBatch;
        this.maxWaitNanos = maxWait.toNanos();
        this.worker = Thread.ofPlatform().name("kiln-batcher").daemon().start(this::loop);
    }

    /**
     * Queues one example (shaped as the predictor's example without N) and returns its output row; the future fails
     * with what the batch failed with, or a RejectedExecutionException once the batcher is closed.
     */
    public CompletableFuture<float[]> submit(Tensor example) {
        if (!Arrays.equals(example.shape(), predictor.exampleShape())) {
            throw new IllegalArgumentException("Batcher: expected one example of shape " + Arrays.toString(predictor.exampleShape())
                    + ", got " + Arrays.toString(example.shape()));
        }
        CompletableFuture<float[]> f = new CompletableFuture<>();
        queue.add(new Request(example, f));
        if (closed) failPending();   // close() may have drained the queue just before this request arrived
        return f;
    }

    private void loop() {
        List<Request> batch = new ArrayList<>(maxBatch);
        try {
            while (!closed) {
                Request first = queue.take();
                batch.add(first);
                long deadline = System.nanoTime() + maxWaitNanos;
                while (batch.size() < maxBatch) {
                    Request r = queue.poll(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                    if (r == null) break;
                    batch.add(r);
                }
                run(batch);
                batch.clear();
            }
        } catch (InterruptedException e) {
            for (Request r : batch) r.result().completeExceptionally(new RejectedExecutionException("Batcher closed"));
        }
        failPending();
    }

    private void run(List<Request> batch) {
        try {
            List<Tensor> examples = new ArrayList<>(batch.size());
            for (Request r : batch) examples.add(r.example());
            float[] out = predictor.predict(Tensor.stack(examples, 0)).toFloatArray();
            int row = out.length / batch.size();
            for (int i = 0; i < batch.size(); i++) batch.get(i).result().complete(Arrays.copyOfRange(out, i * row, (i + 1) * row));
        } catch (RuntimeException e) {
            for (Request r : batch) r.result().completeExceptionally(e);
        }
    }

    private void failPending() {
        for (Request r; (r = queue.poll()) != null; ) r.result().completeExceptionally(new RejectedExecutionException("Batcher closed"));
    }

    /** Stops the worker after its current batch; queued requests fail. */
    @Override public void close() {
        closed = true;
        worker.interrupt();
        try {
            worker.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        failPending();
    }
}
