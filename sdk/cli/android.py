"""``pocketbert android BUNDLE -o app.apk``: the Android demo app with a bundle inside."""

from __future__ import annotations

import argparse


def cmd_android(args: argparse.Namespace) -> int:
    from pocketbert.android.apk import build_apk

    out = build_apk(args.bundle, args.output)
    print(out)
    return 0


def add_parsers(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "android",
        parents=[common],
        help="build the Android demo app (a signed debug APK) with a bundle inside",
    )
    p.add_argument("bundle", help="an ONNX bundle directory with a WordPiece tokenizer")
    p.add_argument("-o", "--output", default="pocketbert-demo.apk", help="the .apk to write")
    p.set_defaults(func=cmd_android)
