"""The stages of the certified sweep, one segment at a time (see
:mod:`pieces.count._certified_cpu` for the design and :mod:`._certified_sweep` for the
loop that runs them).

Each stage is inlined into the sweep by Numba (``inline="always"``), and the sweep is
compiled with :class:`pieces._jit.staged.StagedCompiler`, so that it compiles to the one
loop it was written as: a stage called as a function, or inlined without that
compiler's copy propagation, pays two atomic reference counts per array argument and
segment, several times the work of a narrow segment. The stages, in the order the sweep runs them on a segment:

1. :func:`_segment_flags`: what the segment's flags and structural masks say;
2. bounds and grains, and the four sums (slopes, intercepts and their bounds), in
   :mod:`._certified_sums`;
3. :func:`_split`: the certified sign of every neuron at both ends
   (:func:`_prove_end_signs`, then :func:`_crossings` for those left open), where a
   neuron crosses zero inside, and the boundaries that split the segment
   (:func:`_boundaries`: crossings at one point are one boundary);
4. :func:`_inherited` and :func:`_children`: the children's rows, flags and masks;
   on the last layer :func:`_record_output` instead.

The double-double refresh of a segment whose decisions its bounds leave open is
:func:`pieces.count._certified_refresh._refresh_rows`; the output-slope decisions are
:func:`pieces.count._certified_refresh._refine_open_slopes` and ``merge_pieces``.

Examples
--------
>>> import numpy as np
>>> cx, ce, cj = np.array([0.25, 0.25, 0.5]), np.zeros(3), np.array([0, 1, 2])
>>> bx, be, jb = np.empty(3), np.empty(3), np.zeros(3, np.int64)
>>> _boundaries(cx, ce, cj, 3, bx, be, jb)   # two neurons cross at 1/4: one boundary
(2, False)
>>> bx[:2], jb
(array([0.25, 0.5 ]), array([1, 1, 2]))
"""

import math

import numpy as np
from numba import njit

from ._certified_bounds import (_EXACT, _FLAT, _INFLATE, _KNOWN, _NOGRAIN, _ONE, _STASH, _TINY, _U, _ZERO, AMBIGUOUS,
                                _child_diff, _end_sign, _exact_end_signs, _inflated, _reached, _safe, exact_sign)
from ._certified_sums import _inflate_bounds

__all__ = []


@njit(cache=True, inline="always")
def _segment_flags(F, DIFF, reach, k, masks, n_in):
    """``(flat, exact_in, known_aff, aff)`` of segment k: every slope exactly 0; its
    inputs exact; and, where that is known (``known_aff``), the neurons of this layer
    whose exact affine maps may differ from those of the left neighbour (``aff``)."""
    flat = (F[k] & _FLAT) != 0
    exact_in = (F[k] & _EXACT) != 0
    known_aff = masks and k > 0 and (F[k] & _KNOWN) != 0
    aff = _reached(DIFF[k], reach, n_in) if known_aff else _ZERO
    return flat, exact_in, known_aff, aff


@njit(cache=True, inline="always")
def _prove_end_signs(s, t, ea, eb, bias, g, flat, lo, hi, elo, ehi, act0, jb, pend, n_out):
    """The common case of the sign test on a finite segment, for every neuron: both ends
    proved on one side. ``pend[j]`` is 0 where this decided neuron j's activity
    (``act0``), 1 where :func:`_crossings` must; returns how many sums rounded (the
    bounds are inflated here, in the same loop)."""
    n_err = 0
    if g == 0.0 and elo == 0.0 and ehi == 0.0 and _safe(lo) and _safe(hi):
        _exact_end_signs(s, t, lo, hi, act0, jb, pend, n_out)
        return n_err
    # a loop without branches (it vectorises), with the bounds of _end_sign
    alo = abs(lo)
    ahi = abs(hi)
    rounding = g != 0.0
    for j in range(n_out):
        sj = s[j]
        tj = t[j]
        eaj = ea[j]
        ebj = eb[j]
        # (selects and stores without a branch: a store under a branch becomes a
        # masked store; without rounding both bounds are 0)
        ia, ib, rounded = _inflated(eaj, ebj, bias[j], g, flat)
        n_err += rounding & rounded
        eaj = ia if rounding else eaj
        ebj = ib if rounding else ebj
        ea[j] = eaj
        eb[j] = ebj
        slo = sj * lo
        shi = sj * hi
        plo = slo + tj
        phi = shi + tj
        c_lo = (eaj * alo + ebj + (abs(sj) + eaj) * elo + 4.0 * _U * (abs(slo) + abs(tj)) + _TINY) * _INFLATE
        c_hi = (eaj * ahi + ebj + (abs(sj) + eaj) * ehi + 4.0 * _U * (abs(shi) + abs(tj)) + _TINY) * _INFLATE
        on = (plo > c_lo) & (phi > c_hi)
        off = (plo < -c_lo) & (phi < -c_hi)
        act0[j] = on
        jb[j] = 0
        pend[j] = not (on | off)
    return n_err


