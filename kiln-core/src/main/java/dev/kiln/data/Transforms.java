package dev.kiln.data;

import dev.kiln.DType;
import dev.kiln.Shape;
import dev.kiln.Tensor;
import dev.kiln.cpu.CpuStorage;
import dev.kiln.ops.Indexing;

import java.util.random.RandomGenerator;

/** The usual image transforms, over float32 batches (N, C, H, W). */
public final class Transforms {
    private Transforms() {}

    /** (x - mean[c]) / std[c] per channel; one value each applies to every channel. */
    public static Transform normalize(float[] mean, float[] std) {
        if (mean.length != std.length || mean.length == 0) throw new IllegalArgumentException("normalize: mean and std must have the same, non-zero length");
        for (float s : std) if (!(s > 0)) throw new IllegalArgumentException("normalize: std must be > 0");
        return (x, rng) -> {
            int[] s = imageShape("normalize", x);
            int c = s[1], plane = s[2] * s[3];
            if (mean.length != 1 && mean.length != c) throw new IllegalArgumentException("normalize: " + mean.length + " means for " + c + " channels");
            float[] v = x.toFloatArray();
            for (int n = 0; n < s[0]; n++) {
                for (int ch = 0; ch < c; ch++) {
                    float m = mean[mean.length == 1 ? 0 : ch], inv = 1 / std[std.length == 1 ? 0 : ch];
                    int base = (n * c + ch) * plane;
                    for (int i = 0; i < plane; i++) v[base + i] = (v[base + i] - m) * inv;
                }
            }
            return floats(v, s, x);
        };
    }

    /**
     * Pads each image by {@code padding} zeros on every side and cuts a random size x size window from it, on the
     * batch's device (the windows are drawn here, the pixels moved by {@link Indexing#cropImages}).
     */
    public static Transform randomCrop(int size, int padding) { return cropAndFlip(size, padding, 0, false, "randomCrop"); }

    /** Mirrors each image left to right with probability p, on the batch's device. */
    public static Transform randomHorizontalFlip(double p) {
        if (!(p >= 0 && p <= 1)) throw new IllegalArgumentException("randomHorizontalFlip: p must be in [0, 1]");
        return (x, rng) -> {
            int[] s = imageShape("randomHorizontalFlip", x);
            int[] boxes = new int[s[0] * 3];
            return drawFlips(boxes, p, rng) ? Indexing.cropImages(x, boxTensor(boxes, x), s[2], s[3]) : x;
        };
    }

    /**
     * {@code randomCrop(size, padding).andThen(randomHorizontalFlip(p))} in one pass over the batch: the same draws in the
     * same order (every window, then every mirror), each mirrored window moved once.
     */
    public static Transform randomCropAndFlip(int size, int padding, double p) {
        if (!(p >= 0 && p <= 1)) throw new IllegalArgumentException("randomCropAndFlip: p must be in [0, 1]");
        return cropAndFlip(size, padding, p, true, "randomCropAndFlip");
    }

    private static Transform cropAndFlip(int size, int padding, double p, boolean flips, String op) {
        if (size < 1 || padding < 0) throw new IllegalArgumentException(op + ": size must be >= 1 and padding >= 0");
        return (x, rng) -> {
            int[] s = imageShape(op, x);
            int h = s[2], w = s[3];
            if (size > h + 2 * padding || size > w + 2 * padding) {
                throw new IllegalArgumentException(op + ": crop " + size + " is larger than the padded image " + (h + 2 * padding) + "x" + (w + 2 * padding));
            }
            int[] boxes = new int[s[0] * 3];
            for (int n = 0; n < s[0]; n++) {
                // window origin in padded coordinates, shifted back to the image's
                boxes[n * 3] = rng.nextInt(h + 2 * padding - size + 1) - padding;
                boxes[n * 3 + 1] = rng.nextInt(w + 2 * padding - size + 1) - padding;
            }
            if (flips) drawFlips(boxes, p, rng);
            return Indexing.cropImages(x, boxTensor(boxes, x), size, size);
        };
    }

    /** Sets each window's mirror flag with probability p; whether any was set. */
    private static boolean drawFlips(int[] boxes, double p, RandomGenerator rng) {
        boolean any = false;
        for (int n = 0; n < boxes.length / 3; n++) {
            boolean flip = rng.nextDouble() < p;
            boxes[n * 3 + 2] = flip ? 1 : 0;
            any |= flip;
        }
        return any;
    }

