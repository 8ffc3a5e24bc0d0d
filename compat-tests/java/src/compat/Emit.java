package compat;

/** Emit prints one line to stdout, whole, for the Go test that reads it. */
final class Emit {
    private Emit() {}

    static synchronized void line(String s) {
        System.out.println(s);
        System.out.flush();
    }
}