@njit(cache=True, inline="always")
def _split(s, t, ea, eb, bias, g, flat, lo, hi, elo, ehi, act0, jb, pend, up, cx, ce, cj, bx, be, n_out):
    """``(n_err, nb, open)``: where the segment [lo, hi] splits. The certified sign of
    every neuron at both ends (the sums' bounds inflated by their rounding, ``n_err``
    of them rounded), the ``nb`` inner boundaries where some neuron changes sign, and
    ``open`` where a bound cannot decide (the segment is then redone after a refresh)."""
    finite = not (math.isinf(lo) or math.isinf(hi))
    if finite:
        n_err = _prove_end_signs(s, t, ea, eb, bias, g, flat, lo, hi, elo, ehi, act0, jb, pend, n_out)
    elif g != 0.0:
        n_err = _inflate_bounds(ea, eb, bias, g, flat, n_out)
    else:
        n_err = 0
    m, amb = _crossings(s, t, ea, eb, lo, hi, elo, ehi, finite, pend, act0, jb, up, cx, ce, cj, n_out)
    if amb:
        return n_err, 0, True
    nb, amb = _boundaries(cx, ce, cj, m, bx, be, jb)
    return n_err, nb, amb


@njit(cache=True, inline="always")
def _crossings(s, t, ea, eb, lo, hi, elo, ehi, finite, pend, act0, jb, up, cx, ce, cj, n_out):
    """``(m, open)``: the certified sign at both ends of every neuron left open, and the
    ``m`` crossings strictly inside, sorted, with their error bounds (``cx``, ``ce``,
    neuron ``cj``); ``open`` where a bound cannot decide (the segment is redone)."""
    m = 0
    for j in range(n_out):
        if finite and pend[j] == 0:
            continue
        sj = s[j]
        tj = t[j]
        sl = _end_sign(sj, tj, ea[j], eb[j], lo, elo)
        sh = _end_sign(sj, tj, ea[j], eb[j], hi, ehi)
        if sl == AMBIGUOUS or sh == AMBIGUOUS:
            return m, True
        jb[j] = 0
        if sl * sh < 0:  # a crossing lies strictly inside exactly when the signs are opposite
            c = -tj / sj
            ac = abs(c)
            if ea[j] == 0.0 and eb[j] == 0.0:
                r = exact_sign(sj, c, tj)
                if r == AMBIGUOUS:
                    return m, True
                ec = 0.0 if r == 0 else max(2.0 * _U * ac, 5e-324) * _INFLATE
            else:
                # s*c_e + t = (s - s_e)*c_e + (t - t_e) at the exact crossing
                ec = ((ea[j] * ac + eb[j]) / (abs(sj) - ea[j]) + 2.0 * _U * ac + 5e-324) * _INFLATE
            if c < lo:
                c = lo
                ec = max(ec, elo)
            elif c > hi:
                c = hi
                ec = max(ec, ehi)
            q = m
            while q > 0 and cx[q - 1] > c:
                cx[q] = cx[q - 1]
                ce[q] = ce[q - 1]
                cj[q] = cj[q - 1]
                q -= 1
            cx[q] = c
            ce[q] = ec
            cj[q] = j
            m += 1
            up[j] = 1 if sh > 0 else 0
        else:
            act0[j] = 1 if (sl > 0 or sh > 0) else 0
    return m, False


@njit(cache=True, inline="always")
def _boundaries(cx, ce, cj, m, bx, be, jb):
    """``(nb, open)``: the segment's ``nb`` inner boundaries (``bx``, bounds ``be``) from
    its ``m`` sorted crossings, and ``jb[j]``, the boundary (1-based) at which neuron j
    switches. Crossings at one point are one boundary; the float order is the exact
    order once every neighbouring pair is certified apart (``open`` where one is not)."""
    nb = 0
    for q in range(m):
        c = cx[q]
        ec = ce[q]
        one_point = False
        if nb > 0:
            pc = bx[nb - 1]
            pe = be[nb - 1]
            if ec == 0.0 and pe == 0.0:
                one_point = c == pc
            elif not (c - pc > (ec + pe) * _INFLATE):
                return nb, True
        if not one_point:
            bx[nb] = c
            be[nb] = ec
            nb += 1
        jb[cj[q]] = nb
    return nb, False


