package dev.kiln.tensorboard;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.DynamicMessage;
import com.google.protobuf.InvalidProtocolBufferException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Writes event files and reads them back with a small TFRecord reader, verifying both CRCs of every record. */
class SummaryWriterTest {
    @TempDir
    Path dir;

    /** One TFRecord reader, as TensorFlow's {@code record_reader.cc}: framing, both masked CRCs, then the Event. */
    static List<DynamicMessage> readEvents(Path file) throws IOException {
        ByteBuffer in = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        List<DynamicMessage> events = new ArrayList<>();
        while (in.hasRemaining()) {
            byte[] lengthBytes = new byte[8];
            in.get(lengthBytes);
            long length = ByteBuffer.wrap(lengthBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
            assertEquals(TfRecord.maskedCrc32c(lengthBytes), in.getInt(), "length CRC of record " + events.size());
            byte[] data = new byte[Math.toIntExact(length)];
            in.get(data);
            assertEquals(TfRecord.maskedCrc32c(data), in.getInt(), "data CRC of record " + events.size());
            events.add(parse(data));
        }
        return events;
    }

    private static DynamicMessage parse(byte[] data) throws InvalidProtocolBufferException {
        return DynamicMessage.parseFrom(EventProtos.EVENT, data);
    }

    private static DynamicMessage onlyValue(DynamicMessage event) {
        assertTrue(event.hasField(EventProtos.EVENT_SUMMARY));
        DynamicMessage summary = (DynamicMessage) event.getField(EventProtos.EVENT_SUMMARY);
        assertEquals(1, summary.getRepeatedFieldCount(EventProtos.SUMMARY_VALUE));
        return (DynamicMessage) summary.getRepeatedField(EventProtos.SUMMARY_VALUE, 0);
    }

    private static double histoField(DynamicMessage histo, String name) {
        return (double) histo.getField(EventProtos.HISTOGRAM.findFieldByName(name));
    }

    @SuppressWarnings("unchecked")
    private static List<Double> histoList(DynamicMessage histo, String name) {
        return (List<Double>) histo.getField(EventProtos.HISTOGRAM.findFieldByName(name));
    }

    @Test
    void fileNameAndFirstRecordAreWhatTensorBoardExpects() throws IOException {
        long before = System.currentTimeMillis() / 1000;
        Path file;
        try (var tb = new SummaryWriter(dir.resolve("run1"))) {
            file = tb.file();
        }
        long after = System.currentTimeMillis() / 1000;
        assertEquals(dir.resolve("run1").toAbsolutePath(), file.getParent());
        String name = file.getFileName().toString();
        // TensorBoard lists files whose name contains "tfevents"; PyTorch names them events.out.tfevents.<s>.<host>...
        assertTrue(name.matches("events\\.out\\.tfevents\\.\\d+\\.[^/]+"), name);
        long seconds = Long.parseLong(name.split("\\.")[3]);
        assertTrue(seconds >= before && seconds <= after, name);

        byte[] bytes = Files.readAllBytes(file);
        List<DynamicMessage> events = readEvents(file);
        assertEquals(1, events.size());
        DynamicMessage first = events.getFirst();
        assertEquals("brain.Event:2", first.getField(EventProtos.EVENT_FILE_VERSION));
        assertEquals(0L, first.getField(EventProtos.EVENT_STEP));
        double wallTime = (double) first.getField(EventProtos.EVENT_WALL_TIME);
        assertTrue(wallTime >= before && wallTime < after + 1, "wall_time " + wallTime);
        // the wire bytes of the Event, field by field: 0x09 = field 1 (wall_time) fixed64, 0x1a = field 3 length-delimited
        assertEquals(0x09, bytes[12] & 0xFF);
        byte[] version = "brain.Event:2".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(0x1a, bytes[12 + 9] & 0xFF);                  // step 0 is a proto3 default: not written
        assertEquals(version.length, bytes[12 + 10]);
        assertEquals(12 + 9 + 2 + version.length + 4, bytes.length);
    }

    @Test
    void scalarsAndHistogramReadBack() throws IOException {
        double[] values = {-3.0, -0.5, 0.0, 0.25, 0.25, 1.0, 2.0, 100.0};
        Path file;
        try (var tb = new SummaryWriter(dir)) {
            file = tb.file();
            for (int step = 0; step < 5; step++) {
                tb.addScalar("loss/train", 1.0 / (step + 1), step);
            }
            tb.addScalar("accuracy", 0.875, 4);
            tb.addHistogram("fc1.weight", values, 7);
        }
        List<DynamicMessage> events = readEvents(file);
        assertEquals(1 + 5 + 1 + 1, events.size());
        for (int step = 0; step < 5; step++) {
            DynamicMessage event = events.get(1 + step);
            assertEquals((long) step, event.getField(EventProtos.EVENT_STEP));
            DynamicMessage value = onlyValue(event);
            assertEquals("loss/train", value.getField(EventProtos.VALUE_TAG));
            assertEquals((float) (1.0 / (step + 1)), (float) value.getField(EventProtos.VALUE_SIMPLE_VALUE));
        }
        DynamicMessage accuracy = onlyValue(events.get(6));
        assertEquals("accuracy", accuracy.getField(EventProtos.VALUE_TAG));
        assertEquals(0.875f, (float) accuracy.getField(EventProtos.VALUE_SIMPLE_VALUE));
        assertEquals(4L, events.get(6).getField(EventProtos.EVENT_STEP));

        DynamicMessage histoEvent = events.get(7);
        assertEquals(7L, histoEvent.getField(EventProtos.EVENT_STEP));
        DynamicMessage value = onlyValue(histoEvent);
        assertEquals("fc1.weight", value.getField(EventProtos.VALUE_TAG));
        DynamicMessage histo = (DynamicMessage) value.getField(EventProtos.VALUE_HISTO);
        assertEquals(-3.0, histoField(histo, "min"));
        assertEquals(100.0, histoField(histo, "max"));
        assertEquals(8.0, histoField(histo, "num"));
        assertEquals(100.0, histoField(histo, "sum"));
        assertEquals(9 + 0.25 + 0.0625 * 2 + 1 + 4 + 10000, histoField(histo, "sum_squares"));
        List<Double> limits = histoList(histo, "bucket_limit");
        List<Double> counts = histoList(histo, "bucket");
        assertEquals(limits.size(), counts.size());
        assertEquals(8.0, counts.stream().mapToDouble(Double::doubleValue).sum());
        for (int i = 1; i < limits.size(); i++) {
            assertTrue(limits.get(i) > limits.get(i - 1), "bucket limits ascend");
        }
        assertEquals(Double.MAX_VALUE, limits.getLast());
        // each value lies in the bucket (previous limit, limit] ... strictly: previous limit <= x < limit
        for (double x : values) {
            int b = 0;
            while (!(x < limits.get(b))) {
                b++;
            }
            assertTrue(counts.get(b) > 0, "value " + x + " has a non-empty bucket");
            assertTrue(b == 0 || limits.get(b - 1) <= x);
        }
        // the two 0.25 share a bucket; 0.0 is in the bucket just above 0 (limit 1e-12)
        int zeroBucket = limits.indexOf(1.0e-12);
        assertEquals(1.0, counts.get(zeroBucket));
        // empty runs are collapsed, so there are few buckets: at most two per value, plus the last
        assertTrue(limits.size() <= 2 * values.length + 1, "buckets: " + limits.size());
    }

    @Test
    void histogramEdgesAreTensorFlowsExponentialOnes() {
        double[] limits = Histogram.LIMITS;
        int zero = (limits.length - 1) / 2;            // -MAX, n negative limits, 0, n positive ones, MAX
        assertEquals(0.0, limits[zero]);
        assertEquals(-Double.MAX_VALUE, limits[0]);
        assertEquals(limits.length, 2 * (zero - 1) + 3);
        assertEquals(1.0e-12, limits[zero + 1]);
        assertEquals(-1.0e-12, limits[zero - 1]);
        assertEquals(1.1e-12, limits[zero + 2], 1e-27);
        assertTrue(limits[limits.length - 2] < 1.0e20 && limits[limits.length - 2] * 1.1 >= 1.0e20);
        assertEquals(Double.MAX_VALUE, limits[limits.length - 1]);
        for (int k = 1; k <= zero; k++) {
            assertEquals(-limits[zero + k], limits[zero - k], "limits are symmetric about 0");
        }
    }

    @Test
    void writersInOneSecondGetDistinctFiles() {
        try (var a = new SummaryWriter(dir); var b = new SummaryWriter(dir)) {
            assertFalse(a.file().equals(b.file()));
            assertTrue(b.file().getFileName().toString().contains("tfevents"));
        }
    }

    @Test
    void concurrentWritesKeepRecordsWhole() throws Exception {
        Path file;
        int threads = 4;
        int perThread = 250;
        try (var tb = new SummaryWriter(dir)) {
            file = tb.file();
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            for (int t = 0; t < threads; t++) {
                String tag = "t" + t;
                pool.submit(() -> {
                    for (int i = 0; i < perThread; i++) {
                        tb.addScalar(tag, i, i);
                    }
                });
            }
            pool.shutdown();
            assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
        }
        assertEquals(1 + threads * perThread, readEvents(file).size());
    }

    @Test
    void unwritableFolderGivesOneMessageNamingIt() throws IOException {
        Path blocker = Files.writeString(dir.resolve("a-file"), "not a folder");
        Path logDir = blocker.resolve("run");
        var e = assertThrows(UncheckedIOException.class, () -> new SummaryWriter(logDir));
        assertTrue(e.getMessage().contains(logDir.toAbsolutePath().toString()), e.getMessage());
        assertTrue(e.getMessage().startsWith("cannot create the TensorBoard log folder"), e.getMessage());
    }

    @Test
    void badHistogramsAndUseAfterCloseAreRefused() {
        var tb = new SummaryWriter(dir);
        var empty = assertThrows(IllegalArgumentException.class, () -> tb.addHistogram("w", new double[0], 0));
        assertTrue(empty.getMessage().contains("\"w\""));
        var nan = assertThrows(IllegalArgumentException.class, () -> tb.addHistogram("w", new double[] {1, Double.NaN}, 0));
        assertTrue(nan.getMessage().contains("values[1] is NaN"), nan.getMessage());
        tb.close();
        tb.close();
        var closed = assertThrows(IllegalStateException.class, () -> tb.addScalar("x", 1, 1));
        assertTrue(closed.getMessage().contains(tb.file().toString()));
    }

    @Test
    void hparamsAreTheHParamsPluginsSessionStartInfo() throws IOException {
        Path file;
        try (SummaryWriter w = new SummaryWriter(dir)) {
            w.addHParams(new java.util.LinkedHashMap<>(java.util.Map.of("lr", 0.001, "model", "cnn", "graphs", true)));
            file = w.file();
        }
        List<DynamicMessage> events = readEvents(file);
        DynamicMessage value = onlyValue(events.get(1));
        assertEquals("_hparams_/session_start_info", value.getField(EventProtos.VALUE_TAG));
        DynamicMessage plugin = (DynamicMessage) ((DynamicMessage) value.getField(EventProtos.VALUE_METADATA)).getField(EventProtos.METADATA_PLUGIN_DATA);
        assertEquals("hparams", plugin.getField(EventProtos.PLUGIN_NAME));
        // decoded field by field, independently of the encoder: HParamsPluginData.session_start_info (3) -> hparams map (1)
        var data = com.google.protobuf.CodedInputStream.newInstance(((com.google.protobuf.ByteString) plugin.getField(EventProtos.PLUGIN_CONTENT)).toByteArray());
        assertEquals((3 << 3) | 2, data.readTag());
        var info = com.google.protobuf.CodedInputStream.newInstance(data.readByteArray());
        java.util.Map<String, com.google.protobuf.Value> read = new java.util.HashMap<>();
        double start = 0;
        for (int tag = info.readTag(); tag != 0; tag = info.readTag()) {
            if (tag == ((5 << 3) | 1)) {
                start = info.readDouble();
                continue;
            }
            assertEquals((1 << 3) | 2, tag);
            var entry = com.google.protobuf.CodedInputStream.newInstance(info.readByteArray());
            assertEquals((1 << 3) | 2, entry.readTag());
            String key = entry.readString();
            assertEquals((2 << 3) | 2, entry.readTag());
            read.put(key, com.google.protobuf.Value.parseFrom(entry.readByteArray()));
        }
        assertEquals(0.001, read.get("lr").getNumberValue());
        assertEquals("cnn", read.get("model").getStringValue());
        assertTrue(read.get("graphs").getBoolValue());
        assertEquals(3, read.size());
        assertTrue(start > 1.7e9, "start time in seconds: " + start);
    }
}
