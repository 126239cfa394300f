package dev.kiln.cuda;

import dev.kiln.Tensor;

/** Uniform and normal fills from the counter-based generator of random.cuh (random.cu); inside a graph the key is a slot of its key table. */
final class RandomCuda extends CudaFamily {
    private final Kernels.Table uniform, normal;

    RandomCuda(CudaBackend backend) {
        super(backend);
        uniform = new Kernels.Table(dev, "random.cu", "uniform");
        normal = new Kernels.Table(dev, "random.cu", "normal");
    }

    void uniform(Tensor out, long seed, double lo, double hi) { random(uniform, out, seed, lo, hi); }

    void normal(Tensor out, long seed, double mean, double std) { random(normal, out, seed, mean, std); }

    private void random(Kernels.Table k, Tensor out, long seed, double a, double b) {
        if (!out.dtype().isFloating()) throw new IllegalArgumentException("random fill needs a floating tensor, got " + out.dtype());
        if (!out.isContiguous()) throw new IllegalArgumentException("random fill needs a contiguous tensor");
        long n = out.numel();
        if (n == 0) return;
        Launch.args().ptr(ptr(out)).i64(n).i64(seed).f64(a).f64(b).ptr(dev.replayCounter()).go(dev, k.get(out.dtype()), grid(n), BLOCK);
    }
}
