"""CUDA twin of the exact counter's float64 stage: one GPU thread sweeps one net.

Same public signature as :func:`pieces.count._certified_cpu.count_batch`, and the same
certified decisions (see that module): every float64 quantity carries a rigorous
forward error bound, dyadic segments whose sums are proved exact by their grains have
zero bounds and exact signs, equal slopes across a switch that reaches no output are
recognised from the structure (64-bit masks), and a decision is taken only where the
bound proves it. Rounding differs from the CPU's (the GPU may fuse a product with the
sum that follows), which the bounds allow for: a fused operation rounds once, never
more. So the counts are the exact counts wherever the GPU decides; the floats behind
them need not be the CPU's bit for bit.

A net that the GPU leaves undecided, or that needs more than ``capacity`` segments, is
flagged (``status`` 1) and decided on the CPU by the caller (``count.count_packed``),
as the CPU's own undecided nets are. Exact signs use Dekker's product (with products
that are never fused) and a Shewchuk expansion, which the simulator computes as the
GPU does.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from ._certified_bounds import _EXACT, _FLAT, _INFLATE, _KNOWN, _MASK_BITS, _NOGRAIN, _SAFE_HI, _TINY, _U, _WMIN
from ._certified_cuda_bounds import _AMBIGUOUS, _ONE, _ZERO, _exact_sign, _end_sign, _grain, _exact_sums
from .._jit.cuda import blocks_for, to_device, workspace_budget

__all__ = ["count_batch"]

@cuda.jit(device=True)
def _sweep(wt, bf, sizes, a, b, X, FL, MK, V, S, CJ, reach, slope, serr, same):
    """The certified sweep of one net in its buffers. Returns the number of segments,
    -1 when a layer needs more than the capacity, -2 when a decision is undecided.

    Buffers: ``X[0..3]`` ends and end errors (two sets), ``FL[0..1]`` segment flags,
    ``MK[0..3]`` DIFF and ACT masks, ``V[0..7]`` A, B, EA, EB (two sets), ``S`` the
    per-neuron scratch (s, t, ea, eb, crossings, their errors, boundaries, theirs),
    ``CJ`` (crossing neuron, boundary of each neuron, sign, activity)."""
    cap = V.shape[1]
    xs, ex, nxs, nex = X[0], X[1], X[2], X[3]
    F, nF = FL[0], FL[1]
    DIFF, ACT, nDIFF, nACT = MK[0], MK[1], MK[2], MK[3]
    A, B, EA, EB, nA, nB, nEA, nEB = V[0], V[1], V[2], V[3], V[4], V[5], V[6], V[7]
    s, t, ea, eb, cx, ce, bx, be = S[0], S[1], S[2], S[3], S[4], S[5], S[6], S[7]
    cj, jb, up, act0 = CJ[0], CJ[1], CJ[2], CJ[3]
    n_layers = sizes.size - 1
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
                        return -2
                    gW = min(gW, _grain(w))
                cs += aw
            Cw = max(Cw, cs)
            ab = abs(bf[b_off + j])
            if ab > _SAFE_HI:
                return -2
            if ab != 0.0:
                gb = min(gb, _grain(bf[b_off + j]))
            bmax = max(bmax, ab)
        masks = n_in <= _MASK_BITS and n_out <= _MASK_BITS
        if masks:
            for i in range(n_in):
                r_i = _ZERO
                for j in range(n_out):
                    if wt[w_off + i * n_out + j] != 0.0:
                        r_i |= _ONE << np.uint64(j)
                reach[i] = r_i
        g0 = (n_in + 2) * _U * 1.001
        n_new = 0
        for k in range(nseg):
            lo = xs[k]
            hi = xs[k + 1]
            elo = ex[k]
            ehi = ex[k + 1]
            flat = (F[k] & _FLAT) != 0
            known_aff = masks and k > 0 and (F[k] & _KNOWN) != 0
            aff = _ZERO
            if known_aff:
                for i in range(n_in):
                    if (DIFF[k] >> np.uint64(i)) & _ONE:
                        aff |= reach[i]
            exact_in = (F[k] & _EXACT) != 0
            g = g0
            if exact_in:
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
                if _exact_sums(gW, gb, Cw, bmax, ga, gbb, MA, MB):
                    g = 0.0
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
            if last:
                slope[k] = s[0]
                serr[k] = ea[0]
                same[k] = 1 if (known_aff and (aff & _ONE) == _ZERO) else 0
                continue
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
            if n_new + nb + 1 > cap:
                return -1
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
        nseg = n_new
        w_off += n_in * n_out
        b_off += n_out
    return nseg


@cuda.jit
def _count_kernel(wt, bf, sizes, w_off, b_off, s_off, first, a, b, X, FL, MK, V, S, CJ, R, OUT, SAME,
                  pieces, regions, status):
    r = cuda.grid(1)
    if r >= X.shape[0]:
        return
    i = first + r
    if i >= pieces.size:
        return
    nseg = _sweep(wt[w_off[i] : w_off[i + 1]], bf[b_off[i] : b_off[i + 1]], sizes[s_off[i] : s_off[i + 1]],
                  a, b, X[r], FL[r], MK[r], V[r], S[r], CJ[r], R[r], OUT[r, 0], OUT[r, 1], SAME[r])
    if nseg < 0:
        status[i] = 1
        return
    # neighbouring slopes: as _certified_cpu.merge_pieces (undecided: the CPU decides)
    slope = OUT[r, 0]
    serr = OUT[r, 1]
    p = 1
    for k in range(1, nseg):
        if SAME[r, k] != 0:
            continue
        d = abs(slope[k] - slope[k - 1])
        err = serr[k] + serr[k - 1]
        if err == 0.0:
            if d != 0.0:
                p += 1
        elif d > err * _INFLATE:
            p += 1
        else:
            status[i] = 1
            return
    pieces[i] = p
    regions[i] = nseg
    status[i] = 0


def count_batch(wt, bf, sizes, w_off, b_off, s_off, a, b, capacity, n_workers, limit=0):
    """``(pieces, regions, status)`` of every net of a packed batch, on the GPU: the
    twin of :func:`pieces.count._certified_cpu.count_batch` (``n_workers`` and
    ``limit`` are not used: ``capacity`` already bounds the buffers). ``status[i]`` is 1
    where net i is undecided on the GPU or needs more than ``capacity`` segments; the
    caller decides those on the CPU, in chunks where they need them.

    This is where the GPU path would chunk by itself: a net over ``capacity`` would be
    split into sub-intervals packed as separate batch entries (same weights, other
    ``a``, ``b``) and joined at the seams by the CPU's exact joins (``_chunked._join``),
    instead of going to the CPU whole."""
    n = w_off.size - 1
    pieces = np.zeros(n, np.int64)
    regions = np.zeros(n, np.int64)
    status = np.zeros(n, np.int64)
    if n == 0:
        return pieces, regions, status
    cap = max(int(capacity), 1)
    wmax = max(int(sizes.max()), 1)
    per_net = 8 * (4 * (cap + 1) + 4 * cap + 8 * cap * wmax + 2 * cap + 8 * (wmax + 1) + 5 * wmax) + 3 * cap
    chunk = max(1, min(n, workspace_budget() // per_net))
    d_args = [to_device(v) for v in (wt, bf, sizes, w_off, b_off, s_off)]
    d_pieces = cuda.device_array(n, np.int64)
    d_regions = cuda.device_array(n, np.int64)
    d_status = cuda.device_array(n, np.int64)
    X = cuda.device_array((chunk, 4, cap + 1), np.float64)
    FL = cuda.device_array((chunk, 2, cap), np.int8)
    MK = cuda.device_array((chunk, 4, cap), np.uint64)
    V = cuda.device_array((chunk, 8, cap, wmax), np.float64)
    S = cuda.device_array((chunk, 8, wmax + 1), np.float64)
    CJ = cuda.device_array((chunk, 4, wmax), np.int64)
    R = cuda.device_array((chunk, wmax), np.uint64)
    OUT = cuda.device_array((chunk, 2, cap), np.float64)
    SAME = cuda.device_array((chunk, cap), np.int8)
    from .. import config

    threads = config.CUDA_COUNT_THREADS
    for first in range(0, n, chunk):
        m = min(chunk, n - first)
        _count_kernel[blocks_for(m, threads), threads](
            *d_args, first, float(a), float(b), X[:m], FL[:m], MK[:m], V[:m], S[:m], CJ[:m], R[:m], OUT[:m],
            SAME[:m], d_pieces, d_regions, d_status)
    return d_pieces.copy_to_host(), d_regions.copy_to_host(), d_status.copy_to_host()
