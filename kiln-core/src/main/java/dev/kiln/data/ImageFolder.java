package dev.kiln.data;

import dev.kiln.DType;
import dev.kiln.Tensor;
import dev.kiln.cpu.CpuStorage;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;

/**
 * Images in a folder of class folders ({@code root/cat/001.png}, {@code root/dog/x.jpg}), as torchvision's
 * {@code ImageFolder}: classes are the sub-folder names in sorted order, their index the label. PNG and JPEG (and
 * whatever else javax.imageio reads) are decoded when a batch is asked for, so a {@link DataLoader}'s worker threads
 * decode in parallel; each image is resized so its shorter side is {@code resize}, centre-cropped to {@code size} x
 * {@code size}, scaled to [0, 1] and normalised per channel. Random augmentation (crop, flip) runs on the batch after,
 * as a loader {@link Transform}. A file that cannot be decoded is an error naming it, unless {@link Options#skipBad}
 * was asked for: then it is left out of its batch and counted in {@link #skipped()}.
 */
public final class ImageFolder implements Dataset {
    /** Files larger than this many pixels are refused before decoding (a decompression bomb is not an image). */
    static final long MAX_PIXELS = 64L << 20;

    private static final List<String> SUFFIXES = List.of(".png", ".jpg", ".jpeg", ".bmp", ".gif");

    /**
     * How images become tensors: decoded, resized so the shorter side is {@code resize}, centre-cropped to
     * {@code size}, {@code channels} 3 (RGB) or 1 (grey), normalised by per-channel {@code mean} and {@code std}
     * (one value each applies to every channel); {@code skipBad} leaves undecodable files out instead of failing.
     */
    public record Options(int size, int resize, int channels, float[] mean, float[] std, boolean skipBad) {
        public Options {
            if (size < 1 || resize < size) throw new IllegalArgumentException("ImageFolder: need 1 <= size <= resize, got size " + size + ", resize " + resize);
            if (channels != 1 && channels != 3) throw new IllegalArgumentException("ImageFolder: channels must be 1 or 3, got " + channels);
            if (mean.length != std.length || (mean.length != 1 && mean.length != channels)) {
                throw new IllegalArgumentException("ImageFolder: " + mean.length + " means and " + std.length + " stds for " + channels + " channels");
            }
            for (float s : std) if (!(s > 0)) throw new IllegalArgumentException("ImageFolder: std must be > 0");
        }

        /** RGB at {@code size}, resized to {@code size * 8 / 7} first (224 from 256, as ImageNet recipes), ImageNet's mean and std. */
        public static Options rgb(int size) {
            return new Options(size, size * 8 / 7, 3, new float[]{0.485f, 0.456f, 0.406f}, new float[]{0.229f, 0.224f, 0.225f}, false);
        }

        public Options withResize(int r) { return new Options(size, r, channels, mean, std, skipBad); }

        public Options withNormalization(float[] m, float[] s) { return new Options(size, resize, channels, m, s, skipBad); }

        public Options withChannels(int c) {
            return new Options(size, resize, c, c == 1 ? new float[]{mean[0]} : mean, c == 1 ? new float[]{std[0]} : std, skipBad);
        }

        public Options skippingBadFiles(boolean skip) { return new Options(size, resize, channels, mean, std, skip); }
    }

    /** An image whose header says it has more pixels than {@link #MAX_PIXELS} (or none), refused before decoding. */
    public static final class TooLarge extends IOException {
        TooLarge(String message) { super(message); }
    }

    private final Path root;
    private final Options options;
    private final List<String> classes;
    private final Path[] files;
    private final int[] labels;
    private final AtomicInteger skipped = new AtomicInteger();

    private ImageFolder(Path root, Options options, List<String> classes, Path[] files, int[] labels) {
        this.root = root;
        this.options = options;
        this.classes = classes;
        this.files = files;
        this.labels = labels;
    }

