package dev.kiln.cuda;

/**
 * Remembers what a timed search chose, across runs, so a process that meets the same problem again skips the search
 * (and a profiler run gets the choices a plain run got): cuDNN's convolution algorithms ({@link Cudnn.AlgoSearch#BENCHMARK};
 * keys describe direction, dtype, shapes, convolution parameters and TF32) and cuBLASLt's product candidates. The
 * implementation ({@link TimedChoicesFile}) scopes the keys to a library version and a device.
 */
interface TimedChoices {
    /** The two numbers kept for key ({algo, mathType} for cuDNN), or null. */
    int[] get(String key);

    void put(String key, int a, int b);
}
