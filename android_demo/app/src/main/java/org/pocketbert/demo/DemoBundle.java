package org.pocketbert.demo;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.Charset;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A pocketbert bundle as the app opens it: manifest.json read, every file checked against its
 * sha256, the format and tokenizer checked to be ones the app runs, labels read. Every refusal
 * is a {@link DemoError} whose message the app shows as it is.
 */
public final class DemoBundle {
    public static final String FORMATS = "onnx";
    private static final Charset UTF8 = Charset.forName("UTF-8");

    /** Where the bundle's files come from: a directory, or the APK's assets. */
    public interface Source {
        InputStream open(String name) throws IOException;

        String where();
    }

    public final Map<String, Object> manifest;
    public final String task;
    public final String modelFile;
    public final int maxSeqLen;
    public final boolean dynamicSeq;
    public final List<String> labels = new ArrayList<String>();
    public final List<String> inputNames = new ArrayList<String>();
    public final List<String> inputTypes = new ArrayList<String>();
    public final WordPiece tokenizer;
    public final long modelBytes;

    public static Source directory(final File dir) {
        return new Source() {
            public InputStream open(String name) throws IOException {
                return new FileInputStream(new File(dir, name));
            }

            public String where() {
                return dir.getPath();
            }
        };
    }

    public DemoBundle(Source src) {
        String where = "bundle " + src.where();
        Map<String, Object> m;
        try {
            m = Json.obj(Json.parse(new String(read(src, "manifest.json"), UTF8)), "manifest.json");
        } catch (IOException e) {
            throw new DemoError(where + " has no readable manifest.json; push a bundle that "
                    + "`pocketbert export` wrote (" + e.getMessage() + ")");
        } catch (IllegalArgumentException e) {
            throw new DemoError(where + ": manifest.json is not JSON (" + e.getMessage() + ")");
        }
        manifest = m;
        String format = String.valueOf(m.get("format"));
        if (!FORMATS.equals(format)) {
            throw new DemoError(where + " is a " + format + " bundle; the app runs " + FORMATS
                    + " bundles only (onnxruntime-web in a WebView): export one with --format onnx");
        }
        task = String.valueOf(m.get("task"));
        if (!"classification".equals(task) && !"embedding".equals(task)) {
            throw new DemoError(where + ": task '" + task + "' is not one of: classification, embedding");
        }
        modelFile = Json.str(m.get("model_file"), "manifest.json's model_file");
        if (modelFile.contains("/") || modelFile.startsWith(".")) {
            throw new DemoError(where + ": model_file '" + modelFile + "' is not a plain name in the bundle");
        }
        Object len = m.get("max_seq_len");
        if (!(len instanceof Number)) throw new DemoError(where + ": manifest.json has no max_seq_len");
        maxSeqLen = ((Number) len).intValue();
        dynamicSeq = !Boolean.FALSE.equals(m.get("dynamic_seq"));
        for (Object o : Json.list(m.get("inputs"), "manifest.json's inputs")) {
            Map<String, Object> in = Json.obj(o, "an input");
            inputNames.add(Json.str(in.get("name"), "an input's name"));
            inputTypes.add(String.valueOf(in.get("dtype")));
        }
        Map<String, Object> files = Json.obj(m.get("files"), "manifest.json's files");
        if (!files.containsKey(modelFile) || !files.containsKey("tokenizer.json")) {
            throw new DemoError(where + ": manifest.json lists no sha256 for " + modelFile
                    + " or tokenizer.json; re-export the bundle");
        }
        long size = 0;
        byte[] tokenizerBytes = null, labelBytes = null;
        for (Map.Entry<String, Object> e : files.entrySet()) {
            String name = e.getKey();
            String want = String.valueOf(e.getValue());
            Digest d = digest(src, name, where, !name.equals(modelFile));
            if (!d.hex.equals(want)) {
                throw new DemoError(where + ": " + name + " does not match its sha256 in manifest.json "
                        + "(changed or half-copied); push the bundle again or re-export it");
            }
            if (name.equals(modelFile)) size = d.size;
            if (name.equals("tokenizer.json")) tokenizerBytes = d.bytes;
            if (name.equals("labels.json")) labelBytes = d.bytes;
        }
        modelBytes = size;
        tokenizer = new WordPiece(new String(tokenizerBytes, UTF8), maxSeqLen, !dynamicSeq);
        if ("classification".equals(task)) {
            if (labelBytes == null) throw new DemoError(where + " is a classifier without labels.json");
            for (Object o : Json.list(Json.parse(new String(labelBytes, UTF8)), "labels.json")) {
                labels.add(String.valueOf(o));
            }
            if (labels.isEmpty()) throw new DemoError(where + ": labels.json is empty");
        }
    }

    private static final class Digest {
        String hex;
        long size;
        byte[] bytes;
    }

    private static Digest digest(Source src, String name, String where, boolean keep) {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        Digest d = new Digest();
        ByteArrayOutputStream kept = keep ? new ByteArrayOutputStream() : null;
        InputStream in = null;
        try {
            in = src.open(name);
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
                d.size += n;
                if (kept != null) kept.write(buf, 0, n);
            }
        } catch (IOException e) {
            throw new DemoError(where + " is missing " + name + ", which manifest.json lists; "
                    + "push the whole bundle directory");
        } finally {
            if (in != null) try { in.close(); } catch (IOException ignored) { }
        }
        StringBuilder hex = new StringBuilder();
        for (byte b : md.digest()) hex.append(String.format("%02x", b & 0xff));
        d.hex = hex.toString();
        d.bytes = kept == null ? null : kept.toByteArray();
        return d;
    }

    static byte[] read(Source src, String name) throws IOException {
        InputStream in = src.open(name);
        try {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) out.write(buf, 0, n);
            return out.toByteArray();
        } finally {
            in.close();
        }
    }

    public String sha256(String name) {
        return String.valueOf(Json.obj(manifest.get("files"), "files").get(name));
    }
}
