package org.pocketbert.demo;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The app's Bridge on this machine, for the page in headless Chromium: one JSON request a line
 * on stdin ({"method": ..., "arg": ...}), one JSON answer a line on stdout ({"result": ...}).
 * Arguments: BUNDLE_DIR MODE RUNS WARMUP SEQ RECORD_OUT [TEXTS_JSON_FILE]
 */
public final class HostBridge {
    public static void main(String[] args) throws IOException {
        final File out = new File(args[5]);
        List<String> texts = new ArrayList<String>();
        if (args.length > 6) {
            for (Object o : Json.list(Json.parse(CheckMain.readText(new File(args[6]))), "texts")) {
                texts.add(String.valueOf(o));
            }
        }
        Bridge.Platform host = new Bridge.Platform() {
            public String deviceModel() {
                return "host (" + System.getProperty("os.name") + ")";
            }

            public String osVersion() {
                return null;
            }

            public void writeRecord(String json) throws IOException {
                File tmp = new File(out.getPath() + ".tmp");
                OutputStreamWriter w = new OutputStreamWriter(new FileOutputStream(tmp), "UTF-8");
                w.write(json + "\n");
                w.close();
                if (!tmp.renameTo(out)) throw new IOException("cannot rename " + tmp);
            }
        };
        Bridge bridge = new Bridge(host, DemoBundle.directory(new File(args[0])), args[1],
                Integer.parseInt(args[2]), Integer.parseInt(args[3]), Integer.parseInt(args[4]), texts);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        PrintStream stdout = new PrintStream(System.out, true, "UTF-8");
        String line;
        while ((line = in.readLine()) != null) {
            Map<String, Object> req = Json.obj(Json.parse(line), "a request");
            String method = String.valueOf(req.get("method"));
            String arg = req.get("arg") == null ? "" : String.valueOf(req.get("arg"));
            String result;
            try {
                result = call(bridge, method, arg);
            } catch (RuntimeException e) {
                result = Json.write(java.util.Collections.singletonMap("bridge_error", (Object) e.toString()));
            }
            stdout.println(Json.write(java.util.Collections.singletonMap("result", (Object) result)));
        }
    }

    static String call(Bridge b, String method, String arg) {
        if (method.equals("config")) return b.config();
        if (method.equals("tokenize")) return b.tokenize(arg);
        if (method.equals("benchFeed")) return b.benchFeed();
        if (method.equals("texts")) return b.texts();
        if (method.equals("postprocess")) return b.postprocess(arg);
        if (method.equals("timeTokenizer")) return b.timeTokenizer();
        if (method.equals("finish")) return b.finish(arg);
        if (method.equals("log")) { System.err.println("page: " + arg); return ""; }
        throw new IllegalArgumentException("no bridge method " + method);
    }
}
