package dev.kiln.data;

import dev.kiln.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.random.RandomGenerator;

import static org.junit.jupiter.api.Assertions.*;

class DataLoaderTest {
    /** Example i has input [i, 10*i] and target i, so a batch shows which examples it holds. */
    static TensorDataset numbered(int n) {
        float[] x = new float[2 * n];
        long[] y = new long[n];
        for (int i = 0; i < n; i++) {
            x[2 * i] = i;
            x[2 * i + 1] = 10 * i;
            y[i] = i;
        }
        return new TensorDataset(Tensor.of(x, n, 2), Tensor.of(y, n));
    }

    static List<long[]> epoch(DataLoader loader) {
        List<long[]> out = new ArrayList<>();
        for (Batch b : loader) {
            long[] ids = b.targets().toLongArray();
            float[] x = b.inputs().toFloatArray();
            for (int i = 0; i < ids.length; i++) assertEquals(10f * ids[i], x[2 * i + 1], "inputs travel with their targets");
            out.add(ids);
        }
        return out;
    }

    @Test void inOrderWithAShortLastBatch() {
        try (DataLoader l = DataLoader.builder(numbered(10)).batchSize(4).build()) {
            List<long[]> e = epoch(l);
            assertEquals(3, l.batchCount());
            assertArrayEquals(new long[]{0, 1, 2, 3}, e.get(0));
            assertArrayEquals(new long[]{4, 5, 6, 7}, e.get(1));
            assertArrayEquals(new long[]{8, 9}, e.get(2));
        }
    }

    @Test void dropLastDropsTheShortBatch() {
        try (DataLoader l = DataLoader.builder(numbered(10)).batchSize(4).dropLast(true).build()) {
            List<long[]> e = epoch(l);
            assertEquals(2, e.size());
            assertEquals(8, l.sampleCount());
        }
        try (DataLoader l = DataLoader.builder(numbered(8)).batchSize(4).dropLast(true).build()) {
            assertEquals(2, epoch(l).size(), "an exact multiple loses nothing");
        }
    }

    @Test void shuffleIsAPermutationSeededAndNewEachEpoch() {
        try (DataLoader a = DataLoader.builder(numbered(50)).batchSize(7).shuffle(42).workers(2).build();
             DataLoader b = DataLoader.builder(numbered(50)).batchSize(7).shuffle(42).workers(0).build();
             DataLoader c = DataLoader.builder(numbered(50)).batchSize(7).shuffle(43).build()) {
            long[] a1 = flat(epoch(a)), a2 = flat(epoch(a)), b1 = flat(epoch(b)), b2 = flat(epoch(b)), c1 = flat(epoch(c));
            long[] sorted = a1.clone();
            Arrays.sort(sorted);
            long[] all = new long[50];
            Arrays.setAll(all, i -> i);
            assertArrayEquals(all, sorted, "each example exactly once");
            assertFalse(Arrays.equals(all, a1), "shuffled");
            assertArrayEquals(a1, b1, "same seed, same order, whatever the number of workers");
            assertArrayEquals(a2, b2);
            assertFalse(Arrays.equals(a1, a2), "a new order each epoch");
            assertFalse(Arrays.equals(a1, c1), "another seed, another order");
        }
    }

