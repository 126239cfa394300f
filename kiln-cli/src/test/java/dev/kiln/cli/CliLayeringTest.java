package dev.kiln.cli;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import org.junit.jupiter.api.Test;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;

/** The command line and its benchmark are thin over the library: they never reach the driver or the raw bindings. */
class CliLayeringTest {
    @Test void theCommandLineNeverReachesDriverCalls() {
        JavaClasses classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
                .importPackages("dev.kiln.cli", "dev.kiln.bench");
        noClasses().that().resideInAnyPackage("dev.kiln.cli..", "dev.kiln.bench..")
                .should().dependOnClassesThat().haveSimpleName("Driver")
                .orShould().dependOnClassesThat().haveSimpleName("Nvrtc")
                .orShould().dependOnClassesThat().haveSimpleName("NativeLibrary")
                .orShould().dependOnClassesThat().haveSimpleName("Cudnn")
                .orShould().dependOnClassesThat().haveSimpleName("Cublas")
                .because("kiln's commands use the library's public API (Cuda, CudaDevice, Tensor, ...), not the bindings")
                .check(classes);
    }
}
