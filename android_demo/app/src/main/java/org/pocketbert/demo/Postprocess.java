package org.pocketbert.demo;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Model output -> what the app shows: softmax over the logits and the labels, or the embedding. */
public final class Postprocess {
    private Postprocess() { }

    /** Softmax in double precision, max-shifted (as numpy's in pocketbert.predict). */
    public static double[] softmax(double[] logits) {
        double max = Double.NEGATIVE_INFINITY;
        for (double x : logits) max = Math.max(max, x);
        double[] p = new double[logits.length];
        double sum = 0;
        for (int k = 0; k < logits.length; k++) {
            p[k] = Math.exp(logits[k] - max);
            sum += p[k];
        }
        for (int k = 0; k < p.length; k++) p[k] /= sum;
        return p;
    }

    /** {label, score, probabilities} as pocketbert.load(bundle).predict returns it. */
    public static Map<String, Object> classify(double[] logits, List<String> labels) {
        if (logits.length != labels.size()) {
            throw new DemoError("the model gave " + logits.length + " outputs but labels.json has "
                    + labels.size() + " labels; re-export the bundle");
        }
        double[] p = softmax(logits);
        int best = 0;
        for (int k = 1; k < p.length; k++) if (p[k] > p[best]) best = k;
        Map<String, Object> probs = new LinkedHashMap<String, Object>();
        for (int k = 0; k < p.length; k++) probs.put(labels.get(k), p[k]);
        Map<String, Object> out = new LinkedHashMap<String, Object>();
        out.put("label", labels.get(best));
        out.put("score", p[best]);
        out.put("probabilities", probs);
        return out;
    }

    public static Map<String, Object> embed(double[] vector) {
        Map<String, Object> out = new LinkedHashMap<String, Object>();
        List<Object> v = new ArrayList<Object>();
        for (double x : vector) v.add(x);
        out.put("embedding", v);
        return out;
    }

    public static Map<String, Object> result(DemoBundle bundle, double[] outputs) {
        return "embedding".equals(bundle.task) ? embed(outputs) : classify(outputs, bundle.labels);
    }
}
