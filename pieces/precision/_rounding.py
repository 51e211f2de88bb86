"""The CPU kernels' rounding to a format: generic (float64 or float32 arithmetic on
the bits), F16C for fp16, integer round-to-nearest-even on float32 bits for bf16 and
pK with K <= 11, and :class:`FastRounding`, the marker whose Numba type selects them.
See :mod:`pieces.precision` for why each gives the same bits.

Examples
--------
>>> FastRounding("bf16")
FastRounding('bf16')
>>> float(_round64(1.0 + 2.0**-12, 11, -14, 15, 65504.0)) == 1.0   # fp16 rounds it away
True
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, types
from numba.core import config as numba_config
from numba.extending import NativeValue, intrinsic, models, overload, register_model, typeof_impl, unbox

from ._formats import parse_precision

__all__ = ["FastRounding", "HAVE_F16C", "FLOAT32_MAX_BITS"]

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
