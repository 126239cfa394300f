package dev.kiln.cli;

import dev.kiln.JvmRequirements;
import dev.kiln.Logging;
import dev.kiln.Settings;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.NoSuchFileException;

/** Entry point of the {@code kiln} command: picocli subcommands, one-line errors, exit codes 0 / 1 (failed) / 2 (usage). */
@Command(name = "kiln", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Deep learning for Java: train and evaluate models, classify images, serve them over HTTP and generate text, on the CPU or an NVIDIA GPU.",
        subcommands = {TrainCommand.class, EvalCommand.class, PredictCommand.class, ServeCommand.class, ExportCommand.class, PruneCommand.class,
                QuantizeCommand.class, GenerateCommand.class, DevicesCommand.class, BenchCommand.class, LaunchCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @Spec CommandSpec spec;
    private PrintWriter err;

    @CommandLine.Option(names = "--log-level", paramLabel = "LEVEL", scope = CommandLine.ScopeType.INHERIT, converter = LevelConverter.class,
            description = "the least severe of Kiln's messages to print: error, warning, info (default, or KILN_LOG_LEVEL), debug, trace, off")
    void logLevel(System.Logger.Level level) {
        Logging.toConsole(level, err);
    }

    static final class LevelConverter implements CommandLine.ITypeConverter<System.Logger.Level> {
        @Override public System.Logger.Level convert(String value) { return Logging.parseLevel(value); }
    }

    @Override public void run() {
        throw new ParameterException(spec.commandLine(), "missing command: choose train, eval, predict, serve, export, prune, quantize, generate, devices, bench or launch");
    }

    public static void main(String[] args) {
        System.exit(execute(args, new PrintWriter(System.out, true), new PrintWriter(System.err, true)));
    }

    /** Runs the command line in-process (tests use this) and returns the exit code. */
    public static int execute(String[] args, PrintWriter out, PrintWriter err) {
        try {
            JvmRequirements.check();
        } catch (IllegalStateException e) {
            err.println("kiln: " + e.getMessage());
            err.flush();
            return 2;
        }
        Main main = new Main();
        main.err = err;
        System.Logger.Level level = System.Logger.Level.INFO;
        try {
            level = Settings.get().logLevel();
        } catch (IllegalArgumentException e) {
            // a malformed setting is reported where it is read, as the command's error
        }
        Logging.toConsole(level, err);
        CommandLine cl = new CommandLine(main);
        cl.setOut(out);
        cl.setErr(err);
        cl.setParameterExceptionHandler((ex, a) -> {
            CommandLine c = ex.getCommandLine();
            c.getErr().println(prefix(c) + ex.getMessage() + " (see '" + c.getCommandSpec().qualifiedName() + " --help')");
            c.getErr().flush();
            return 2;
        });
        cl.setExecutionExceptionHandler((ex, c, parseResult) -> {
            c.getErr().println(prefix(c) + message(ex));
            if (debug()) ex.printStackTrace(c.getErr());
            c.getErr().flush();
            return 1;
        });
        return executeReportingMemory(cl, args, err);
    }

    /** cl.execute(args), an OutOfMemoryError reported as one line (picocli hands Errors back, not to its handler). */
    static int executeReportingMemory(CommandLine cl, String[] args, PrintWriter err) {
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            err.println("kiln: " + message(e));
            if (debug()) e.printStackTrace(err);
            err.flush();
            return 1;
        }
    }

    /** KILN_DEBUG=1: stack traces with errors (a malformed value is itself reported, not a reason to crash). */
    private static boolean debug() {
        try {
            return Settings.get().debug();
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    private static String prefix(CommandLine c) { return c.getCommandSpec().qualifiedName() + ": "; }

    /** One line saying what went wrong, without a stack trace. */
    static String message(Throwable ex) {
        if (ex instanceof UncheckedIOException u) ex = u.getCause();
        return switch (ex) {
            case NoSuchFileException e -> e.getFile() + ": " + (e.getReason() == null ? "no such file" : e.getReason());
            case AccessDeniedException e -> "permission denied: " + e.getFile();
            case IOException e -> e.getMessage();
            case IllegalArgumentException e -> e.getMessage();
            case IllegalStateException e -> e.getMessage();
            case UnsupportedOperationException e -> e.getMessage();
            case dev.kiln.cuda.CudaException.OutOfMemory e -> e.getMessage(); // names the size, the device's memory and what to try
            case OutOfMemoryError e -> "out of memory (" + e.getMessage() + "); try a smaller --batch-size or a larger -Xmx in KILN_JAVA_OPTS";
            default -> "internal error: " + ex + " (set KILN_DEBUG=1 for the stack trace)";
        };
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[]{"kiln " + (v == null ? "0.1.0-SNAPSHOT" : v) + ", Java " + Runtime.version()};
        }
    }
}
