package dev.kiln.nn;

/**
 * A whole network of one input: a {@link Layer} that is also a {@link Forward}. The zoo builds Models, and
 * {@code kiln train}, evaluation and checkpoint loading take them; {@link Sequential} is one, and so is a
 * user-written network that extends this class.
 */
public abstract class Model extends Layer implements Forward {
    /** For subclasses: register parameters and layers in the constructor. */
    protected Model() {}
}
