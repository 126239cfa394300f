package dev.kiln;

/** Where a tensor lives: the host ({@code cpu}) or one GPU ({@code cuda:N}). */
public record Device(Type type, int index) {
    /** The kind of device: the host or an NVIDIA GPU. */
    public enum Type { CPU, CUDA }

    public static final Device CPU = new Device(Type.CPU, 0);

    public Device {
        if (index < 0) throw new IllegalArgumentException("device index must be >= 0, got " + index);
        if (type == Type.CPU && index != 0) throw new IllegalArgumentException("there is one cpu device, got cpu:" + index);
    }

    public static Device cuda(int index) { return new Device(Type.CUDA, index); }

    public boolean isCuda() { return type == Type.CUDA; }

    /** Parses "cpu", "cuda" (= cuda:0) or "cuda:N". */
    public static Device parse(String s) {
        String t = s.trim().toLowerCase();
        if (t.equals("cpu")) return CPU;
        if (t.equals("cuda") || t.equals("gpu")) return cuda(0);
        if (t.startsWith("cuda:")) {
            try {
                return cuda(Integer.parseInt(t.substring(5)));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("bad device '" + s + "': expected cpu, cuda or cuda:N");
            }
        }
        throw new IllegalArgumentException("bad device '" + s + "': expected cpu, cuda or cuda:N");
    }

    @Override public String toString() { return type == Type.CPU ? "cpu" : "cuda:" + index; }
}
