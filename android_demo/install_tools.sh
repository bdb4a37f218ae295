#!/usr/bin/env bash
# Installs what android_demo/build.sh needs, from Debian's archive only (no Gradle, no Maven):
# bookworm's aapt2, zipalign, apksigner and a JDK; android.jar (API 23) and dx from bullseye,
# reached through one extra source line that is pinned so nothing else comes from bullseye.
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
have() { command -v aapt2 >/dev/null && command -v zipalign >/dev/null && command -v apksigner >/dev/null \
  && command -v dalvik-exchange >/dev/null && command -v javac >/dev/null && command -v zip >/dev/null \
  && command -v npm >/dev/null && [ -f /usr/lib/android-sdk/platforms/android-23/android.jar ]; }
if have; then exit 0; fi
if ! grep -rqs "bullseye" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "deb http://deb.debian.org/debian bullseye main" | $SUDO tee /etc/apt/sources.list.d/pocketbert-bullseye.list >/dev/null
fi
$SUDO tee /etc/apt/preferences.d/pocketbert-bullseye >/dev/null <<'PIN'
Package: *
Pin: release n=bullseye
Pin-Priority: 1

Package: android-sdk-platform-23 dalvik-exchange
Pin: release n=bullseye
Pin-Priority: 500
PIN
$SUDO apt-get update -qq
NPM=""; command -v npm >/dev/null || NPM="npm"
$SUDO apt-get install -y -qq --no-install-recommends default-jdk-headless aapt zipalign apksigner zip \
  android-sdk-platform-23 dalvik-exchange $NPM >/dev/null
