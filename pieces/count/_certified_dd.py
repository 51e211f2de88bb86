"""The certified sweep in double-double arithmetic: the second stage of ``"certified"``.

Where the float64 stage (:mod:`pieces.count._certified_cpu`) leaves a decision undecided, its
error bounds have outgrown the margins: rigorous forward bounds grow by about
``sum |W||a| / |sum W a|`` per layer, which at width 64 and depth 16 reaches ~1e-3. This
stage runs the same sweep with every slope, intercept and segment end carried as an
unevaluated sum ``hi + lo`` of two floats. Products of a weight and a ``hi`` part are
exact (Dekker), sums are accumulated with their exact errors (Knuth's TwoSum; the
compensated dot product of Ogita, Rump and Oishi), so what each layer adds to a bound
is of order ``n**2 u**2`` instead of ``n u``, and the same growth starts 2**-53 lower.

Decisions and bounds follow the float64 stage: the sign of a preactivation at a segment
end is certified when its value exceeds ``eA |x| + eB + (|s| + eA) ex`` plus the
rounding of its own evaluation; crossings and slopes are compared against the sum of
their bounds. There is no exact path: a zero that must be decided exactly (crossings
that coincide in exact arithmetic) stays undecided here too, and the net is counted in
rationals.
"""

import math

import numpy as np
from numba import njit

from .._jit.staged import StagedCompiler
from ._certified_bounds import (AMBIGUOUS, _DD_VMIN, _INFLATE, _MASK_BITS, _ONE, _SAFE_HI, _TINY, _U, _WMIN, _ZERO,
                                _child_diff, _fill_reach, _reached, _sign, _two_prod, _two_sum, sign_beyond)
from ._certified_cpu import merge_pieces
from ._certified_refresh import _dd_sums
from ._count_cpu import breakpoints_of

__all__ = ["sweep_dd", "count_one_dd"]


@njit(cache=True, inline="always")
def _eval(sh, sl, th, tl, xh, xl):
    """``(v, r)``: ``s*x + t`` for dd s, t, x, as a float ``v`` within ``r`` of the
    exact value of the dd expression; ``r`` is ``inf`` where Dekker's product would not
    be exact."""
    if sh != 0.0 and xh != 0.0 and not (abs(sh) > _DD_VMIN and abs(xh) > _DD_VMIN and abs(sh) < _SAFE_HI
                                         and abs(xh) < _SAFE_HI):
        return 0.0, np.inf
    p1, e1 = _two_prod(sh, xh)
    q, e2 = _two_sum(p1, th)
    c1 = sh * xl
    c2 = sl * xh
    c3 = sl * xl
    r = ((e1 + e2) + (c1 + c2)) + (tl + c3)
    v, vl = _two_sum(q, r)
    rb = (6.0 * _U * (abs(e1) + abs(e2) + abs(c1) + abs(c2) + abs(tl) + abs(c3)) + abs(vl) + _TINY) * _INFLATE
    return v, rb


@njit(cache=True, inline="always")
def _end_sign_dd(sh, sl, th, tl, ea, eb, xh, xl, ex):
    if math.isinf(xh):
        if sh == 0.0 and ea == 0.0:
            if abs(th) - abs(tl) > eb * _INFLATE:
                return _sign(th)
            return AMBIGUOUS
        if abs(sh) - abs(sl) > ea * _INFLATE:
            return _sign(sh) if xh > 0.0 else -_sign(sh)
        return AMBIGUOUS
    v, rb = _eval(sh, sl, th, tl, xh, xl)
    ax = abs(xh) + abs(xl)
    return sign_beyond(v, (ea * ax + eb + (abs(sh) + abs(sl) + ea) * ex + rb) * _INFLATE)


@njit(cache=True, inline="always")
def _dd_less(ah, al, bh, bl):
    return ah < bh or (ah == bh and al < bl)


