package org.pocketbert.demo;

/** Bad input (a bundle the app cannot run, a tampered file): one line the app shows as it is. */
public final class DemoError extends RuntimeException {
    public DemoError(String message) {
        super(message);
    }
}