    /** The (N, 3) int32 windows of {@link Indexing#cropImages} on the images' device. */
    private static Tensor boxTensor(int[] boxes, Tensor x) {
        return Tensor.fromHost(boxes, DType.INT32, new int[]{boxes.length / 3, 3}, x.device());
    }

    /**
     * torchvision's RandomResizedCrop over a batch: per image a window of {@code scaleMin..scaleMax} of its area with
     * an aspect ratio between 3/4 and 4/3 (log-uniform), resampled bilinearly to size x size; after 10 draws that do
     * not fit, the centre square.
     */
    public static Transform randomResizedCrop(int size, double scaleMin, double scaleMax) {
        if (size < 1 || !(scaleMin > 0 && scaleMin <= scaleMax && scaleMax <= 1)) {
            throw new IllegalArgumentException("randomResizedCrop: need size >= 1 and 0 < scaleMin <= scaleMax <= 1");
        }
        return (x, rng) -> {
            int[] s = imageShape("randomResizedCrop", x);
            int c = s[1], h = s[2], w = s[3];
            float[] in = x.toFloatArray(), out = new float[s[0] * c * size * size];
            for (int n = 0; n < s[0]; n++) {
                double[] box = cropBox(h, w, scaleMin, scaleMax, rng);
                for (int ch = 0; ch < c; ch++) resample(in, (n * c + ch) * h * w, h, w, box, out, (n * c + ch) * size * size, size);
            }
            return floats(out, new int[]{s[0], c, size, size}, x);
        };
    }

    /** {top, left, height, width} of a random crop, in pixels. */
    private static double[] cropBox(int h, int w, double scaleMin, double scaleMax, RandomGenerator rng) {
        double area = (double) h * w, logLo = Math.log(3.0 / 4), logHi = Math.log(4.0 / 3);
        for (int attempt = 0; attempt < 10; attempt++) {
            double target = area * (scaleMin + rng.nextDouble() * (scaleMax - scaleMin));
            double ratio = Math.exp(logLo + rng.nextDouble() * (logHi - logLo));
            double cw = Math.sqrt(target * ratio), ch = Math.sqrt(target / ratio);
            if (cw <= w && ch <= h) return new double[]{rng.nextDouble() * (h - ch), rng.nextDouble() * (w - cw), ch, cw};
        }
        double side = Math.min(h, w);
        return new double[]{(h - side) / 2, (w - side) / 2, side, side};
    }

    /** Bilinear sampling of one plane's crop box onto a size x size plane (pixel centres aligned, as align_corners=False). */
    private static void resample(float[] in, int src, int h, int w, double[] box, float[] out, int dst, int size) {
        double sy = box[2] / size, sx = box[3] / size;
        for (int i = 0; i < size; i++) {
            double fy = Math.clamp(box[0] + (i + 0.5) * sy - 0.5, 0, h - 1);
            int y0 = (int) fy, y1 = Math.min(y0 + 1, h - 1);
            double wy = fy - y0;
            for (int j = 0; j < size; j++) {
                double fx = Math.clamp(box[1] + (j + 0.5) * sx - 0.5, 0, w - 1);
                int x0 = (int) fx, x1 = Math.min(x0 + 1, w - 1);
                double wx = fx - x0;
                double top = in[src + y0 * w + x0] * (1 - wx) + in[src + y0 * w + x1] * wx;
                double bottom = in[src + y1 * w + x0] * (1 - wx) + in[src + y1 * w + x1] * wx;
                out[dst + i * size + j] = (float) (top * (1 - wy) + bottom * wy);
            }
        }
    }

    private static int[] imageShape(String op, Tensor x) {
        if (x.dim() != 4) throw new IllegalArgumentException(op + ": expects images (N, C, H, W), got shape " + Shape.str(x.shape()));
        return x.shape();
    }

    /**
     * The result on the input's device: toFloatArray returned a fresh array, so a CPU tensor can own it without a copy
     * (these transforms compute on the host; a device batch goes there and back).
     */
    private static Tensor floats(float[] v, int[] shape, Tensor like) {
        Tensor t = new Tensor(new CpuStorage(DType.FLOAT32, v), shape);
        return like.device().isCuda() ? t.to(like.device()) : t;
    }
}
