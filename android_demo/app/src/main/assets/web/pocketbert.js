// The page the app's WebView shows (and headless Chromium runs on a computer): it runs the
// bundle's ONNX model with onnxruntime-web (wasm); tokenization, softmax, labels and the
// benchmark record are the Java Bridge's (window.PocketBertBridge).
"use strict";
(function () {
  var B = window.PocketBertBridge;
  var $ = function (id) { return document.getElementById(id); };
  var session = null, cfg = null;

  function showError(msg) {
    $("error").style.display = "block";
    $("error").textContent = msg;
    $("form").style.display = "none";
  }

  function tensor(name, dtype, values) {
    var n = values.length;
    var data;
    if (dtype === "int64") {
      data = new BigInt64Array(n);
      for (var i = 0; i < n; i++) data[i] = BigInt(values[i]);
    } else if (dtype === "int32") {
      data = Int32Array.from(values);
    } else {
      throw new Error("input " + name + " has dtype " + dtype + "; the page feeds int64 or int32");
    }
    return new ort.Tensor(dtype, data, [1, n]);
  }

  function feeds(enc) {
    var f = {};
    cfg.inputs.forEach(function (inp) {
      var values = inp.name === "attention_mask" ? enc.mask
        : inp.name === "input_ids" ? enc.ids
        : enc.ids.map(function () { return 0; }); // token_type_ids: one segment
      f[inp.name] = tensor(inp.name, inp.dtype, values);
    });
    return f;
  }

  async function infer(enc) {
    var out = await session.run(feeds(enc));
    return Array.from(out[session.outputNames[0]].data);
  }

  async function classify(text) {
    var enc = JSON.parse(B.tokenize(text));
    return JSON.parse(B.postprocess(JSON.stringify(await infer(enc))));
  }

  function render(result) {
    if (result.embedding) {
      $("label").textContent = "embedding, " + result.embedding.length + " dimensions";
      $("probs").textContent = result.embedding.slice(0, 6).map(function (x) { return x.toFixed(4); }).join(", ") + ", …";
      return;
    }
    $("label").textContent = result.label + " (" + (100 * result.score).toFixed(1) + "%)";
    $("probs").innerHTML = "";
    Object.keys(result.probabilities).forEach(function (lab) {
      var p = result.probabilities[lab];
      var row = document.createElement("div");
      row.className = "row";
      row.innerHTML = '<span class="name"></span><span class="bar"></span><span class="p"></span>';
      row.children[0].textContent = lab;
      row.children[1].style.width = Math.round(200 * p) + "px";
      row.children[2].textContent = (100 * p).toFixed(1) + "%";
      $("probs").appendChild(row);
    });
  }

  async function benchmark() {
    var tok = JSON.parse(B.timeTokenizer());
    var enc = JSON.parse(B.benchFeed());
    var f = feeds(enc);
    var out = session.outputNames[0];
    var t = performance.now();
    await session.run(f);
    var first = performance.now() - t;
    for (var w = 0; w < cfg.warmup; w++) await session.run(f);
    var samples = new Array(cfg.runs);
    for (var i = 0; i < cfg.runs; i++) {
      var start = performance.now();
      var r = await session.run(f);
      samples[i] = performance.now() - start;
      if (!r[out]) throw new Error("the model gave no output " + out);
    }
    var sorted = samples.slice().sort(function (a, b) { return a - b; });
    $("status").textContent = "benchmark: " + cfg.runs + " runs at " + enc.ids.length + " tokens, p50 "
      + sorted[Math.floor(sorted.length / 2)].toFixed(2) + " ms; tokenizer p50 " + tok.p50 + " ms";
    return { samples_ms: samples, first_run_ms: first };
  }

  async function main() {
    cfg = JSON.parse(B.config());
    if (cfg.error) {
      showError(cfg.error);
      B.finish(JSON.stringify({ status: "failed", error: cfg.error, shown: $("error").textContent }));
      return;
    }
    $("bundle").textContent = cfg.task + " bundle, " + (cfg.precision || "") + ", up to " + cfg.max_seq_len + " tokens";
    ort.env.wasm.numThreads = 1; // a WebView has no cross-origin isolation, hence no wasm threads
    ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
    var t0 = performance.now();
    var bytes = await (await fetch(cfg.model_url)).arrayBuffer();
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    var loadMs = performance.now() - t0;
    if (cfg.mode === "bench") {
      var res = await benchmark();
      var mem = performance.memory ? performance.memory.usedJSHeapSize / 1e6 : null;
      B.finish(JSON.stringify({
        status: "ok", samples_ms: res.samples_ms, first_run_ms: res.first_run_ms, load_ms: loadMs,
        runtime_version: ort.env.versions ? ort.env.versions.web : null, backend: "wasm",
        js_heap_mb: mem, user_agent: navigator.userAgent,
      }));
      return;
    }
    if (cfg.mode === "classify") {
      var texts = JSON.parse(B.texts()), results = [];
      for (var k = 0; k < texts.length; k++) results.push(await classify(texts[k]));
      if (results.length) render(results[results.length - 1]);
      B.finish(JSON.stringify({ status: "ok", results: results }));
      return;
    }
    $("form").style.display = "block";
    $("go").onclick = function () {
      classify($("text").value).then(render).catch(function (e) { showError(String(e)); });
    };
    render(await classify($("text").value));
  }

  main().catch(function (e) {
    showError("the page failed: " + e);
    try {
      B.finish(JSON.stringify({ status: "error", error: String(e && e.message || e), shown: $("error").textContent }));
    } catch (ignored) { }
  });
})();
