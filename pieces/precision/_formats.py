"""Floating-point formats by name: :class:`Format` and :func:`parse_precision`
(the format arithmetic itself is in :mod:`pieces.precision`).

Examples
--------
>>> parse_precision("bf16").bits, parse_precision("p7").emin
(8, -126)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

__all__ = ["Format", "parse_precision", "PRECISIONS"]

#: Named precisions (``pK`` is accepted for 2 <= K <= 24 as well).
PRECISIONS = ("fp64", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class Format:
    """A binary floating-point format.

    Attributes
    ----------
    name : str
    bits : int
        Significand bits including the implicit one (53 for fp64).
    emin, emax : int
        Exponent range of normal numbers.
    native : bool
        Run natively (fp64, fp32) rather than emulated.
    """

    name: str
    bits: int
    emin: int
    emax: int
    native: bool

    @property
    def max(self) -> float:
        return float((2.0 - 2.0 ** (1 - self.bits)) * 2.0**self.emax)

    @property
    def eps(self) -> float:
        """Unit roundoff u = 2**-bits."""
        return 2.0 ** (-self.bits)

    @property
    def compute_dtype(self):
        """dtype the kernels compute in: float32 for fp32, fp16, bf16 and pK with K <= 8
        (exact, see the module doc), float64 for fp64 and the wider pK."""
        f32 = self.name in ("fp32", "fp16", "bf16") or (not self.native and self.bits <= 8)
        return np.dtype(np.float32) if f32 else np.dtype(np.float64)

    @property
    def rounding(self):
        """The rounding spec of the kernels: ``()`` for a native format, else
        ``(bits, emin, emax, limit)`` with ``limit`` (the largest finite value) in the
        compute dtype."""
        if self.native:
            return ()
        return (self.bits, self.emin, self.emax, self.compute_dtype.type(self.max))


_NAMED = {
    "fp64": Format("fp64", 53, -1022, 1023, True),
    "fp32": Format("fp32", 24, -126, 127, True),
    "fp16": Format("fp16", 11, -14, 15, False),
    "bf16": Format("bf16", 8, -126, 127, False),
}


def parse_precision(name) -> Format:
    """The :class:`Format` called ``name``.

    Raises
    ------
    ValueError
        For an unknown name or ``pK`` with K outside 2..24.
    """
    if isinstance(name, Format):
        return name
    if isinstance(name, str):
        if name in _NAMED:
            return _NAMED[name]
        m = re.fullmatch(r"p(\d+)", name)
        if m:
            k = int(m.group(1))
            if not 2 <= k <= 24:
                raise ValueError(f"precision {name!r}: K must be in 2..24, got {k}")
            return Format(name, k, -126, 127, False)
    raise ValueError(
        f"unknown precision {name!r}; expected fp64, fp32, fp16, bf16 or pK with 2 <= K <= 24"
    )
