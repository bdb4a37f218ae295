"""What every group of CLI verbs shares: exit codes and quieting the converter libraries."""

from __future__ import annotations

import logging
import os
import warnings

EXIT_USER_ERROR = 2
EXIT_BUG = 1


def quiet_libraries() -> None:
    """Converter libraries are chatty; their warnings are not the user's business."""
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.disable(logging.WARNING)


def bug_line(what: str, command: str) -> str:
    """The one line that tells a bug in pocketbert from bad input, and how to report it."""
    return f"pocketbert: {what}: this is a bug in pocketbert; please report it with {command}"