@njit(cache=True, inline="always")
def _dd_diff(ah, al, bh, bl):
    """``a - b`` for dd a, b, as a float, and a bound on its error."""
    dh, de = _two_sum(ah, -bh)
    r = de + (al - bl)
    v = dh + r
    return v, (4.0 * _U * (abs(v) + abs(de) + abs(al) + abs(bl)) + _TINY) * _INFLATE


@njit(cache=True)
def _grow_rows(arr, n_keep, rows):
    out = np.empty((rows,) + arr.shape[1:], arr.dtype)
    out[:n_keep] = arr[:n_keep]
    return out


@njit(cache=True, inline="always")
def _in_range(Wt):
    """Whether every nonzero weight lies in the range in which the bounds hold."""
    for i in range(Wt.shape[0]):
        for j in range(Wt.shape[1]):
            aw = abs(Wt[i, j])
            if aw != 0.0 and (aw < _WMIN or aw > _SAFE_HI):
                return False
    return True


@njit(cache=True, inline="always")
def _crossings_dd(s, loh, lol, elo, hih, hil, ehi, jb, up, act0, cx, cj, n_out):
    """The certified sign of every neuron at both ends of the segment, and its crossings
    strictly inside, sorted as dd values with bounds (``cx``; neuron ``cj``); returns
    their number, -1 where a sign or a crossing is undecided."""
    m = 0
    for j in range(n_out):
        sh, sl_, th, tl, ea, eb = s[0, j], s[1, j], s[2, j], s[3, j], s[4, j], s[5, j]
        sgl = _end_sign_dd(sh, sl_, th, tl, ea, eb, loh, lol, elo)
        sgh = _end_sign_dd(sh, sl_, th, tl, ea, eb, hih, hil, ehi)
        if sgl == AMBIGUOUS or sgh == AMBIGUOUS:
            return -1
        jb[j] = 0
        if sgl * sgh < 0:
            ch = -th / sh
            v, rb = _eval(sh, sl_, th, tl, ch, 0.0)
            cl = -v / sh
            ch, cl = _two_sum(ch, cl)
            v, rb = _eval(sh, sl_, th, tl, ch, cl)
            ac = abs(ch) + abs(cl)
            den = abs(sh) - abs(sl_) - ea
            if not den > 0.0 or math.isinf(rb):
                return -1
            # s_e c_e + t_e = 0, so |c - c_e| <= |s_e c + t_e| / |s_e|
            ec = ((abs(v) + rb + ea * ac + eb) / den + _TINY) * _INFLATE
            if _dd_less(ch, cl, loh, lol):
                ch, cl, ec = loh, lol, max(ec, elo)
            elif _dd_less(hih, hil, ch, cl):
                ch, cl, ec = hih, hil, max(ec, ehi)
            q = m
            while q > 0 and _dd_less(ch, cl, cx[q - 1, 0], cx[q - 1, 1]):
                cx[q] = cx[q - 1]
                cj[q] = cj[q - 1]
                q -= 1
            cx[q, 0], cx[q, 1], cx[q, 2] = ch, cl, ec
            cj[q] = j
            m += 1
            up[j] = 1 if sgh > 0 else 0
        else:
            act0[j] = 1 if (sgl > 0 or sgh > 0) else 0
    return m


@njit(cache=True, inline="always")
def _boundaries_dd(cx, cj, m, bnd, jb):
    """The segment's boundaries from its ``m`` sorted crossings, and ``jb[j]``, the
    boundary (1-based) at which neuron j switches; returns their number, -1 where two
    are not certified apart (there is no exact path here: rationals decide)."""
    nb = 0
    for q in range(m):
        if nb > 0:
            d, de = _dd_diff(cx[q, 0], cx[q, 1], bnd[nb - 1, 0], bnd[nb - 1, 1])
            if not d > (cx[q, 2] + bnd[nb - 1, 2] + de) * _INFLATE:
                return -1
        bnd[nb] = cx[q]
        nb += 1
        jb[cj[q]] = nb
    return nb


