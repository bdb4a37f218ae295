package org.pocketbert.demo;

import java.io.File;
import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The JVM tests of the app's logic: cases written by pytest from the Python side (the
 * `tokenizers` library's ids, numpy's softmax, pocketbert's bundles), checked one by one here.
 * Prints one line per failure and the closing line "N passed, N failed".
 */
public final class CheckMain {
    public static void main(String[] args) throws IOException {
        List<Object> cases = Json.list(Json.parse(readText(new File(args[0]))), "cases");
        Map<String, WordPiece> tokenizers = new HashMap<String, WordPiece>();
        int passed = 0, failed = 0;
        for (Object o : cases) {
            Map<String, Object> c = Json.obj(o, "a case");
            String why;
            try {
                why = check(c, tokenizers);
            } catch (RuntimeException e) {
                why = "raised " + e;
            }
            if (why == null) {
                passed++;
            } else {
                failed++;
                System.out.println("FAIL " + c.get("name") + ": " + why);
            }
        }
        System.out.println(passed + " passed, " + failed + " failed");
        System.exit(failed == 0 ? 0 : 1);
    }

    private static String check(Map<String, Object> c, Map<String, WordPiece> cache) throws IOException {
        String kind = String.valueOf(c.get("kind"));
        if (kind.equals("tokenize")) {
            String path = String.valueOf(c.get("tokenizer"));
            int maxLen = ((Number) c.get("max_len")).intValue();
            boolean pad = Boolean.TRUE.equals(c.get("pad"));
            String key = path + "|" + maxLen + "|" + pad;
            WordPiece wp = cache.get(key);
            if (wp == null) {
                wp = new WordPiece(readText(new File(path)), maxLen, pad);
                cache.put(key, wp);
            }
            WordPiece.Encoding e = wp.encode(String.valueOf(c.get("text")));
            String got = Json.write(e.ids) + " " + Json.write(e.mask);
            String want = Json.write(ints(c.get("ids"))) + " " + Json.write(ints(c.get("mask")));
            return got.equals(want) ? null : "ids/mask " + got + " != tokenizers' " + want;
        }
        if (kind.equals("classify")) {
            double[] logits = doubles(c.get("logits"));
            @SuppressWarnings("unchecked")
            List<String> labels = (List<String>) (List<?>) Json.list(c.get("labels"), "labels");
            Map<String, Object> got = Postprocess.classify(logits, labels);
            Map<String, Object> want = Json.obj(c.get("expect"), "expect");
            if (!got.get("label").equals(want.get("label"))) return "label " + got.get("label");
            Map<String, Object> gp = Json.obj(got.get("probabilities"), "p");
            Map<String, Object> wp = Json.obj(want.get("probabilities"), "p");
            for (String lab : labels) {
                double d = Math.abs(((Number) gp.get(lab)).doubleValue() - ((Number) wp.get(lab)).doubleValue());
                if (d > 1e-12) return "p(" + lab + ") off by " + d;
            }
            return null;
        }
        if (kind.equals("refuse")) { // a bundle or tokenizer the app must refuse, in words
            String want = String.valueOf(c.get("error"));
            try {
                if (c.get("bundle") != null) {
                    new DemoBundle(DemoBundle.directory(new File(String.valueOf(c.get("bundle")))));
                } else {
                    Postprocess.classify(doubles(c.get("logits")), castList(c.get("labels")));
                }
            } catch (DemoError e) {
                return e.getMessage().contains(want) ? null : "said '" + e.getMessage() + "'";
            }
            return "was accepted";
        }
        if (kind.equals("summary")) {
            Map<String, Object> got = Stats.summarize(doubles(c.get("samples")));
            String g = Json.write(got), w = Json.write(Json.obj(c.get("expect"), "expect"));
            return g.equals(w) ? null : g + " != " + w;
        }
        return "unknown case kind " + kind;
    }

    @SuppressWarnings("unchecked")
    private static List<String> castList(Object o) {
        return (List<String>) (List<?>) Json.list(o, "list");
    }

    private static int[] ints(Object o) {
        List<Object> xs = Json.list(o, "ids");
        int[] out = new int[xs.size()];
        for (int k = 0; k < out.length; k++) out[k] = ((Number) xs.get(k)).intValue();
        return out;
    }

    private static double[] doubles(Object o) {
        List<Object> xs = Json.list(o, "numbers");
        double[] out = new double[xs.size()];
        for (int k = 0; k < out.length; k++) out[k] = ((Number) xs.get(k)).doubleValue();
        return out;
    }

    static String readText(File f) throws IOException {
        InputStream in = new FileInputStream(f);
        try {
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            byte[] buf = new byte[1 << 16];
            int n;
            while ((n = in.read(buf)) > 0) out.write(buf, 0, n);
            return new String(out.toByteArray(), "UTF-8");
        } finally {
            in.close();
        }
    }
}
