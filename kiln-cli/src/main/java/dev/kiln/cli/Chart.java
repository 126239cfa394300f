package dev.kiln.cli;

import dev.kiln.train.EpochStats;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/** A PNG of loss (left axis) and test (or validation) accuracy (right axis) per epoch. */
final class Chart {
    private Chart() {}

    /** {@code split} names what the model was evaluated on: "test", or "validation" for a language model's held-out text. */
    static void write(Path png, String title, List<EpochStats> epochs, String split) throws IOException {
        System.setProperty("java.awt.headless", "true"); // drawn off-screen; no display needed
        double[] x = epochs.stream().mapToDouble(EpochStats::epoch).toArray();
        XYChart c = new XYChartBuilder().width(800).height(500).title(title).xAxisTitle("epoch").yAxisTitle("loss").build();
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        c.getStyler().setLegendLayout(Styler.LegendLayout.Horizontal);
        c.getStyler().setYAxisGroupPosition(1, Styler.YAxisPosition.Right);
        c.getStyler().setXAxisDecimalPattern("0");
        c.addSeries("train loss", x, epochs.stream().mapToDouble(EpochStats::trainLoss).toArray());
        c.addSeries(split + " loss", x, epochs.stream().mapToDouble(EpochStats::testLoss).toArray());
        XYSeries acc = c.addSeries(split + " accuracy", x, epochs.stream().mapToDouble(EpochStats::testAccuracy).toArray());
        acc.setYAxisGroup(1);
        c.setYAxisGroupTitle(1, "accuracy");
        // render beside the target, then rename, so a reader never sees half a PNG
        Path tmp = png.resolveSibling("." + png.getFileName() + ".tmp.png");
        BitmapEncoder.saveBitmap(c, tmp.toString(), BitmapEncoder.BitmapFormat.PNG);
        Files.move(tmp, png, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }
}
