package org.pocketbert.demo;

import java.io.BufferedReader;
import java.io.File;
import java.io.FileReader;
import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What the page (index.html + pocketbert.js) asks of its host, in strings: the bundle's
 * settings, tokenization, softmax and labels, and the benchmark record. The Android activity
 * exposes it to the WebView; the host harness (tests, benchmarks) to headless Chromium. It holds
 * no Android code, so the JVM tests run it as the phone does.
 */
public final class Bridge {
    public static final String APP_VERSION = "1";
    /** Sentences whose tokenization the benchmark times (the model is timed on synthetic ids). */
    static final String[] TIMED_TEXTS = {
        "a gripping, beautifully acted thriller",
        "the jokes fall flat and the plot drags on for far too long",
        "an unexpectedly moving portrait of a family coming apart at the seams",
        "Despite its flaws, the film's final act is genuinely thrilling.",
        "I wouldn't recommend it to anyone, not even my worst enemy!",
        "A café scene in Zürich, naïve and charming: résumé of a decade.",
        "visually stunning but emotionally hollow; style over substance",
        "It's 2 hours and 17 minutes long -- and every minute counts.",
    };

    /** What differs between a phone and the host harness. */
    public interface Platform {
        String deviceModel();

        String osVersion();

        /** Write the record where the caller will find it (atomically: temp file, then rename). */
        void writeRecord(String json) throws IOException;
    }

    private final Platform platform;
    private final String mode; // ui | bench | classify
    private final int runs, warmup, seqLen, passes;
    private final List<String> texts;
    private DemoBundle bundle;
    private String error;
    private double baselineMb = -1;
    private double[] tokenizeMs;
    private String record;

    public Bridge(Platform platform, DemoBundle.Source src, String mode, int runs, int warmup,
                  int seqLen, List<String> texts) {
        this.platform = platform;
        this.mode = mode;
        this.runs = runs;
        this.warmup = warmup;
        this.passes = 3;
        this.texts = texts == null ? new ArrayList<String>() : texts;
        try {
            if (runs < 1 || warmup < 0) {
                throw new DemoError("runs must be >= 1 and warmup >= 0 (got runs=" + runs
                        + ", warmup=" + warmup + ")");
            }
            bundle = new DemoBundle(src);
            if (seqLen > 0 && (seqLen < 3 || seqLen > bundle.maxSeqLen)) {
                throw new DemoError("seq " + seqLen + " is outside this bundle's range; give 3.."
                        + bundle.maxSeqLen);
            }
        } catch (DemoError e) {
            error = e.getMessage();
        } catch (RuntimeException e) {
            error = "the bundle could not be read (" + e + "); re-export it";
        }
        this.seqLen = bundle == null ? 0 : (seqLen > 0 ? seqLen : bundle.maxSeqLen);
    }

    /** The reason the app cannot run this bundle, or null. */
    public String error() {
        return error;
    }

    public String record() {
        return record;
    }

    public String config() {
        Map<String, Object> c = new LinkedHashMap<String, Object>();
        c.put("mode", mode);
        c.put("error", error);
        c.put("app_version", APP_VERSION);
        if (bundle != null) {
            c.put("model_url", "bundle/" + bundle.modelFile);
            c.put("task", bundle.task);
            List<Object> inputs = new ArrayList<Object>();
            for (int k = 0; k < bundle.inputNames.size(); k++) {
                Map<String, Object> in = new LinkedHashMap<String, Object>();
                in.put("name", bundle.inputNames.get(k));
                in.put("dtype", bundle.inputTypes.get(k));
                inputs.add(in);
            }
            c.put("inputs", inputs);
            c.put("labels", new ArrayList<Object>(bundle.labels));
            c.put("max_seq_len", bundle.maxSeqLen);
            c.put("seq_len", seqLen);
            c.put("precision", bundle.manifest.get("precision"));
            c.put("runs", runs);
            c.put("warmup", warmup);
        }
        if (baselineMb < 0) baselineMb = status("VmHWM");
        return Json.write(c);
    }