@njit(cache=True, inline="always")
def _children_dd(nX, nV, nF, nKNOWN, nDIFF, nACT, n_new, loh, lol, elo, bnd, nb, s, jb, up, act0, n_out, flat, masks,
                 known_aff, aff):
    """Write the rows of the segment's ``nb + 1`` children from row ``n_new`` on: ends,
    active neurons' dd maps and bounds, flags and structural masks. Returns the new
    number of rows."""
    for q in range(nb + 1):
        if q == 0:
            nX[n_new, 0], nX[n_new, 1], nX[n_new, 2] = loh, lol, elo
        else:
            nX[n_new] = bnd[q - 1]
        any_on = False
        act = _ZERO
        for j in range(n_out):
            active = ((up[j] == 1) == (q >= jb[j])) if jb[j] > 0 else act0[j] == 1
            if active:
                any_on = True
                if masks:
                    act |= _ONE << np.uint64(j)
                nV[n_new, j, :] = s[:, j]
            else:
                nV[n_new, j, :] = 0.0
        nF[n_new] = flat or not any_on
        nKNOWN[n_new] = False
        if masks and n_new > 0 and (q > 0 or known_aff):
            nDIFF[n_new] = _child_diff(nACT[n_new - 1], act, aff, q > 0)
            nKNOWN[n_new] = True
        nACT[n_new] = act
        n_new += 1
    return n_new


@njit(cache=True)
def _undecided(X, slope, serr):
    """What :func:`sweep_dd` returns where a decision is undecided."""
    return 0, X[:0, 0].copy(), X[:0, 0].copy(), slope, serr, np.zeros(0, np.bool_), 1


