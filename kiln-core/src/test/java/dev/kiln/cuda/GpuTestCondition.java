package dev.kiln.cuda;

import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Skips every test class named {@code *GpuTest} (the project's name for tests that need a GPU) on a machine without
 * one, before its {@code @BeforeAll} runs, so each of its tests is reported as skipped, with the reason, rather than
 * the class reporting no tests at all. Registered for every test through JUnit's extension auto-detection
 * (META-INF/services and junit-platform.properties in the test resources).
 */
public final class GpuTestCondition implements ExecutionCondition {
    @Override public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
        boolean gpuTest = context.getTestClass().map(c -> c.getSimpleName().endsWith("GpuTest")).orElse(false);
        if (!gpuTest || Cuda.isAvailable()) return ConditionEvaluationResult.enabled("a CUDA GPU is here, or the test needs none");
        GpuTests.announceSkip(context.getRequiredTestClass());
        return ConditionEvaluationResult.disabled("no CUDA GPU here (" + GpuTests.shortReason() + ")");
    }
}
