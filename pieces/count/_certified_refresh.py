"""Local double-double recomputation for the certified sweep.

Where a segment's float64 bounds leave a decision open, its input maps are recomputed
from the weights in double-double along its activation pattern (read at a point
certified inside it), and open pairs of output slopes likewise; see
:mod:`pieces.count._certified_cpu`.
"""

import math

import numpy as np
from numba import njit

from ._certified_bounds import (_DD_VMIN, _INFLATE, _SAFE_HI, _TINY, _U, AMBIGUOUS, _pair_decision, _two_prod,
                                _two_sum, sign_beyond)
from ._count_cpu import _interior_point

@njit(cache=True, inline="always")
def _dd_sums(Wt, bias, rows, s):
    """The double-double sums of one layer on one segment: from the input rows ``rows``
    (per input neuron: A hi, A lo, B hi, B lo and the bounds of A and B) into ``s``
    (per output neuron, in its columns: the same six, the bounds final), compensated
    (Ogita, Rump and Oishi) with Dekker's exact products; False where an input is too
    small or too large for Dekker's products to be exact. Shared by :func:`_dd_rows`,
    :func:`_output_slope_dd` and ``_certified_dd``."""
    n_in, n_out = Wt.shape
    # error of a compensated sum of n products: its float-accumulated error terms,
    # each at most u times a partial sum, rounded again (gamma_{3n+3})
    G = (3 * n_in + 3) * _U * (n_in + 2) * _U * 1.01
    for j in range(n_out):
        s[0, j] = 0.0
        s[1, j] = 0.0
        s[2, j] = bias[j]
        s[3, j] = 0.0
        s[4, j] = 0.0
        s[5, j] = 0.0
    for i in range(n_in):
        ah, al, bh, bl, eai, ebi = rows[i, 0], rows[i, 1], rows[i, 2], rows[i, 3], rows[i, 4], rows[i, 5]
        if ah == 0.0 and bh == 0.0:
            continue
        if (ah != 0.0 and not _DD_VMIN < abs(ah) < _SAFE_HI) or (bh != 0.0 and not _DD_VMIN < abs(bh) < _SAFE_HI):
            return False
        qa = eai + G * abs(ah) + 3.0 * _U * abs(al) + _TINY
        qb = ebi + G * abs(bh) + 3.0 * _U * abs(bl) + _TINY
        for j in range(n_out):  # a zero weight adds exact zeros
            w = Wt[i, j]
            p, pe = _two_prod(w, ah)
            h, e1 = _two_sum(s[0, j], p)
            s[0, j] = h
            s[1, j] += (e1 + pe) + w * al
            p, pe = _two_prod(w, bh)
            h, e1 = _two_sum(s[2, j], p)
            s[2, j] = h
            s[3, j] += (e1 + pe) + w * bl
            aw = abs(w)
            s[4, j] += aw * qa
            s[5, j] += aw * qb
    for j in range(n_out):
        s[0, j], s[1, j] = _two_sum(s[0, j], s[1, j])
        s[2, j], s[3, j] = _two_sum(s[2, j], s[3, j])
        # every term of a live input is at least 2**-1000 (weights >= _WMIN, terms >=
        # _TINY), so the two bounds are zero together: exactly when no term entered
        if s[4, j] != 0.0 or s[5, j] != 0.0:
            s[4, j] = (s[4, j] + _TINY) * _INFLATE
            s[5, j] = (s[5, j] + G * abs(bias[j]) + _TINY) * _INFLATE
    return True


