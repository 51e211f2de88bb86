"""The CUDA twin's sweep, one segment at a time, in the stages of the CPU's
(:mod:`pieces.count._certified_stages`, :mod:`pieces.count._certified_sums`): a layer's
scale and reach, a segment's grains and sums, the certified signs and crossings, the
boundaries that split it and its children's rows. Device functions, called by
:func:`pieces.count._certified_cuda._sweep`; rounding may differ from the CPU's where the
GPU fuses a product with a sum, which the bounds cover.

Examples
--------
In the CUDA simulator a device function can be called directly:

>>> import os, numpy as np
>>> if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
...     cx, ce, cj = np.array([0.25, 0.25, 0.5]), np.zeros(3), np.array([0, 1, 2])
...     bx, be, jb = np.empty(3), np.empty(3), np.zeros(3, np.int64)
...     print(_boundaries(cx, ce, cj, 3, bx, be, jb), jb)
... else:
...     print(2, [1, 1, 2])
2 [1 1 2]
"""

import numpy as np
from numba import cuda

from ._certified_bounds import _EXACT, _FLAT, _INFLATE, _KNOWN, _NOGRAIN, _SAFE_HI, _TINY, _U, _WMIN
from ._certified_cuda_bounds import _AMBIGUOUS, _ONE, _ZERO, _end_sign, _exact_sign, _exact_sums, _grain

__all__ = []


@cuda.jit(device=True)
def _layer_scale(wt, bf, w_off, b_off, n_in, n_out):
    """``(ok, Cw, bmax, gW, gb)``: the largest column sum of ``|W|``, the largest
    ``|bias|`` and the grains of the weights and biases; ``ok`` False where a weight or
    bias lies outside the range in which the bounds hold."""
    Cw = 0.0
    bmax = 0.0
    gW = _NOGRAIN
    gb = _NOGRAIN
    for j in range(n_out):
        cs = 0.0
        for i in range(n_in):
            w = wt[w_off + i * n_out + j]
            aw = abs(w)
            if aw != 0.0:
                if aw < _WMIN or aw > _SAFE_HI:
                    return False, Cw, bmax, gW, gb
                gW = min(gW, _grain(w))
            cs += aw
        Cw = max(Cw, cs)
        ab = abs(bf[b_off + j])
        if ab > _SAFE_HI:
            return False, Cw, bmax, gW, gb
        if ab != 0.0:
            gb = min(gb, _grain(bf[b_off + j]))
        bmax = max(bmax, ab)
    return True, Cw, bmax, gW, gb


@cuda.jit(device=True)
def _fill_reach(wt, w_off, n_in, n_out, reach):
    """``reach[i]``: the mask of the neurons that input neuron i feeds."""
    for i in range(n_in):
        r_i = _ZERO
        for j in range(n_out):
            if wt[w_off + i * n_out + j] != 0.0:
                r_i |= _ONE << np.uint64(j)
        reach[i] = r_i


@cuda.jit(device=True)
def _reached(diff, reach, n_in):
    """The neurons that the input neurons in the mask ``diff`` reach."""
    aff = _ZERO
    for i in range(n_in):
        if (diff >> np.uint64(i)) & _ONE:
            aff |= reach[i]
    return aff


@cuda.jit(device=True)
def _input_grains(A, B, k, n_in, gW, gb, Cw, bmax):
    """Whether segment k's sums (of exact inputs) are proved exact by grains."""
    MA = 0.0
    MB = 0.0
    ga = _NOGRAIN
    gbb = _NOGRAIN
    for i in range(n_in):
        if A[k, i] != 0.0:
            MA = max(MA, abs(A[k, i]))
            ga = min(ga, _grain(A[k, i]))
        if B[k, i] != 0.0:
            MB = max(MB, abs(B[k, i]))
            gbb = min(gbb, _grain(B[k, i]))
    return _exact_sums(gW, gb, Cw, bmax, ga, gbb, MA, MB)


