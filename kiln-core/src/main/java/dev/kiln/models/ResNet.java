package dev.kiln.models;

import dev.kiln.Generator;
import dev.kiln.Tensor;
import dev.kiln.nn.AdaptiveAvgPool2d;
import dev.kiln.nn.BatchNorm2d;
import dev.kiln.nn.Conv2d;
import dev.kiln.nn.Flatten;
import dev.kiln.nn.Forward;
import dev.kiln.nn.Init;
import dev.kiln.nn.Layer;
import dev.kiln.nn.Linear;
import dev.kiln.nn.MaxPool2d;
import dev.kiln.nn.Model;
import dev.kiln.nn.ReLU;
import dev.kiln.nn.Sequential;

import java.util.ArrayList;
import java.util.List;

/**
 * torchvision's ResNets, layer for layer and name for name ({@code conv1}, {@code bn1}, {@code layer1.0.conv1},
 * {@code layer2.0.downsample.0}, {@code fc}, ...), so a state dict PyTorch saved loads as it is: ResNet-18 and -34
 * of basic blocks, ResNet-50 of bottlenecks (the stride on the 3x3 convolution, torchvision's "v1.5"). Convolutions
 * start from kaiming_normal (fan_out), batch norms from weight 1 and bias 0, as torchvision. {@link #small} is the
 * CIFAR-style variant for 28x28 and 32x32 images: a 3x3 stem without max pooling and three stages.
 */
public final class ResNet extends Model {
    /** Views for forward: their layers are registered one by one under torchvision's names. */
    private final transient Sequential stem, stages;
    private static final List<String> STEM_NAMES = List.of("conv1", "bn1", "relu", "maxpool");
    private Forward fc;   // not final, as the blocks' convolutions: quantization replaces them (replaceLayer)
    private final AdaptiveAvgPool2d avgpool = new AdaptiveAvgPool2d(1);
    private final transient Flatten flatten = new Flatten();   // torch.flatten in torchvision: no module, no name

    /** ResNet-18 for {@code classes} classes (3-channel input, 224x224 as torchvision's). */
    public static ResNet resnet18(int classes, Generator g) { return imagenet(false, new int[]{2, 2, 2, 2}, classes, g); }

    /** ResNet-34. */
    public static ResNet resnet34(int classes, Generator g) { return imagenet(false, new int[]{3, 4, 6, 3}, classes, g); }

    /** ResNet-50 (bottleneck blocks, 4x expansion). */
    public static ResNet resnet50(int classes, Generator g) { return imagenet(true, new int[]{3, 4, 6, 3}, classes, g); }

    /**
     * A small ResNet for 28x28 or 32x32 images with {@code inChannels} channels: conv 3x3 to 32 channels, three
     * stages of two basic blocks (32, 64, 128 channels, the last two with stride 2), global average pooling, fc.
     */
    public static ResNet small(int inChannels, int classes, Generator g) {
        Sequential stem = new Sequential(conv(inChannels, 32, 3, 1, 1, g), new BatchNorm2d(32), new ReLU());
        return new ResNet(stem, false, 32, new int[]{2, 2, 2}, new int[]{32, 64, 128}, classes, g, true);
    }

    private static ResNet imagenet(boolean bottleneck, int[] blocks, int classes, Generator g) {
        Sequential stem = new Sequential(conv(3, 64, 7, 2, 3, g), new BatchNorm2d(64), new ReLU(), new MaxPool2d(3, 2, 1));
        return new ResNet(stem, bottleneck, 64, blocks, new int[]{64, 128, 256, 512}, classes, g, false);
    }

    /**
     * torchvision names the stem's layers conv1, bn1, relu, maxpool at the top level and the stages layer1..4; the
     * small variant has no max pooling. The stem and the stages are kept as Sequentials (registered under those
     * names one by one), so forward reads as the picture of the network.
     */
    private ResNet(Sequential stem, boolean bottleneck, int width, int[] blocks, int[] planes, int classes, Generator g, boolean small) {
        this.stem = stem;
        for (int i = 0; i < stem.size(); i++) registerLayer(STEM_NAMES.get(i), stem.get(i));
        List<Layer> stageList = new ArrayList<>();
        int in = width;
        for (int s = 0; s < blocks.length; s++) {
            List<Layer> stage = new ArrayList<>();
            for (int b = 0; b < blocks[s]; b++) {
                int stride = b == 0 && s > 0 ? 2 : 1;
                Layer block = bottleneck ? new Bottleneck(in, planes[s], stride, g) : new BasicBlock(in, planes[s], stride, g);
                stage.add(block);
                in = planes[s] * (bottleneck ? Bottleneck.EXPANSION : 1);
            }
            Sequential st = new Sequential(stage);
            registerLayer("layer" + (s + 1), st);
            stageList.add(st);
        }
        this.stages = new Sequential(stageList);
        registerLayer("avgpool", avgpool);
        this.fc = registerLayer("fc", new Linear(in, classes, g));
    }

