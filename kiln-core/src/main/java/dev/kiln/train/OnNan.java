package dev.kiln.train;

import java.util.Locale;

/** What training does at a step whose loss is NaN or infinite ({@code kiln train --on-nan}). */
public enum OnNan {
    /** Stop with an error naming the step (and the first parameter whose gradient is not finite); the last checkpoint stays the last good one. */
    STOP,
    /** Leave that step's update out (no backward, no optimizer step) and go on; the count is reported. */
    SKIP;

    public String cliName() { return name().toLowerCase(Locale.ROOT); }

    public static OnNan parse(String s) {
        for (OnNan o : values()) if (o.cliName().equalsIgnoreCase(s)) return o;
        throw new IllegalArgumentException("--on-nan takes stop or skip, got '" + s + "'");
    }
}
