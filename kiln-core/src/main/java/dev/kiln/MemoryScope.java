package dev.kiln;

import java.util.ArrayDeque;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Set;

/**
 * Frees the memory of every tensor made inside it when it closes, except tensors marked with {@link Tensor#keep()}.
 * A training step runs in one ({@code Trainer} and {@code kiln bench} open it for you), so its intermediates go back
 * to the device's pool as soon as the step ends, without the user closing anything and without waiting for the
 * garbage collector, which cannot see GPU memory. Scopes nest and belong to the thread that opened them.
 * <pre>{@code
 * try (var step = MemoryScope.open()) {
 *     Tensor loss = F.crossEntropy(model.forward(x), y);
 *     loss.backward();
 *     optimizer.step();
 *     lossSum += loss.item();
 * } // activations, gradients of intermediates, temporaries: released here
 * }</pre>
 * Leaf gradients, optimizer state and parameters are kept automatically.
 */
public final class MemoryScope implements AutoCloseable {
    private static final ThreadLocal<ArrayDeque<MemoryScope>> OPEN = ThreadLocal.withInitial(ArrayDeque::new);

    private final Set<Storage> owned = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Thread owner = Thread.currentThread();
    private boolean closed;

    private MemoryScope() {}

    public static MemoryScope open() {
        MemoryScope s = new MemoryScope();
        OPEN.get().push(s);
        return s;
    }

    /** Backends call this for every storage they create: the innermost open scope of this thread takes it. */
    public static void track(Storage storage) {
        ArrayDeque<MemoryScope> open = OPEN.get();
        if (!open.isEmpty()) open.peek().owned.add(storage);
    }

    /** Whether this thread has a scope open. */
    public static boolean isOpen() { return !OPEN.get().isEmpty(); }

    /**
     * Moves t's memory from this thread's innermost scope to the scope around it (out of every scope when there is
     * none): for what a nested computation hands back to its caller. Autograd runs each op's backward in a scope of
     * its own and promotes the gradients it returns, so its temporaries go back to the pool when it returns; a
     * backward that keeps a tensor for a later op's backward promotes it too. A no-op for memory the innermost scope
     * does not hold.
     */
    public static void promote(Tensor t) {
        ArrayDeque<MemoryScope> open = OPEN.get();
        if (open.isEmpty() || !open.peek().owned.remove(t.storage())) return;
        var outer = open.iterator();
        outer.next();
        if (outer.hasNext()) outer.next().owned.add(t.storage());
    }

    /** Takes a storage out of every open scope of this thread: it lives on until closed or unreachable. */
    static void escape(Storage storage) {
        for (MemoryScope s : OPEN.get()) s.owned.remove(storage);
    }

    /** How many storages this scope will release (for tests). */
    public int size() { return owned.size(); }

    @Override public void close() {
        if (closed) return;
        if (Thread.currentThread() != owner) throw new IllegalStateException("a MemoryScope must be closed by the thread that opened it");
        ArrayDeque<MemoryScope> open = OPEN.get();
        if (open.peek() != this) throw new IllegalStateException("MemoryScopes must close in reverse order of opening");
        open.pop();
        closed = true;
        for (Storage s : owned) s.release();
        owned.clear();
    }
}
