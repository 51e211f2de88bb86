"""The certified float64 sweep of one net: every decision proved (see
:mod:`pieces.count._certified_cpu` for the design, and why it stays one function)."""

import math

import numpy as np
from numba import njit

from ._certified_bounds import (_EXACT, _FLAT, _INFLATE, _KNOWN, _MASK_BITS, _NOGRAIN, _ONE, _SAFE_HI, _STASH, _TINY,
                                _U, _WMIN, _ZERO, AMBIGUOUS, _bound_terms, _child_diff, _end_sign, _exact_end_signs,
                                _exact_sums, _fill_reach, _grain, _inflated, _layer_grains, _reached, _safe,
                                exact_sign)
from ._certified_refresh import _refine_open_slopes, _refresh_rows
from ._segment_sums import sums4
from ._certified_workspace import _grow, new_workspace

__all__ = ["sweep"]


@njit(cache=True)
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
    wmax = sizes.max()
    limit = ws[25][2]
    if ws[3].shape[1] < wmax:
        ws = new_workspace(ws[3].shape[0], wmax)
        ws[25][2] = limit
    (xs, ex, F, A, B, EA, EB, nxs, nex, nF, nA, nB, nEA, nEB,
     slope, serr, intercept, scr, iscr, DIFF, ACT, nDIFF, nACT, reach, same, n_refresh) = ws
    n_refresh[0] = 0
    n_refresh[1] = 0
    # the refreshes' work (layers recomputed) is kept below the work of a whole
    # double-double sweep so far (segments swept), which is what status 1 costs
    refresh_work = 0
    swept = 32 * n_layers
    s = scr[0]
    t = scr[1]
    ea = scr[2]
    eb = scr[3]
    cx = scr[4]
    ce = scr[5]
    bx = scr[6]
    be = scr[7]
    ldc = scr.shape[1]
    scrf = scr.reshape(scr.size)  # rows s, t, ea, eb, then the inputs' terms of sums4
    qa_ = scr[4]  # the inputs' bound terms (sums4), in the rows of cx and ce before those
    qb_ = scr[5]
    cj = iscr[0]
    jb = iscr[1]
    up = iscr[2]
    act0 = iscr[3]
    live = iscr[4]
    pend = iscr[5]
    cap_new = nA.shape[0]
    nseg = 1
    xs[0] = a
    xs[1] = b
    ex[0] = 0.0
    ex[1] = 0.0
    F[0] = _EXACT
    ACT[0] = _ONE
    A[0, 0] = 1.0
    B[0, 0] = 0.0
    EA[0, 0] = 0.0
    EB[0, 0] = 0.0
    w_off = 0
    b_off = 0
    for layer in range(n_layers):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        last = layer == n_layers - 1
        Wt = wt[w_off : w_off + n_in * n_out].reshape((n_in, n_out))
        bias = bf[b_off : b_off + n_out]
        Cw = 0.0
        bmax = 0.0
        for j in range(n_out):
            cs = 0.0
            for i in range(n_in):
                aw = abs(Wt[i, j])
                if aw != 0.0 and (aw < _WMIN or aw > _SAFE_HI):
                    return 0, ws, 1  # outside the range in which the bounds hold
                cs += aw
            if cs > Cw:
                Cw = cs
            ab = abs(bias[j])
            if ab > _SAFE_HI:
                return 0, ws, 1
            if ab > bmax:
                bmax = ab
        wrow = A.shape[1]
        Af = A.reshape(A.size)  # flat views for sums4 (A, B change rows, not arrays, below)
        Bf = B.reshape(B.size)
        # structural equality: reach[i] = the neurons that input neuron i feeds
        masks = n_in <= _MASK_BITS and n_out <= _MASK_BITS
        if masks:
            _fill_reach(Wt, reach)
        have_grains = False
        gW = -_NOGRAIN
        gb = -_NOGRAIN
        g0 = (n_in + 2) * _U * 1.001  # gamma_{n_in + 1}, rounded up
        n_new = 0
        if not last and cap_new < 2 * nseg + n_out + 1:  # a layer mostly at most doubles the segments
            cap_new = 2 * nseg + n_out + 1
            if limit > 0 and cap_new > limit:
                cap_new = max(limit, nxs.shape[0] - 1)
                if cap_new < n_out + 1:
                    return 0, ws, 3
            nxs = np.empty(cap_new + 1)
            nex = np.empty(cap_new + 1)
            nF = np.empty(cap_new, np.int8)
            nDIFF = np.empty(cap_new, np.uint64)
            nACT = np.empty(cap_new, np.uint64)
            nA = np.empty((cap_new, nA.shape[1]))
            nB = np.empty((cap_new, nB.shape[1]))
            nEA = np.empty((cap_new, nEA.shape[1]))
            nEB = np.empty((cap_new, nEB.shape[1]))
        if last and slope.size < nseg:
            slope = np.empty(nseg)
            serr = np.empty(nseg)
            intercept = np.empty(nseg)
            same = np.empty(nseg, np.bool_)
        # Arrays are grown between runs of the segment loop, never inside it: an array
        # variable reassigned in the loop costs an atomic reference count per segment.
        k_next = 0
        last_redo = -1
        swept += nseg
        while k_next < nseg:
            if not last and n_new + n_out + 1 > cap_new:
                grown = 2 * cap_new
                while n_new + n_out + 1 > grown:
                    grown *= 2
                if limit > 0 and grown > limit:
                    if n_new + n_out + 1 > limit:
                        return 0, ws, 3  # over the budget: the caller splits the interval
                    grown = limit
                nxs, nex, nF, nA, nB, nEA, nEB, nDIFF, nACT = _grow(n_new, grown, nxs, nex, nF, nA, nB, nEA, nEB,
                                                                     nDIFF, nACT)
                cap_new = grown
            k_stop = nseg
            redo = -1
            for k in range(k_next, nseg):
                if not last and n_new + n_out + 1 > cap_new:  # a segment has at most n_out + 1 children
                    k_stop = k
                    break
                lo = xs[k]
                hi = xs[k + 1]
                elo = ex[k]
                ehi = ex[k + 1]
                flat = (F[k] & _FLAT) != 0
                # the neurons of this layer whose exact affine maps may differ from those
                # of the left neighbour (-1 where that is not known)
                known_aff = masks and k > 0 and (F[k] & _KNOWN) != 0
                aff = _reached(DIFF[k], reach, n_in) if known_aff else _ZERO
                # a segment whose inputs are exact, and whose sums are certified exact
                # by their grains, is computed with zero error bounds
                exact_in = (F[k] & _EXACT) != 0
                g = g0
                MA = 0.0
                MB = 0.0
                ga = _NOGRAIN
                gbb = _NOGRAIN
                if exact_in:
                    if not have_grains:
                        gW, gb = _layer_grains(Wt, bias)
                        have_grains = True
                    certified = False
                    if (F[k] & _STASH) != 0:  # the parent's bounds on these inputs' grains
                        MA = EA[k, 0]
                        ga = np.int64(EA[k, 1])
                        MB = EB[k, 0]
                        gbb = np.int64(EB[k, 1])
                        certified = _exact_sums(gW, gb, Cw, bmax, ga, gbb, MA, MB)
                    if not certified:  # the inputs' own grains and sizes
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
                        certified = _exact_sums(gW, gb, Cw, bmax, ga, gbb, MA, MB)
                    if certified:
                        g = 0.0
                for j in range(n_out):
                    s[j] = 0.0
                    t[j] = bias[j]
                    ea[j] = 0.0
                    eb[j] = 0.0
                n_live = 0  # the input neurons active on this segment
                wide = g != 0.0 and n_out >= 4
                if wide:
                    # |fl(sum) - sum| <= gamma * sum |w_ij| |a_i| in any order of the
                    # sum, and the inputs' own errors pass through |W|: four sums,
                    # register-blocked (_segment_sums). Their terms are listed here
                    # without branches: every input is written, the live ones kept.
                    for i in range(n_in):
                        qa_[i], qb_[i] = _bound_terms(A[k, i], B[k, i], EA[k, i], EB[k, i], g, exact_in)
                    for i in range(n_in):
                        live[n_live] = i
                        n_live += (A[k, i] != 0.0) | (B[k, i] != 0.0)
                    sums4(wt, w_off, n_out, live, n_live, Af, k * wrow, Bf, k * wrow, scrf, 4 * ldc, ldc, scrf, 0, ldc,
                          n_out)
                elif g == 0.0 and n_out < 4:
                    # exact sums of a narrow layer (constructions), each in a register:
                    # every input, as terms of inputs that are off add exact zeros
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
                    else:  # the four sums of a narrow layer, two inputs per pass
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
                # the bounds of rounded sums (_inflated), in the sign test's loop where
                # that runs
                n_err = 0
                finite = not (math.isinf(lo) or math.isinf(hi))
                if g != 0.0 and (last or not finite):
                    for j in range(n_out):  # without branches: it vectorises
                        ea[j], eb[j], rounded = _inflated(ea[j], eb[j], bias[j], g, flat)
                        n_err += rounded
                if last:
                    slope[k] = s[0]
                    intercept[k] = t[0]
                    serr[k] = ea[0]
                    # the output's exact affine map is the left neighbour's, by structure
                    same[k] = known_aff and (aff & _ONE) == _ZERO
                    continue
                # the signs at both ends decide everything: a crossing lies strictly
                # inside exactly when they are strictly opposite
                m = 0
                amb = False
                # pend[j]: 0 where a loop without branches below decided neuron j's
                # activity (act0), 1 where the full test must decide
                if finite and g == 0.0 and elo == 0.0 and ehi == 0.0 and _safe(lo) and _safe(hi):
                    _exact_end_signs(s, t, lo, hi, act0, jb, pend, n_out)
                elif finite:
                    # the common case first, in a loop without branches (it vectorises):
                    # both ends proved on one side, with the bounds of _end_sign
                    alo = abs(lo)
                    ahi = abs(hi)
                    rounding = g != 0.0
                    for j in range(n_out):
                        sj = s[j]
                        tj = t[j]
                        eaj = ea[j]
                        ebj = eb[j]
                        # (selects and stores without a branch: a store under a branch
                        # becomes a masked store; without rounding both bounds are 0)
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
                        c_lo = (eaj * alo + ebj + (abs(sj) + eaj) * elo
                                + 4.0 * _U * (abs(slo) + abs(tj)) + _TINY) * _INFLATE
                        c_hi = (eaj * ahi + ebj + (abs(sj) + eaj) * ehi
                                + 4.0 * _U * (abs(shi) + abs(tj)) + _TINY) * _INFLATE
                        on = (plo > c_lo) & (phi > c_hi)
                        off = (plo < -c_lo) & (phi < -c_hi)
                        act0[j] = on
                        jb[j] = 0
                        pend[j] = not (on | off)
                for j in range(n_out):
                    if finite and pend[j] == 0:
                        continue
                    sj = s[j]
                    tj = t[j]
                    sl = _end_sign(sj, tj, ea[j], eb[j], lo, elo)
                    sh = _end_sign(sj, tj, ea[j], eb[j], hi, ehi)
                    if sl == AMBIGUOUS or sh == AMBIGUOUS:
                        amb = True
                        break
                    jb[j] = 0
                    if sl * sh < 0:
                        c = -tj / sj
                        ac = abs(c)
                        if ea[j] == 0.0 and eb[j] == 0.0:
                            r = exact_sign(sj, c, tj)
                            if r == AMBIGUOUS:
                                amb = True
                                break
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
                if amb:  # bounds too wide: this segment is redone after a refresh (below)
                    redo = k
                    k_stop = k
                    break
                # crossings at one point are one boundary; the float order is the exact
                # order once every neighbouring pair is certified apart
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
                            amb = True
                            break
                    if not one_point:
                        bx[nb] = c
                        be[nb] = ec
                        nb += 1
                    jb[cj[q]] = nb  # neuron changes sign at boundary nb (1-based)
                if amb:
                    redo = k
                    k_stop = k
                    break
                seg_exact = n_err == 0  # every active child neuron exact: bounds not stored
                # Where the sums were proved exact by grains, the children's inputs (these
                # sums) have grains and sizes bounded by the same quantities; the bounds
                # are stashed in the rows of error bounds, unused by exact segments, so
                # that the children can skip their own grains (_STASH).
                stash = g == 0.0 and wrow >= 2
                MA2 = Cw * MA * _INFLATE
                ga2 = gW + ga if MA > 0.0 else _NOGRAIN
                MB2 = (Cw * MB + bmax) * _INFLATE
                gbb2 = min(gb, gW + gbb)
                for q in range(nb + 1):
                    # child q's rows, without branches (loads before the selects: a load in
                    # one arm of a select becomes a masked load or store, slow on AMD)
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
                    flags = _EXACT if seg_exact else 0
                    if stash:
                        nEA[n_new, 0] = MA2
                        nEA[n_new, 1] = ga2
                        nEB[n_new, 0] = MB2
                        nEB[n_new, 1] = gbb2
                        flags |= _STASH
                    if flat or n_on == 0:  # every slope exactly 0 from here on
                        flags |= _FLAT
                    if masks and n_new > 0 and (q > 0 or known_aff):
                        nDIFF[n_new] = _child_diff(nACT[n_new - 1], act, aff, q > 0)
                        flags |= _KNOWN
                    nACT[n_new] = act
                    nF[n_new] = flags
                    n_new += 1
            k_next = k_stop
            if redo >= 0:
                # A decision on segment ``redo`` was left open by its bounds: recompute its
                # inputs' maps in double-double and sweep on from it (once per segment).
                # Out of the segment loop, which stays lean.
                refresh_work += layer
                if redo == last_redo or layer == 0 or refresh_work > swept or not _refresh_rows(
                        wt, bf, sizes, layer, xs[redo], xs[redo + 1], ex[redo], ex[redo + 1], A, B, EA, EB, redo):
                    return 0, ws, 1
                last_redo = redo
                n_refresh[0] += 1
                F[redo] &= ~np.int8(_EXACT)
        if last:
            break
        nxs[n_new] = b
        nex[n_new] = 0.0
        xs, nxs = nxs, xs
        ex, nex = nex, ex
        F, nF = nF, F
        DIFF, nDIFF = nDIFF, DIFF
        ACT, nACT = nACT, ACT
        A, nA = nA, A
        B, nB = nB, B
        EA, nEA = nEA, EA
        EB, nEB = nEB, EB
        cap_new = nA.shape[0]
        nseg = n_new
        w_off += n_in * n_out
        b_off += n_out
    n_refresh[1] = _refine_open_slopes(wt, bf, sizes, xs, ex, slope, serr, same, nseg)
    return nseg, (xs, ex, F, A, B, EA, EB, nxs, nex, nF, nA, nB, nEA, nEB,
                  slope, serr, intercept, scr, iscr, DIFF, ACT, nDIFF, nACT, reach, same, n_refresh), 0
