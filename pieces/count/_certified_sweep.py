"""The certified float64 sweep of one net: every decision proved (see
:mod:`pieces.count._certified_cpu` for the design). The loop over layers and segments is
here; what it does to one segment is in :mod:`._certified_stages`, inlined.

Examples
--------
>>> import numpy as np
>>> from pieces import sawtooth
>>> from pieces.count._count_cpu import pack
>>> from pieces.count._certified_workspace import new_workspace
>>> wt, bf, sizes, *_ = pack([sawtooth(3)])
>>> nseg, ws, status = sweep(wt, bf, sizes, 0.0, 1.0, new_workspace(8, 2))
>>> nseg, status, ws[0][: nseg + 1]
(8, 0, array([0.   , 0.125, 0.25 , 0.375, 0.5  , 0.625, 0.75 , 0.875, 1.   ]))
"""

import numpy as np
from numba import njit

from .._jit.staged import StagedCompiler
from ._certified_bounds import (_EXACT, _MASK_BITS, _NOGRAIN, _ONE, _SAFE_HI, _U, _WMIN, _fill_reach,
                                _layer_grains)
from ._certified_refresh import _refine_open_slopes, _refresh_rows
from ._certified_stages import _children, _inherited, _record_output, _segment_flags, _split
from ._certified_sums import _input_grains, _segment_sums
from ._certified_workspace import _grow, new_workspace

__all__ = ["sweep"]


@njit(cache=True, inline="always")
def _layer_scale(Wt, bias, reach):
    """``(ok, Cw, bmax, masks)``: the largest column sum of ``|W|`` and the largest
    ``|bias|``; ``ok`` is False where a weight or bias lies outside the range in which
    the bounds hold. Where the layer is narrow enough for the structural masks
    (``masks``), ``reach[i]`` is set to the neurons that input neuron i feeds."""
    n_in, n_out = Wt.shape
    Cw = 0.0
    bmax = 0.0
    masks = n_in <= _MASK_BITS and n_out <= _MASK_BITS
    for j in range(n_out):
        cs = 0.0
        for i in range(n_in):
            aw = abs(Wt[i, j])
            if aw != 0.0 and (aw < _WMIN or aw > _SAFE_HI):
                return False, Cw, bmax, masks
            cs += aw
        if cs > Cw:
            Cw = cs
        ab = abs(bias[j])
        if ab > _SAFE_HI:
            return False, Cw, bmax, masks
        if ab > bmax:
            bmax = ab
    if masks:
        _fill_reach(Wt, reach)
    return True, Cw, bmax, masks


@njit(cache=True)
def _fresh_rows(cap, nA, nB, nEA, nEB):
    """Empty rows of the next layer's segments, ``cap`` of them."""
    return (np.empty(cap + 1), np.empty(cap + 1), np.empty(cap, np.int8), np.empty(cap, np.uint64),
            np.empty(cap, np.uint64), np.empty((cap, nA.shape[1])), np.empty((cap, nB.shape[1])),
            np.empty((cap, nEA.shape[1])), np.empty((cap, nEB.shape[1])))


@njit(cache=True, inline="always")
def _first_segment(a, b, xs, ex, F, ACT, A, B, EA, EB):
    """The sweep's start: one segment [a, b], exact, on which the input is x itself."""
    xs[0], xs[1], ex[0], ex[1] = a, b, 0.0, 0.0
    F[0] = _EXACT
    ACT[0] = _ONE
    A[0, 0], B[0, 0], EA[0, 0], EB[0, 0] = 1.0, 0.0, 0.0, 0.0
    return 1


@njit(cache=True)
def _refresh(wt, bf, sizes, layer, k, xs, ex, F, A, B, EA, EB):
    """Recompute segment k's input maps in double-double (:func:`_refresh_rows`), with
    bounds instead of exactness; False where that fails."""
    if not _refresh_rows(wt, bf, sizes, layer, xs[k], xs[k + 1], ex[k], ex[k + 1], A, B, EA, EB, k):
        return False
    F[k] &= ~np.int8(_EXACT)
    return True