    /** Scans {@code root}: one class per sub-folder (sorted), the image files in each (sorted, any depth). */
    public static ImageFolder open(Path root, Options options) throws IOException {
        if (!Files.isDirectory(root)) throw new NoSuchFileException(root.toString(), null, "no such folder of class folders");
        List<Path> classDirs;
        try (Stream<Path> s = Files.list(root)) {
            classDirs = s.filter(Files::isDirectory).filter(p -> !p.getFileName().toString().startsWith(".")).sorted().toList();
        }
        if (classDirs.isEmpty()) throw new IOException(root + ": no class folders (expected root/<class>/<image files>)");
        List<String> classes = new ArrayList<>();
        List<Path> files = new ArrayList<>();
        List<Integer> labels = new ArrayList<>();
        for (Path dir : classDirs) {
            int label = classes.size();
            classes.add(dir.getFileName().toString());
            try (Stream<Path> s = Files.walk(dir)) {
                for (Path f : s.filter(Files::isRegularFile).filter(ImageFolder::isImageName).sorted().toList()) {
                    files.add(f);
                    labels.add(label);
                }
            }
        }
        if (files.isEmpty()) throw new IOException(root + ": no image files (" + String.join(", ", SUFFIXES) + ") in " + classes.size() + " class folders");
        return new ImageFolder(root, options, List.copyOf(classes), files.toArray(Path[]::new), labels.stream().mapToInt(Integer::intValue).toArray());
    }

    private static boolean isImageName(Path p) {
        String n = p.getFileName().toString().toLowerCase(Locale.ROOT);
        return !n.startsWith(".") && SUFFIXES.stream().anyMatch(n::endsWith);
    }

    @Override public int size() { return files.length; }

    public List<String> classes() { return classes; }

    public Options options() { return options; }

    /** The file of example i. */
    public Path file(int i) { return files[i]; }

    /** How many files were left out of batches because they could not be decoded (with {@link Options#skipBad}). */
    public int skipped() { return skipped.get(); }

    @Override public Batch batch(int[] indices) {
        int c = options.channels(), s = options.size(), plane = s * s;
        float[] x = new float[indices.length * c * plane];
        long[] y = new long[indices.length];
        int rows = 0;
        for (int i : indices) {
            BufferedImage img;
            try {
                img = decode(files[i]);
            } catch (IOException e) {
                if (!options.skipBad()) throw new UncheckedIOException(e);
                skipped.incrementAndGet();
                continue;
            }
            toChannels(resizeAndCrop(img, options), x, rows * c * plane, options);
            y[rows++] = labels[i];
        }
        if (rows == 0) throw new IllegalStateException(root + ": every image of a batch of " + indices.length + " was undecodable (" + skipped() + " skipped so far)");
        if (rows < indices.length) x = Arrays.copyOf(x, rows * c * plane);
        return new Batch(new Tensor(new CpuStorage(DType.FLOAT32, x), new int[]{rows, c, s, s}),
                new Tensor(new CpuStorage(DType.INT64, rows < indices.length ? Arrays.copyOf(y, rows) : y), new int[]{rows}));
    }

    /**
     * Decodes one file, refusing (before decoding) images of more than {@link #MAX_PIXELS} pixels. Whatever the
     * file holds, it fails only with an IOException naming the file: what javax.imageio's readers throw on crafted
     * input (runtime exceptions, and errors other than the virtual machine's own, such as running out of memory) is
     * wrapped in one.
     */
    static BufferedImage decode(Path file) throws IOException {
        try (ImageInputStream in = ImageIO.createImageInputStream(file.toFile())) {
            if (in == null) throw new IOException(file + ": cannot be opened");
            return decode(in, file.toString());
        }
    }

