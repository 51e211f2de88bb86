"""Floating-point formats: names, parameters, and exact rounding emulation.

A precision is ``fp64``, ``fp32``, ``fp16``, ``bf16`` or ``pK`` (K significand bits
including the implicit one, 2 <= K <= 24). fp64 and fp32 run natively. The others are
emulated: values are held in float64 and *every* arithmetic result is rounded to the
format (round to nearest, ties to even; the format's exponent range; overflow to inf;
subnormals). Computing a +, -, *, / or sqrt in float64 and rounding once to K bits gives
the correctly rounded K-bit result whenever 53 >= 2K + 2 (Figueroa 1995), so the
emulation is exact for every K <= 24. fp16, bf16 and pK with K <= 8 compute in fp32
instead, with the same results:

- normal results: 24 >= 2K + 2 as well; fp16's subnormals lie in fp32's normal range;
- results in the subnormal range of bf16 and pK (fp32's exponent range) are rounded
  twice, to fp32's quantum 2**-149 and then to the format's 2**(-125-K). That is
  wrong only where fp32 lands on a midpoint of the format (an odd multiple of
  2**(-126-K)) that the exact result is not on. A sum is exact in fp32 there. A
  product that fp32 rounds is A*B*2**s with A, B < 2**K and s <= -150, so it lies
  below 2**(2K-150) <= 2**(-126-K), the smallest midpoint, for K <= 8: both ways give
  zero (fp32 at most reaches that midpoint, which ties to zero). A quotient
  A/B*2**e (e >= -128-K) differs from a midpoint by at least 2**(-128-K)/B >
  2**-150 unless it equals it, for K <= 10. Square roots of positive numbers are
  normal.

``pK`` uses fp32's exponent range, so ``p24`` is fp32 and ``p8`` is bf16, bit for bit.

In the CPU training kernels, the formats computed in fp32 get dedicated roundings of
the same bits (:func:`kernel_rounding`): fp16 through the F16C conversion float32 ->
half -> float32 (``vcvtps2ph``, 8 lanes), bf16 and pK with K <= 8 by integer
round-to-nearest-even on the float32 bits. The generic rounding (add and subtract a
constant of the binade) serves the wider pK and the CUDA twin.

The CPU training kernels also run p9, p10 and p11 in fp32 (:func:`float32_rounding`;
their compute dtype stays float64, and the kernels' entry points convert, exactly).
Normal results are right by Figueroa's 24 >= 2K + 2; a sum in fp32's subnormal range is
exact. Products there are taken apart by :func:`mul`: the exact product times 2**64 is
an fp32 number (2K <= 22 bits), rounded once at the format's subnormal quantum;
quotients (:func:`div`) are computed in float64 and rounded once. Square roots of
positive numbers are normal.

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

import numpy as np
from numba import njit, types
from numba.extending import overload

from ._formats import _NAMED, PRECISIONS, Format, parse_precision
from ._rounding import (_BITS_ROUNDERS, FLOAT32_MAX_BITS, HAVE_F16C, FastRounding, _FastRoundingType, _fp16_trip,
                        _round32, _round64)

__all__ = [
    "Format", "parse_precision", "round_to", "round_array", "rnd", "mul", "div", "kernel_rounding",
    "float32_rounding", "FastRounding", "PRECISIONS", "HAVE_F16C",
]


def kernel_rounding(rs, finite_inputs=False):
    """The spec the CPU kernels should get for the rounding spec ``rs``
    (:attr:`Format.rounding`): a :class:`FastRounding` for a float32 spec of fp16
    (where the CPU has F16C), bf16 or pK with K <= 8, else ``rs`` itself.

    ``finite_inputs=True`` is for kernels fed only finite numbers (the training
    kernels: nets, data and hyperparameters are checked finite). Their nans are all
    made by arithmetic (inf - inf, 0 * inf, 0 / 0, sqrt of a negative), which on x86
    yields the default nan, a quiet nan without payload, and passes it on unchanged;
    LLVM's folded nan is one too. The rounding that then skips the payload-keeping
    select returns such a nan unchanged, as the full one does, so the bits are the
    same (tested, with a kernel that makes those nans).

    >>> kernel_rounding(parse_precision("bf16").rounding)
    FastRounding('bf16')
    >>> kernel_rounding(parse_precision("p5").rounding)
    FastRounding('p5')
    >>> kernel_rounding(())
    ()
    """
    if isinstance(rs, FastRounding) or len(rs) != 4 or not isinstance(rs[3], np.float32):
        return rs
    bits, emin, emax = (int(v) for v in rs[:3])
    fp16, bf16 = _NAMED["fp16"], _NAMED["bf16"]
    if (bits, emin, emax) == (fp16.bits, fp16.emin, fp16.emax):
        return FastRounding("fp16", finite_inputs) if HAVE_F16C else rs
    if (emin, emax) == (bf16.emin, bf16.emax) and 2 <= bits <= bf16.bits:
        return FastRounding("bf16" if bits == bf16.bits else f"p{bits}", finite_inputs)
    return rs


def rnd(x, rs):
    """Round ``x`` as the rounding spec ``rs`` says. For use in kernels.

    ``rs`` is ``()`` for a native format (fp64, fp32): then ``rnd`` compiles to
    nothing, so native kernels carry no rounding code at all and vectorise. Otherwise
    ``rs = (bits, emin, emax, limit)`` (see :attr:`Format.rounding`), or a
    :class:`FastRounding` (see :func:`kernel_rounding`).
    """
    raise NotImplementedError  # only its Numba overload runs


@overload(rnd)
def _rnd_overload(x, rs):
    if isinstance(rs, types.BaseTuple) and len(rs) == 0:
        return lambda x, rs: x
    if isinstance(rs, _FastRoundingType):
        fmt = parse_precision(rs.kind)
        if isinstance(x, types.Float) and x.bitwidth == 32:
            if rs.kind == "fp16":
                return lambda x, rs: _fp16_trip(x)
            round_bits = _BITS_ROUNDERS[fmt.bits, not rs.finite_inputs]
            return lambda x, rs: round_bits(x)
        # a float64 value (a float32 divided by an integer, say): the generic rounding,
        # as the generic spec would round it
        bits, emin, emax, limit = fmt.bits, fmt.emin, fmt.emax, fmt.max
        return lambda x, rs: _round64(x, bits, emin, emax, limit)
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return lambda x, rs: _round32(x, rs[0], rs[1], rs[2], rs[3])
    return lambda x, rs: _round64(x, rs[0], rs[1], rs[2], rs[3])


def float32_rounding(rs):
    """The :class:`FastRounding` with which the CPU training kernels run the float64
    rounding spec ``rs`` of p9, p10 or p11 in float32 instead (see the module doc; the
    arrays convert exactly), or None for any other spec.

    >>> float32_rounding(parse_precision("p10").rounding)
    FastRounding('p10', finite_inputs=True)
    >>> float32_rounding(parse_precision("p12").rounding) is None
    True
    """
    if len(rs) != 4 or isinstance(rs, FastRounding) or not isinstance(rs[3], np.float64):
        return None
    bits, emin, emax = (int(v) for v in rs[:3])
    if (emin, emax) != (-126, 127) or not 9 <= bits <= FLOAT32_MAX_BITS:
        return None
    return FastRounding(f"p{bits}", finite_inputs=True)


def _wide_float32(rs, a, b):
    # a p9..p11 marker with float32 operands: the products and quotients that fp32's
    # subnormal range would round twice
    return (isinstance(rs, _FastRoundingType) and rs.kind != "fp16" and parse_precision(rs.kind).bits > 8
            and all(isinstance(v, types.Float) and v.bitwidth == 32 for v in (a, b)))


def mul(a, b, rs):
    """``rnd(a * b, rs)``, for kernels: the product of two numbers of the format,
    rounded to it once. Only p9..p11 in float32 need more than ``rnd`` (module doc)."""
    raise NotImplementedError  # only its Numba overload runs


def div(a, b, rs):
    """``rnd(a / b, rs)``, for kernels, as :func:`mul` is for products."""
    raise NotImplementedError  # only its Numba overload runs


@overload(mul)
def _mul_overload(a, b, rs):
    if not _wide_float32(rs, a, b):
        return lambda a, b, rs: rnd(a * b, rs)
    bits = parse_precision(rs.kind).bits
    round_bits = _BITS_ROUNDERS[bits, not rs.finite_inputs]
    up, down, tiny = np.float32(2.0**64), np.float32(2.0**-64), np.float32(2.0**-126)
    c = np.float32(1.5 * 2.0 ** (-38 - bits))  # adding it rounds at 2**(-61-K): the quantum 2**(-125-K), scaled

    def impl(a, b, rs):
        p = a * b
        # 0 < |p| < 2**-126: both factors nonzero and below 2**10, so a * 2**64 * b is
        # the exact product (<= 22 bits, normal); rounded once at the scaled quantum,
        # scaled back exactly. Elsewhere p is exact or normal: one rounding.
        ps = (a * up) * b
        small = math.copysign(((ps + c) - c) * down, p)
        r = small if abs(p) < tiny else round_bits(p)
        return p if p == 0 else r  # 0: an exact zero or an underflow, signed as p

    return impl


@overload(div)
def _div_overload(a, b, rs):
    if not _wide_float32(rs, a, b):
        return lambda a, b, rs: rnd(a / b, rs)
    fmt = parse_precision(rs.kind)
    bits, emin, emax, limit = fmt.bits, fmt.emin, fmt.emax, fmt.max

    def impl(a, b, rs):  # float64 holds the quotient to 53 >= 2K + 2 bits, in range
        return np.float32(_round64(np.float64(a) / np.float64(b), bits, emin, emax, limit))

    return impl


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
