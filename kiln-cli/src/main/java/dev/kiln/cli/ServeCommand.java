package dev.kiln.cli;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.infer.ImageClassifier;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Serves an image classifier trained by 'kiln train' over HTTP until stopped (Ctrl-C):",
                "  POST /predict   the image's bytes (PNG, JPEG, ...), or JSON {\"image_base64\": \"...\"} -> {\"top\": [{\"class\", \"index\", \"probability\"}]}",
                "  GET  /health    the model, its classes and device",
                "  GET  /metrics   request counts by endpoint and status, latency percentiles",
                "Bad requests get a 4xx status and {\"error\": reason}. Concurrent requests are batched into one forward pass."})
final class ServeCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Parameters(index = "0", paramLabel = "RUN", description = "a run folder written by kiln train (runs/latest), or its model.safetensors")
    Path checkpoint;

    @Option(names = "--port", required = true, description = "the port to listen on (0: any free port, printed at start)")
    int port;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "the address to listen on; 0.0.0.0 for every interface (default: ${DEFAULT-VALUE}, this machine only)")
    String host;

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--top", defaultValue = "5", description = "classes per answer (default: ${DEFAULT-VALUE})")
    int top;

    @Option(names = "--max-batch", defaultValue = "32", description = "most requests run as one batch (default: ${DEFAULT-VALUE})")
    int maxBatch;

    @Option(names = "--max-wait-ms", defaultValue = "2", description = "longest a request waits for others to batch with (default: ${DEFAULT-VALUE})")
    long maxWaitMs;

    @Option(names = "--threads", defaultValue = "32", description = "request-handling threads (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--max-body-bytes", defaultValue = "10485760", description = "largest request body taken (default: ${DEFAULT-VALUE}, 10 MiB)")
    long maxBodyBytes;

    @Option(names = "--read-timeout-ms", defaultValue = "10000", description = "time a client has to send its whole body (default: ${DEFAULT-VALUE})")
    long readTimeoutMs;

    @Option(names = "--precision", defaultValue = "fp32",
            description = "fp32, bf16 or fp16: the dtype the model computes in (16-bit is meant for GPUs; default: ${DEFAULT-VALUE})")
    String precision;

    @Override public Integer call() throws Exception {
        Device dev;
        DType dtype;
        PredictionServer.Config config;
        try {
            dev = Devices.parse(device);
            dtype = Classifiers.precision(precision);
            if (port < 0 || port > 65535) throw new IllegalArgumentException("--port must be 0..65535, got " + port);
            config = new PredictionServer.Config(top, maxBatch, Duration.ofMillis(maxWaitMs), threads, maxBodyBytes, Duration.ofMillis(readTimeoutMs));
        } catch (IllegalArgumentException e) {
            throw new ParameterException(spec.commandLine(), e.getMessage());
        }
        ImageClassifier classifier = Classifiers.load(checkpoint, dev, dtype);
        PredictionServer server = new PredictionServer(classifier, checkpoint.toString(), config, host, port);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            classifier.close();
            stopped.countDown();
        }));
        var out = spec.commandLine().getOut();
        out.printf("kiln serve: %s on %s, listening on http://%s:%d (POST /predict, GET /health, GET /metrics; %s batch norms folded)%n",
                checkpoint, dev, host, server.port(), classifier.predictor().foldedBatchNorms());
        out.flush();
        stopped.await();
        return 0;
    }
}
