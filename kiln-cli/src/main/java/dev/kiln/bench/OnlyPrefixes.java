package dev.kiln.bench;

import dev.kiln.Device;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;

/** kiln bench --only: which workload names a run's prefixes select, and which prefixes selected nothing. */
final class OnlyPrefixes {
    private final Set<String> matched = new HashSet<>();
    /** Every workload name the device offered, for the message that names a prefix matching none. */
    private final Set<String> offered = new TreeSet<>();

    /** Whether the workload {@code name} runs: no prefixes, or one it starts with. */
    boolean want(List<String> only, String name) {
        offered.add(name);
        boolean any = only.isEmpty();
        for (String prefix : only) {
            if (name.startsWith(prefix)) {
                matched.add(prefix);
                any = true;
            }
        }
        return any;
    }

    /** Throws naming the prefixes that matched nothing if none matched at all; otherwise logs them. */
    void requireMatches(List<String> only, Device device, Consumer<String> log) {
        List<String> unmatched = only.stream().filter(p -> !matched.contains(p)).toList();
        if (unmatched.isEmpty()) return;
        String what = "--only " + String.join(",", unmatched) + " matches no workload on " + device + " (its workloads: "
                + String.join(", ", offered) + ")";
        if (matched.isEmpty()) throw new IllegalArgumentException(what);
        log.accept(what);
    }
}
