package org.pocketbert.demo;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The bundle's tokenizer.json as the Python `tokenizers` library runs it, for the one kind the
 * app supports: BertNormalizer + BertPreTokenizer + WordPiece, with [CLS] text [SEP] around it.
 * Ids come out as {@code pocketbert.load(bundle)} feeds them: truncated to the bundle's max
 * length, at least 3 long (zero-padded, mask 0), or padded to the max length for fixed-shape files.
 */
public final class WordPiece {
    public static final String SUPPORTED =
            "WordPiece with BertNormalizer and BertPreTokenizer (BERT, DistilBERT, MobileBERT, "
                    + "SqueezeBERT, ELECTRA vocabularies)";
    static final int MIN_LEN = 3;

    private final Map<String, Integer> vocab = new HashMap<String, Integer>();
    private final String unk;
    private final String prefix;
    private final int maxWordChars;
    private final boolean cleanText, chineseChars, stripAccents, lowercase;
    private final int cls, sep;
    private final List<String> added = new ArrayList<String>(); // matched on the raw text
    private final Map<String, Integer> addedIds = new HashMap<String, Integer>();
    private final int maxLen;
    private final boolean padToMax;

    /** Ids and attention mask of one text. */
    public static final class Encoding {
        public final int[] ids;
        public final int[] mask;

        Encoding(int[] ids, int[] mask) {
            this.ids = ids;
            this.mask = mask;
        }
    }

    public WordPiece(String tokenizerJson, int maxLen, boolean padToMax) {
        Map<String, Object> t = Json.obj(Json.parse(tokenizerJson), "tokenizer.json");
        Map<String, Object> model = Json.obj(t.get("model"), "tokenizer.json's model");
        String type = String.valueOf(model.get("type"));
        Object norm = t.get("normalizer");
        Object pre = t.get("pre_tokenizer");
        String normType = norm instanceof Map ? String.valueOf(((Map<?, ?>) norm).get("type")) : "none";
        String preType = pre instanceof Map ? String.valueOf(((Map<?, ?>) pre).get("type")) : "none";
        if (!"WordPiece".equals(type) || !"BertNormalizer".equals(normType)
                || !"BertPreTokenizer".equals(preType)) {
            throw new DemoError("this bundle's tokenizer is " + type + " (normalizer " + normType
                    + ", pre-tokenizer " + preType + "); the app tokenizes " + SUPPORTED
                    + " only: export a model with a WordPiece vocabulary");
        }
        Map<String, Object> n = Json.obj(norm, "normalizer");
        cleanText = !Boolean.FALSE.equals(n.get("clean_text"));
        chineseChars = !Boolean.FALSE.equals(n.get("handle_chinese_chars"));
        lowercase = !Boolean.FALSE.equals(n.get("lowercase"));
        Object strip = n.get("strip_accents");
        stripAccents = strip == null ? lowercase : Boolean.TRUE.equals(strip);
        Map<String, Object> v = Json.obj(model.get("vocab"), "tokenizer.json's vocab");
        for (Map.Entry<String, Object> e : v.entrySet()) {
            vocab.put(e.getKey(), ((Number) e.getValue()).intValue());
        }
        unk = model.get("unk_token") == null ? "[UNK]" : String.valueOf(model.get("unk_token"));
        prefix = model.get("continuing_subword_prefix") == null
                ? "##" : String.valueOf(model.get("continuing_subword_prefix"));
        maxWordChars = model.get("max_input_chars_per_word") == null
                ? 100 : ((Number) model.get("max_input_chars_per_word")).intValue();
        if (t.get("added_tokens") instanceof List) {
            for (Object o : Json.list(t.get("added_tokens"), "added_tokens")) {
                Map<String, Object> a = Json.obj(o, "an added token");
                String content = Json.str(a.get("content"), "an added token's content");
                if (Boolean.TRUE.equals(a.get("normalized")) && !Boolean.TRUE.equals(a.get("special"))) {
                    continue; // matched after normalization: the WordPiece vocabulary has it anyway
                }
                added.add(content);
                addedIds.put(content, ((Number) a.get("id")).intValue());
            }
        }
        int[] special = specialIds(t.get("post_processor"));
        cls = special[0];
        sep = special[1];
        this.maxLen = maxLen;
        this.padToMax = padToMax;
        if (maxLen < MIN_LEN) throw new DemoError("the bundle's max_seq_len " + maxLen + " is below 3");
    }

