package dev.kiln.infer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * One class of a classifier's answer: its index, name and softmax probability.
 *
 * @param index        the class's label
 * @param name         its name
 * @param probability  softmax of the logits, in [0, 1]
 */
public record ClassScore(int index, String name, double probability) {

    /** The {@code k} most probable classes of one row of logits, most probable first. */
    public static List<ClassScore> top(float[] logits, List<String> names, int k) {
        if (logits.length != names.size()) {
            throw new IllegalArgumentException("ClassScore: " + logits.length + " logits for " + names.size() + " class names");
        }
        if (k < 1) throw new IllegalArgumentException("top-k needs k >= 1, got " + k);
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (float v : logits) max = Math.max(max, v);
        for (float v : logits) sum += Math.exp(v - max);   // shifted by the max so exp cannot overflow
        List<ClassScore> all = new ArrayList<>(logits.length);
        for (int i = 0; i < logits.length; i++) all.add(new ClassScore(i, names.get(i), Math.exp(logits[i] - max) / sum));
        all.sort(Comparator.comparingDouble(ClassScore::probability).reversed());
        return List.copyOf(all.subList(0, Math.min(k, all.size())));
    }
}
