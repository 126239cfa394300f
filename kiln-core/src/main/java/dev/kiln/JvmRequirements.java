package dev.kiln;

/**
 * Checks, once, that the JVM was started with what Kiln needs, so a missing flag is one line naming it rather than
 * a {@link NoClassDefFoundError} from deep inside the first CPU kernel.
 */
public final class JvmRequirements {
    private JvmRequirements() {}

    private static final boolean VECTOR_API = ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();

    /** Throws an {@link IllegalStateException} naming the missing JVM flag; free once the JIT has seen it. */
    public static void check() {
        if (!VECTOR_API) {
            throw new IllegalStateException("Kiln needs the Vector API: start the JVM with --add-modules jdk.incubator.vector "
                    + "(and --enable-native-access=ALL-UNNAMED for CUDA)");
        }
    }
}
