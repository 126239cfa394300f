package dev.kiln.nn;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.optim.Adam;
import dev.kiln.optim.Optimizer;
import dev.kiln.optim.SGD;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Model.channelsLast lays the filters out channels-last (PyTorch's channels-last parameters): their gradients and
 * optimizer state follow, training gives the values a model with contiguous filters gives, and state dicts, moves and
 * casts keep values and layout.
 */
class ChannelsLastModelTest {
    private static Sequential net() {
        Generator g = new Generator(7);
        // no bias before batch norm: its gradient is rounding noise there, which Adam would blow up to full steps
        return new Sequential(new Conv2d(3, 8, 3, 1, 1, 1, 1, false, g), new BatchNorm2d(8), new ReLU(), new Conv2d(8, 4, 3, 2, 1, g), new ReLU(),
                new Flatten(), new Linear(4 * 3 * 3, 5, g));
    }

    private static List<Tensor> filters(Model m) { return m.parameters().stream().filter(p -> p.dim() == 4).toList(); }

    /** Three steps on one batch; returns the parameters' values. */
    private static List<double[]> train(Sequential m, Function<List<Tensor>, Optimizer> make) {
        Optimizer opt = make.apply(m.parameters());
        Generator g = new Generator(11);
        Tensor x = Tensor.randn(g, new int[]{4, 3, 6, 6}, DType.FLOAT32, dev.kiln.Device.CPU);
        Tensor y = Tensor.of(new long[]{0, 3, 1, 4}, 4);
        for (int step = 0; step < 3; step++) {
            opt.zeroGrad();
            new CrossEntropyLoss().forward(m.forward(x), y).backward();
            opt.step();
        }
        return m.parameters().stream().map(Tensor::toDoubleArray).toList();
    }

    @Test void filtersTrainChannelsLastAsContiguousOnes() {
        for (Function<List<Tensor>, Optimizer> make : List.<Function<List<Tensor>, Optimizer>>of(ps -> new Adam(ps, 1e-2), ps -> new SGD(ps, 0.1, 0.9, 0, false))) {
            Sequential cl = (Sequential) net().channelsLast(true);
            for (Tensor w : filters(cl)) assertTrue(w.prefersChannelsLast(), "filter " + java.util.Arrays.toString(w.shape()) + " channels-last");
            // the same activations' layout with the filters kept contiguous: the layout before filters followed
            Sequential contiguous = (Sequential) net().channelsLast(true);
            for (Tensor w : filters(contiguous)) w.setData(w.detach().contiguous().contiguousCopy());
            List<double[]> a = train(cl, make), b = train(contiguous, make);
            for (int i = 0; i < a.size(); i++) assertArrayEquals(b.get(i), a.get(i), 1e-6, "parameter " + i);
            for (Tensor w : filters(cl)) {
                assertTrue(w.prefersChannelsLast(), "the filter stays channels-last");
                assertTrue(w.grad().sameDenseLayout(w), "its gradient is laid out as it");
            }
        }
    }

    @Test void optimizerStateFollowsTheFilters() {
        Sequential m = (Sequential) net().channelsLast(true);
        Adam opt = new Adam(m.parameters(), 1e-2);
        train(m, ps -> opt);
        for (Tensor w : filters(m)) {
            for (Tensor s : opt.exportState(w).tensors().values()) assertTrue(s.sameDenseLayout(w), "Adam state laid out as its filter");
        }
        // re-laid after its state was made: the state follows at the next step, and training goes on
        m.channelsLast(false);
        for (Tensor w : filters(m)) assertTrue(w.isContiguous(), "contiguous again");
        train(m, ps -> opt);
        for (Tensor w : filters(m)) {
            for (Tensor s : opt.exportState(w).tensors().values()) assertTrue(s.isContiguous(), "state contiguous with its filter");
        }
    }

    @Test void stateDictsMovesAndCastsKeepValuesAndLayout() {
        Sequential plain = net(), cl = (Sequential) net().channelsLast(true);
        Map<String, Tensor> a = plain.stateDict(), b = cl.stateDict();
        for (String k : a.keySet()) assertArrayEquals(a.get(k).toDoubleArray(), b.get(k).toDoubleArray(), 0, k + ": values in logical order");
        Sequential loaded = (Sequential) net().channelsLast(true);
        for (Tensor w : filters(loaded)) w.setData(Tensor.zeros(w.shape(), w.dtype(), w.device()).toChannelsLast());
        loaded.loadStateDict(a);
        for (Tensor w : filters(loaded)) assertTrue(w.prefersChannelsLast(), "loading keeps the layout");
        Map<String, Tensor> c = loaded.stateDict();
        for (String k : a.keySet()) assertArrayEquals(a.get(k).toDoubleArray(), c.get(k).toDoubleArray(), 0, k + " after loading");
        cl.to(DType.FLOAT64);
        for (Tensor w : filters(cl)) assertTrue(w.prefersChannelsLast() && w.dtype() == DType.FLOAT64, "a cast keeps the layout");
    }

    @Test void gradientBuffersTakeTheFiltersLayout() {
        Tensor w = Tensor.zeros(new int[]{4, 3, 2, 2}, DType.FLOAT32, dev.kiln.Device.CPU).toChannelsLast().requiresGrad(true);
        assertTrue(w.prefersChannelsLast());
        Tensor contiguous = Tensor.zeros(w.shape(), DType.FLOAT32, dev.kiln.Device.CPU);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> w.setGradBuffer(contiguous));
        assertTrue(e.getMessage().contains("channels-last"), e.getMessage());
        Tensor buffer = Tensor.zeros(w.shape(), DType.FLOAT32, dev.kiln.Device.CPU).toChannelsLast();
        w.setGradBuffer(buffer);
        w.mul(Tensor.scalar(2, DType.FLOAT32, dev.kiln.Device.CPU)).sum().backward();
        assertTrue(w.grad() == buffer, "the gradient is the buffer");
        for (double v : buffer.toDoubleArray()) assertTrue(v == 2, "written into it");
        assertFalse(contiguous.sameDenseLayout(w));
    }
}
