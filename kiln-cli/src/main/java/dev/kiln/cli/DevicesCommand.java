package dev.kiln.cli;

import jdk.incubator.vector.FloatVector;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.util.concurrent.Callable;

@Command(name = "devices", mixinStandardHelpOptions = true, description = "Lists the devices Kiln can use here.")
final class DevicesCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Override public Integer call() {
        var out = spec.commandLine().getOut();
        out.printf("cpu      %d cores, Vector API %d-bit float vectors%n", Runtime.getRuntime().availableProcessors(),
                FloatVector.SPECIES_PREFERRED.vectorBitSize());
        out.println(dev.kiln.cuda.DeviceReport.describe());
        out.flush();
        return 0;
    }
}