    public String tokenize(String text) {
        WordPiece.Encoding e = bundle.tokenizer.encode(text);
        return encoding(e);
    }

    public String benchFeed() {
        int length = bundle.dynamicSeq ? seqLen : bundle.maxSeqLen;
        return encoding(bundle.tokenizer.synthetic(length));
    }

    private static String encoding(WordPiece.Encoding e) {
        Map<String, Object> out = new LinkedHashMap<String, Object>();
        out.put("ids", e.ids);
        out.put("mask", e.mask);
        return Json.write(out);
    }

    public String texts() {
        return Json.write(new ArrayList<Object>(texts));
    }

    /** The model's output row (JSON numbers) -> {label, score, probabilities} or {embedding}. */
    public String postprocess(String outputsJson) {
        List<Object> xs = Json.list(Json.parse(outputsJson), "the model's output");
        double[] v = new double[xs.size()];
        for (int k = 0; k < v.length; k++) v[k] = ((Number) xs.get(k)).doubleValue();
        return Json.write(Postprocess.result(bundle, v));
    }

    /** Times the tokenizer on the built-in sentences (in this process: Java, as on the phone). */
    public String timeTokenizer() {
        for (String t : TIMED_TEXTS) bundle.tokenizer.encode(t); // warm-up
        tokenizeMs = new double[TIMED_TEXTS.length * passes];
        int i = 0;
        for (int p = 0; p < passes; p++) {
            for (String t : TIMED_TEXTS) {
                long start = System.nanoTime();
                bundle.tokenizer.encode(t);
                tokenizeMs[i++] = (System.nanoTime() - start) / 1e6;
            }
        }
        return Json.write(Stats.summarize(tokenizeMs));
    }

    /** The page's report -> the record (the Python agent's schema), written by the platform. */
    public String finish(String reportJson) {
        Map<String, Object> out;
        try {
            Map<String, Object> report = Json.obj(Json.parse(reportJson), "the page's report");
            out = build(report);
        } catch (RuntimeException e) {
            out = new LinkedHashMap<String, Object>();
            out.put("status", "error");
            out.put("bug", true);
            out.put("error_type", e.getClass().getSimpleName());
            out.put("error", "the app could not read the page's report: " + e.getMessage());
        }
        record = Json.write(out);
        try {
            platform.writeRecord(record);
        } catch (IOException e) {
            return "cannot write the record: " + e.getMessage();
        }
        return "ok";
    }

