package dev.kiln.tensorboard;

import com.google.protobuf.DynamicMessage;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Writes a TensorBoard event file, as PyTorch's {@code torch.utils.tensorboard.SummaryWriter} does:
 * <pre>{@code
 * try (var tb = new SummaryWriter(Path.of("runs/mnist"))) {
 *     tb.addScalar("loss/train", loss, step);
 *     tb.addHistogram("fc1.weight", weights, step);
 * }
 * }</pre>
 * then {@code tensorboard --logdir runs}. The file is {@code events.out.tfevents.<seconds>.<hostname>} in the log
 * folder (a {@code .<n>} suffix is added if that name is taken); its first record is the {@code file_version}
 * event {@code "brain.Event:2"}. Every record is a TFRecord holding one serialized {@code tensorflow.Event}.
 * Methods are thread-safe (each record is written whole); records are buffered until {@link #flush()} or
 * {@link #close()}. I/O failures are thrown as {@link UncheckedIOException} naming the file.
 */
public final class SummaryWriter implements AutoCloseable {
    /** The version TensorBoard (and PyTorch, TensorFlow 2) write as the first event of a file. */
    public static final String FILE_VERSION = "brain.Event:2";

    private final Path file;
    private final OutputStream out;
    private boolean closed;

    /**
     * Creates the log folder if needed and a new event file in it, and writes the file-version event.
     *
     * @param logDir the folder TensorBoard is pointed at (or a run folder under it)
     * @throws UncheckedIOException if the folder cannot be created or the file cannot be written, naming the folder
     */
    public SummaryWriter(Path logDir) {
        Path dir = logDir.toAbsolutePath();
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the TensorBoard log folder " + dir + ": " + describe(e), e);
        }
        String base = "events.out.tfevents." + System.currentTimeMillis() / 1000 + "." + hostname();
        Path chosen = dir.resolve(base);
        OutputStream stream = null;
        for (int n = 1; stream == null; n++) {
            try {
                stream = Files.newOutputStream(chosen, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
            } catch (FileAlreadyExistsException e) {
                chosen = dir.resolve(base + "." + n);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write a TensorBoard event file in " + dir + ": " + describe(e), e);
            }
        }
        this.file = chosen;
        this.out = new BufferedOutputStream(stream, 1 << 16);
        DynamicMessage.Builder event = event(0);
        event.setField(EventProtos.EVENT_FILE_VERSION, FILE_VERSION);
        write(event.build());
        flush();
    }

    /** The event file this writer writes. */
    public Path file() {
        return file;
    }

    /**
     * Adds one point to the scalar chart {@code tag} (stored as a float, as TensorBoard's {@code simple_value} is).
     *
     * @param tag the chart's name; slashes group charts ({@code "loss/train"})
     * @param value the value at this step
     * @param step the x coordinate (the global step)
     */
    public void addScalar(String tag, double value, long step) {
        DynamicMessage value1 = DynamicMessage.newBuilder(EventProtos.VALUE)
                .setField(EventProtos.VALUE_TAG, checkTag(tag))
                .setField(EventProtos.VALUE_SIMPLE_VALUE, (float) value)
                .build();
        writeSummary(value1, step);
    }

    /**
     * Adds the histogram of {@code values} at {@code step}, with TensorFlow's exponential buckets (edges
     * ±1e-12 · 1.1^k), as TensorBoard's histogram and distribution dashboards expect.
     *
     * @param tag the histogram's name
     * @param values the values, at least one, all finite
     * @param step the global step
     * @throws IllegalArgumentException if values is empty or holds NaN or an infinity
     */
    public void addHistogram(String tag, double[] values, long step) {
        checkTag(tag);
        if (values.length == 0) {
            throw new IllegalArgumentException("addHistogram(\"" + tag + "\"): no values");
        }
        for (int i = 0; i < values.length; i++) {
            if (!Double.isFinite(values[i])) {
                throw new IllegalArgumentException(
                        "addHistogram(\"" + tag + "\"): values[" + i + "] is " + values[i] + "; TensorBoard needs finite values");
            }
        }
        DynamicMessage value = DynamicMessage.newBuilder(EventProtos.VALUE)
                .setField(EventProtos.VALUE_TAG, tag)
                .setField(EventProtos.VALUE_HISTO, Histogram.encode(values))
                .build();
        writeSummary(value, step);
    }

    /**
     * Records this run's hyper-parameters for TensorBoard's HPARAMS dashboard, as PyTorch's {@code add_hparams} does:
     * the hparams plugin's session start info (tag {@code _hparams_/session_start_info}). The dashboard pairs them with
     * the run's scalars, which it offers as metrics.
     *
     * @param hparams names and values: numbers, booleans or strings (anything else is written as its string)
     */
    public void addHParams(java.util.Map<String, ?> hparams) {
        DynamicMessage pluginData = DynamicMessage.newBuilder(EventProtos.PLUGIN_DATA)
                .setField(EventProtos.PLUGIN_NAME, HParams.PLUGIN_NAME)
                .setField(EventProtos.PLUGIN_CONTENT, HParams.sessionStartInfo(hparams, System.currentTimeMillis() / 1000.0))
                .build();
        DynamicMessage value = DynamicMessage.newBuilder(EventProtos.VALUE)
                .setField(EventProtos.VALUE_TAG, HParams.SESSION_START_INFO_TAG)
                .setField(EventProtos.VALUE_METADATA, DynamicMessage.newBuilder(EventProtos.METADATA)
                        .setField(EventProtos.METADATA_PLUGIN_DATA, pluginData).build())
                .build();
        writeSummary(value, 0);
    }

    /** Writes buffered records to the file, so a running TensorBoard sees them. */
    public synchronized void flush() {
        checkOpen();
        try {
            out.flush();
        } catch (IOException e) {
            throw failure(e);
        }
    }

    /** Flushes and closes the file; closing twice does nothing. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            out.close();
        } catch (IOException e) {
            throw failure(e);
        }
    }

    private void writeSummary(DynamicMessage value, long step) {
        DynamicMessage summary = DynamicMessage.newBuilder(EventProtos.SUMMARY)
                .addRepeatedField(EventProtos.SUMMARY_VALUE, value)
                .build();
        write(event(step).setField(EventProtos.EVENT_SUMMARY, summary).build());
    }

    private static DynamicMessage.Builder event(long step) {
        return DynamicMessage.newBuilder(EventProtos.EVENT)
                .setField(EventProtos.EVENT_WALL_TIME, System.currentTimeMillis() / 1000.0)
                .setField(EventProtos.EVENT_STEP, step);
    }

    private synchronized void write(DynamicMessage event) {
        checkOpen();
        try {
            TfRecord.write(out, event.toByteArray());
        } catch (IOException e) {
            throw failure(e);
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("the TensorBoard writer of " + file + " is closed");
        }
    }

    private UncheckedIOException failure(IOException e) {
        return new UncheckedIOException("cannot write the TensorBoard event file " + file + ": " + describe(e), e);
    }

    private static String checkTag(String tag) {
        if (tag == null || tag.isEmpty()) {
            throw new IllegalArgumentException("a TensorBoard tag must not be empty");
        }
        return tag;
    }

    private static String describe(IOException e) {
        return e.getClass().getSimpleName() + (e.getMessage() == null ? "" : " (" + e.getMessage() + ")");
    }

    /** As Python's {@code socket.gethostname()}: the machine's name, without a DNS lookup when the OS gives it. */
    private static String hostname() {
        String env = System.getenv("HOSTNAME");
        if (env != null && !env.isBlank()) {
            return env.strip();
        }
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (IOException e) {
            return "localhost";
        }
    }
}
