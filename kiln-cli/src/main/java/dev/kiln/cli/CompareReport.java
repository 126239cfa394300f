package dev.kiln.cli;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.style.Styler;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code kiln bench --compare cpu,cuda}: the same training workloads timed on each device, as a table of throughput and
 * speed-up (printed, and as Markdown a user can paste) and a log-scale bar chart. A device that could not run is named
 * in the report with the reason, and its column is empty.
 */
final class CompareReport {
    private CompareReport() {}

    /** The workloads compared: the MLP, CNN, CIFAR CNN, small ResNet, character LSTM and GPT, fp32. */
    static final List<String> WORKLOADS = List.of("mlp_b128_fp32_train_samples_s", "cnn_b128_fp32_train_samples_s",
            "cifar_cnn_b128_fp32_train_samples_s", "resnet_small_b128_fp32_train_samples_s", "lstm_2L512_T128_b64_fp32_train_tok_s",
            "gpt_6L384_T256_b64_fp32_train_tok_s");

    /** A workload's short name: its key up to the batch size ("cnn", "gpt_6L384_T256"). */
    static String label(String workload) { return workload.substring(0, workload.indexOf("_b")); }

    /** The name {@code kiln bench}'s filter matches: the key without its unit ("cnn_b128_fp32", "gpt_..._fp32"). */
    static String benchName(String workload) { return workload.substring(0, workload.indexOf("_train")); }

    /** One device's run: its name in the report, a description of the hardware, its figures, or why it has none. */
    record Column(String device, String hardware, Map<String, Object> figures, String unavailable) {}

    static String markdown(List<Column> columns) {
        StringBuilder sb = new StringBuilder("# Kiln: CPU versus GPU\n\n");
        for (Column c : columns) {
            sb.append("- ").append(c.device()).append(": ").append(c.unavailable() == null ? c.hardware() : "not available (" + c.unavailable() + ")").append('\n');
        }
        sb.append("\nTraining throughput (samples/s, or tokens/s for the LSTM and GPT), fp32, the same workloads as `kiln bench`.\n\n| workload |");
        for (Column c : columns) sb.append(' ').append(c.device()).append(" |");
        if (columns.size() > 1) sb.append(" speed-up (").append(columns.getLast().device()).append(" / ").append(columns.getFirst().device()).append(") |");
        sb.append("\n|---|");
        sb.append("---|".repeat(columns.size() + (columns.size() > 1 ? 1 : 0))).append('\n');
        for (String w : WORKLOADS) {
            if (columns.stream().noneMatch(c -> c.figures().get(w) != null)) continue;
            sb.append("| ").append(benchName(w)).append(" |");
            for (Column c : columns) sb.append(' ').append(format(c.figures().get(w))).append(" |");
            if (columns.size() > 1) sb.append(' ').append(speedUp(columns.getFirst().figures().get(w), columns.getLast().figures().get(w))).append(" |");
            sb.append('\n');
        }
        return sb.toString();
    }

    private static String format(Object v) { return v instanceof Number n ? String.format(Locale.ROOT, "%,d", Math.round(n.doubleValue())) : "-"; }

    private static String speedUp(Object a, Object b) {
        return a instanceof Number x && b instanceof Number y && x.doubleValue() > 0 ? String.format(Locale.ROOT, "%.1fx", y.doubleValue() / x.doubleValue()) : "-";
    }

    /** The bar chart: one group per workload, one bar per device, log scale (the devices differ by orders of magnitude). */
    static void chart(Path png, List<Column> columns) throws IOException {
        System.setProperty("java.awt.headless", "true");
        CategoryChart chart = new CategoryChartBuilder().width(1000).height(520).title("Kiln training throughput: CPU versus GPU")
                .xAxisTitle("workload").yAxisTitle("samples/s (tokens/s for lstm, gpt)").build();
        chart.getStyler().setYAxisLogarithmic(true);
        chart.getStyler().setYAxisMin(1.0);   // bars grow from 1, not 0, on a log axis
        chart.getStyler().setLegendPosition(Styler.LegendPosition.InsideNW);
        List<String> names = new ArrayList<>();
        for (String w : WORKLOADS) if (columns.stream().anyMatch(c -> c.figures().get(w) != null)) names.add(label(w));
        for (Column c : columns) {
            if (c.unavailable() != null) continue;
            Map<String, Number> ys = new LinkedHashMap<>();
            for (String w : WORKLOADS) {
                if (names.contains(label(w))) ys.put(label(w), c.figures().get(w) instanceof Number n ? Math.max(1, n.doubleValue()) : 1);
            }
            chart.addSeries(c.device(), new ArrayList<>(ys.keySet()), new ArrayList<>(ys.values()));
        }
        BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    }
}