    private Map<String, Object> build(Map<String, Object> report) {
        Map<String, Object> r = new LinkedHashMap<String, Object>();
        String status = String.valueOf(report.get("status"));
        if (error != null || !"ok".equals(status)) {
            boolean bug = error == null && !"failed".equals(status);
            r.put("status", bug ? "error" : "failed");
            if (bug) r.put("bug", true);
            r.put("error", error != null ? error : String.valueOf(report.get("error")));
            if (report.get("shown") != null) r.put("shown", report.get("shown"));
            return r;
        }
        if (!"bench".equals(mode)) { // classify: the page's results, as they are
            r.put("status", "ok");
            r.put("results", report.get("results"));
            return r;
        }
        List<Object> raw = Json.list(report.get("samples_ms"), "samples_ms");
        double[] samples = new double[raw.size()];
        List<Object> rounded = new ArrayList<Object>();
        for (int k = 0; k < samples.length; k++) {
            samples[k] = ((Number) raw.get(k)).doubleValue();
            rounded.add(Stats.round4(samples[k]));
        }
        Map<String, Object> latency = Stats.summarize(samples);
        double peak = status("VmHWM");
        r.put("status", "ok");
        r.put("method", "measured");
        r.put("source", bundle.manifest.get("source"));
        r.put("model_sha256", bundle.sha256(bundle.modelFile));
        r.put("format", bundle.manifest.get("format"));
        r.put("precision", bundle.manifest.get("precision"));
        r.put("runtime", "onnxruntime-web");
        r.put("runtime_version", report.get("runtime_version"));
        r.put("backend", report.get("backend"));
        r.put("threads", 1);
        r.put("seq_len", seqLen);
        r.put("effective_seq_len", bundle.dynamicSeq ? seqLen : bundle.maxSeqLen);
        r.put("runs", runs);
        r.put("warmup", warmup);
        r.put("latency_ms", latency);
        r.put("samples_ms", rounded);
        r.put("load_ms", report.get("load_ms"));
        r.put("first_run_ms", report.get("first_run_ms"));
        Map<String, Object> mem = new LinkedHashMap<String, Object>();
        mem.put("peak_rss_mb", round2(peak));
        mem.put("runtime_only_rss_mb", round2(baselineMb));
        mem.put("model_peak_delta_mb", round2(peak - baselineMb));
        mem.put("file_mb", Math.round(bundle.modelBytes / 1e3) / 1e3);
        mem.put("js_heap_mb", report.get("js_heap_mb"));
        r.put("memory", mem);
        Map<String, Object> machine = new LinkedHashMap<String, Object>();
        machine.put("cpu_model", cpuModel());
        machine.put("machine", System.getProperty("os.arch"));
        machine.put("cores", Runtime.getRuntime().availableProcessors());
        String gov = firstLine("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
        List<Object> govs = new ArrayList<Object>();
        if (gov != null) govs.add(gov);
        machine.put("governor", gov == null ? null : govs);
        machine.put("loadavg", null);
        machine.put("busy_cores_before", null);
        machine.put("device_model", platform.deviceModel());
        machine.put("android_version", platform.osVersion());
        machine.put("user_agent", report.get("user_agent"));
        r.put("machine", machine);
        List<Object> warnings = new ArrayList<Object>();
        warnings.add("memory is the app process's own (VmHWM); the WebView's renderer, where the "
                + "model runs, is a separate process on Android 8+ and is not counted");
        if (!bundle.dynamicSeq && bundle.maxSeqLen != seqLen) {
            warnings.add("static-shape file: seq " + seqLen + " runs padded to " + bundle.maxSeqLen);
        }
        r.put("warnings", warnings);
        if (tokenizeMs != null) {
            Map<String, Object> tok = Stats.summarize(tokenizeMs);
            tok.put("sentences", TIMED_TEXTS.length);
            tok.put("passes", passes);
            r.put("tokenize_ms", tok);
        }
        r.put("app_version", APP_VERSION);
        return r;
    }

    private static double round2(double x) {
        return Math.round(x * 100) / 100.0;
    }

    /** A field of /proc/self/status in MB (Linux and Android), or -1 where it cannot be read. */
    static double status(String key) {
        BufferedReader in = null;
        try {
            in = new BufferedReader(new FileReader(new File("/proc/self/status")));
            String line;
            while ((line = in.readLine()) != null) {
                if (line.startsWith(key + ":")) {
                    String[] parts = line.substring(key.length() + 1).trim().split("\\s+");
                    return Long.parseLong(parts[0]) / 1024.0;
                }
            }
        } catch (IOException | NumberFormatException ignored) {
            return -1;
        } finally {
            if (in != null) try { in.close(); } catch (IOException ignored) { }
        }
        return -1;
    }

    static String cpuModel() {
        BufferedReader in = null;
        try {
            in = new BufferedReader(new FileReader(new File("/proc/cpuinfo")));
            String line;
            while ((line = in.readLine()) != null) {
                String key = line.split(":")[0].trim();
                if (key.equals("model name") || key.equals("Hardware")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (IOException ignored) {
            return System.getProperty("os.arch");
        } finally {
            if (in != null) try { in.close(); } catch (IOException ignored) { }
        }
        return System.getProperty("os.arch");
    }

    static String firstLine(String path) {
        BufferedReader in = null;
        try {
            in = new BufferedReader(new FileReader(new File(path)));
            String line = in.readLine();
            return line == null ? null : line.trim();
        } catch (IOException e) {
            return null;
        } finally {
            if (in != null) try { in.close(); } catch (IOException ignored) { }
        }
    }
}