    private int[] specialIds(Object post) {
        Integer c = null, s = null;
        if (post instanceof Map) {
            Map<String, Object> p = Json.obj(post, "post_processor");
            if ("TemplateProcessing".equals(p.get("type")) && p.get("special_tokens") instanceof Map) {
                Map<String, Object> sp = Json.obj(p.get("special_tokens"), "special_tokens");
                List<Object> single = Json.list(p.get("single"), "the single template");
                List<Integer> ids = new ArrayList<Integer>();
                for (Object piece : single) {
                    Map<String, Object> m = Json.obj(piece, "a template piece");
                    if (m.containsKey("SpecialToken")) {
                        String id = String.valueOf(Json.obj(m.get("SpecialToken"), "token").get("id"));
                        List<Object> tokIds = Json.list(Json.obj(sp.get(id), id).get("ids"), id);
                        ids.add(((Number) tokIds.get(0)).intValue());
                    }
                }
                if (ids.size() == 2) { c = ids.get(0); s = ids.get(1); }
            } else if ("BertProcessing".equals(p.get("type"))) {
                c = ((Number) Json.list(p.get("cls"), "cls").get(1)).intValue();
                s = ((Number) Json.list(p.get("sep"), "sep").get(1)).intValue();
            }
        }
        if (c == null) c = vocab.get("[CLS]");
        if (s == null) s = vocab.get("[SEP]");
        if (c == null || s == null) {
            throw new DemoError("tokenizer.json names no [CLS]/[SEP] tokens; re-export the bundle");
        }
        return new int[] {c, s};
    }

    public int maxLen() {
        return maxLen;
    }

    public int vocabSize() {
        return vocab.size();
    }

    /** [CLS], then ids from a fixed-seed generator over the vocabulary, then [SEP]: the worst
     * case for a length, as the Python agent times it. */
    public Encoding synthetic(int length) {
        int[] ids = new int[length];
        int[] mask = new int[length];
        java.util.Random rng = new java.util.Random(0);
        int size = Math.max(vocab.size(), 8);
        for (int k = 0; k < length; k++) { ids[k] = 5 + rng.nextInt(size - 5); mask[k] = 1; }
        ids[0] = cls;
        ids[length - 1] = sep;
        return new Encoding(ids, mask);
    }

    /** The ids `tokenizers` gives for {@code text}, [CLS] and [SEP] included, truncated. */
    public int[] ids(String text) {
        List<Integer> out = new ArrayList<Integer>();
        for (String part : splitAdded(text)) {
            Integer special = addedIds.get(part);
            if (special != null) { out.add(special); continue; }
            for (String word : preTokenize(normalize(part))) wordPiece(word, out);
        }
        int keep = Math.min(out.size(), maxLen - 2);
        int[] ids = new int[keep + 2];
        ids[0] = cls;
        for (int k = 0; k < keep; k++) ids[k + 1] = out.get(k);
        ids[keep + 1] = sep;
        return ids;
    }

    /** What the model is fed: ids zero-padded to at least 3 (or to the max length), and a mask. */
    public Encoding encode(String text) {
        int[] raw = ids(text);
        int len = padToMax ? maxLen : Math.max(raw.length, MIN_LEN);
        int[] ids = new int[len];
        int[] mask = new int[len];
        for (int k = 0; k < Math.min(raw.length, len); k++) { ids[k] = raw[k]; mask[k] = 1; }
        return new Encoding(ids, mask);
    }

    // -- added tokens: split out of the raw text first, longest match at each place -----------

    private List<String> splitAdded(String text) {
        List<String> parts = new ArrayList<String>();
        int start = 0, k = 0;
        while (k < text.length()) {
            String hit = null;
            for (String a : added) {
                if (text.startsWith(a, k) && (hit == null || a.length() > hit.length())) hit = a;
            }
            if (hit == null) { k++; continue; }
            if (k > start) parts.add(text.substring(start, k));
            parts.add(hit);
            k += hit.length();
            start = k;
        }
        if (start < text.length()) parts.add(text.substring(start));
        return parts;
    }

    // -- BertNormalizer -------------------------------------------------------------------------