@njit(cache=True, inline="always")
def _record_output(slope, serr, intercept, same, k, s, t, ea, eb, bias, g, flat, known_aff, aff, n_out):
    """The output's slope, its bound (rounding included) and intercept on segment k of
    the last layer, and whether its exact affine map is the left neighbour's, by
    structure."""
    if g != 0.0:
        _inflate_bounds(ea, eb, bias, g, flat, n_out)
    slope[k] = s[0]
    intercept[k] = t[0]
    serr[k] = ea[0]
    same[k] = known_aff and (aff & _ONE) == _ZERO


@njit(cache=True, inline="always")
def _inherited(n_err, g, flat, wrow, Cw, bmax, gW, gb, MA, MB, ga, gbb):
    """``(flags, grains)``: the flags every child of a segment inherits (exact where
    every sum is, so that bounds are not stored; the stash; flat slopes), and the bounds
    stashed. Where the sums were proved exact by grains, the children's inputs (these
    sums) have grains and sizes bounded by the same quantities; the bounds are stashed in
    the rows of error bounds, unused by exact segments, so that the children can skip
    their own grains (_STASH)."""
    flags = _EXACT if n_err == 0 else 0
    if g == 0.0 and wrow >= 2:
        flags |= _STASH
    if flat:
        flags |= _FLAT
    ga2 = gW + ga if MA > 0.0 else _NOGRAIN
    return flags, (Cw * MA * _INFLATE, ga2, (Cw * MB + bmax) * _INFLATE, min(gb, gW + gbb))


@njit(cache=True, inline="always")
def _children(nxs, nex, nF, nA, nB, nEA, nEB, nDIFF, nACT, n_new, lo, elo, bx, be, nb, s, t, ea, eb, jb, up, act0, pend,
              n_out, inherited, grains, masks, known_aff, aff):
    """Write the rows of the segment's ``nb + 1`` children from row ``n_new`` on: their
    left ends, active neurons' maps (and bounds, unless ``inherited`` has ``_EXACT``),
    flags and structural masks; ``grains`` are the bounds stashed where ``inherited``
    has ``_STASH``. Returns the new number of rows."""
    seg_exact = (inherited & _EXACT) != 0
    stash = (inherited & _STASH) != 0
    MA2, ga2, MB2, gbb2 = grains
    for q in range(nb + 1):
        # child q's rows, without branches (loads before the selects: a load in one arm
        # of a select becomes a masked load or store, slow on AMD)
        nxs[n_new] = lo if q == 0 else bx[q - 1]
        nex[n_new] = elo if q == 0 else be[q - 1]
        n_on = 0
        act = _ZERO
        for j in range(n_out):
            sj = s[j]
            tj = t[j]
            jbj = jb[j]  # neuron j switches at boundary jbj (1-based), if any
            active = ((jbj > 0) & ((up[j] == 1) == (q >= jbj))) | ((jbj <= 0) & (act0[j] == 1))
            pend[j] = active  # free again: the bounds' loop below reads it
            n_on += active
            act |= np.uint64(active) << np.uint64(j & 63)  # kept only where masks
            nA[n_new, j] = sj if active else 0.0
            nB[n_new, j] = tj if active else 0.0
        if not seg_exact:
            for j in range(n_out):
                eaj = ea[j]
                ebj = eb[j]
                active = pend[j] == 1
                nEA[n_new, j] = eaj if active else 0.0
                nEB[n_new, j] = ebj if active else 0.0
        if not masks:
            act = _ZERO
        flags = inherited
        if stash:
            nEA[n_new, 0] = MA2
            nEA[n_new, 1] = ga2
            nEB[n_new, 0] = MB2
            nEB[n_new, 1] = gbb2
        if n_on == 0:  # every slope exactly 0 from here on
            flags |= _FLAT
        if masks and n_new > 0 and (q > 0 or known_aff):
            nDIFF[n_new] = _child_diff(nACT[n_new - 1], act, aff, q > 0)
            flags |= _KNOWN
        nACT[n_new] = act
        nF[n_new] = flags
        n_new += 1
    return n_new
