"""Floating-point formats: names, parameters, and exact rounding emulation.

A precision is ``fp64``, ``fp32``, ``fp16``, ``bf16`` or ``pK`` (K significand bits
including the implicit one, 2 <= K <= 24). fp64 and fp32 run natively. The others are
emulated: values are held in float64 and *every* arithmetic result is rounded to the
format (round to nearest, ties to even; the format's exponent range; overflow to inf;
subnormals). Computing a +, -, *, / or sqrt in float64 and rounding once to K bits gives
the correctly rounded K-bit result whenever 53 >= 2K + 2 (Figueroa 1995), so the
emulation is exact for every K <= 24; for fp16 and bf16 it equals computing in fp32 and
rounding (24 >= 2K + 2 too).

``pK`` uses fp32's exponent range, so ``p24`` is fp32 and ``p8`` is bf16, bit for bit.

Examples
--------
>>> import numpy as np
>>> fmt = parse_precision("fp16")
>>> (fmt.bits, fmt.emin, fmt.emax)
(11, -14, 15)
>>> round_array(np.array([1.0 + 2.0**-11, 65520.0]), fmt).tolist()
[1.0, inf]
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

__all__ = ["Format", "parse_precision", "round_to", "round_array", "rnd", "PRECISIONS"]

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
        """dtype the kernels compute in: float32 for fp32, fp16 and bf16 (exact, see the
        module doc), float64 for fp64 and pK."""
        return np.dtype(np.float32) if self.name in ("fp32", "fp16", "bf16") else np.dtype(np.float64)

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


def _bitcast(src, dst, src_ir, dst_ir):
    @intrinsic
    def cast(typingctx, x):
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], dst_ir)

        return dst(src), codegen

    return cast


_f64_bits = _bitcast(types.float64, types.int64, ir.DoubleType(), ir.IntType(64))
_bits_f64 = _bitcast(types.int64, types.float64, ir.IntType(64), ir.DoubleType())
_f32_bits = _bitcast(types.float32, types.int32, ir.FloatType(), ir.IntType(32))
_bits_f32 = _bitcast(types.int32, types.float32, ir.IntType(32), ir.FloatType())


@njit(cache=True, error_model="numpy")
def _round64(x, bits, emin, emax, limit):
    # Branch-free, so that loops over it vectorise. Adding and subtracting
    # c = 1.5 * 2**(q + 52), where 2**q is the format's quantum in x's binade, makes
    # float64's own round-to-nearest-even round x to a multiple of 2**q.
    e = ((_f64_bits(x) >> 52) & 0x7FF) - 1023
    e = min(max(e, emin), emax + 1)  # subnormals: fixed quantum; huge/inf/nan: anything
    c = _bits_f64(((e + (1076 - bits)) << 52) | (1 << 51))
    r = (x + c) - c
    r = math.copysign(r, x)  # the sign of a zero result is x's; elsewhere a no-op
    return math.copysign(np.inf, x) if abs(r) > limit else r


@njit(cache=True, error_model="numpy")
def _round32(x, bits, emin, emax, limit):
    # The same in float32 (and int32, so that it vectorises well), for formats of at
    # most 22 bits (fp16, bf16). In binades above 2**64 the constant c would overflow
    # float32: scale x down by 2**-64 first and back afterwards (both exact).
    e = ((_f32_bits(x) >> np.int32(23)) & np.int32(0xFF)) - np.int32(127)
    e = min(max(e, np.int32(emin)), np.int32(emax + 1))
    big = e > np.int32(64)
    e = e - np.int32(64) if big else e
    xs = x * np.float32(2.0**-64) if big else x
    c = _bits_f32(((e + np.int32(151 - bits)) << np.int32(23)) | np.int32(1 << 22))
    r = (xs + c) - c
    r = r * np.float32(2.0**64) if big else r
    r = math.copysign(r, x)  # the sign of a zero result is x's; elsewhere a no-op
    return math.copysign(np.float32(np.inf), x) if abs(r) > limit else r


def rnd(x, rs):
    """Round ``x`` as the rounding spec ``rs`` says. For use in kernels.

    ``rs`` is ``()`` for a native format (fp64, fp32): then ``rnd`` compiles to
    nothing, so native kernels carry no rounding code at all and vectorise. Otherwise
    ``rs = (bits, emin, emax, limit)`` (see :attr:`Format.rounding`).
    """
    raise NotImplementedError  # only its Numba overload runs


@overload(rnd)
def _rnd_overload(x, rs):
    if isinstance(rs, types.BaseTuple) and len(rs) == 0:
        return lambda x, rs: x
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x, rs: _round32(x, rs[0], rs[1], rs[2], rs[3])
    return lambda x, rs: _round64(x, rs[0], rs[1], rs[2], rs[3])


@njit(cache=True, error_model="numpy")
def round_to(x, bits, emin, emax):
    """Round the float64 ``x`` to ``bits`` significand bits (2..24), ties to even, with
    exponent range [emin, emax], subnormals and overflow to inf. ``bits == 0``: no
    rounding."""
    if bits == 0:
        return x
    limit = (2.0 - 2.0 ** (1 - bits)) * 2.0**emax
    return _round64(x, bits, emin, emax, limit)


@njit(cache=True)
def _round_array(x, rs):
    out = np.empty_like(x)
    flat_in = x.ravel()
    flat_out = out.ravel()
    for i in range(flat_in.size):
        flat_out[i] = rnd(flat_in[i], rs)
    return out


def round_array(x, fmt) -> np.ndarray:
    """Round every element of ``x`` to the format ``fmt`` (name or :class:`Format`).

    Returns float64 (float32 for fp32); the values are exactly representable in the
    format, and so in its compute dtype.
    """
    fmt = parse_precision(fmt)
    x = np.asarray(x, dtype=np.float64)
    if fmt.name == "fp64":
        return x.copy()
    if fmt.name == "fp32":
        with np.errstate(over="ignore"):  # overflow to inf is the format's behaviour
            return x.astype(np.float32)
    # in float64, whatever the compute dtype: float64 -> float32 first would round twice
    return _round_array(np.ascontiguousarray(x), (fmt.bits, fmt.emin, fmt.emax, fmt.max))
