package dev.kiln.models;

import dev.kiln.DType;
import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.F;
import dev.kiln.nn.RnnOutput;
import dev.kiln.nn.RnnState;
import dev.kiln.optim.Adam;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** CharLSTM: the PyTorch reference's names and parameter count, shapes, generation one token at a time, and learning. */
class CharLSTMTest {
    @Test void namesAndCountAreThePyTorchReferences() {
        CharLSTM m = new CharLSTM(new Generator(0));
        assertEquals(List.of("emb.weight", "lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0", "lstm.weight_ih_l1",
                "lstm.weight_hh_l1", "lstm.bias_ih_l1", "lstm.bias_hh_l1", "head.weight", "head.bias"), List.copyOf(m.stateDict().keySet()));
        // embedding 65·128, LSTM(128, 512, 2) 3,416,064, head 512·65 + 65
        assertEquals(65 * 128 + 3_416_064 + 512 * 65 + 65, m.parameterCount());
        assertEquals(3_457_729, m.parameterCount());
    }

    /** Feeding the tokens one at a time, each call continuing from the last one's state, gives the full forward's logits. */
    @Test void generatingOneTokenAtATimeMatchesTheWholeSequence() {
        CharLSTM m = new CharLSTM(11, 6, 9, 2, new Generator(1));
        Tensor ids = Tensor.of(new long[]{1, 4, 0, 10, 3, 3, 7, 2, 9, 5}, 2, 5);
        Tensor whole = m.forward(ids);
        assertArrayEquals(new int[]{2, 5, 11}, whole.shape());
        RnnState state = null;
        for (int t = 0; t < 5; t++) {
            RnnOutput step = m.forward(ids.narrow(1, t, 1), state);
            assertArrayEquals(new int[]{2, 1, 11}, step.output().shape());
            assertArrayEquals(whole.narrow(1, t, 1).toFloatArray(), step.output().toFloatArray(), 1e-5f, "step " + t);
            state = step.state();
        }
        assertArrayEquals(new int[]{2, 2, 9}, state.c().shape());
    }

    /**
     * The repeating sequence 0 1 0 2 0 3: after a 0 the next token depends on the one before the 0, so a model of the
     * current token alone cannot go below (3/6)·ln 3 ≈ 0.55 per token; the LSTM must remember, and does.
     */
    @Test void learnsASequenceThatNeedsMemory() {
        int[] period = {0, 1, 0, 2, 0, 3};
        int b = 6, t = 24;
        long[] in = new long[b * t], out = new long[b * t];
        for (int s = 0; s < b; s++) {
            for (int i = 0; i < t; i++) {
                in[s * t + i] = period[(s + i) % 6];
                out[s * t + i] = period[(s + i + 1) % 6];
            }
        }
        Tensor ids = Tensor.of(in, b, t), target = Tensor.of(out, b * t);
        CharLSTM m = new CharLSTM(4, 8, 24, 1, new Generator(2));
        Adam opt = new Adam(m.parameters(), 0.02);
        double first = 0, last = 0;
        for (int step = 0; step < 150; step++) {
            m.zeroGrad();
            Tensor loss = F.crossEntropy(m.forward(ids).reshape(b * t, 4), target);
            loss.backward();
            opt.step();
            if (step == 0) first = loss.item();
            last = loss.item();
        }
        assertTrue(first > 1.0, "starts near ln 4: " + first);
        assertTrue(last < 0.1, "a memoryless model stays above 0.55; the LSTM reached " + last);
        assertEquals(DType.FLOAT32, m.forward(ids).dtype());
    }
}
