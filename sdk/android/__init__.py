"""The Android demo's host side: its Java compiled for this machine, its page run in headless
Chromium (the same page and Java Bridge the app's WebView runs), and the APK build.

These work from a source checkout (they read ``android_demo/`` beside ``sdk/``).
"""
