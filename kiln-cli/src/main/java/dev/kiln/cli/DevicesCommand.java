package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.time.Duration;
import java.util.concurrent.Callable;

@Command(name = "devices", mixinStandardHelpOptions = true, description = "Lists the devices Kiln can use here.")
final class DevicesCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--watch", arity = "0..1", paramLabel = "SECONDS", fallbackValue = "2",
            description = "refresh like nvidia-smi every SECONDS (default 2): each GPU's utilisation, memory, power, temperature, clock and processes; Ctrl-C ends it")
    Double watch;

    @Option(names = "--count", paramLabel = "N", description = "with --watch: stop after N refreshes (default: until Ctrl-C)")
    Integer count;

    /** Clears the screen and puts the cursor top left (ANSI), so each refresh replaces the last. */
    static final String CLEAR = "\033[H\033[2J";

    @Override public Integer call() throws InterruptedException {
        var out = spec.commandLine().getOut();
        if (count != null && watch == null) throw new ParameterException(spec.commandLine(), "--count goes with --watch");
        if (watch != null) {
            if (!(watch > 0)) throw new ParameterException(spec.commandLine(), "--watch takes a positive number of seconds, got " + watch);
            if (count != null && count < 1) throw new ParameterException(spec.commandLine(), "--count must be >= 1, got " + count);
            for (int i = 0; count == null || i < count; i++) {
                if (i > 0) Thread.sleep(Duration.ofMillis(Math.round(watch * 1000)));
                String report = dev.kiln.cuda.DeviceReport.live();
                if (report.startsWith("no NVIDIA GPU")) { // nothing to watch: say so once
                    out.print(report);
                    out.flush();
                    return 1;
                }
                out.print(CLEAR + java.time.LocalTime.now().withNano(0) + "  " + report);
                out.flush();
            }
            return 0;
        }
        out.println("cpu      " + Devices.describeCpu());
        out.println(dev.kiln.cuda.DeviceReport.describe());
        out.flush();
        return 0;
    }
}
