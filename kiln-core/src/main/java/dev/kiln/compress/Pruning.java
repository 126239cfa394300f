package dev.kiln.compress;

import dev.kiln.Tensor;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Linear;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;

/**
 * Magnitude pruning of the weights of every {@link Linear} and {@link Conv2d} (biases and normalisation stay dense).
 * <ul>
 * <li>{@link Scope#PER_LAYER}: each weight loses exactly {@code round(amount * numel)} of its smallest magnitudes;</li>
 * <li>{@link Scope#GLOBAL}: one threshold over all of them together, so layers with many small weights lose more;</li>
 * <li>{@link #twoOfFour}: in every group of 4 consecutive weights along the reduction dimension (a Linear's input, a
 * convolution's C·k·k in im2col order) the 2 largest magnitudes stay, the layout sparse tensor cores run.</li>
 * </ul>
 * Ties are broken by position, so the pruned count is exact even when magnitudes repeat (zeros of an earlier round).
 */
public final class Pruning {
    private Pruning() {}

    /** Whether the amount is taken within each layer or over all layers together. */
    public enum Scope { PER_LAYER, GLOBAL }

    /** The prunable weights of a model, by state-dict name: every Linear's and Conv2d's. */
    public static Map<String, Tensor> prunableWeights(Layer model) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        collect(model, "", out);
        return out;
    }

    private static void collect(Layer layer, String prefix, Map<String, Tensor> out) {
        switch (layer) {
            case Linear l -> out.put(prefix + "weight", l.weight());
            case Conv2d c -> out.put(prefix + "weight", c.weight());
            default -> { }
        }
        for (var e : layer.children().entrySet()) collect(e.getValue(), prefix + e.getKey() + ".", out);
    }

    /** Unstructured magnitude pruning of {@code amount} (0 to 1) of the prunable weights; applies and returns the masks. */
    public static PruneMasks magnitude(Layer model, double amount, Scope scope) {
        if (!(amount >= 0 && amount <= 1)) throw new IllegalArgumentException("pruning amount must be in [0, 1], got " + amount);
        Map<String, Tensor> weights = prunableWeights(model);
        Map<String, float[]> values = new LinkedHashMap<>();
        weights.forEach((name, w) -> values.put(name, w.toFloatArray()));
        Map<String, float[]> masks = switch (scope) {
            case PER_LAYER -> {
                Map<String, float[]> m = new LinkedHashMap<>();
                values.forEach((name, v) -> m.put(name, keepLargest(List.of(v), amount).getFirst()));
                yield m;
            }
            case GLOBAL -> {
                List<float[]> kept = keepLargest(new ArrayList<>(values.values()), amount);
                Map<String, float[]> m = new LinkedHashMap<>();
                int i = 0;
                for (String name : values.keySet()) m.put(name, kept.get(i++));
                yield m;
            }
        };
        return PruneMasks.of(weights, masks).apply();
    }

    /**
     * Masks (1 kept, 0 pruned) over the arrays taken together, pruning exactly {@code round(amount * total)} of the
     * smallest magnitudes; equal magnitudes are pruned in array-then-index order.
     */
    static List<float[]> keepLargest(List<float[]> arrays, double amount) {
        int total = arrays.stream().mapToInt(a -> a.length).sum();
        long[] order = new long[total]; // array index << 32 | element index, sorted by magnitude
        int k = 0;
        for (int a = 0; a < arrays.size(); a++) for (int i = 0; i < arrays.get(a).length; i++) order[k++] = (long) a << 32 | i;
        Comparator<Long> byMagnitude = Comparator.comparingDouble(o -> Math.abs(arrays.get((int) (o >>> 32))[(int) (long) o]));
        Long[] boxed = IntStream.range(0, total).mapToObj(i -> order[i]).toArray(Long[]::new);
        java.util.Arrays.sort(boxed, byMagnitude.thenComparingLong(o -> o)); // stable by position for ties
        List<float[]> masks = new ArrayList<>();
        for (float[] a : arrays) masks.add(filled(a.length));
        long prune = Math.round(amount * total);
        for (int j = 0; j < prune; j++) masks.get((int) (boxed[j] >>> 32))[(int) (long) boxed[j]] = 0;
        return masks;
    }

    private static float[] filled(int n) {
        float[] m = new float[n];
        java.util.Arrays.fill(m, 1f);
        return m;
    }

    /**
     * 2:4 structured pruning: of every 4 consecutive weights along each row's reduction dimension the 2 smallest
     * magnitudes go (exactly half of each prunable layer). A layer whose row length is not a multiple of 4 (a first
     * convolution over 1 channel, 3x3: 9) cannot take the pattern and stays dense, as NVIDIA's ASP leaves it;
     * {@link PruneMasks#names()} says which were pruned.
     */
    public static PruneMasks twoOfFour(Layer model) {
        Map<String, Tensor> weights = new LinkedHashMap<>(), all = prunableWeights(model);
        Map<String, float[]> masks = new LinkedHashMap<>();
        all.forEach((name, w) -> {
            int row = (int) (w.numel() / w.size(0));
            if (row % 4 != 0) return;
            weights.put(name, w);
            masks.put(name, twoOfFourMask(w.toFloatArray()));
        });
        return PruneMasks.of(weights, masks).apply();
    }

    /** The 2:4 mask of a flat array whose length is a multiple of 4 (each row's groups never cross rows, as rows are too). */
    static float[] twoOfFourMask(float[] w) {
        float[] mask = new float[w.length];
        for (int g = 0; g < w.length; g += 4) {
            // keep the two largest of four: the first largest, then the largest of the rest (earlier index wins ties)
            int first = g;
            for (int i = g + 1; i < g + 4; i++) if (Math.abs(w[i]) > Math.abs(w[first])) first = i;
            int second = first == g ? g + 1 : g;
            for (int i = g; i < g + 4; i++) if (i != first && Math.abs(w[i]) > Math.abs(w[second])) second = i;
            mask[first] = 1;
            mask[second] = 1;
        }
        return mask;
    }

    /**
     * The amount pruned at round {@code round} (1-based) of {@code rounds} to reach {@code amount}: Zhu and Gupta's cubic
     * schedule, which prunes most while the network has the most redundancy and least near the end.
     */
    public static double scheduledAmount(double amount, int round, int rounds) {
        if (rounds < 1 || round < 1 || round > rounds) throw new IllegalArgumentException("round " + round + " of " + rounds);
        double left = 1 - (double) round / rounds;
        return amount * (1 - left * left * left);
    }

    /** The fraction of the prunable weights that are exactly zero. */
    public static double sparsity(Layer model) {
        long zeros = 0, total = 0;
        for (Tensor w : prunableWeights(model).values()) {
            for (float v : w.toFloatArray()) if (v == 0) zeros++;
            total += w.numel();
        }
        return total == 0 ? 0 : (double) zeros / total;
    }
}
