"""What the CUDA kernels share: exact rounding on the device, and launch helpers.

``rnd(x, rs)`` is the twin of :func:`pieces.precision.rnd`. It cannot use the CPU's
bit casts (the CUDA simulator runs kernels as Python), so it takes the binade of ``x``
from ``math.frexp``; the result is the same correctly rounded value, bit for bit. Its
spec ``rs`` extends the CPU's ``(bits, emin, emax, limit)`` with constants in the
compute dtype (see :func:`device_rounding`), so that no arithmetic is promoted: a
float32 operation on the GPU stays a float32 operation. An empty ``rs`` (fp64, fp32)
prunes the rounding away at compile time.

FMA contraction (NVVM's default) cannot change an emulated result: every product the
kernels round is exact in the compute dtype (two K-bit significands, 2K <= 48 bits,
in float64 for pK and 22 <= 24 bits in float32 for fp16 and bf16). It does change
native fp32/fp64 results in the last bits: the CPU fuses only the sums of layers at
least 8 wide (``pieces/_gemm_cpu.py``) and rounds the rest twice.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from .. import config
from .device import simulated
from ..precision import parse_precision

__all__ = ["rnd", "mul_rn", "device_rounding", "to_device", "blocks_for", "workspace_budget"]

if simulated():

    @cuda.jit(device=True)
    def mul_rn(x, y):
        """``x * y`` in float64, never fused with a later sum (the simulator does not fuse)."""
        return x * y

else:
    from numba.cuda import libdevice

    #: ``x * y`` in float64 as ``mul.rn.f64``, which ptxas never contracts into an FMA:
    #: where a kernel must do the CPU's arithmetic exactly (the counter), its products
    #: and sums stay separately rounded, as Numba's CPU code keeps them.
    mul_rn = libdevice.dmul_rn


#: fp16's (bits, emin, emax): in float32 it rounds with the hardware conversion.
_FP16 = parse_precision("fp16").rounding[:3]


def device_rounding(rs, dtype):
    """The device spec of the CPU rounding spec ``rs`` for compute dtype ``dtype``.

    ``()`` stays ``()``. fp16 in float32 is ``(np.int8(16),)``: :func:`rnd` converts to
    half and back (``cvt.rn.f16.f32``, IEEE round to nearest even with fp16's
    subnormals and overflow, the conversion F16C does on the CPU). Otherwise
    ``(bits, emin, emax, limit, p, one, c15, down, up, inf)``: ``p`` the significand
    bits of ``dtype``, then the constants 1, 1.5, 2**-64, 2**64 and inf as ``dtype``
    scalars.
    """
    if len(rs) == 0:
        return ()
    bits, emin, emax, limit = rs
    if np.dtype(dtype) == np.float32 and (bits, emin, emax) == _FP16 and config.CUDA_FP16_CONVERT:
        return (np.int8(16),)
    dt = np.dtype(dtype).type
    p = 53 if np.dtype(dtype) == np.float64 else 24
    return (np.int64(bits), np.int64(emin), np.int64(emax), dt(limit), np.int64(p),
            dt(1.0), dt(1.5), dt(2.0**-64), dt(2.0**64), dt(np.inf))


@cuda.jit(device=True)
def rnd(x, rs):
    """Round ``x`` to the format of the device spec ``rs`` (see :func:`device_rounding`):
    nearest, ties to even, the format's exponent range, subnormals, overflow to inf."""
    if len(rs) == 0:
        return x
    if len(rs) == 1:  # fp16 in float32 (a compile-time branch: the tuple's length)
        return np.float32(np.float16(x))
    bits, emin, emax, limit, p, one, c15, down, up, inf = rs
    e = math.frexp(x)[1] - 1  # x = m * 2**e with 1 <= |m| < 2 (0, inf, nan: anything)
    e = min(max(e, emin), emax + 1)
    # Adding and subtracting c = 1.5 * 2**(e + p - bits) makes the dtype's own
    # round-to-nearest-even round x to a multiple of the quantum 2**(e + 1 - bits). In
    # float32, c overflows in binades above 2**64: scale by 2**-64 and back (exact).
    big = e > 64
    xs = x * down if big else x
    es = e - 64 if big else e
    c = math.ldexp(c15, int(es + p - bits))
    r = (xs + c) - c
    r = r * up if big else r
    r = math.copysign(r, x) * one  # the sign of a zero result is x's; "* one" keeps the dtype
    return math.copysign(inf, x) * one if abs(r) > limit else r


def to_device(arr):
    """A contiguous device copy of ``arr``."""
    return cuda.to_device(np.ascontiguousarray(arr))


def blocks_for(n, threads):
    """Blocks of ``threads`` that cover ``n`` items (at least one)."""
    return max(1, (n + threads - 1) // threads)


def workspace_budget():
    """Bytes that one launch's workspaces may take: ``config.CUDA_WORKSPACE_BYTES``, or
    half the device's free memory when that is None (2 GiB where it is unknown)."""
    if config.CUDA_WORKSPACE_BYTES is not None:
        return int(config.CUDA_WORKSPACE_BYTES)
    free = float(cuda.current_context().get_memory_info()[0])
    return int(free // 2) if math.isfinite(free) else 2 * 1024**3