@cuda.jit(device=True)
def _segment_sums(wt, bf, w_off, b_off, A, B, EA, EB, k, n_in, n_out, g, exact_in, flat, s, t, ea, eb):
    """Segment k's slopes ``s``, intercepts ``t`` and, where ``g`` is nonzero, the
    bounds ``ea``, ``eb`` of their errors, rounding included."""
    for j in range(n_out):
        s[j] = 0.0
        t[j] = bf[b_off + j]
        ea[j] = 0.0
        eb[j] = 0.0
    for i in range(n_in):
        ai = A[k, i]
        bi = B[k, i]
        if ai == 0.0 and bi == 0.0:
            continue
        qa = g * (abs(ai) + _TINY)
        qb = g * (abs(bi) + _TINY)
        if not exact_in:
            qa += EA[k, i]
            qb += EB[k, i]
        for j in range(n_out):
            w = wt[w_off + i * n_out + j]
            s[j] += w * ai
            t[j] += w * bi
            if g != 0.0:
                ea[j] += abs(w) * qa
                eb[j] += abs(w) * qb
    if g != 0.0:
        for j in range(n_out):
            if ea[j] != 0.0 or eb[j] != 0.0:
                ea[j] = 0.0 if flat else ea[j] * _INFLATE
                eb[j] = (eb[j] + g * abs(bf[b_off + j])) * _INFLATE


@cuda.jit(device=True)
def _crossings(s, t, ea, eb, lo, hi, elo, ehi, jb, up, act0, cx, ce, cj, n_out):
    """The certified sign of every neuron at both ends; returns the number of crossings
    strictly inside (sorted into ``cx``, bounds ``ce``, neuron ``cj``), -2 where a bound
    cannot decide."""
    m = 0
    for j in range(n_out):
        sl = _end_sign(s[j], t[j], ea[j], eb[j], lo, elo)
        sh = _end_sign(s[j], t[j], ea[j], eb[j], hi, ehi)
        if sl == _AMBIGUOUS or sh == _AMBIGUOUS:
            return -2
        jb[j] = 0
        if sl * sh < 0:
            c = -t[j] / s[j]
            ac = abs(c)
            if ea[j] == 0.0 and eb[j] == 0.0:
                r = _exact_sign(s[j], c, t[j])
                if r == _AMBIGUOUS:
                    return -2
                ec = 0.0 if r == 0 else max(2.0 * _U * ac, 5e-324) * _INFLATE
            else:
                ec = ((ea[j] * ac + eb[j]) / (abs(s[j]) - ea[j]) + 2.0 * _U * ac + 5e-324) * _INFLATE
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
    return m


@cuda.jit(device=True)
def _boundaries(cx, ce, cj, m, bx, be, jb):
    """The segment's inner boundaries from its ``m`` sorted crossings (crossings at one
    point are one), and ``jb[j]``, the boundary (1-based) at which neuron j switches;
    returns their number, -2 where two are not certified apart."""
    nb = 0
    for q in range(m):
        one_point = False
        if nb > 0:
            if ce[q] == 0.0 and be[nb - 1] == 0.0:
                one_point = cx[q] == bx[nb - 1]
            elif not (cx[q] - bx[nb - 1] > (ce[q] + be[nb - 1]) * _INFLATE):
                return -2
        if not one_point:
            bx[nb] = cx[q]
            be[nb] = ce[q]
            nb += 1
        jb[cj[q]] = nb
    return nb


@cuda.jit(device=True)
def _children(nxs, nex, nF, nA, nB, nEA, nEB, nDIFF, nACT, n_new, lo, elo, bx, be, nb, s, t, ea, eb, jb, up, act0,
              n_out, flat, masks, known_aff, aff):
    """Write the rows of the segment's ``nb + 1`` children from row ``n_new`` on;
    returns the new number of rows."""
    seg_exact = True
    for j in range(n_out):
        if ea[j] != 0.0 or eb[j] != 0.0:
            seg_exact = False
    for q in range(nb + 1):
        nxs[n_new] = lo if q == 0 else bx[q - 1]
        nex[n_new] = elo if q == 0 else be[q - 1]
        any_on = False
        act = _ZERO
        for j in range(n_out):
            if jb[j] > 0:
                active = (up[j] == 1) == (q >= jb[j])
            else:
                active = act0[j] == 1
            if active:
                any_on = True
                if masks:
                    act |= _ONE << np.uint64(j)
                nA[n_new, j] = s[j]
                nB[n_new, j] = t[j]
                nEA[n_new, j] = ea[j]
                nEB[n_new, j] = eb[j]
            else:
                nA[n_new, j] = 0.0
                nB[n_new, j] = 0.0
                nEA[n_new, j] = 0.0
                nEB[n_new, j] = 0.0
        flags = _EXACT if seg_exact else 0
        if flat or not any_on:
            flags |= _FLAT
        if masks and n_new > 0 and (q > 0 or known_aff):
            left = nACT[n_new - 1]
            if q > 0:
                nDIFF[n_new] = left ^ act
            else:
                nDIFF[n_new] = (aff & (left | act)) | (~aff & (left ^ act))
            flags |= _KNOWN
        nACT[n_new] = act
        nF[n_new] = flags
        n_new += 1
    return n_new
