// A probe of session 44 (bench/results/cpu-batch1-2026-12-05.md): javac -cp kiln-core/target/classes, run with java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp kiln-core/target/classes:. Gen [rounds] [gpt|lstm]
// (GenL in the logs is this with lstm)
import dev.kiln.*;
import dev.kiln.models.CharLSTM;
import dev.kiln.models.GPT;
import dev.kiln.models.Sampling;
import dev.kiln.nn.F;
import dev.kiln.nn.Model;
import dev.kiln.train.TextGeneration;
public class Gen {
    public static void main(String[] a) {
        int n = 60, rounds = a.length > 0 ? Integer.parseInt(a[0]) : 8;
        Model m = a.length > 1 && a[1].equals("lstm") ? new CharLSTM(new Generator(0))
                : new GPT(new GPT.Config(65, 256, 6, 6, 384, 0, true, true, false, F.GeluApproximation.NONE, 1e-5), new Generator(0));
        int[] prompt = new java.util.SplittableRandom(5).ints(16, 0, 65).toArray();
        for (int r = 0; r < rounds; r++) {
            long t0 = System.nanoTime();
            TextGeneration.generate(m, prompt, n, Sampling.greedy(), new Generator(0), id -> {});
            System.out.printf("round %d: %.0f tokens/s%n", r, n / ((System.nanoTime() - t0) / 1e9));
        }
    }
}
