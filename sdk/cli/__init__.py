"""The ``pocketbert`` command line: one module per group of verbs, ``main`` in main.py."""

from pocketbert.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
