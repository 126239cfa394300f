package dev.kiln.optim;

import dev.kiln.DType;
import dev.kiln.Device;
import dev.kiln.Generator;
import dev.kiln.MemoryScope;
import dev.kiln.Tensor;
import dev.kiln.cuda.Cuda;

import java.util.ArrayList;
import java.util.List;

/**
 * Milliseconds per optimizer step, fused against composite, on the parameter shapes of the CIFAR CNN of
 * dev.kiln.bench.Bench (8 tensors, 2.4 M weights) and of a 40-layer stack (160 small tensors: launch-bound).
 * Usage: FusedStepBench [cpu|cuda].
 */
public final class FusedStepBench {
    public static void main(String[] args) {
        Device device = args.length > 0 && args[0].startsWith("cuda") ? Device.cuda(0) : Device.CPU;
        int[][] cifar = {{32, 3, 3, 3}, {32}, {32, 32, 3, 3}, {32}, {64, 32, 3, 3}, {64}, {64, 64, 3, 3}, {64}, {512, 2304}, {512}, {10, 512}, {10}};
        int[][] deep = new int[160][];
        for (int i = 0; i < deep.length; i++) deep[i] = i % 2 == 0 ? new int[]{128, 128} : new int[]{128};
        for (var shapes : List.of(cifar, deep)) {
            for (FusedOptimizerTest.Kind kind : List.of(FusedOptimizerTest.Kind.ADAM, FusedOptimizerTest.Kind.SGD_MOMENTUM)) {
                double composite = msPerStep(kind, device, shapes, false), fused = msPerStep(kind, device, shapes, true);
                System.out.printf("%s %s %d tensors: composite %.3f ms/step, fused %.3f ms/step (%.1fx)%n",
                        device, kind, shapes.length, composite, fused, composite / fused);
            }
        }
    }

    private static double msPerStep(FusedOptimizerTest.Kind kind, Device device, int[][] shapes, boolean fused) {
        Generator gen = new Generator(1);
        List<Tensor> params = new ArrayList<>();
        for (int[] s : shapes) params.add(Tensor.randn(gen, s, DType.FLOAT32, device).requiresGrad(true));
        Optimizer opt = kind.make.apply(params);
        opt.setFused(fused);
        for (Tensor p : params) p.setGrad(Tensor.randn(gen, p.shape(), DType.FLOAT32, device).keep());
        int warm = 10, iters = device.isCuda() ? 200 : 20;
        for (int i = 0; i < warm; i++) step(opt);
        sync(device);
        long t = System.nanoTime();
        for (int i = 0; i < iters; i++) step(opt);
        sync(device);
        return (System.nanoTime() - t) / 1e6 / iters;
    }

    private static void step(Optimizer opt) {
        try (MemoryScope s = MemoryScope.open()) {
            opt.step();
        }
    }

    private static void sync(Device d) { if (d.isCuda()) Cuda.synchronize(); }
}
