#!/usr/bin/env bash
# android_demo/build.sh BUNDLE OUT.apk: a signed debug APK of the demo app with BUNDLE in its
# assets, built without Gradle or Maven: aapt2 compile/link, javac (Java 8 bytecode against
# android.jar API 23), dx, zipalign, apksigner with a debug key made by keytool.
# Tools: android_demo/install_tools.sh; onnxruntime-web: android_demo/fetch_ort.sh.
set -euo pipefail
if [ $# -ne 2 ]; then echo "usage: android_demo/build.sh BUNDLE OUT.apk" >&2; exit 2; fi
BUNDLE="$1"; OUT="$2"
HERE="$(cd "$(dirname "$0")" && pwd)"
SDK="${ANDROID_JAR:-/usr/lib/android-sdk/platforms/android-23/android.jar}"
CACHE="${POCKETBERT_CACHE:-$HOME/.cache/pocketbert}"
die() { echo "build.sh: $*" >&2; exit 2; }
DX="$(command -v dalvik-exchange || command -v dx || true)"
for t in aapt2 javac zipalign apksigner keytool zip; do
  command -v "$t" >/dev/null || die "$t is not installed; run android_demo/install_tools.sh"
done
[ -n "$DX" ] || die "dx is not installed (package dalvik-exchange); run android_demo/install_tools.sh"
[ -f "$SDK" ] || die "android.jar (API 23) is not at $SDK (package android-sdk-platform-23); run android_demo/install_tools.sh"
[ -f "$BUNDLE/manifest.json" ] || die "'$BUNDLE' is not a bundle directory (no manifest.json); export one with pocketbert export"
FORMAT="$(sed -n 's/^ *"format": *"\([a-z0-9-]*\)".*/\1/p' "$BUNDLE/manifest.json" | head -1)"
[ "$FORMAT" = onnx ] || die "'$BUNDLE' is a ${FORMAT:-unknown} bundle; the app runs onnx bundles only: export one with --format onnx"
case "$OUT" in *.apk) ;; *) die "OUT must end in .apk (got '$OUT')";; esac
ORT="$(bash "$HERE/fetch_ort.sh")" || die "onnxruntime-web is not fetched; run android_demo/fetch_ort.sh (needs npm)"

WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
MAIN="$HERE/app/src/main"
mkdir -p "$WORK/assets/web/ort" "$WORK/assets/bundle" "$WORK/gen" "$WORK/classes" "$WORK/dex"
find "$MAIN/assets/web" -maxdepth 1 -type f -exec cp {} "$WORK/assets/web/" \;
cp "$ORT"/ort.wasm.min.js "$ORT"/ort-wasm-simd-threaded.mjs "$ORT"/ort-wasm-simd-threaded.wasm "$WORK/assets/web/ort/"
for f in "$BUNDLE"/*; do
  [ -f "$f" ] && [ ! -L "$f" ] || die "'$f' is not a regular file; bundles carry regular files only"
  cp "$f" "$WORK/assets/bundle/"
done

aapt2 compile --dir "$MAIN/res" -o "$WORK/res.zip"
aapt2 link -o "$WORK/unsigned.apk" -I "$SDK" --manifest "$MAIN/AndroidManifest.xml" \
  --java "$WORK/gen" -A "$WORK/assets" -0 wasm -0 onnx --debug-mode "$WORK/res.zip"
javac -source 8 -target 8 -bootclasspath "$SDK" -Xlint:-options -encoding UTF-8 -nowarn \
  -d "$WORK/classes" $(find "$MAIN/java" "$WORK/gen" -name '*.java')
"$DX" --dex --min-sdk-version=21 --output="$WORK/dex/classes.dex" "$WORK/classes"
(cd "$WORK/dex" && zip -q -X "$WORK/unsigned.apk" classes.dex)
zipalign -f -p 4 "$WORK/unsigned.apk" "$WORK/aligned.apk"

KEY="$CACHE/android-debug.keystore"
if [ ! -f "$KEY" ]; then
  mkdir -p "$CACHE"
  keytool -genkeypair -keystore "$KEY.tmp" -storepass android -keypass android -alias androiddebugkey \
    -keyalg RSA -keysize 2048 -validity 10000 -dname "CN=Android Debug,O=Android,C=US" >/dev/null 2>&1
  mv "$KEY.tmp" "$KEY"
fi
apksigner sign --ks "$KEY" --ks-pass pass:android --key-pass pass:android \
  --out "$WORK/signed.apk" "$WORK/aligned.apk"
mkdir -p "$(dirname "$OUT")"
mv "$WORK/signed.apk" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo "$OUT"
