// A probe of session 44 (bench/results/cpu-batch1-2026-12-05.md): javac -cp kiln-core/target/classes, run with java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp kiln-core/target/classes:. GenL [rounds]
import dev.kiln.*;
import dev.kiln.models.CharLSTM;
import dev.kiln.models.Sampling;
import dev.kiln.train.TextGeneration;
public class GenL {
    public static void main(String[] a) {
        CharLSTM m = new CharLSTM(new Generator(0));
        int[] prompt = new java.util.SplittableRandom(5).ints(16, 0, 65).toArray();
        int n = 60, rounds = a.length > 0 ? Integer.parseInt(a[0]) : 8;
        for (int r = 0; r < rounds; r++) {
            long t0 = System.nanoTime();
            TextGeneration.generate(m, prompt, n, Sampling.greedy(), new Generator(0), id -> {});
            System.out.printf("round %d: %.0f tokens/s%n", r, n / ((System.nanoTime() - t0) / 1e9));
        }
    }
}
