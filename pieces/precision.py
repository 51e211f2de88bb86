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
import re
from dataclasses import dataclass

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, types
from numba.core import config as numba_config
from numba.extending import NativeValue, intrinsic, models, overload, register_model, typeof_impl, unbox

__all__ = [
    "Format", "parse_precision", "round_to", "round_array", "rnd", "mul", "div", "kernel_rounding",
    "float32_rounding", "FastRounding", "PRECISIONS", "HAVE_F16C",
]

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
    # float64's own round-to-nearest-even round x to a multiple of 2**q. The binade's
    # power 2**e is x's exponent bits alone (0 for float64 subnormals), raised to
    # 2**emin for the format's subnormals with a float max (AVX2 has no 64-bit integer
    # max). From the tie above the largest finite value on, the result is inf: there c
    # may overflow, and its result is not used. The constants are loop invariants.
    lo = _bits_f64((emin + 1023) << 52)  # 2**emin
    k = _bits_f64((1076 - bits) << 52) * 1.5  # 1.5 * 2**(53 - bits)
    tie = limit + _bits_f64((emax - bits + 1023) << 52)  # limit + half its quantum
    c = max(_bits_f64(_f64_bits(x) & 0x7FF0000000000000), lo) * k
    r = (x + c) - c
    r = math.copysign(r, x)  # the sign of a zero result is x's; elsewhere a no-op
    return x * np.inf if abs(x) >= tie else r  # nan compares false and stays nan


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


def _host_has_f16c():
    # Numba compiles for the host CPU unless NUMBA_CPU_NAME says otherwise; only then
    # is LLVM's fptrunc to half the F16C instruction rather than a library call.
    if numba_config.CPU_NAME not in (None, "host"):
        return False
    return "+f16c" in llvm_binding.get_host_cpu_features().flatten().split(",")


#: Whether fp16 rounds with the CPU's F16C conversion (see :func:`kernel_rounding`).
HAVE_F16C = _host_has_f16c()


@intrinsic
def _fp16_trip(typingctx, x):
    """float32 -> half -> float32: LLVM's fptrunc rounds to nearest, ties to even, with
    fp16's subnormals and overflow to inf (IEEE 754 conversion); on F16C CPUs it is one
    vcvtps2ph, 8 lanes wide."""
    if not (isinstance(x, types.Float) and x.bitwidth == 32):
        return None

    def codegen(context, builder, signature, args):
        return builder.fpext(builder.fptrunc(args[0], ir.HalfType()), ir.FloatType())

    return types.float32(types.float32), codegen


def _bits_rounder(bits, nan_payloads=True):
    """An intrinsic that rounds a float32 to ``bits`` significand bits on its bits, in
    32-bit integer operations (Numba would widen int32 arithmetic to int64, halving
    the lanes): add 2**(s-1) - 1 plus the lowest kept bit, clear the low s = 24 - bits
    bits. That is round to nearest even in float32's exponent range, which is bf16's
    and pK's: a carry into the exponent is the right result (the next binade, or inf
    above the largest value), and float32's subnormals round to the format's.

    ``nan_payloads``: a nan is returned quieted, with its payload, as float arithmetic
    returns it (the carry could turn it into inf or 0). Without it, only the quiet nans
    without payload (mantissa ``0x400000``: x86's default nan, of either sign) come
    out right, with 3 of the 8 vector operations less; they are the only nans that
    kernels fed finite numbers ever hold (see :func:`kernel_rounding`)."""
    shift = 24 - bits

    @intrinsic
    def round_bits(typingctx, x):
        if not (isinstance(x, types.Float) and x.bitwidth == 32):
            return None

        def codegen(context, builder, signature, args):
            i32 = ir.IntType(32)
            c = lambda v: ir.Constant(i32, v)  # noqa: E731
            u = builder.bitcast(args[0], i32)
            lsb = builder.and_(builder.lshr(u, c(shift)), c(1))
            r = builder.add(builder.add(u, c((1 << (shift - 1)) - 1)), lsb)
            r = builder.and_(r, c((0xFFFFFFFF << shift) & 0xFFFFFFFF))
            if nan_payloads:
                nan = builder.fcmp_unordered("uno", args[0], args[0])
                r = builder.select(nan, builder.or_(u, c(0x400000)), r)
            return builder.bitcast(r, ir.FloatType())

        return types.float32(types.float32), codegen

    return round_bits


#: one rounding intrinsic per width and nan treatment, for bf16 and pK with K <= 11
#: (see FastRounding)
_BITS_ROUNDERS = {(k, p): _bits_rounder(k, p) for k in range(2, 12) for p in (True, False)}

#: the widest pK that the CPU kernels compute in float32 (24 >= 2K + 2)
FLOAT32_MAX_BITS = 11


class FastRounding:
    """The rounding spec of a format that the CPU kernels compute in float32, as a
    marker whose Numba type selects a dedicated rounding instead of the generic one:
    ``"fp16"`` (F16C conversion), ``"bf16"`` and ``"pK"`` for K <= 11 (integer
    round-to-nearest-even on the float32 bits). Bit for bit the same results (tested).

    ``finite_inputs``: for kernels whose inputs are finite, where every nan is one
    that arithmetic created (see :func:`kernel_rounding`); bf16 and pK then round
    with 3 vector operations less. Use :func:`kernel_rounding` to get one.
    """

    def __init__(self, kind, finite_inputs=False):
        fmt = parse_precision(kind)
        if not (kind == "fp16" or (not fmt.native and fmt.emin == -126 and fmt.bits <= FLOAT32_MAX_BITS)):
            raise ValueError(f"no fast rounding for {kind!r}")
        self.kind = kind
        self.finite_inputs = bool(finite_inputs)

    def __repr__(self):
        return f"FastRounding({self.kind!r}{', finite_inputs=True' if self.finite_inputs else ''})"


class _FastRoundingType(types.Dummy):
    def __init__(self, kind, finite_inputs):
        self.kind = kind
        self.finite_inputs = finite_inputs
        super().__init__(name=f"FastRounding({kind}, {finite_inputs})")


@typeof_impl.register(FastRounding)
def _typeof_fast(val, c):
    return _FastRoundingType(val.kind, val.finite_inputs)


register_model(_FastRoundingType)(models.OpaqueModel)


@unbox(_FastRoundingType)
def _unbox_fast(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


@overload(len)
def _len_fast(rs):
    # kernels test ``len(rs) == 0`` for a native format
    if isinstance(rs, _FastRoundingType):
        return lambda rs: 1


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