@njit(cache=True, inline="always")
def _layer_capacity(nseg, n_out, limit, have):
    """Rows for the next layer, allocated before its segment loop where ``nseg``
    segments may outgrow the rows held: a layer mostly at most doubles the segments,
    within ``limit`` (0: none; ``have``: the rows already held); -1 where not even one
    segment's children fit."""
    cap = 2 * nseg + n_out + 1
    if limit > 0 and cap > limit:
        cap = max(limit, have)
        if cap < n_out + 1:
            return -1
    return cap


@njit(cache=True, inline="always")
def _grown_capacity(need, cap, limit):
    """Rows to grow to when ``need`` rows exceed ``cap``: doubled until they fit, within
    ``limit`` (0: none); -1 where ``need`` exceeds the limit."""
    grown = 2 * cap
    while need > grown:
        grown *= 2
    if limit > 0 and grown > limit:
        if need > limit:
            return -1
        grown = limit
    return grown


@njit(cache=True, pipeline_class=StagedCompiler)
def sweep(wt, bf, sizes, a, b, ws):
    """The certified layer-by-layer sweep of one packed net, in the buffers ``ws``.

    Returns ``(nseg, ws, status)``; buffers that had to grow are replaced in the
    returned workspace, whose ``ws[0][:nseg+1]`` holds the segment ends and
    ``ws[14:17]`` the output's slope, its error bound and intercept per segment.
    ``status`` is 1 (and ``nseg`` 0) when some decision could not be certified, 3
    (and ``nseg`` 0) when a layer needs more than ``ws[25][2]`` segments (the memory
    budget of a chunked count; 0 is no limit).
    """
    n_layers = sizes.size - 1
    limit = ws[25][2]
    if ws[3].shape[1] < sizes.max():
        ws = new_workspace(ws[3].shape[0], sizes.max())
        ws[25][2] = limit
    (xs, ex, F, A, B, EA, EB, nxs, nex, nF, nA, nB, nEA, nEB,
     slope, serr, intercept, scr, iscr, DIFF, ACT, nDIFF, nACT, reach, same, n_refresh) = ws
    n_refresh[0] = 0
    n_refresh[1] = 0
    # the refreshes' work (layers recomputed) is kept below the work of a whole
    # double-double sweep so far (segments swept), which is what status 1 costs
    refresh_work = 0
    swept = 32 * n_layers
    s, t, ea, eb, cx, ce, bx, be = scr[0], scr[1], scr[2], scr[3], scr[4], scr[5], scr[6], scr[7]
    scrf = scr.reshape(scr.size)  # rows s, t, ea, eb, then the inputs' terms of sums4 (in cx, ce)
    cj, jb, up, act0, live, pend = iscr[0], iscr[1], iscr[2], iscr[3], iscr[4], iscr[5]
    nseg = _first_segment(a, b, xs, ex, F, ACT, A, B, EA, EB)
    w_off = 0
    b_off = 0
    for layer in range(n_layers):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        last = layer == n_layers - 1
        Wt = wt[w_off : w_off + n_in * n_out].reshape((n_in, n_out))
        bias = bf[b_off : b_off + n_out]
        ok, Cw, bmax, masks = _layer_scale(Wt, bias, reach)
        if not ok:
            return 0, ws, 1  # outside the range in which the bounds hold
        Af = A.reshape(A.size)  # flat views for sums4 (A, B change rows, not arrays, below)
        Bf = B.reshape(B.size)
        have_grains = False
        gW = gb = -_NOGRAIN
        g0 = (n_in + 2) * _U * 1.001  # gamma_{n_in + 1}, rounded up
        cap_new = nA.shape[0]
        if not last and cap_new < 2 * nseg + n_out + 1:
            cap_new = _layer_capacity(nseg, n_out, limit, nxs.shape[0] - 1)
            if cap_new < 0:
                return 0, ws, 3
            nxs, nex, nF, nDIFF, nACT, nA, nB, nEA, nEB = _fresh_rows(cap_new, nA, nB, nEA, nEB)
        if last and slope.size < nseg:
            slope, serr, intercept, same = np.empty(nseg), np.empty(nseg), np.empty(nseg), np.empty(nseg, np.bool_)
        # Arrays are grown between runs of the segment loop, never inside it: an array
        # variable reassigned in the loop costs an atomic reference count per segment.
        n_new = k_next = 0
        last_redo = -1
        swept += nseg
        while k_next < nseg:
            if not last and n_new + n_out + 1 > cap_new:
                cap_new = _grown_capacity(n_new + n_out + 1, cap_new, limit)
                if cap_new < 0:
                    return 0, ws, 3  # over the budget: the caller splits the interval
                nxs, nex, nF, nA, nB, nEA, nEB, nDIFF, nACT = _grow(n_new, cap_new, nxs, nex, nF, nA, nB, nEA, nEB,
                                                                     nDIFF, nACT)
            k_stop = nseg
            redo = -1
            for k in range(k_next, nseg):
                if not last and n_new + n_out + 1 > cap_new:  # a segment has at most n_out + 1 children
                    k_stop = k
                    break
                lo, hi, elo, ehi = xs[k], xs[k + 1], ex[k], ex[k + 1]
                flat, exact_in, known_aff, aff = _segment_flags(F, DIFF, reach, k, masks, n_in)
                if exact_in and not have_grains:
                    gW, gb = _layer_grains(Wt, bias)
                    have_grains = True
                g, MA, MB, ga, gbb = _input_grains(A, B, EA, EB, F, k, exact_in, n_in, g0, gW, gb, Cw, bmax)
                _segment_sums(wt, w_off, Wt, bias, A, B, EA, EB, Af, Bf, k, g, exact_in, s, t, ea, eb, cx, ce, scrf,
                              live, n_in, n_out)
                if last:
                    _record_output(slope, serr, intercept, same, k, s, t, ea, eb, bias, g, flat, known_aff, aff, n_out)
                    continue
                n_err, nb, amb = _split(s, t, ea, eb, bias, g, flat, lo, hi, elo, ehi, act0, jb, pend, up, cx, ce, cj,
                                        bx, be, n_out)
                if amb:  # bounds too wide: this segment is redone after a refresh (below)
                    redo = k_stop = k
                    break
                inherited, grains = _inherited(n_err, g, flat, A.shape[1], Cw, bmax, gW, gb, MA, MB, ga, gbb)
                n_new = _children(nxs, nex, nF, nA, nB, nEA, nEB, nDIFF, nACT, n_new, lo, elo, bx, be, nb, s, t, ea,
                                  eb, jb, up, act0, pend, n_out, inherited, grains, masks, known_aff, aff)
            k_next = k_stop
            if redo >= 0:
                # A decision on segment ``redo`` was left open by its bounds: recompute its
                # inputs' maps in double-double and sweep on from it (once per segment).
                # Out of the segment loop, which stays lean.
                refresh_work += layer
                if redo == last_redo or layer == 0 or refresh_work > swept or not _refresh(
                        wt, bf, sizes, layer, redo, xs, ex, F, A, B, EA, EB):
                    return 0, ws, 1
                last_redo = redo
                n_refresh[0] += 1
        if last:
            break
        nxs[n_new] = b
        nex[n_new] = 0.0
        xs, nxs, ex, nex, F, nF, DIFF, nDIFF, ACT, nACT = nxs, xs, nex, ex, nF, F, nDIFF, DIFF, nACT, ACT
        A, nA, B, nB, EA, nEA, EB, nEB = nA, A, nB, B, nEA, EA, nEB, EB
        nseg = n_new
        w_off += n_in * n_out
        b_off += n_out
    n_refresh[1] = _refine_open_slopes(wt, bf, sizes, xs, ex, slope, serr, same, nseg)
    return nseg, (xs, ex, F, A, B, EA, EB, nxs, nex, nF, nA, nB, nEA, nEB,
                  slope, serr, intercept, scr, iscr, DIFF, ACT, nDIFF, nACT, reach, same, n_refresh), 0
