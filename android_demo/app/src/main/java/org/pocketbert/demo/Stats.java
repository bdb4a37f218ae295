package org.pocketbert.demo;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/** p50/p90/p99, mean, std, min, max and the median's 95% CI, as pocketbert.profiler.stats has them. */
public final class Stats {
    private Stats() { }

    static double percentile(double[] sorted, double q) { // numpy's default (linear)
        double pos = q / 100.0 * (sorted.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(lo + 1, sorted.length - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }

    static double round4(double x) {
        return Math.round(x * 1e4) / 1e4;
    }

    public static Map<String, Object> summarize(double[] samples) {
        if (samples.length == 0) throw new IllegalArgumentException("no samples to summarize");
        double[] xs = samples.clone();
        Arrays.sort(xs);
        int n = xs.length;
        double sum = 0;
        for (double x : xs) sum += x;
        double mean = sum / n;
        double var = 0;
        for (double x : xs) var += (x - mean) * (x - mean);
        double std = n > 1 ? Math.sqrt(var / (n - 1)) : 0.0;
        double lo = xs[0], hi = xs[n - 1];
        if (n >= 6) {
            double half = 1.959964 * Math.sqrt(n) / 2;
            lo = xs[(int) Math.max(0, Math.floor(n / 2.0 - half) - 1)];
            hi = xs[(int) Math.min(n - 1, Math.ceil(n / 2.0 + 1 + half) - 1)];
        }
        Map<String, Object> out = new LinkedHashMap<String, Object>();
        out.put("p50", round4(percentile(xs, 50)));
        out.put("p90", round4(percentile(xs, 90)));
        out.put("p99", round4(percentile(xs, 99)));
        out.put("mean", round4(mean));
        out.put("std", round4(std));
        out.put("min", round4(xs[0]));
        out.put("max", round4(xs[n - 1]));
        out.put("ci95_median", Arrays.asList((Object) round4(lo), (Object) round4(hi)));
        return out;
    }
}