    String normalize(String text) {
        StringBuilder b = new StringBuilder();
        for (int k = 0; k < text.length(); ) {
            int c = text.codePointAt(k);
            k += Character.charCount(c);
            if (cleanText) {
                if (c == 0 || c == 0xFFFD || isControl(c)) continue;
                if (isWhitespace(c)) { b.append(' '); continue; }
            }
            if (chineseChars && isChinese(c)) {
                b.append(' ').appendCodePoint(c).append(' ');
            } else {
                b.appendCodePoint(c);
            }
        }
        String s = b.toString();
        if (stripAccents) {
            String nfd = Normalizer.normalize(s, Normalizer.Form.NFD);
            StringBuilder kept = new StringBuilder();
            for (int k = 0; k < nfd.length(); ) {
                int c = nfd.codePointAt(k);
                k += Character.charCount(c);
                if (Character.getType(c) != Character.NON_SPACING_MARK) kept.appendCodePoint(c);
            }
            s = kept.toString();
        }
        if (lowercase) {
            StringBuilder low = new StringBuilder();
            for (int k = 0; k < s.length(); ) {
                int c = s.codePointAt(k);
                k += Character.charCount(c);
                // one code point at a time, full mapping, no context (as Rust's char::to_lowercase)
                low.append(new String(Character.toChars(c)).toLowerCase(Locale.ROOT));
            }
            s = low.toString();
        }
        return s;
    }

    static boolean isWhitespace(int c) { // Unicode White_Space, as Rust's char::is_whitespace
        return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680
                || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F
                || c == 0x205F || c == 0x3000;
    }

    static boolean isControl(int c) { // tokenizers: any "Other" category but tab, newline, CR
        if (c == '\t' || c == '\n' || c == '\r') return false;
        int t = Character.getType(c);
        return t == Character.CONTROL || t == Character.FORMAT || t == Character.SURROGATE
                || t == Character.PRIVATE_USE || t == Character.UNASSIGNED;
    }

    static boolean isChinese(int c) {
        return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF)
                || (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F)
                || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF)
                || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
    }

    static boolean isPunctuation(int c) {
        if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) {
            return true;
        }
        int t = Character.getType(c);
        return t == Character.CONNECTOR_PUNCTUATION || t == Character.DASH_PUNCTUATION
                || t == Character.START_PUNCTUATION || t == Character.END_PUNCTUATION
                || t == Character.INITIAL_QUOTE_PUNCTUATION || t == Character.FINAL_QUOTE_PUNCTUATION
                || t == Character.OTHER_PUNCTUATION;
    }

    // -- BertPreTokenizer: split on whitespace, each punctuation mark its own word -------------

    static List<String> preTokenize(String text) {
        List<String> words = new ArrayList<String>();
        StringBuilder cur = new StringBuilder();
        for (int k = 0; k < text.length(); ) {
            int c = text.codePointAt(k);
            k += Character.charCount(c);
            if (isWhitespace(c)) {
                flush(cur, words);
            } else if (isPunctuation(c)) {
                flush(cur, words);
                words.add(new String(Character.toChars(c)));
            } else {
                cur.appendCodePoint(c);
            }
        }
        flush(cur, words);
        return words;
    }

    private static void flush(StringBuilder cur, List<String> words) {
        if (cur.length() > 0) {
            words.add(cur.toString());
            cur.setLength(0);
        }
    }

    // -- WordPiece: greedy longest match first; a word with no match is one [UNK] -------------

    private void wordPiece(String word, List<Integer> out) {
        int chars = word.codePointCount(0, word.length());
        Integer unkId = vocab.get(unk);
        if (chars > maxWordChars) {
            if (unkId != null) out.add(unkId);
            return;
        }
        List<Integer> pieces = new ArrayList<Integer>();
        int start = 0;
        while (start < word.length()) {
            int end = word.length();
            Integer found = null;
            int foundEnd = -1;
            while (start < end) {
                String sub = word.substring(start, end);
                if (start > 0) sub = prefix + sub;
                Integer id = vocab.get(sub);
                if (id != null) { found = id; foundEnd = end; break; }
                end = word.offsetByCodePoints(end, -1);
            }
            if (found == null) {
                if (unkId != null) out.add(unkId);
                return;
            }
            pieces.add(found);
            start = foundEnd;
        }
        out.addAll(pieces);
    }
}
