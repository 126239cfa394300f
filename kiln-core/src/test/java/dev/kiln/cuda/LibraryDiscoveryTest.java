package dev.kiln.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/** What runs on a machine without a GPU: clear errors and a report that never throws. */
class LibraryDiscoveryTest {
    @Test void missingLibraryNamesThePathAndTheSetting() {
        String missing = "/nonexistent/kiln-test/libcublas.so.13";
        String old = System.getProperty("kiln.lib.cublas");
        System.setProperty("kiln.lib.cublas", missing);
        try {
            var lib = new NativeLibrary("cuBLAS", "cublas", status -> null, "libcublas.so.13", "libcublas.so.12");
            var e = assertThrows(CudaException.LibraryNotFound.class, lib::lookup);
            assertTrue(e.getMessage().contains(missing), e.getMessage());
            assertTrue(e.getMessage().contains("'cublas'"), e.getMessage());
            assertTrue(e.getMessage().contains("KILN_LIB_CUBLAS"), e.getMessage());
            // remembered: the second use fails the same way, not with a class-initialisation error
            assertSame(e, assertThrows(CudaException.LibraryNotFound.class, lib::lookup));
            assertFalse(lib.available());
        } finally {
            if (old == null) System.clearProperty("kiln.lib.cublas");
            else System.setProperty("kiln.lib.cublas", old);
        }
    }

    @Test void deviceReportNeverThrows() {
        String report = assertDoesNotThrow(DeviceReport::describe);
        assertTrue(report.contains("libraries: "), report);
        assertTrue(report.contains("cuBLAS") && report.contains("cuDNN") && report.contains("NVRTC"), report);
        if (!Nvml.available()) {
            assertTrue(report.startsWith("no NVIDIA GPU found ("), report);
            assertFalse(report.contains("cuda:0"), report);
        }
    }

    @Test void nvmlWithoutDriverIsLibraryNotFound() {
        if (Nvml.available()) return; // a machine with a driver: covered by the GPU test
        var e = assertThrows(CudaException.LibraryNotFound.class, Nvml::open);
        assertTrue(e.getMessage().contains("nvidia-ml"), e.getMessage());
    }

    @Test void versionsAreDotted() {
        assertEquals("9.14.0", DeviceReport.dotted(91400, 10000, 100));
        assertEquals("13.0.2", DeviceReport.dotted(130002, 10000, 100));
    }

    @Test void statusNamesFallBackToTheHeaderTable() {
        // without libcublas the name comes from the table; with it, from cublasGetStatusName: the same text
        assertEquals("CUBLAS_STATUS_INVALID_VALUE", Cublas.statusName(7));
        var e = Cublas.LIB.failure("cublasGemmStridedBatchedEx", 7, "m=1");
        assertTrue(e.getMessage().startsWith("cuBLAS: cublasGemmStridedBatchedEx failed with CUBLAS_STATUS_INVALID_VALUE (7): m=1"), e.getMessage());
    }
}