@njit(cache=True, pipeline_class=StagedCompiler)
def sweep_dd(wt, bf, sizes, a, b, capacity):
    """The double-double sweep of one packed net.

    Returns ``(nseg, xs, ex, slope, serr, same, status)``: the segment ends (their ``hi``
    parts) and bounds on their distance to the exact ends, per segment the output slope
    (``hi``), a bound on its error and whether it is structurally its left neighbour's
    (see ``_certified_cpu.sweep``), and ``status`` 1 where a decision of the sweep is
    still undecided (then counted in rationals).
    """
    n_layers = sizes.size - 1
    wmax = max(sizes.max(), 1)
    cap = max(capacity, 2)
    # per segment: ends (hi, lo, err) at index k and k+1; per neuron: A, B as dd, bounds
    X = np.empty((cap + 1, 3))
    V = np.empty((cap, wmax, 6))  # Ah, Al, Bh, Bl, EA, EB
    F = np.empty(cap, np.bool_)  # every slope exactly 0
    # structural equality, as in _certified_cpu.sweep: the neurons in which a segment's
    # exact rows may differ from its left neighbour's (valid where KNOWN), its active
    # neurons, and per input neuron the neurons its weights reach
    KNOWN = np.zeros(cap, np.bool_)
    DIFF = np.empty(cap, np.uint64)
    ACT = np.empty(cap, np.uint64)
    reach = np.empty(wmax, np.uint64)
    nseg = 1
    X[0, 0] = a
    X[1, 0] = b
    X[0, 1] = X[1, 1] = X[0, 2] = X[1, 2] = 0.0
    V[0, 0, :] = 0.0
    V[0, 0, 0] = 1.0
    F[0] = False
    ACT[0] = _ONE
    s = np.empty((6, wmax))  # per neuron: sh, sl, th, tl, ea, eb (rows: the loops over neurons vectorise)
    cx = np.empty((wmax, 3))
    cj, jb, up, act0 = np.empty(wmax, np.int64), np.empty(wmax, np.int64), np.empty(wmax, np.int64), np.empty(
        wmax, np.int64)
    bnd = np.empty((wmax + 1, 3))
    slope = np.empty(0)
    serr = np.empty(0)
    same = np.zeros(0, np.bool_)
    w_off = 0
    b_off = 0
    for layer in range(n_layers):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        last = layer == n_layers - 1
        Wt = wt[w_off : w_off + n_in * n_out].reshape((n_in, n_out))
        bias = bf[b_off : b_off + n_out]
        if not _in_range(Wt):
            return _undecided(X, slope, serr)
        nX = np.empty((2 * nseg + 2, 3))
        nV = np.empty((2 * nseg + 1, wmax, 6))
        nF = np.empty(2 * nseg + 1, np.bool_)
        nKNOWN = np.zeros(2 * nseg + 1, np.bool_)
        nDIFF = np.empty(2 * nseg + 1, np.uint64)
        nACT = np.empty(2 * nseg + 1, np.uint64)
        masks = n_in <= _MASK_BITS and n_out <= _MASK_BITS
        if masks:
            _fill_reach(Wt, reach)
        if last:
            slope, serr, same = np.empty(nseg), np.empty(nseg), np.zeros(nseg, np.bool_)
        n_new = 0
        for k in range(nseg):
            loh, lol, elo = X[k, 0], X[k, 1], X[k, 2]
            hih, hil, ehi = X[k + 1, 0], X[k + 1, 1], X[k + 1, 2]
            flat = F[k]
            known_aff = masks and k > 0 and KNOWN[k]
            aff = _reached(DIFF[k], reach, n_in) if known_aff else _ZERO
            if not _dd_sums(Wt, bias, V[k], s):
                return _undecided(X, slope, serr)
            if flat:  # every slope is exactly 0
                s[4, :n_out] = 0.0
            if last:
                slope[k] = s[0, 0]
                serr[k] = s[4, 0] + abs(s[1, 0])  # the slope is kept as its hi part
                same[k] = known_aff and (aff & _ONE) == _ZERO
                continue
            m = _crossings_dd(s, loh, lol, elo, hih, hil, ehi, jb, up, act0, cx, cj, n_out)
            nb = _boundaries_dd(cx, cj, m, bnd, jb) if m >= 0 else -1
            if nb < 0:
                return _undecided(X, slope, serr)
            if n_new + nb + 1 > nV.shape[0]:
                rows = 2 * nV.shape[0] + nb + 1
                nX = _grow_rows(nX, n_new, rows + 1)
                nV = _grow_rows(nV, n_new, rows)
                nF = _grow_rows(nF, n_new, rows)
                nKNOWN = _grow_rows(nKNOWN, n_new, rows)
                nDIFF = _grow_rows(nDIFF, n_new, rows)
                nACT = _grow_rows(nACT, n_new, rows)
            n_new = _children_dd(nX, nV, nF, nKNOWN, nDIFF, nACT, n_new, loh, lol, elo, bnd, nb, s, jb, up, act0, n_out,
                                 flat, masks, known_aff, aff)
        if last:
            break
        nX[n_new] = X[nseg]  # the interval's right end
        X, V, F, KNOWN, DIFF, ACT = nX, nV, nF, nKNOWN, nDIFF, nACT
        nseg = n_new
        w_off += n_in * n_out
        b_off += n_out
    return nseg, X[: nseg + 1, 0].copy(), X[: nseg + 1, 2] + np.abs(X[: nseg + 1, 1]), slope, serr, same, 0


@njit(cache=True)
def count_one_dd(wt, bf, sizes, a, b, capacity):
    """``(pieces, regions, breakpoints, status)`` of one packed net by the dd sweep."""
    nseg, xs, _, slope, serr, same, status = sweep_dd(wt, bf, sizes, a, b, capacity)
    if status != 0:
        return 0, 0, np.empty(0), status
    new, status = merge_pieces(slope, serr, same)
    if status != 0:
        return 0, 0, np.empty(0), status
    bps = breakpoints_of(new, xs)
    return bps.size + 1, nseg, bps, 0