    @Test void workersPrepareBatchesAheadInABoundedQueue() throws InterruptedException {
        try (DataLoader l = DataLoader.builder(numbered(100)).batchSize(10).workers(2).prefetch(3).build()) {
            DataLoader.Epoch e = l.iterator();
            assertArrayEquals(new long[]{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, e.next().targets().toLongArray());
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (e.prefetched() < 3 && System.nanoTime() < deadline) Thread.sleep(5);
            assertEquals(3, e.prefetched(), "three batches wait, no more");
            e.close();
            assertFalse(e.hasNext(), "a closed epoch has ended");
        }
    }

    @Test void errorsInWorkersReachTheCaller() {
        Dataset broken = new Dataset() {
            @Override public int size() { return 10; }

            @Override public Batch batch(int[] indices) { throw new IllegalStateException("disk on fire"); }
        };
        try (DataLoader l = DataLoader.builder(broken).batchSize(5).workers(1).build()) {
            var e = assertThrows(IllegalStateException.class, () -> l.iterator().next());
            assertEquals("disk on fire", e.getMessage());
        }
    }

    @Test void transformsRunPerBatchWithSeededRandomness() {
        Transform addNoise = (x, rng) -> x.add(rng.nextInt(1000));
        try (DataLoader a = DataLoader.builder(numbered(20)).batchSize(5).shuffle(1).transform(addNoise).workers(2).build();
             DataLoader b = DataLoader.builder(numbered(20)).batchSize(5).shuffle(1).transform(addNoise).workers(0).build()) {
            Batch x = a.iterator().next(), y = b.iterator().next();
            assertArrayEquals(x.inputs().toFloatArray(), y.inputs().toFloatArray());
        }
    }

    @Test void imageTransforms() {
        Tensor img = Tensor.of(new float[]{1, 2, 3, 4, 5, 6}, 1, 1, 2, 3);
        RandomGenerator rng = new java.util.SplittableRandom(0);
        assertArrayEquals(new float[]{3, 2, 1, 6, 5, 4}, Transforms.randomHorizontalFlip(1).apply(img, rng).toFloatArray());
        assertArrayEquals(img.toFloatArray(), Transforms.randomHorizontalFlip(0).apply(img, rng).toFloatArray());
        assertArrayEquals(new float[]{0, 0.5f, 1, 1.5f, 2, 2.5f},
                Transforms.normalize(new float[]{1}, new float[]{2}).apply(img, rng).toFloatArray());
        // crop with no room to move is the identity; with padding the window holds zeros or shifted pixels
        assertArrayEquals(new float[]{1, 2, 4, 5}, Transforms.randomCrop(2, 0).apply(Tensor.of(new float[]{1, 2, 4, 5}, 1, 1, 2, 2), rng).toFloatArray(),
                () -> "identity");
        Tensor square = Tensor.of(new float[]{1, 2, 3, 4}, 1, 1, 2, 2);
        for (int trial = 0; trial < 20; trial++) {
            float[] c = Transforms.randomCrop(2, 1).apply(square, rng).toFloatArray();
            float sum = 0;
            for (float v : c) sum += v;
            assertTrue(sum <= 10 && c.length == 4, Arrays.toString(c));
        }
    }

    /** randomCropAndFlip is randomCrop then randomHorizontalFlip in one pass: the same pixels from the same generator. */
    @Test void cropAndFlipInOnePassEqualsTheTwoTransforms() {
        Tensor x = Tensor.randn(new dev.kiln.Generator(System.nanoTime()), 9, 2, 12, 12);
        long seed = System.nanoTime();
        float[] chained = Transforms.randomCrop(12, 2).andThen(Transforms.randomHorizontalFlip(0.5)).apply(x, new java.util.SplittableRandom(seed)).toFloatArray();
        float[] fused = Transforms.randomCropAndFlip(12, 2, 0.5).apply(x, new java.util.SplittableRandom(seed)).toFloatArray();
        assertArrayEquals(chained, fused, 0f, "seed " + seed);
    }

    /** Indexing.cropImages against a pixel-by-pixel reference: windows partly outside the image, mirrored or not. */
    @Test void cropImagesMatchesAPixelByPixelReference() {
        java.util.SplittableRandom rng = new java.util.SplittableRandom(System.nanoTime());
        int n = 5, c = 2, h = 7, w = 9, oh = 6, ow = 8;
        Tensor x = Tensor.randn(new dev.kiln.Generator(rng.nextLong()), n, c, h, w);
        int[] boxes = new int[n * 3];
        for (int i = 0; i < n; i++) {
            boxes[i * 3] = rng.nextInt(-4, 5);
            boxes[i * 3 + 1] = rng.nextInt(-4, 6);
            boxes[i * 3 + 2] = rng.nextInt(2);
        }
        float[] in = x.toFloatArray(), got = dev.kiln.ops.Indexing.cropImages(x, Tensor.fromHost(boxes, dev.kiln.DType.INT32, new int[]{n, 3},
                dev.kiln.Device.CPU), oh, ow).toFloatArray();
        for (int img = 0; img < n; img++) {
            for (int ch = 0; ch < c; ch++) {
                for (int i = 0; i < oh; i++) {
                    for (int j = 0; j < ow; j++) {
                        int y = boxes[img * 3] + i, xx = boxes[img * 3 + 1] + (boxes[img * 3 + 2] != 0 ? ow - 1 - j : j);
                        float want = y >= 0 && y < h && xx >= 0 && xx < w ? in[((img * c + ch) * h + y) * w + xx] : 0;
                        assertEquals(want, got[((img * c + ch) * oh + i) * ow + j], "image " + img + " box " + Arrays.toString(Arrays.copyOfRange(boxes, img * 3, img * 3 + 3)));
                    }
                }
            }
        }
        Tensor wrongBoxes = Tensor.fromHost(new int[6], dev.kiln.DType.INT32, new int[]{2, 3}, dev.kiln.Device.CPU);
        var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> dev.kiln.ops.Indexing.cropImages(x, wrongBoxes, 2, 2));
        assertTrue(e.getMessage().contains("boxes must be (5, 3)"), e.getMessage());
    }

    private static long[] flat(List<long[]> batches) {
        return batches.stream().flatMapToLong(Arrays::stream).toArray();
    }
}
