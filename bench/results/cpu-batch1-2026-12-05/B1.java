// A probe of session 44 (bench/results/cpu-batch1-2026-12-05.md): javac -cp kiln-core/target/classes, run with java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp kiln-core/target/classes:. B1 [args]
import dev.kiln.*;
import dev.kiln.infer.Predictor;
import dev.kiln.train.ModelZoo;
import dev.kiln.nn.Model;
public class B1 {
    public static void main(String[] a) throws Exception {
        int batch = a.length > 0 ? Integer.parseInt(a[0]) : 1;
        double secs = a.length > 1 ? Double.parseDouble(a[1]) : 10;
        Model m = ModelZoo.RESNET18.build(new Generator(0), new int[]{3, 224, 224}, 1000);
        Tensor x = Tensor.randn(new Generator(9), new int[]{batch, 3, 224, 224}, DType.FLOAT32, Device.CPU).keep();
        try (Predictor p = new Predictor(m, x)) {
            for (int i = 0; i < 30; i++) p.predict(x).close();
            long t0 = System.nanoTime(); int n = 0;
            while (System.nanoTime() - t0 < secs * 1e9) { p.predict(x).close(); n++; }
            System.out.printf("batch %d: %.3f ms/call%n", batch, (System.nanoTime() - t0) / 1e6 / n);
        }
    }
}
