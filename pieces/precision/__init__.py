"""Floating-point formats: names, parameters, and exact rounding emulation.

``_formats`` names the formats (:class:`Format`, :func:`parse_precision`);
``_rounding`` holds the CPU kernels' bit-level rounders; ``_arithmetic`` the format
arithmetic (``rnd``, ``mul``, ``div``, :func:`round_array`) and why the emulation is
exact.

Examples
--------
>>> from pieces.precision import parse_precision, round_array
>>> parse_precision("bf16").bits
8
>>> round_array([1.0 + 2.0**-9], "bf16").tolist()
[1.0]
"""

from ._arithmetic import (HAVE_F16C, PRECISIONS, FastRounding, Format, div, float32_rounding, kernel_rounding, mul,
                          parse_precision, rnd, round_array, round_to)

__all__ = [
    "Format", "parse_precision", "round_to", "round_array", "rnd", "mul", "div", "kernel_rounding",
    "float32_rounding", "FastRounding", "PRECISIONS", "HAVE_F16C",
]
