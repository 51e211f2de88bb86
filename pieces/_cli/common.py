"""What every command shares: the one-line usage error, the parser that raises it,
and argument types.

Examples
--------
>>> widths("16x3"), lr("auto"), json_float(float("inf"))
([16, 16, 16], 'auto', 'inf')
"""

from __future__ import annotations

import argparse
import math
import re

__all__ = ["UsageError", "Parser", "check_outputs", "json_float", "number", "widths", "lr"]


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # let "-inf" and "-1e3" be values, as "-1" already is
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+|inf|infinity)([eE][+-]?\d+)?$", re.I)

    def error(self, message):  # argparse prints usage + exits 2; keep it to one line
        raise UsageError(message)


def number(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def check_outputs(*paths):
    from .._io import check_writable

    for p in paths:
        reason = check_writable(p) if p else None
        if reason:
            raise UsageError(reason)


def json_float(v):
    return v if math.isfinite(v) else str(v)


def widths(text):
    try:
        if "x" in text:
            w, d = text.split("x")
            widths = [int(w)] * int(d)
        else:
            widths = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths must look like 16x8 or 16,16,8: {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive: {text!r}")
    return widths


def lr(text):
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None

