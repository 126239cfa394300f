package dev.kiln.cli;

import dev.kiln.Backends;
import dev.kiln.Device;

/** Which devices this process can use. */
final class Devices {
    private Devices() {}

    /** cuda:0 when its backend starts, else the CPU. */
    static Device best() { return cudaProblem() == null ? Device.cuda(0) : Device.CPU; }

    /** Null when cuda:0 is usable, else why not. */
    static String cudaProblem() {
        if (!dev.kiln.cuda.Cuda.isAvailable()) return dev.kiln.cuda.Cuda.unavailableReason();
        try {
            Backends.get(Device.cuda(0));
            return null;
        } catch (RuntimeException | LinkageError e) { // no library, no driver, no GPU: all mean "use the CPU"
            return e.getMessage() == null ? e.toString() : e.getMessage();
        }
    }

    /** The first sentence of why a GPU is not usable: the library search's list of every folder tried stays out. */
    static String shortReason(Throwable e) {
        String m = e.getMessage() == null ? e.toString() : e.getMessage();
        int cut = m.indexOf(". Looked in");
        if (cut < 0) cut = m.indexOf("; looked in");
        m = cut > 0 ? m.substring(0, cut) : m;
        return m.length() > 200 ? m.substring(0, 197) + "..." : m;
    }

    /** Parses --device: cpu, cuda, cuda:N or auto. */
    static Device parse(String s) {
        if (s.equalsIgnoreCase("auto")) return best();
        Device d = Device.parse(s);
        if (d.isCuda()) {
            try {
                Backends.get(d);
            } catch (RuntimeException | LinkageError e) {
                throw new IllegalArgumentException("--device " + s + " is not usable: " + shortReason(e) + " ('kiln devices' says more)");
            }
        }
        return d;
    }
}
