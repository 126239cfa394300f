package dev.kiln;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;

import static org.junit.jupiter.api.Assertions.*;

class LoggingTest {
    @AfterEach void restore() { Logging.toConsole(System.Logger.Level.INFO, new PrintWriter(System.err, true)); }

    @Test void oneLinePerMessageAtTheLevelAndAbove() {
        StringWriter w = new StringWriter();
        Logging.toConsole(System.Logger.Level.WARNING, new PrintWriter(w));
        System.Logger log = Logging.logger(LoggingTest.class);
        log.log(System.Logger.Level.INFO, "not shown");
        log.log(System.Logger.Level.WARNING, "rank 1 is slow");
        log.log(System.Logger.Level.ERROR, "rank {0} failed", 2);
        assertEquals("kiln: rank 1 is slow\nkiln: rank 2 failed\n", w.toString().replace(System.lineSeparator(), "\n"));
        assertFalse(log.isLoggable(System.Logger.Level.DEBUG));
        Logging.toConsole(System.Logger.Level.DEBUG, new PrintWriter(w));
        assertTrue(log.isLoggable(System.Logger.Level.DEBUG), "debug is on at debug level (the cuDNN choices)");
        System.getLogger("elsewhere").log(System.Logger.Level.WARNING, "another library's message");
        assertFalse(w.toString().contains("another library"), "only Kiln's loggers are redirected");
    }

    @Test void levelsByName() {
        assertEquals(System.Logger.Level.DEBUG, Logging.parseLevel(" Debug "));
        assertEquals(System.Logger.Level.WARNING, Logging.parseLevel("warn"));
        assertEquals(System.Logger.Level.OFF, Logging.parseLevel("off"));
        var e = assertThrows(IllegalArgumentException.class, () -> Logging.parseLevel("loud"));
        assertTrue(e.getMessage().contains("'loud'") && e.getMessage().contains("debug"), e.getMessage());
    }
}
