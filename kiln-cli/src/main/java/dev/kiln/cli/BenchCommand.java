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

    @Option(names = "--channels-last", arity = "0..1", fallbackValue = "on", defaultValue = "auto", paramLabel = "auto|on|off",
            description = "the small image models channels-last, as kiln train --channels-last (auto, the default: on for CUDA)")
    String channelsLast;

    @Option(names = "--data-parallel", description = {"time torch_ddp.py's workloads (resnet18, resnet50, gpt) as one rank of a data-parallel job "
            + "(started by kiln launch or any launcher that sets RANK, WORLD_SIZE, ...): keys NAME_wN, whole-job samples/s;",
            "a job of one when no launcher set it"})
    boolean dataParallel;

    @Option(names = "--gpus", paramLabel = "N", description = "run --data-parallel on N GPUs of this host (one process each)")
    Integer gpus;

    @Option(names = "--compare", paramLabel = "DEVICES", description = {"the same training workloads on each of DEVICES (e.g. cpu,cuda): a table "
            + "of throughput and speed-up, and report.md and chart.png (log scale) in --report"})
    String compare;

    @Option(names = "--report", paramLabel = "DIR", defaultValue = "bench-report", description = "where --compare writes report.md and chart.png (default: ${DEFAULT-VALUE})")
    Path report;

    @Option(names = "--json-out", hidden = true, description = "rank 0 writes the JSON here (how --gpus gets it back from its ranks)")
    Path jsonOut;

    @Override public Integer call() throws Exception {
        var out = spec.commandLine().getOut();
        if (gpus != null) return launch(out);
        if (compare != null) return compare(out);
        var err = spec.commandLine().getErr();
        List<String> prefixes = only == null ? List.of() : Arrays.stream(only.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
        var job = Ranks.job();
        Device d = dataParallel ? Ranks.device(job) : Devices.parse(device);
        Map<String, Object> res;
        try (var group = dataParallel ? Ranks.group(job) : null) {
            Bench bench = new Bench(d, data, line -> {
                err.println("bench: " + line);
                err.flush();
            }).profileInto(profile).cudaGraphs(cudaGraphs).cudnnBenchmark(cudnnBenchmark).dataParallel(group)
                    .channelsLast(TrainCommand.onForCuda("--channels-last", channelsLast, d));
            res = bench.run(prefixes);
            bench.requireMatches(prefixes);
        }
        if (job.rank() != 0) return 0; // rank 0 speaks for the job
        String text;
        if (json || jsonOut != null) {
            StringBuilder sb = new StringBuilder("{");
            res.forEach((k, v) -> sb.append(sb.length() > 1 ? ",\n " : "\n ").append('"').append(k).append("\": ")
                    .append(v instanceof String s ? "\"" + s.replace("\"", "'") + "\"" : v));
            text = sb.append("\n}").toString();
        } else {
            StringBuilder sb = new StringBuilder();
            res.forEach((k, v) -> sb.append(String.format("%-44s %s%n", k, v)));
            text = sb.toString().stripTrailing();
        }
        if (jsonOut != null) java.nio.file.Files.writeString(jsonOut, text);
        else out.println(text);
        out.flush();
        return 0;
    }

    /** --compare: each device's run of the comparison's workloads (or --only's), then the report. */
    private int compare(java.io.PrintWriter out) throws Exception {
        var err = spec.commandLine().getErr();
        // Bench matches a sequence model by its name without the unit ("gpt_..._fp32"), an image model by its key
        List<String> prefixes = only == null ? CompareReport.WORKLOADS.stream().map(CompareReport::benchName).toList()
                : Arrays.stream(only.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
        List<CompareReport.Column> columns = new java.util.ArrayList<>();
        for (String name : compare.split(",")) {
            name = name.trim();
            Device d;
            try {
                d = Devices.parse(name);
            } catch (IllegalArgumentException e) {
                columns.add(new CompareReport.Column(name, "", Map.of(), e.getMessage()));
                continue;
            }
            String hw = d.isCuda() ? dev.kiln.cuda.Cuda.device(d).name() : Devices.describeCpu();
            Bench bench = new Bench(d, data, line -> {
                err.println("bench " + d + ": " + line);
                err.flush();
            }).cudnnBenchmark(cudnnBenchmark).channelsLast(TrainCommand.onForCuda("--channels-last", channelsLast, d));
            Map<String, Object> res = bench.run(prefixes);
            String error = null;
            try {
                if (only != null) bench.requireMatches(prefixes);
            } catch (IllegalArgumentException e) { // this device runs none of them: its column says so
                error = e.getMessage();
            }
            columns.add(new CompareReport.Column(d.toString(), hw, res, error));
        }
        String md = CompareReport.markdown(columns);
        java.nio.file.Files.createDirectories(report);
        java.nio.file.Files.writeString(report.resolve("report.md"), md);
        boolean charted = true;
        try {
            CompareReport.chart(report.resolve("chart.png"), columns);
        } catch (Exception | Error e) { // a headless machine without fonts: the table stands alone
            charted = false;
            java.nio.file.Files.deleteIfExists(report.resolve("chart.png"));
            err.println("kiln bench: no chart written (" + e.getMessage() + ")");
        }
        out.print(md);
        out.println("\nkiln bench: wrote " + report.resolve("report.md") + (charted ? " and " + report.resolve("chart.png") : ""));
        out.flush();
        return 0;
    }

    /** --gpus N: the same bench as N data-parallel ranks; prints rank 0's result itself (the ranks' lines come prefixed). */
    private int launch(java.io.PrintWriter out) throws Exception {
        if (gpus < 1) throw new picocli.CommandLine.ParameterException(spec.commandLine(), "--gpus must be >= 1, got " + gpus);
        Path result = java.nio.file.Files.createTempFile("kiln-bench", ".txt");
        try {
            List<String> args = new java.util.ArrayList<>(spec.commandLine().getParseResult().originalArgs());
            args = new java.util.ArrayList<>(Ranks.withoutOption(args, "--json-out"));
            if (!dataParallel) args.add("--data-parallel");
            args.add("--json-out");
            args.add(result.toString());
            var err = spec.commandLine().getErr();
            int code = Ranks.launch(gpus, "bench", args, err);
            if (code == 0) out.println(java.nio.file.Files.readString(result));
            out.flush();
            return code;
        } finally {
            java.nio.file.Files.deleteIfExists(result);
        }
    }
}
