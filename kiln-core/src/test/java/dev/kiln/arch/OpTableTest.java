package dev.kiln.arch;

import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.domain.JavaMethod;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import dev.kiln.backend.Backend;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The op table: each op family's name in every layer. A family X has its definition in {@code ops/X} (or, for the
 * optimizer steps, the optimizers), its Backend methods, {@code cpu/XCpu}, {@code cuda/XCuda}, {@code kernels/x.cu}
 * and its tests. The test fails when the table and the code disagree either way: a Backend method, a {@code *Cpu}
 * or {@code *Cuda} class or a kernel file missing from the table, or a class, method, kernel file or test the table
 * names missing from the code; and each backend's implementation of a method must call its family's class.
 */
class OpTableTest {
    /** One family. {@code tests}: test classes (fully qualified under dev.kiln) that check it. */
    record Family(String name, String definition, List<String> backendMethods, String kernelFile, List<String> tests) {
        String cpuClass() { return "dev.kiln.cpu." + name + "Cpu"; }

        String cudaClass() { return "dev.kiln.cuda." + name + "Cuda"; }
    }

    private static Family family(String name, String definition, String methods, String kernelFile, String tests) {
        return new Family(name, definition, List.of(methods.split(" ")), kernelFile, List.of(tests.split(" ")));
    }

    /** The table. Op family -> definition -> Backend methods -> (CPU class, CUDA class by name) -> kernel file -> tests. */
    static final List<Family> TABLE = List.of(
            family("Elementwise", "ops.Elementwise", "fill copy unary binary binaryScalar where", "elementwise.cu",
                    "ops.ElementwiseGradTest cuda.ElementwiseGpuTest"),
            family("Random", "Tensor", "uniform normal", "random.cu", "cuda.RandomGpuTest"),
            family("Reductions", "ops.Reductions", "reduce argReduce cumsum", "reductions.cu",
                    "ops.ReductionAndViewGradTest cpu.ReductionsCpuTest cuda.ReductionsGpuTest"),
            family("Matmul", "ops.Matmul", "matmul linear linearBackwardWeight linearAfterBackwardInput", "matmul.cu",
                    "ops.MatmulGradTest cpu.MatmulCpuTest cuda.MatmulGpuTest"),
            family("Convolution", "ops.Convolution",
                    "conv2d conv2dBackwardInput conv2dBackwardWeight conv2dBackwardWeightAndBias biasReluBackward", "convolution.cu",
                    "cpu.ConvolutionCpuTest cuda.ConvolutionGpuTest"),
            family("Pooling", "ops.Pooling", "maxPool2d maxPool2dValues maxPool2dBackward avgPool2d avgPool2dBackward", "pooling.cu", "cuda.PoolingGpuTest"),
            family("Normalization", "ops.Normalization", "layerNorm layerNormBackward batchNorm batchNormBackward batchNormReluMaxPool batchNormReluMaxPoolBackward",
                    "normalization.cu",
                    "ops.NormalizationGradTest cuda.NormalizationGpuTest"),
            family("Softmax", "ops.Softmax", "softmax softmaxBackward", "softmax.cu", "cuda.SoftmaxGpuTest"),
            family("Quantized", "ops.Quantized", "quantizedLinear quantizedConv2d", "quantized.cu", "quant.QuantizationTest cuda.QuantizedGpuTest"),
            family("Attention", "ops.Attention", "supportsAttention attention attentionBackward", "attention.cu",
                    "ops.AttentionGradTest cuda.AttentionGpuTest"),
            family("Sorting", "ops.Sorting", "argsort", "sorting.cu", "ops.SortingTest cpu.SortingCpuTest cuda.SortingGpuTest"),
            family("Indexing", "ops.Indexing", "gather scatterAdd indexSelect indexAdd cropImages", "indexing.cu", "cuda.IndexingGpuTest"),
            family("Recurrent", "ops.Recurrent", "lstmCell lstmCellBackward gruCell gruCellBackward stepProducts lstmSteps", "recurrent.cu",
                    "ops.RecurrentGradTest cpu.RecurrentCpuTest cuda.RecurrentGpuTest"),
            family("Dropout", "ops.Dropout", "dropout", "dropout.cu", "ops.FusedOpsTest cuda.DropoutGpuTest"),
            family("Losses", "ops.Losses", "crossEntropyRows crossEntropyRowsBackward meanOverKept", "losses.cu",
                    "ops.FusedOpsTest cuda.LossesGpuTest"),
            family("Optim", "optim.Adam", "adamStep sgdStep ampUnscale ampUpdateScale", "optim.cu",
                    "optim.FusedOptimizerTest amp.GradScalerTest cuda.OptimGpuTest"));

    /** Backend methods that are the backend itself, not an op family's. */
    static final Set<String> BACKEND_OWN = Set.of("device", "allocate", "fromHost", "toHost");

