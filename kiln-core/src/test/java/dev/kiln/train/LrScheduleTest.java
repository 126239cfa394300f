package dev.kiln.train;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class LrScheduleTest {
    @Test void cosineStartsAtTheRateAndAnnealsTowardsZero() {
        assertEquals(1e-3, LrSchedule.COSINE.lr(1e-3, 1, 10), 1e-15);
        assertEquals(0.5e-3, LrSchedule.COSINE.lr(1e-3, 6, 10), 1e-15);
        assertEquals(1e-3 * 0.5 * (1 + Math.cos(Math.PI * 0.9)), LrSchedule.COSINE.lr(1e-3, 10, 10), 1e-15);
        assertEquals(2e-3, LrSchedule.CONSTANT.lr(2e-3, 7, 10));
    }

    @Test void parsesTheCommandLineNames() {
        assertEquals(LrSchedule.COSINE, LrSchedule.parse("Cosine"));
        assertEquals("unknown learning-rate schedule 'step' (choose constant or cosine)",
                assertThrows(IllegalArgumentException.class, () -> LrSchedule.parse("step")).getMessage());
    }
}
