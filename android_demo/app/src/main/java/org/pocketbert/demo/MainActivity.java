package org.pocketbert.demo;

import android.app.Activity;
import android.content.Intent;
import android.content.res.AssetManager;
import android.os.Build;
import android.os.Bundle;
import android.util.Log;
import android.webkit.JavascriptInterface;
import android.webkit.WebResourceResponse;
import android.webkit.WebSettings;
import android.webkit.WebView;
import android.webkit.WebViewClient;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;

/**
 * Shows the page (assets/web) in a WebView with the Bridge as window.PocketBertBridge. The bundle
 * is the one packed in the APK's assets/bundle, or a directory given with
 * {@code am start -n org.pocketbert.demo/.MainActivity --es bundle /data/local/tmp/...};
 * {@code --ei runs N [--ei warmup K] [--ei seq L]} starts the benchmark, whose record lands in
 * the app's external files directory as record.json.
 */
public final class MainActivity extends Activity {
    static final String TAG = "pocketbert";
    static final String ORIGIN = "https://appassets.androidplatform.net/";
    private WebView web;
    private DemoBundle.Source source;

    @Override
    protected void onCreate(Bundle state) {
        super.onCreate(state);
        web = new WebView(this);
        setContentView(web);
        start(getIntent());
    }

    @Override
    protected void onNewIntent(Intent intent) {
        super.onNewIntent(intent);
        setIntent(intent);
        start(intent);
    }

    private void start(final Intent intent) {
        final String path = intent.getStringExtra("bundle");
        final boolean bench = intent.hasExtra("runs");
        final int runs = intent.getIntExtra("runs", 50);
        final int warmup = intent.getIntExtra("warmup", 5);
        final int seq = intent.getIntExtra("seq", 0);
        final File record = new File(getExternalFilesDir(null), "record.json");
        if (bench && record.exists() && !record.delete()) Log.w(TAG, "cannot remove " + record);
        source = path != null ? DemoBundle.directory(new File(path)) : assets("bundle/");
        final Bridge.Platform platform = new Bridge.Platform() {
            public String deviceModel() {
                return Build.MANUFACTURER + " " + Build.MODEL;
            }

            public String osVersion() {
                return Build.VERSION.RELEASE + " (API " + Build.VERSION.SDK_INT + ")";
            }

            public void writeRecord(String json) throws IOException {
                File tmp = new File(record.getPath() + ".tmp");
                OutputStreamWriter w = new OutputStreamWriter(new FileOutputStream(tmp), "UTF-8");
                try {
                    w.write(json + "\n");
                } finally {
                    w.close();
                }
                if (!tmp.renameTo(record)) throw new IOException("cannot rename " + tmp + " to " + record);
                Log.i(TAG, "record written to " + record);
            }
        };
        // hashing a bundle takes a while: off the main thread, then the page
        new Thread(new Runnable() {
            public void run() {
                final Bridge bridge = new Bridge(platform, source, bench ? "bench" : "ui", runs, warmup, seq, null);
                if (bridge.error() != null) Log.w(TAG, bridge.error());
                runOnUiThread(new Runnable() {
                    public void run() {
                        show(bridge);
                    }
                });
            }
        }).start();
    }

    private void show(Bridge bridge) {
        WebSettings s = web.getSettings();
        s.setJavaScriptEnabled(true);
        s.setAllowFileAccess(false);
        web.removeJavascriptInterface("PocketBertBridge");
        web.addJavascriptInterface(new JsBridge(bridge), "PocketBertBridge");
        web.setWebViewClient(new WebViewClient() {
            @Override
            public WebResourceResponse shouldInterceptRequest(WebView view, String url) {
                return serve(url);
            }
        });
        web.loadUrl(ORIGIN + "index.html");
    }

    /** The page's files from assets/web, the bundle's from where the bundle is. */
    WebResourceResponse serve(String url) {
        if (!url.startsWith(ORIGIN)) return null;
        String path = url.substring(ORIGIN.length());
        int q = path.indexOf('?');
        if (q >= 0) path = path.substring(0, q);
        if (path.contains("..")) return new WebResourceResponse("text/plain", null, null);
        try {
            InputStream in = path.startsWith("bundle/")
                    ? source.open(path.substring("bundle/".length()))
                    : getAssets().open("web/" + path);
            return new WebResourceResponse(mime(path), null, in);
        } catch (IOException e) {
            return new WebResourceResponse("text/plain", null, null);
        }
    }

    static String mime(String path) {
        if (path.endsWith(".html")) return "text/html";
        if (path.endsWith(".js") || path.endsWith(".mjs")) return "text/javascript";
        if (path.endsWith(".wasm")) return "application/wasm";
        if (path.endsWith(".json")) return "application/json";
        return "application/octet-stream";
    }

    private DemoBundle.Source assets(final String prefix) {
        final AssetManager am = getAssets();
        return new DemoBundle.Source() {
            public InputStream open(String name) throws IOException {
                return am.open(prefix + name);
            }

            public String where() {
                return "in the app's assets";
            }
        };
    }

    /** The Bridge as the page sees it (calls arrive on the WebView's bridge thread). */
    static final class JsBridge {
        private final Bridge b;

        JsBridge(Bridge b) {
            this.b = b;
        }

        @JavascriptInterface public String config() { return b.config(); }
        @JavascriptInterface public String tokenize(String text) { return b.tokenize(text); }
        @JavascriptInterface public String benchFeed() { return b.benchFeed(); }
        @JavascriptInterface public String texts() { return b.texts(); }
        @JavascriptInterface public String postprocess(String outputs) { return b.postprocess(outputs); }
        @JavascriptInterface public String timeTokenizer() { return b.timeTokenizer(); }
        @JavascriptInterface public String finish(String report) { return b.finish(report); }
        @JavascriptInterface public void log(String message) { Log.i(TAG, message); }
    }
}
