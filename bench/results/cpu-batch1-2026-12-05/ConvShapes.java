// A probe of session 44 (bench/results/cpu-batch1-2026-12-05.md): javac -cp kiln-core/target/classes, run with java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp kiln-core/target/classes:. ConvShapes [args]
import dev.kiln.*;
import dev.kiln.backend.Conv2dParams;
import dev.kiln.ops.Convolution;
import dev.kiln.autograd.GradMode;
import dev.kiln.cpu.WeightCache;
public class ConvShapes {
    public static void main(String[] a) throws Exception {
        // c h o k stride pad
        int[][] shapes = {{3,224,64,7,2,3},{64,56,128,1,2,0},{128,28,256,1,2,0},{256,14,512,1,2,0},{64,56,64,3,1,1},{512,7,512,3,1,1}};
        int n = a.length > 0 ? Integer.parseInt(a[0]) : 1;
        WeightCache cache = new WeightCache();
        try (GradMode g = GradMode.disabled()) {
            for (int[] s : shapes) {
                Tensor x = Tensor.randn(new Generator(1), new int[]{n, s[0], s[1], s[1]}, DType.FLOAT32, Device.CPU).keep();
                Tensor w = Tensor.randn(new Generator(2), new int[]{s[2], s[0], s[3], s[3]}, DType.FLOAT32, Device.CPU).keep();
                Tensor b = Tensor.randn(new Generator(3), new int[]{s[2]}, DType.FLOAT32, Device.CPU).keep();
                Conv2dParams p = Conv2dParams.of(s[4], s[5], 1, 1);
                Runnable f = () -> cache.around(() -> { try (MemoryScope ms = MemoryScope.open()) { Convolution.conv2d(x, w, b, p, true); } return null; });
                for (int i = 0; i < 100; i++) f.run();
                long t0 = System.nanoTime(); int reps = 0;
                while (System.nanoTime() - t0 < 1e9) { f.run(); reps++; }
                double ms = (System.nanoTime() - t0) / 1e6 / reps;
                int oh = (s[1] + 2 * s[5] - s[3]) / s[4] + 1;
                System.out.printf("c%d h%d o%d k%d s%d: %.3f ms  %.0f GFLOP/s%n", s[0], s[1], s[2], s[3], s[4], ms, 2.0 * n * s[2] * oh * oh * s[0] * s[3] * s[3] / ms / 1e6);
            }
        }
    }
}
