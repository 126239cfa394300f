package dev.kiln.cpu;
// package dev.kiln.cpu (it calls Conv3x3 directly): compile into dev/kiln/cpu beside kiln-core/target/classes; arg: the batch
public class B1Layers {
    public static void main(String[] a) {
        int[][] layers = {{64,56,64,1},{64,56,128,2},{128,28,128,1},{128,28,256,2},{256,14,256,1},{256,14,512,2},{512,7,512,1}};
        int n = a.length > 0 ? Integer.parseInt(a[0]) : 1;
        double total = 0;
        for (int[] L : layers) {
            int c = L[0], h = L[1], o = L[2], s = L[3], oh = (h + 2 - 3) / s + 1;
            var r = new java.util.SplittableRandom(1);
            float[] x = new float[n * c * h * h], wt = new float[o * c * 9], y = new float[n * o * oh * oh];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextDouble();
            for (int i = 0; i < wt.length; i++) wt[i] = (float) r.nextDouble();
            WeightCache cache = new WeightCache();
            Runnable f = () -> cache.around(() -> { Conv3x3.forward(Conv3x3.KERNEL, x, 0, n, c, h, h, wt, 0, o, 3, s, 1, 1, Conv3x3.Epilogue.NONE, y); return null; });
            for (int i = 0; i < 200; i++) f.run();
            long t0 = System.nanoTime(); int reps = 0;
            while (System.nanoTime() - t0 < 1e9) { f.run(); reps++; }
            double ms = (System.nanoTime() - t0) / 1e6 / reps;
            double gf = 2.0 * n * o * oh * oh * c * 9 / ms / 1e6;
            System.out.printf("c%d h%d o%d s%d: %.3f ms  %.0f GFLOP/s%n", c, h, o, s, ms, gf);
        }
    }
}