@njit(cache=True)
def _dd_rows(wt, bf, sizes, layer, lo, hi, elo, ehi):
    """``(ok, rows)``: the maps of the inputs of ``layer`` on the segment ``[lo, hi]``
    (within ``elo``, ``ehi`` of the exact ends) in double-double, per neuron ``A`` hi and
    lo, ``B`` hi and lo and the bounds of A and B (see :func:`_refresh_rows`); ``ok``
    False where they cannot be certified."""
    wmax = max(sizes.max(), 1)
    cur = np.zeros((wmax, 6))  # per neuron: Ah, Al, Bh, Bl, EA, EB
    xm = _interior_point(lo, hi)
    ax = abs(xm)
    # the point must lie inside the exact segment, beyond the ends' errors (an
    # infinite end is exact)
    if not ((math.isinf(lo) or xm - lo > (elo + 2.0 * _U * (ax + abs(lo))) * _INFLATE)
            and (math.isinf(hi) or hi - xm > (ehi + 2.0 * _U * (ax + abs(hi))) * _INFLATE)):
        return False, cur
    s = np.empty((6, wmax))  # the same, per neuron in columns
    cur[0, 0] = 1.0
    w_off = 0
    b_off = 0
    for m in range(layer):
        n_in = sizes[m]
        n_out = sizes[m + 1]
        Wt = wt[w_off : w_off + n_in * n_out].reshape((n_in, n_out))
        if not _dd_sums(Wt, bf[b_off : b_off + n_out], cur, s):
            return False, cur
        for j in range(n_out):
            sh, sl, th, tl, ea, eb = s[0, j], s[1, j], s[2, j], s[3, j], s[4, j], s[5, j]
            on = False
            if not (sh == 0.0 and sl == 0.0 and th == 0.0 and tl == 0.0 and ea == 0.0 and eb == 0.0):
                v = sh * xm + th
                bound = ((ea + abs(sl)) * ax + eb + abs(tl) + 4.0 * _U * (abs(sh * xm) + abs(th)) + _TINY) * _INFLATE
                sg = sign_beyond(v, bound)
                if sg == AMBIGUOUS:
                    return False, cur
                on = sg > 0
            if on:
                cur[j, 0] = sh
                cur[j, 1] = sl
                cur[j, 2] = th
                cur[j, 3] = tl
                cur[j, 4] = ea
                cur[j, 5] = eb
            else:
                cur[j, :] = 0.0
        w_off += n_in * n_out
        b_off += n_out
    return True, cur


@njit(cache=True)
def _refresh_rows(wt, bf, sizes, layer, lo, hi, elo, ehi, A, B, EA, EB, k):
    """Recompute the affine maps of the inputs of ``layer`` on segment ``k`` (ends
    ``lo``, ``hi``, within ``elo``, ``ehi`` of the exact ends) in double-double, from
    the weights, into the rows ``A[k]``, ``B[k]`` and their bounds ``EA[k]``,
    ``EB[k]``; False where that cannot be certified.

    The float64 bounds of a segment grow by about ``sum |W||a| / |W a|`` per layer; a
    decision they leave open is often decided by the same segment's maps recomputed
    with compensated sums (as in ``_certified_dd``), whose bounds start 2**-53 lower.
    The segment's activation pattern in every earlier layer is constant inside it, so
    it is read off at one interior point: an exact preactivation, affine and without a
    zero inside the segment, is nonzero there unless it is zero on the whole segment,
    so its certified sign (or an exactly zero row) says which.
    The rows then carry their double-double error: ``|A - A_e| <= EA``, as the sweep's.
    """
    ok, cur = _dd_rows(wt, bf, sizes, layer, lo, hi, elo, ehi)
    if not ok:
        return False
    for i in range(sizes[layer]):
        A[k, i] = cur[i, 0]
        B[k, i] = cur[i, 2]
        ea = cur[i, 4] + abs(cur[i, 1])
        eb = cur[i, 5] + abs(cur[i, 3])
        EA[k, i] = ea * _INFLATE if ea != 0.0 else 0.0
        EB[k, i] = eb * _INFLATE if eb != 0.0 else 0.0
    return True


@njit(cache=True)
def _output_slope_dd(wt, bf, sizes, lo, hi, elo, ehi):
    """``(slope, bound)``: the output's slope on the segment ``[lo, hi]``, from its
    inputs' maps recomputed in double-double (:func:`_dd_rows`) and summed in
    double-double, as the double-double sweep computes it; bound ``inf`` where they
    cannot be."""
    n_layers = sizes.size - 1
    ok, rows = _dd_rows(wt, bf, sizes, n_layers - 1, lo, hi, elo, ehi)
    if not ok:
        return 0.0, np.inf
    n_in = sizes[n_layers - 1]
    out = np.empty((6, 1))
    if not _dd_sums(wt[wt.size - n_in :].reshape((n_in, 1)), bf[bf.size - 1 :], rows, out):
        return 0.0, np.inf
    return out[0, 0], out[4, 0] + abs(out[1, 0])  # the slope kept as its hi part


@njit(cache=True)
def _refine_open_slopes(wt, bf, sizes, xs, ex, slope, serr, same, nseg):
    """Where the float64 bounds leave the equality of neighbouring output slopes open,
    recompute both slopes in double-double (in place); pairs still open stay so.
    Returns how many slopes were recomputed."""
    done = np.zeros(0, np.bool_)
    n = 0
    for k in range(1, nseg):
        if _pair_decision(slope, serr, same, k) != AMBIGUOUS:
            continue
        if done.size == 0:
            done = np.zeros(nseg, np.bool_)
        for kk in (k - 1, k):
            if not done[kk]:
                done[kk] = True
                n += 1
                sl, e = _output_slope_dd(wt, bf, sizes, xs[kk], xs[kk + 1], ex[kk], ex[kk + 1])
                if e < serr[kk]:
                    slope[kk] = sl
                    serr[kk] = e
    return n

