"""The certified decisions of the CUDA counter, as device functions: signs at segment
ends (exact where the bounds are zero: Dekker's product and a Shewchuk expansion), grains,
and the check that a segment's sums are exact. Twin of :mod:`pieces.count._certified_bounds`.
"""

import math

import numpy as np
from numba import cuda

from ._certified_bounds import _INFLATE, _SAFE_HI, _SAFE_LO, _TINY, _U
from .._jit.cuda import mul_rn

__all__ = ['_AMBIGUOUS', '_ONE', '_ZERO', '_exact_sign', '_end_sign', '_grain', '_exact_sums']

_AMBIGUOUS = 2
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


@cuda.jit(device=True)
def _sign(v):
    return 1 if v > 0.0 else (-1 if v < 0.0 else 0)


@cuda.jit(device=True)
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@cuda.jit(device=True)
def _split(a):
    c = mul_rn(134217729.0, a)
    hi = c - (c - a)
    return hi, a - hi


@cuda.jit(device=True)
def _exact_sign(s, x, t):
    """The sign of ``s*x + t`` in exact arithmetic, or _AMBIGUOUS outside the range in
    which Dekker's product and the expansion are exact (as _certified_bounds.exact_sign)."""
    if s == 0.0 or x == 0.0:
        return _sign(t)
    for v in (s, x, t):
        if v != 0.0 and not (_SAFE_LO < abs(v) < _SAFE_HI):
            return _AMBIGUOUS
    p = mul_rn(s, x)
    if p != 0.0 and not (_SAFE_LO < abs(p) < _SAFE_HI):
        return _AMBIGUOUS
    sh, sl = _split(s)
    xh, xl = _split(x)
    e = ((mul_rn(sh, xh) - p) + mul_rn(sh, xl) + mul_rn(sl, xh)) + mul_rn(sl, xl)
    s1, e1 = _two_sum(p, e)
    q, h0 = _two_sum(t, e1)
    q, h1 = _two_sum(q, s1)
    if q != 0.0:
        return _sign(q)
    if h1 != 0.0:
        return _sign(h1)
    return _sign(h0)


@cuda.jit(device=True)
def _end_sign(s, t, ea, eb, x, ex):
    """As _certified_bounds._end_sign."""
    if math.isinf(x):
        if s == 0.0 and ea == 0.0:
            if eb == 0.0:
                return _sign(t)
            return _sign(t) if abs(t) > eb * _INFLATE else _AMBIGUOUS
        if abs(s) > ea * _INFLATE:
            return _sign(s) if x > 0.0 else -_sign(s)
        return _AMBIGUOUS
    sx = mul_rn(s, x)
    p = sx + t
    rnd = 4.0 * _U * (abs(sx) + abs(t)) + _TINY
    if ea == 0.0 and eb == 0.0 and ex == 0.0:
        if abs(p) > rnd * _INFLATE:
            return _sign(p)
        return _exact_sign(s, x, t)
    bound = (ea * abs(x) + eb + (abs(s) + ea) * ex + rnd) * _INFLATE
    if p > bound:
        return 1
    if p < -bound:
        return -1
    return _AMBIGUOUS


@cuda.jit(device=True)
def _grain(v):
    """log2 of the lowest set bit of the nonzero float ``v`` (frexp, which the GPU and
    the simulator both compute exactly)."""
    m, e = math.frexp(abs(v))
    mi = np.int64(m * 9007199254740992.0)
    low = mi & -mi
    return e - 53 + math.frexp(float(low))[1] - 1


@cuda.jit(device=True)
def _exact_sums(gW, gb, Cw, bmax, ga, gbb, MA, MB):
    """As _certified_bounds._exact_sums."""
    okA = True
    if MA > 0.0:
        q = gW + ga
        okA = q >= -1000 and Cw * MA * _INFLATE < math.ldexp(1.0, min(q + 53, 1000))
    qt = min(gW + gbb, gb)
    okB = MB == 0.0 and bmax == 0.0
    if not okB:
        okB = qt >= -1000 and (Cw * MB + bmax) * _INFLATE < math.ldexp(1.0, min(qt + 53, 1000))
    return okA and okB