    /** Kernel files that belong to no op family: shared headers and the CUDA-graph replay counter. */
    static final Set<String> SHARED_KERNEL_FILES = Set.of("common.cuh", "pool.cuh", "random.cuh", "graph.cu");

    private static final Path KERNELS = Path.of("src/main/resources/dev/kiln/cuda/kernels");

    static JavaClasses classes;

    @BeforeAll static void importClasses() {
        classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS).importPackages("dev.kiln");
    }

    private static List<String> tableMethods() {
        return TABLE.stream().flatMap(f -> f.backendMethods().stream()).toList();
    }

    @Test void everyBackendMethodIsInTheTableOnce() {
        Set<String> backend = Arrays.stream(Backend.class.getMethods()).filter(m -> !Modifier.isStatic(m.getModifiers()))
                .map(Method::getName).filter(n -> !BACKEND_OWN.contains(n)).collect(Collectors.toCollection(TreeSet::new));
        List<String> listed = tableMethods();
        assertEquals(listed.size(), Set.copyOf(listed).size(), "a method is listed under two families: " + listed);
        assertEquals(backend, new TreeSet<>(listed), "Backend's methods and the table's");
    }

    @Test void everyNamedClassAndTestExists() {
        List<String> missing = new ArrayList<>();
        for (Family f : TABLE) {
            for (String c : List.of("dev.kiln." + f.definition(), f.cpuClass(), f.cudaClass())) if (!exists(c)) missing.add(f.name() + ": " + c);
            for (String t : f.tests()) if (!exists("dev.kiln." + t)) missing.add(f.name() + ": test " + t);
        }
        assertEquals(List.of(), missing);
    }

    private static boolean exists(String className) {
        try {
            Class.forName(className, false, OpTableTest.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    @Test void everyBackendClassAndKernelFileIsInTheTable() throws IOException {
        Set<String> cpu = new TreeSet<>(), cuda = new TreeSet<>();
        for (JavaClass c : classes) {
            if (c.getPackageName().equals("dev.kiln.cpu") && c.getSimpleName().endsWith("Cpu") && c.isTopLevelClass()) cpu.add(c.getName());
            if (c.getPackageName().equals("dev.kiln.cuda") && c.getSimpleName().endsWith("Cuda") && !c.getSimpleName().equals("Cuda") && c.isTopLevelClass()) cuda.add(c.getName());
        }
        assertEquals(TABLE.stream().map(Family::cpuClass).collect(Collectors.toCollection(TreeSet::new)), cpu, "*Cpu classes");
        assertEquals(TABLE.stream().map(Family::cudaClass).collect(Collectors.toCollection(TreeSet::new)), cuda, "*Cuda classes");
        Set<String> files;
        try (Stream<Path> s = Files.list(KERNELS)) {
            files = s.map(p -> p.getFileName().toString()).filter(n -> !n.equals("op_codes.cuh")).collect(Collectors.toCollection(TreeSet::new));
        }
        Set<String> named = TABLE.stream().map(Family::kernelFile).collect(Collectors.toCollection(TreeSet::new));
        named.addAll(SHARED_KERNEL_FILES);
        assertEquals(named, files, "kernel files (" + KERNELS + ")");
    }

    @Test void eachBackendCallsItsFamilysClassAndTheCudaClassNamesItsKernelFile() throws IOException {
        List<String> wrong = new ArrayList<>();
        for (Family f : TABLE) {
            for (String m : f.backendMethods()) {
                check(wrong, "dev.kiln.cpu.CpuBackend", m, f.cpuClass());
                check(wrong, "dev.kiln.cuda.CudaBackend", m, f.cudaClass());
            }
            Path cudaSource = Path.of("src/main/java", f.cudaClass().replace('.', '/') + ".java");
            if (!Files.readString(cudaSource).contains("\"" + f.kernelFile() + "\"")) wrong.add(cudaSource + " does not load " + f.kernelFile());
        }
        assertEquals(List.of(), wrong);
    }

    /** backend's implementation(s) of {@code method} call something in {@code familyClass}. */
    private static void check(List<String> wrong, String backend, String method, String familyClass) {
        JavaClass b = classes.get(backend);
        List<JavaMethod> impls = b.getMethods().stream().filter(m -> m.getName().equals(method)).toList();
        boolean composedByDefault = Arrays.stream(Backend.class.getMethods()).anyMatch(m -> m.getName().equals(method) && m.isDefault());
        if (impls.isEmpty() && composedByDefault) return;   // the interface's default composes other primitives
        if (impls.isEmpty()) {
            wrong.add(backend + " has no " + method + " (a Backend default? implement it and call " + familyClass + ")");
            return;
        }
        for (JavaMethod m : impls) {
            boolean calls = m.getCallsFromSelf().stream().anyMatch(c -> c.getTargetOwner().getName().equals(familyClass));
            if (!calls) wrong.add(backend + "." + method + m.getRawParameterTypes().stream().map(JavaClass::getSimpleName).toList()
                    + " does not call " + familyClass);
        }
    }
}
