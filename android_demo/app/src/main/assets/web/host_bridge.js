// Off Android (headless Chromium on a computer) there is no Java object in the page: this stands
// in for it with synchronous requests to the harness's loopback server, which hands each call
// to the same Java Bridge class the app uses. In the app, the activity's object is already there.
(function () {
  if (window.PocketBertBridge) return;
  function call(method, arg) {
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/bridge/" + method, false);
    xhr.send(arg === undefined ? "" : String(arg));
    if (xhr.status !== 200) throw new Error("bridge " + method + ": HTTP " + xhr.status);
    return xhr.responseText;
  }
  var names = ["config", "tokenize", "benchFeed", "texts", "postprocess", "timeTokenizer", "finish", "log"];
  var bridge = {};
  names.forEach(function (n) { bridge[n] = function (arg) { return call(n, arg); }; });
  window.PocketBertBridge = bridge;
})();
