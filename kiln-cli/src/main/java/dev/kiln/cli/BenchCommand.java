package dev.kiln.cli;

import dev.kiln.Device;
import dev.kiln.bench.Bench;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/** The benchmark workloads of bench/WORKLOADS.md, with the keys shared/bench/torch_ref.py prints. */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Times the benchmark workloads (GEMM, convolution, MLP/CNN training steps, Fashion-MNIST) and prints them.")
final class BenchCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--device", defaultValue = "auto", description = "cpu, cuda, cuda:N or auto (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--only", description = "comma-separated workload name prefixes (default: all)")
    String only;

    @Option(names = "--data", description = "Fashion-MNIST folder for the fmnist workloads (default: ${DEFAULT-VALUE})",
            defaultValue = "/usr/share/datasets/fashion-mnist")
    Path data;

    @Option(names = "--json", description = "print one JSON object (the format compare.py reads)")
    boolean json;

    @Option(names = "--profile", description = "folder: profile 5 extra steps of each training workload into KEY.txt and KEY.json (Chrome trace)")
    Path profile;

    @Option(names = "--cuda-graphs", description = "also time each training workload with its step captured as a CUDA graph and replayed (KEY_graphed_train_samples_s)")
    boolean cudaGraphs;

    @Option(names = "--cudnn-benchmark", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "let cuDNN time its algorithms once per convolution shape and keep the fastest (default: ${DEFAULT-VALUE})")
    boolean cudnnBenchmark;

    @Override public Integer call() throws Exception {
        Device d = Devices.parse(device);
        var err = spec.commandLine().getErr();
        List<String> prefixes = only == null ? List.of() : Arrays.stream(only.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
        Map<String, Object> res = new Bench(d, data, line -> {
            err.println("bench: " + line);
            err.flush();
        }).profileInto(profile).cudaGraphs(cudaGraphs).cudnnBenchmark(cudnnBenchmark).run(prefixes);
        var out = spec.commandLine().getOut();
        if (json) {
            StringBuilder sb = new StringBuilder("{");
            res.forEach((k, v) -> sb.append(sb.length() > 1 ? ",\n " : "\n ").append('"').append(k).append("\": ")
                    .append(v instanceof String s ? "\"" + s.replace("\"", "'") + "\"" : v));
            out.println(sb.append("\n}"));
        } else {
            res.forEach((k, v) -> out.printf("%-44s %s%n", k, v));
        }
        out.flush();
        return 0;
    }
}
