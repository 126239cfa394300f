package dev.kiln.cuda;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.ToDoubleFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** The per-problem timed choice between two ways, with a scripted clock: the faster kept, refusals, the file on disk. */
class TimedPickTest {
    /** A clock that runs each way once and answers the next scripted time. */
    private static ToDoubleFunction<Runnable> script(double... millis) {
        Deque<Double> q = new ArrayDeque<>();
        for (double m : millis) q.add(m);
        return r -> {
            r.run();
            return q.remove();
        };
    }

    @Test void keepsTheFasterByEachSidesBestTimingAndRemembersItOnDisk(@TempDir Path dir) {
        Path file = TimedChoicesFile.fileFor(dir, "pick-mine-theirs", "abc-130100", "GPU");
        AtomicInteger mine = new AtomicInteger(), theirs = new AtomicInteger();
        // timed alternately: mine 0.30, theirs 0.20, mine 0.10 (a slow first timing), theirs 0.25 -> mine 0.10 wins
        TimedPick<List<Integer>> pick = new TimedPick<>("mine", "theirs", script(0.30, 0.20, 0.10, 0.25), () -> new TimedChoicesFile(file));
        List<Integer> key = List.of(64, 3, 3);
        assertNull(pick.kept(key));
        assertEquals(Boolean.TRUE, pick.choose(key, () -> mine.incrementAndGet() > 0, () -> theirs.incrementAndGet() > 0));
        assertEquals(Boolean.TRUE, pick.kept(key));
        assertEquals(3, mine.get(), "a warm-up and two timed runs");
        assertEquals(3, theirs.get());
        // a new process finds the choice without timing (a clock with nothing scripted would throw)
        TimedPick<List<Integer>> again = new TimedPick<>("mine", "theirs", script(), () -> new TimedChoicesFile(file));
        assertNull(again.kept(key));
        assertEquals(Boolean.TRUE, again.choose(key, () -> { throw new AssertionError("ran"); }, () -> { throw new AssertionError("ran"); }));
        assertEquals(Boolean.TRUE, again.kept(key));
    }

    @Test void keepsTheSecondWhenItIsFaster() {
        TimedPick<String> pick = new TimedPick<>("mine", "theirs", script(0.5, 0.1, 0.4, 0.2), null);
        assertEquals(Boolean.FALSE, pick.choose("k", () -> true, () -> true));
        assertEquals(Boolean.FALSE, pick.kept("k"));
    }

    @Test void aRefusingWayLoses() {
        TimedPick<String> pick = new TimedPick<>("mine", "theirs", script(), null);
        assertNull(pick.choose("k", () -> false, () -> true), "the first refused: nothing kept");
        assertNull(pick.kept("k"));
        assertEquals(Boolean.TRUE, pick.choose("k", () -> true, () -> false), "the second refused: the first kept untimed");
        assertEquals(Boolean.TRUE, pick.kept("k"));
    }
}
