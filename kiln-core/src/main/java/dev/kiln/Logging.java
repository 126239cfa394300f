package dev.kiln;

import java.io.PrintWriter;
import java.util.Locale;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * Kiln's messages go through the JDK's {@link System.Logger}, one logger per class under {@code dev.kiln}, so an
 * application routes them where its own logs go (a java.util.logging configuration, or an SLF4J bridge installed as the
 * {@code System.LoggerFinder}). Left unconfigured, Kiln prints one line per message to stderr, {@code kiln: message},
 * at {@code kiln.log.level} and above, instead of java.util.logging's two-line default; the command line's
 * {@code --log-level} sets the level for its run.
 */
public final class Logging {
    /** Held: java.util.logging keeps loggers only weakly, and a collected one would forget its handler and level. */
    private static final Logger ROOT = Logger.getLogger("dev.kiln");
    private static volatile boolean configured;

    private Logging() {}

    /** The logger for a Kiln class; the first call installs the default console output unless logging was configured. */
    public static System.Logger logger(Class<?> owner) {
        if (!configured) defaults();
        return System.getLogger(owner.getName());
    }

    /** Kiln's messages at {@code level} and above, one line each ({@code kiln: message}), to {@code err}. */
    public static synchronized void toConsole(System.Logger.Level level, PrintWriter err) {
        configured = true;
        for (Handler h : ROOT.getHandlers()) ROOT.removeHandler(h);
        Level l = julLevel(level);
        ROOT.setUseParentHandlers(false);
        ROOT.setLevel(l);
        Handler h = new Handler() {
            @Override public void publish(LogRecord r) {
                if (!isLoggable(r)) return;
                String m = r.getMessage() == null ? "" : r.getParameters() == null ? r.getMessage() : java.text.MessageFormat.format(r.getMessage(), r.getParameters());
                err.println("kiln: " + m + (r.getThrown() == null ? "" : " (" + r.getThrown() + ")"));
                err.flush();
            }

            @Override public void flush() { err.flush(); }

            @Override public void close() {}
        };
        h.setLevel(l);
        ROOT.addHandler(h);
    }

    /** {@code error}, {@code warning}, {@code info}, {@code debug}, {@code trace}, {@code all} or {@code off}. */
    public static System.Logger.Level parseLevel(String name) {
        return switch (name.trim().toLowerCase(Locale.ROOT)) {
            case "error" -> System.Logger.Level.ERROR;
            case "warning", "warn" -> System.Logger.Level.WARNING;
            case "info" -> System.Logger.Level.INFO;
            case "debug" -> System.Logger.Level.DEBUG;
            case "trace" -> System.Logger.Level.TRACE;
            case "all" -> System.Logger.Level.ALL;
            case "off" -> System.Logger.Level.OFF;
            default -> throw new IllegalArgumentException("unknown log level '" + name + "': expected error, warning, info, debug, trace, all or off");
        };
    }

    private static synchronized void defaults() {
        if (configured) return;
        configured = true;
        boolean userConfigured = System.getProperty("java.util.logging.config.file") != null
                || System.getProperty("java.util.logging.config.class") != null || ROOT.getHandlers().length > 0 || ROOT.getLevel() != null;
        if (!userConfigured) toConsole(Settings.get().logLevel(), new PrintWriter(System.err, true));
    }

    /** System.Logger's levels as java.util.logging's (the JDK's own mapping). */
    private static Level julLevel(System.Logger.Level level) {
        return switch (level) {
            case ALL -> Level.ALL;
            case TRACE -> Level.FINER;
            case DEBUG -> Level.FINE;
            case INFO -> Level.INFO;
            case WARNING -> Level.WARNING;
            case ERROR -> Level.SEVERE;
            case OFF -> Level.OFF;
        };
    }
}
