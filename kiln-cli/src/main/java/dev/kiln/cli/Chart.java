package dev.kiln.cli;

import dev.kiln.train.EpochStats;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;

import javax.imageio.ImageIO;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * A PNG of loss (left axis) and test (or validation) accuracy (right axis) per epoch, and above it, once a run has
 * two points of it, the within-epoch curve: the smoothed step loss and the throughput.
 */
final class Chart {
    private Chart() {}

    /** {@code split} names what the model was evaluated on: "test", or "validation" for a language model's held-out text. */
    static void write(Path png, String title, List<EpochStats> epochs, String split) throws IOException {
        write(png, title, epochs, split, List.of(), "samples/s");
    }

    /** With the step curve on top ({@code rate} names its throughput: "samples/s" or "tokens/s"). */
    static void write(Path png, String title, List<EpochStats> epochs, String split, List<StepCurve.Point> steps, String rate) throws IOException {
        System.setProperty("java.awt.headless", "true"); // drawn off-screen; no display needed
        XYChart perEpoch = perEpoch(title, epochs, split);
        BufferedImage image = BitmapEncoder.getBufferedImage(perEpoch);
        if (steps.size() >= 2) {
            BufferedImage top = BitmapEncoder.getBufferedImage(perStep(title, steps, rate));
            BufferedImage both = new BufferedImage(image.getWidth(), top.getHeight() + image.getHeight(), BufferedImage.TYPE_INT_RGB);
            Graphics2D g = both.createGraphics();
            g.drawImage(top, 0, 0, null);
            g.drawImage(image, 0, top.getHeight(), null);
            g.dispose();
            image = both;
        }
        // render beside the target, then rename, so a reader never sees half a PNG
        Path tmp = png.resolveSibling("." + png.getFileName() + ".tmp.png");
        if (!ImageIO.write(image, "png", tmp.toFile())) throw new IOException("no PNG writer in this JDK");
        Files.move(tmp, png, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    private static XYChart perStep(String title, List<StepCurve.Point> steps, String rate) {
        double[] x = steps.stream().mapToDouble(StepCurve.Point::epochs).toArray();
        XYChart c = new XYChartBuilder().width(800).height(400).title(title + ", within epochs").xAxisTitle("epoch").yAxisTitle("loss").build();
        c.getStyler().setLegendPosition(Styler.LegendPosition.OutsideS);
        c.getStyler().setLegendLayout(Styler.LegendLayout.Horizontal);
        c.getStyler().setYAxisGroupPosition(1, Styler.YAxisPosition.Right);
        c.getStyler().setMarkerSize(0);
        XYSeries raw = c.addSeries("step loss", x, steps.stream().mapToDouble(StepCurve.Point::loss).toArray());
        raw.setLineColor(new Color(160, 190, 230));
        c.addSeries("step loss (EMA " + StepCurve.SMOOTHING + ")", x, steps.stream().mapToDouble(StepCurve.Point::smoothedLoss).toArray())
                .setLineColor(new Color(30, 90, 180));
        double[] r = steps.stream().mapToDouble(StepCurve.Point::perSecond).map(v -> Double.isFinite(v) ? v : 0).toArray();
        XYSeries thr = c.addSeries(rate, x, r);
        thr.setYAxisGroup(1);
        thr.setLineColor(new Color(220, 120, 30));
        c.setYAxisGroupTitle(1, rate);
        return c;
    }

    private static XYChart perEpoch(String title, List<EpochStats> epochs, String split) {
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
        return c;
    }
}
