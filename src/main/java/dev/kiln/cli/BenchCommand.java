package dev.kiln.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

import java.util.concurrent.Callable;

/** The benchmark workloads of bench/WORKLOADS.md; not part of this build yet, and it says so. */
@Command(name = "bench", mixinStandardHelpOptions = true, description = "Runs the benchmark workloads (not in this build yet).")
final class BenchCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Override public Integer call() {
        spec.commandLine().getErr().println("kiln bench: the benchmark workloads are not in this build yet; "
                + "'kiln train --json' reports training throughput meanwhile");
        spec.commandLine().getErr().flush();
        return 1;
    }
}
