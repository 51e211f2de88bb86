"""A segment's four sums in the certified sweep (see :mod:`pieces.count._certified_cpu`):
the preactivations' slopes and intercepts, the bounds of their errors, and whether
grains prove them exact (then their bounds are zero). Inlined stages of
:mod:`._certified_sweep` (see :mod:`pieces._jit.staged`).

Examples
--------
>>> import numpy as np
>>> ea, eb = np.array([1.0, 0.0]), np.array([2.0, 0.0])
>>> _inflate_bounds(ea, eb, np.array([4.0, 1.0]), 2.0**-50, False, 2)  # one sum rounded
1
>>> bool(eb[1] == 0.0 and eb[0] > 2.0)
True
"""

import numpy as np
from numba import njit

from ._certified_bounds import _NOGRAIN, _STASH, _bound_terms, _exact_sums, _grain, _inflated
from ._segment_sums import sums4

__all__ = []


@njit(cache=True, inline="always")
def _input_grains(A, B, EA, EB, F, k, exact_in, n_in, g0, gW, gb, Cw, bmax):
    """``(g, MA, MB, ga, gbb)``: the factor ``g`` of segment k's rounding bounds, 0 where
    its inputs are exact and its sums are proved exact by grains (every term a multiple
    of ``2**min(gW + ga, gb, gW + gbb)`` and every partial sum below ``2**53`` such
    grains), else ``g0``; the inputs' sizes and grains, first from the bounds its parent
    stashed (``_STASH``), else from the inputs themselves."""
    if not exact_in:
        return g0, 0.0, 0.0, _NOGRAIN, _NOGRAIN
    if (F[k] & _STASH) != 0:  # the parent's bounds on these inputs' grains
        MA = EA[k, 0]
        ga = np.int64(EA[k, 1])
        MB = EB[k, 0]
        gbb = np.int64(EB[k, 1])
        if _exact_sums(gW, gb, Cw, bmax, ga, gbb, MA, MB):
            return 0.0, MA, MB, ga, gbb
    MA = 0.0
    MB = 0.0
    ga = _NOGRAIN
    gbb = _NOGRAIN
    for i in range(n_in):  # without branches: zeros have no grain
        ai = A[k, i]
        bi = B[k, i]
        MA = max(MA, abs(ai))
        MB = max(MB, abs(bi))
        ga = min(ga, _grain(ai, _NOGRAIN))
        gbb = min(gbb, _grain(bi, _NOGRAIN))
    g = 0.0 if _exact_sums(gW, gb, Cw, bmax, ga, gbb, MA, MB) else g0
    return g, MA, MB, ga, gbb


@njit(cache=True, inline="always")
def _segment_sums(wt, w_off, Wt, bias, A, B, EA, EB, Af, Bf, k, g, exact_in, s, t, ea, eb, qa_, qb_, scrf, live, n_in,
                  n_out):
    """Segment k's preactivation slopes ``s`` and intercepts ``t`` and, where ``g`` is
    nonzero, the bounds ``ea``, ``eb`` of their errors before rounding
    (:func:`_inflated` adds that): four sums over the live inputs. ``s, t, ea, eb, qa_,
    qb_`` are rows 0-5 of the scratch whose flat view is ``scrf``; ``Af``, ``Bf`` are
    flat views of ``A``, ``B``."""
    wrow = A.shape[1]
    ldc = s.size
    for j in range(n_out):
        s[j] = 0.0
        t[j] = bias[j]
        ea[j] = 0.0
        eb[j] = 0.0
    n_live = 0  # the input neurons active on this segment
    if g != 0.0 and n_out >= 4:
        # |fl(sum) - sum| <= gamma * sum |w_ij| |a_i| in any order of the sum, and the
        # inputs' own errors pass through |W|: four sums, register-blocked
        # (_segment_sums). Their terms are listed here without branches: every input is
        # written, the live ones kept. (The inputs' bound terms go to the rows of cx, ce.)
        for i in range(n_in):
            qa_[i], qb_[i] = _bound_terms(A[k, i], B[k, i], EA[k, i], EB[k, i], g, exact_in)
        for i in range(n_in):
            live[n_live] = i
            n_live += (A[k, i] != 0.0) | (B[k, i] != 0.0)
        sums4(wt, w_off, n_out, live, n_live, Af, k * wrow, Bf, k * wrow, scrf, 4 * ldc, ldc, scrf, 0, ldc, n_out)
    elif g == 0.0 and n_out < 4:
        # exact sums of a narrow layer (constructions), each in a register: every
        # input, as terms of inputs that are off add exact zeros
        for j in range(n_out):
            sj = 0.0
            tj = bias[j]
            for i in range(n_in):
                w = Wt[i, j]
                sj += w * A[k, i]
                tj += w * B[k, i]
            s[j] = sj
            t[j] = tj
    else:
        for i in range(n_in):
            if A[k, i] != 0.0 or B[k, i] != 0.0:
                live[n_live] = i
                n_live += 1
        if g == 0.0:  # exact sums of a wide layer
            for q in range(n_live):
                i = live[q]
                ai = A[k, i]
                bi = B[k, i]
                wi = Wt[i]
                for j in range(n_out):
                    s[j] += wi[j] * ai
                    t[j] += wi[j] * bi
        else:
            _narrow_bounded_sums(Wt, A, B, EA, EB, k, g, exact_in, s, t, ea, eb, live, n_live, n_out)


@njit(cache=True, inline="always")
def _narrow_bounded_sums(Wt, A, B, EA, EB, k, g, exact_in, s, t, ea, eb, live, n_live, n_out):
    """The four sums of a narrow layer with rounding, two inputs per pass."""
    q = 0
    while q < n_live:
        i0 = live[q]
        i1 = live[q + 1] if q + 1 < n_live else i0
        a0 = A[k, i0]
        b0 = B[k, i0]
        qa0, qb0 = _bound_terms(a0, b0, EA[k, i0], EB[k, i0], g, exact_in)
        if q + 1 < n_live:
            a1 = A[k, i1]
            b1 = B[k, i1]
            qa1, qb1 = _bound_terms(a1, b1, EA[k, i1], EB[k, i1], g, exact_in)
        else:  # an odd one out: its twin adds exact zeros
            a1 = 0.0
            b1 = 0.0
            qa1 = 0.0
            qb1 = 0.0
        w0 = Wt[i0]
        w1 = Wt[i1]
        for j in range(n_out):
            x0 = w0[j]
            x1 = w1[j]
            y0 = abs(x0)
            y1 = abs(x1)
            s[j] += x0 * a0 + x1 * a1
            t[j] += x0 * b0 + x1 * b1
            ea[j] += y0 * qa0 + y1 * qa1
            eb[j] += y0 * qb0 + y1 * qb1
        q += 2


@njit(cache=True, inline="always")
def _inflate_bounds(ea, eb, bias, g, flat, n_out):
    """Add the rounding of the sums to their bounds (:func:`_inflated`), in a loop
    without branches (it vectorises); returns how many of them rounded."""
    n_err = 0
    for j in range(n_out):
        ea[j], eb[j], rounded = _inflated(ea[j], eb[j], bias[j], g, flat)
        n_err += rounded
    return n_err
