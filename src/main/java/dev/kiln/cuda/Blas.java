package dev.kiln.cuda;

import dev.kiln.DType;

/** Matrix products through cuBLAS, when the library is present (filled in when the cuBLAS bindings land). */
final class Blas {
    private Blas() {}

    /** Runs the product through cuBLAS and returns true, or returns false when cuBLAS cannot take it. */
    static boolean tryGemm(CudaBackend be, DType t, int batch, long m, long n, long k, long a, long sab, long sam, long sak,
                           long b, long sbb, long sbk, long sbn, long c, long scb, long scm, boolean accumulate) {
        return false;
    }
}
