package dev.kiln.models;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.Embedding;
import dev.kiln.nn.LSTM;
import dev.kiln.nn.Linear;
import dev.kiln.nn.Model;
import dev.kiln.nn.RnnOutput;
import dev.kiln.nn.RnnState;

/**
 * A character-level language model: an embedding V→E, a batch-first LSTM of L layers (E→H) and a linear head H→V,
 * with the fields, and so the state-dict names ({@code emb.weight}, {@code lstm.weight_ih_l0}, ..., {@code head.bias}),
 * of this PyTorch reference, so a state dict it saved loads as it is:
 * <pre>
 * class CharLSTM(nn.Module):
 *     def __init__(s, V=65, E=128, H=512, L=2):
 *         super().__init__(); s.emb = nn.Embedding(V, E); s.lstm = nn.LSTM(E, H, L, batch_first=True); s.head = nn.Linear(H, V)
 *     def forward(s, idx): return s.head(s.lstm(s.emb(idx))[0])
 * </pre>
 * {@link #forward(Tensor, RnnState)} carries the LSTM's state from call to call, for generating one token at a time.
 */
public final class CharLSTM extends Model {
    private final Embedding emb;
    private final LSTM lstm;
    private final Linear head;

    /** The reference's defaults: V = 65 (tiny Shakespeare's characters), E = 128, H = 512, L = 2. */
    public CharLSTM(Generator g) { this(65, 128, 512, 2, g); }

    public CharLSTM(int vocab, int embed, int hidden, int layers, Generator g) {
        emb = registerLayer("emb", new Embedding(vocab, embed, g));
        lstm = registerLayer("lstm", new LSTM(embed, hidden, layers, true, true, 0, g));
        head = registerLayer("head", new Linear(hidden, vocab, g));
    }

    /** ids (B, T) int64 to logits (B, T, V), from a zero state. */
    @Override public Tensor forward(Tensor ids) { return forward(ids, null).output(); }

    /**
     * ids (B, T) int64 to logits (B, T, V) from the given state (null: zeros), and the state after the last step: feed
     * it back with the next ids (B, 1) to generate.
     */
    public RnnOutput forward(Tensor ids, RnnState state) {
        RnnOutput r = lstm.forward(emb.forward(ids), state);
        return new RnnOutput(head.forward(r.output()), r.state());
    }
}
