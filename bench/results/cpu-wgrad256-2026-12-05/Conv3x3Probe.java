package dev.kiln.cpu;
/** A fresh-JVM probe of one Conv3x3 direction (batch 128, pad 1): javac -cp kiln-core.jar, run with that jar on the class path; args c h o stride fwd|gx|gw. */
public class Conv3x3Probe {
    public static void main(String[] a) {
        int n = 128, c = Integer.parseInt(a[0]), h = Integer.parseInt(a[1]), o = Integer.parseInt(a[2]), s = Integer.parseInt(a[3]);
        String what = a[4];
        int oh = (h + 2 - 3) / s + 1;
        var r = new java.util.SplittableRandom(1);
        float[] x = new float[n * c * h * h], wt = new float[o * c * 9], y = new float[n * o * oh * oh], gy = new float[y.length], gw = new float[wt.length];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextDouble();
        for (int i = 0; i < wt.length; i++) wt[i] = (float) r.nextDouble();
        for (int i = 0; i < gy.length; i++) gy[i] = (float) r.nextDouble();
        Runnable f = switch (what) {
            case "fwd" -> () -> Conv3x3.forward(Conv3x3.KERNEL, x, 0, n, c, h, h, wt, 0, o, 3, s, 1, 1, Conv3x3.Epilogue.NONE, y);
            case "gx" -> () -> Conv3x3.backwardInput(Conv3x3.KERNEL, gy, 0, n, o, wt, 0, c, h, h, s, 1, 1, x, 0, false);
            default -> () -> Conv3x3.backwardWeight(Conv3x3.KERNEL, x, 0, n, c, h, h, gy, 0, o, s, 1, 1, gw);
        };
        for (int i = 0; i < 40; i++) f.run();
        long t0 = System.nanoTime();
        int reps = Integer.getInteger("reps", 100);
        for (int i = 0; i < reps; i++) f.run();
        double ms = (System.nanoTime() - t0) / 1e6 / reps; System.out.printf("%s c%d h%d o%d s%d: %.3f ms %.0f GFLOP/s%n", what, c, h, o, s, ms, 2.0 * n * o * oh * oh * c * 9 / ms / 1e6);
    }
}
