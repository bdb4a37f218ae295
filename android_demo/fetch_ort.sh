#!/usr/bin/env bash
# Fetches onnxruntime-web's wasm build from the npm registry (npm checks the tarball's
# integrity) into a cache the APK build and the headless-Chromium harness read:
#   ${POCKETBERT_CACHE:-~/.cache/pocketbert}/onnxruntime-web-VERSION/{ort.wasm.min.js, ort-wasm-simd-threaded.{mjs,wasm}, LICENSE}
# Prints the directory.
set -euo pipefail
VERSION="${ORT_WEB_VERSION:-1.31.1}"
CACHE="${POCKETBERT_CACHE:-$HOME/.cache/pocketbert}"
DEST="$CACHE/onnxruntime-web-$VERSION"
FILES="ort.wasm.min.js ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm"
if [ -f "$DEST/ort-wasm-simd-threaded.wasm" ]; then echo "$DEST"; exit 0; fi
command -v npm >/dev/null || { echo "fetch_ort.sh: npm is not installed (apt-get install npm)" >&2; exit 3; }
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && npm pack --silent "onnxruntime-web@$VERSION" >/dev/null && tar xzf onnxruntime-web-*.tgz)
mkdir -p "$TMP/out"
for f in $FILES; do cp "$TMP/package/dist/$f" "$TMP/out/"; done
cp "$TMP/package/LICENSE" "$TMP/out/LICENSE" 2>/dev/null || true
mkdir -p "$CACHE" && rm -rf "$DEST" && mv "$TMP/out" "$DEST"
echo "$DEST"
