package dev.kiln.cli;

/** Entry point of the {@code kiln} command. */
public final class Main {
    private Main() {}

    public static void main(String[] args) {
        System.out.println("kiln");
    }
}