    /** A bias-free convolution with torchvision's initialisation. */
    private static Conv2d conv(int in, int out, int kernel, int stride, int padding, Generator g) {
        Conv2d c = new Conv2d(in, out, kernel, stride, padding, 1, 1, false, g);
        Init.assign(c.weight(), Init.kaimingNormalFanOut(g, out, in, kernel, kernel));
        return c;
    }

    private static Sequential downsample(int in, int out, int stride, Generator g) {
        return new Sequential(conv(in, out, 1, stride, 0, g), new BatchNorm2d(out));
    }

    @Override public Tensor forward(Tensor x) {
        return fc.forward(flatten.forward(avgpool.forward(stages.forward(stem.forward(input(x))))));
    }

    /** The stem's and the stages' views follow their layers; fc is a field. */
    @Override protected void replaced(String name, Layer layer) {
        if (STEM_NAMES.contains(name)) stem.replaceLayer(Integer.toString(STEM_NAMES.indexOf(name)), layer);
        else if (name.startsWith("layer")) stages.replaceLayer(Integer.toString(Integer.parseInt(name.substring(5)) - 1), layer);
        else if (name.equals("fc")) fc = (Forward) layer;
    }

    /** Two 3x3 convolutions with batch norm, plus the input (through a 1x1 convolution where the shape changes). */
    static final class BasicBlock extends Layer implements Forward {
        private Forward conv1, conv2;   // a Conv2d, or what replaceLayer put in its place (its int8 version)
        private final BatchNorm2d bn1, bn2;
        private final Sequential downsample;   // null where the shape stays

        BasicBlock(int in, int planes, int stride, Generator g) {
            conv1 = registerLayer("conv1", conv(in, planes, 3, stride, 1, g));
            bn1 = registerLayer("bn1", new BatchNorm2d(planes));
            conv2 = registerLayer("conv2", conv(planes, planes, 3, 1, 1, g));
            bn2 = registerLayer("bn2", new BatchNorm2d(planes));
            downsample = stride != 1 || in != planes ? registerLayer("downsample", downsample(in, planes, stride, g)) : null;
        }

        @Override protected void replaced(String name, Layer layer) {
            switch (name) {
                case "conv1" -> conv1 = (Forward) layer;
                case "conv2" -> conv2 = (Forward) layer;
                default -> { }
            }
        }

        @Override public Tensor forward(Tensor x) {
            Tensor y = bn1.forwardAfter(conv1, x, null, true);
            return bn2.forwardAfter(conv2, y, downsample == null ? x : downsample.forward(x), true);   // relu(bn2(.) + shortcut)
        }
    }

    /** 1x1 down to {@code planes}, 3x3 (with the stride), 1x1 up to 4 x planes, each with batch norm, plus the input. */
    static final class Bottleneck extends Layer implements Forward {
        static final int EXPANSION = 4;
        private Forward conv1, conv2, conv3;   // as BasicBlock's
        private final BatchNorm2d bn1, bn2, bn3;
        private final Sequential downsample;

        Bottleneck(int in, int planes, int stride, Generator g) {
            conv1 = registerLayer("conv1", conv(in, planes, 1, 1, 0, g));
            bn1 = registerLayer("bn1", new BatchNorm2d(planes));
            conv2 = registerLayer("conv2", conv(planes, planes, 3, stride, 1, g));
            bn2 = registerLayer("bn2", new BatchNorm2d(planes));
            conv3 = registerLayer("conv3", conv(planes, planes * EXPANSION, 1, 1, 0, g));
            bn3 = registerLayer("bn3", new BatchNorm2d(planes * EXPANSION));
            downsample = stride != 1 || in != planes * EXPANSION ? registerLayer("downsample", downsample(in, planes * EXPANSION, stride, g)) : null;
        }

        @Override protected void replaced(String name, Layer layer) {
            switch (name) {
                case "conv1" -> conv1 = (Forward) layer;
                case "conv2" -> conv2 = (Forward) layer;
                case "conv3" -> conv3 = (Forward) layer;
                default -> { }
            }
        }

        @Override public Tensor forward(Tensor x) {
            Tensor y = bn1.forwardAfter(conv1, x, null, true);
            y = bn2.forwardAfter(conv2, y, null, true);
            return bn3.forwardAfter(conv3, y, downsample == null ? x : downsample.forward(x), true);
        }
    }
}