    /**
     * One image (PNG, JPEG, BMP, GIF) as a (1, C, size, size) float32 tensor, prepared as the examples of a folder with
     * these options are; {@code name} is what errors call it. Fails only with an IOException saying why, whatever the
     * bytes hold: {@code kiln predict} and {@code kiln serve} give it files and request bodies.
     */
    public static Tensor load(byte[] bytes, String name, Options options) throws IOException {
        BufferedImage img;
        // in memory: ImageIO's default stream would cache the bytes in a temporary file
        try (ImageInputStream in = new javax.imageio.stream.MemoryCacheImageInputStream(new java.io.ByteArrayInputStream(bytes))) {
            img = decode(in, name);
        }
        int c = options.channels(), s = options.size();
        float[] x = new float[c * s * s];
        toChannels(resizeAndCrop(img, options), x, 0, options);
        return new Tensor(new CpuStorage(DType.FLOAT32, x), new int[]{1, c, s, s});
    }

    private static BufferedImage decode(ImageInputStream in, String file) throws IOException {
        Iterator<ImageReader> readers;
        try {
            readers = ImageIO.getImageReaders(in);
        } catch (RuntimeException e) {
            throw new IOException(file + ": not a readable image (" + e + ")", e);
        }
        if (!readers.hasNext()) throw new IOException(file + ": not an image format Kiln can decode (PNG, JPEG, BMP, GIF)");
        ImageReader reader = readers.next();
        try {
            reader.setInput(in, true, true);
            long w, h;
            try {
                w = reader.getWidth(0);
                h = reader.getHeight(0);
            } catch (IOException | RuntimeException | Error e) {
                throw unreadable(file, reader, e);
            }
            if (w <= 0 || h <= 0 || w * h > MAX_PIXELS) throw new TooLarge(file + ": image of " + w + "x" + h + " pixels refused (at most " + MAX_PIXELS + ")");
            BufferedImage img;
            try {
                img = reader.read(0);
            } catch (IOException | RuntimeException | Error e) {
                throw unreadable(file, reader, e);
            }
            if (img == null) throw new IOException(file + ": decoded to nothing");
            return img;
        } finally {
            reader.dispose();
        }
    }

    /** The reader's failure as an IOException naming the file; the virtual machine's own errors (out of memory) pass. */
    private static IOException unreadable(String file, ImageReader reader, Throwable e) throws IOException {
        if (e instanceof VirtualMachineError vm) throw vm;
        return new IOException(file + ": not a readable " + reader.getFormatName() + " image (" + e.getMessage() + ")", e);
    }

    /** The centre square of the image scaled so its shorter side is {@code resize}, drawn at size x size (bilinear). */
    private static BufferedImage resizeAndCrop(BufferedImage img, Options options) {
        int w = img.getWidth(), h = img.getHeight(), s = options.size();
        double scale = (double) options.resize() / Math.min(w, h);
        double cw = s / scale, ch = s / scale;   // the crop in source pixels
        int x0 = (int) Math.round((w - cw) / 2), y0 = (int) Math.round((h - ch) / 2);
        BufferedImage out = new BufferedImage(s, s, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = out.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
            g.drawImage(img, 0, 0, s, s, x0, y0, x0 + (int) Math.round(cw), y0 + (int) Math.round(ch), null);
        } finally {
            g.dispose();
        }
        return out;
    }

    /** Writes the image's channels (RGB, or grey as the mean of ITU-R 601 weights) normalised, plane after plane. */
    private static void toChannels(BufferedImage img, float[] x, int at, Options options) {
        int s = options.size(), plane = s * s;
        int[] rgb = img.getRGB(0, 0, s, s, null, 0, s);
        float[] mean = options.mean(), std = options.std();
        for (int i = 0; i < plane; i++) {
            int p = rgb[i];
            float r = (p >> 16 & 0xFF) / 255f, gr = (p >> 8 & 0xFF) / 255f, b = (p & 0xFF) / 255f;
            if (options.channels() == 1) {
                x[at + i] = (0.299f * r + 0.587f * gr + 0.114f * b - mean[0]) / std[0];
            } else {
                x[at + i] = (r - mean[0]) / std[0];
                x[at + plane + i] = (gr - mean[mean.length == 1 ? 0 : 1]) / std[std.length == 1 ? 0 : 1];
                x[at + 2 * plane + i] = (b - mean[mean.length == 1 ? 0 : 2]) / std[std.length == 1 ? 0 : 2];
            }
        }
    }
}
