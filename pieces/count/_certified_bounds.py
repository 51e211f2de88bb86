"""The certified counter's decisions and bounds (see :mod:`pieces.count._certified_cpu`).

Error-free transformations (two-sum, two-product), the exact sign of ``s*x + t`` at a
float point, the sign of a value beyond its bound, the grains (lowest set bit) that
prove sums exact, the bound terms of the inputs and the rounding of sums, and the
structural masks (which neurons a switch can reach).

Examples
--------
>>> exact_sign(3.0, 1.0 / 3.0, -1.0)   # 3 * fl(1/3) - 1 < 0, decided exactly
-1
>>> sign_beyond(1.0, 0.5), sign_beyond(1.0, 2.0) == AMBIGUOUS
(1, True)
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

from .._jit.llvm import fma

__all__ = ["exact_sign", "sign_beyond", "AMBIGUOUS"]

#: unit roundoff of float64
_U = 2.0**-53
#: every computed bound is multiplied by this, which covers the rounding of the bound's
#: own arithmetic (at most ~2**-43 for the widths a net can have)
_INFLATE = 1.0 + 2.0**-40
#: added to the rounding terms of inexact sums: covers products that fall into the
#: subnormal range, where rounding errors are absolute (2**-1075) not relative
_TINY = 2.0**-900
#: exact sign tests (two_prod) are valid for factors in [2**-450, 2**450]
_SAFE_LO = 2.0**-450
_SAFE_HI = 2.0**450
#: double-double values whose hi part is nonzero must exceed this, so that every product
#: with a weight (>= 2**-100, see _WMIN) keeps Dekker's error term exact
_DD_VMIN = 2.0**-800
#: the value a sign test returns when its bound cannot decide
AMBIGUOUS = 2
#: a layer's nonzero weights must exceed this for its bounds to be valid (see _TINY)
_WMIN = 2.0**-100
_NOGRAIN = 1 << 40
#: segment flags
_FLAT = 1
_EXACT = 2
_KNOWN = 4
#: the segment's rows of error bounds hold bounds on its inputs' grains instead (see sweep)
_STASH = 8
#: structural equality is tracked in one 64-bit mask per segment, for layers this wide
_MASK_BITS = 64
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


@intrinsic
def _float_bits(typingctx, v):
    """The IEEE 754 bits of a float64, as an int64."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _pow2(typingctx, p):
    """``2.0**p`` for an integer p in [-1022, 1023], built from its bits."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        biased = builder.add(args[0], ir.Constant(ir.IntType(64), 1023))
        return builder.bitcast(builder.shl(biased, ir.Constant(ir.IntType(64), 52)), ir.DoubleType())

    return sig, codegen


@njit(cache=True, inline="always")
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True, inline="always")
def _split(a):
    c = 134217729.0 * a  # 2**27 + 1 (Veltkamp)
    hi = c - (c - a)
    return hi, a - hi


@njit(cache=True, inline="always")
def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


@njit(cache=True, inline="always")
def _safe(v):
    av = abs(v)
    return v == 0.0 or (av > _SAFE_LO and av < _SAFE_HI)


@njit(cache=True, inline="always")
def _sign(v):
    return 1 if v > 0.0 else (-1 if v < 0.0 else 0)


@njit(cache=True)
def exact_sign(s, x, t):
    """The sign of ``s*x + t`` in exact arithmetic (-1, 0, 1), or AMBIGUOUS where the
    magnitudes leave the range in which one fused multiply-add decides it.

    With every nonzero factor in [2**-450, 2**450], the exact ``s*x + t`` is a multiple
    of 2**-1004 and below 2**901, so where it is not zero it is a normal float64's
    distance from zero: the fma, which rounds it once, keeps its sign (and its zero).
    """
    if s == 0.0 or x == 0.0:
        return _sign(t)
    if not (_safe(s) and _safe(x) and _safe(t)):
        return AMBIGUOUS
    return _sign(fma(s, x, t))


@njit(cache=True, inline="always")
def _end_sign(s, t, ea, eb, x, ex):
    """Sign of the exact preactivation ``s_e*x_e + t_e`` at a segment end (-1, 0, 1),
    or AMBIGUOUS.

    ``s, t`` are the float slope and intercept with ``|s - s_e| <= ea`` and
    ``|t - t_e| <= eb``; ``x`` is the float end with ``|x - x_e| <= ex``, or ``±inf``.
    """
    if math.isinf(x):
        if s == 0.0 and ea == 0.0:
            if eb == 0.0:
                return _sign(t)
            return _sign(t) if abs(t) > eb * _INFLATE else AMBIGUOUS
        if abs(s) > ea * _INFLATE:
            return _sign(s) if x > 0.0 else -_sign(s)
        return AMBIGUOUS
    p = s * x + t
    rnd = 4.0 * _U * (abs(s * x) + abs(t)) + _TINY
    if ea == 0.0 and eb == 0.0 and ex == 0.0:
        if abs(p) > rnd * _INFLATE:  # only the two roundings of p: a fast filter
            return _sign(p)
        return exact_sign(s, x, t)
    return sign_beyond(p, (ea * abs(x) + eb + (abs(s) + ea) * ex + rnd) * _INFLATE)


@njit(cache=True, inline="always")
def sign_beyond(v, bound):
    """The sign of a value known to lie within ``bound`` of ``v``, or AMBIGUOUS."""
    if v > bound:
        return 1
    if v < -bound:
        return -1
    return AMBIGUOUS


@njit(cache=True, inline="always")
def _grain(v, none):
    """log2 of the lowest set bit of the finite float ``v``, or ``none`` where ``v`` is
    zero; without branches (it runs in the sweep's loops)."""
    bits = _float_bits(v)
    e = (bits >> 52) & 0x7FF
    mant = (bits & 0xFFFFFFFFFFFFF) | (np.int64(e != 0) << 52)  # the implicit bit
    g = max(e, 1) - 1075 + trailing_zeros(mant)  # subnormals: mant * 2**-1074
    return g if v != 0.0 else none


@njit(cache=True, inline="always")
def _bound_terms(a, b, ea, eb, g, exact_in):
    """What one unit of weight on an input neuron with slope ``a`` and intercept ``b``
    (errors ``ea``, ``eb``, unused where its segment is exact) adds to the error bounds
    of the sums it enters: gamma times the term, plus the input's own error."""
    qa = g * (abs(a) + _TINY)
    qb = g * (abs(b) + _TINY)
    if not exact_in:
        qa += ea
        qb += eb
    return qa, qb


@njit(cache=True, inline="always")
def _inflated(ea, eb, bias, g, flat):
    """``(ea, eb, rounded)``: the bounds of a neuron's slope and intercept sums once
    those are done. A sum with some term not zero (``rounded``) was rounded: its bounds
    get the bias's share and the inflation that covers the bounds' own rounding; a flat
    segment's slopes are exactly 0. Without branches (it runs in vectorised loops)."""
    rounded = (ea != 0.0) | (eb != 0.0)
    return 0.0 if flat else ea * _INFLATE, (eb + g * abs(bias)) * _INFLATE if rounded else 0.0, rounded


@njit(cache=True, inline="always")
def _fill_reach(Wt, reach):
    """``reach[i]``: the bitmask of the neurons that input neuron i feeds (nonzero weight)."""
    for i in range(Wt.shape[0]):
        r_i = _ZERO
        for j in range(Wt.shape[1]):
            if Wt[i, j] != 0.0:
                r_i |= _ONE << np.uint64(j)
        reach[i] = r_i


@njit(cache=True, inline="always")
def _reached(diff, reach, n_in):
    """The neurons whose affine maps may differ, given the inputs ``diff`` that may."""
    aff = _ZERO
    for i in range(n_in):
        if (diff >> np.uint64(i)) & _ONE:
            aff |= reach[i]
    return aff


@njit(cache=True, inline="always")
def _child_diff(left, act, aff, sibling):
    """Where a child's exact rows may differ from its left neighbour's: a sibling (same
    affine maps) in the neurons that switch; otherwise in those whose maps may differ
    (``aff``) and are on in either, and in those that switch."""
    if sibling:
        return left ^ act
    return (aff & (left | act)) | (~aff & (left ^ act))




@njit(cache=True)
def _layer_grains(W, bias):
    """``(gW, gb)``: the lowest set bit (log2) over the nonzero weights and biases."""
    gW = _NOGRAIN
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            gW = min(gW, _grain(W[i, j], _NOGRAIN))
    gb = _NOGRAIN
    for j in range(bias.size):
        gb = min(gb, _grain(bias[j], _NOGRAIN))
    return gW, gb


@njit(cache=True, inline="always")
def _exact_sums(gW, gb, Cw, bmax, ga, gbb, MA, MB):
    """True when every product and partial sum of ``W @ A`` and ``W @ B + b`` is
    exact: all terms are multiples of 2**q and no partial sum reaches 2**(q + 53)."""
    okA = True
    if MA > 0.0:
        q = gW + ga
        okA = q >= -1000 and Cw * MA * _INFLATE < _pow2(min(q + 53, 1000))
    qt = min(gW + gbb, gb)
    okB = MB == 0.0 and bmax == 0.0
    if not okB:
        okB = qt >= -1000 and (Cw * MB + bmax) * _INFLATE < _pow2(min(qt + 53, 1000))
    return okA and okB



@njit(cache=True, inline="always")
def _exact_end_signs(s, t, lo, hi, act0, jb, pend, n_out):
    """The sign test of a segment whose maps (slopes ``s``, intercepts ``t``) and ends
    are exact: one fma each decides the sign at an end (see :func:`exact_sign`; the
    caller checked the ends' range). Writes ``act0``, ``jb`` and ``pend`` (1: a crossing
    inside, or a map outside that range) as the sweep's loop without branches does."""
    for j in range(n_out):
        sj = s[j]
        tj = t[j]
        vlo = fma(sj, lo, tj)
        vhi = fma(sj, hi, tj)
        act0[j] = (vlo > 0.0) | (vhi > 0.0)
        jb[j] = 0
        pend[j] = ((vlo < 0.0) & (vhi > 0.0)) | ((vlo > 0.0) & (vhi < 0.0)) | ~(_safe(sj) & _safe(tj))


@njit(cache=True, inline="always")
def _pair_decision(slope, serr, same, k):
    """Whether segment k starts a new piece: 1 (its slope differs from segment k-1's),
    0 (equal: by structure, or both exact and equal) or AMBIGUOUS."""
    if same[k]:
        return 0
    d = abs(slope[k] - slope[k - 1])
    err = serr[k] + serr[k - 1]
    if err == 0.0:
        return 1 if d != 0.0 else 0
    if d > err * _INFLATE:
        return 1
    return AMBIGUOUS
