"""Numba CPU kernels of the certified piece counter: every decision proved in float64.

The sweep is the exact counter's (``_count_cpu``): layer by layer, each segment's
preactivations are affine in x and split it where they cross zero. Here every float64
quantity carries a rigorous bound on its distance to the exact value that the same
algorithm computes in rational arithmetic (``_rational``), and every decision is taken
only when the bound proves it:

- the sign of a preactivation at a segment end (which also says whether a crossing lies
  strictly inside: exactly when the signs at both ends are strictly opposite);
- whether two crossings are one point;
- whether neighbouring output slopes are equal.

Bounds: a sum of n products computed in float64 is within ``gamma_{n+1} * sum |w| |a|``
of the exact sum of the same floats (Higham, Thm 3.1); the inputs' own errors pass
through ``|W|``. So a neuron's slope A and intercept B carry bounds ``eA``, ``eB``, and
its value at an end x (error ``ex``) is within ``eA |x| + eB + (|s| + eA) ex`` plus the
rounding of ``s*x + t``. A crossing ``c = -t/s`` is within ``(eA |c| + eB)/(|s| - eA)``
plus its rounding. Where the bounds are zero (dyadic constructions: every term a
multiple of 2**q and every partial sum below 2**(q + 53), checked per segment from the
grains of weights and values), decisions are exact: the sign of ``s*x + t`` by one
fused multiply-add (exact in sign for factors in [2**-450, 2**450]), equality of
crossings and of slopes by ``==``. A segment whose sums were proved exact passes to its
children bounds on their inputs' grains and sizes (the sums' grains are at least
``gW + ga``, their sizes at most ``Cw * MA``), so a child checks those first and reads
its own values' grains only where they do not prove its sums exact.

The modules: this one holds the workspace, the sweep and the counts; the decisions and
bounds are in ``_certified_bounds``, the local double-double recomputation in
``_certified_refresh``. The sweep stays one function on purpose: split into stages
inlined by Numba (``inline="always"``), bit for bit the same, it ran 3.5-10x slower
(sawtooth(16): 5.7 -> 60 ms; perf put two thirds of the samples on two instructions of one
tiny JIT function, the pattern of NRT's atomic reference counts of the stages' array
arguments, paid per segment).

Speed (``benchmarks/bench_count.py`` measures it against the tolerance counter): a
segment's four sums (slopes, intercepts and their bounds) run in a register-blocked FMA
kernel over its live inputs (``_segment_sums``; any summation order is covered by the
bound); the end signs are first tested in a loop without branches, and only the neurons
it leaves open take the full test; the children's rows are written without branches,
every load before its select (a branch, or a load in one arm, becomes AVX2's masked
loads and stores, microcoded on AMD); narrow exact layers (constructions) keep their
sums in registers. Arrays grow between runs of the segment loop, never inside it (an
array variable reassigned in a Numba loop costs two atomic reference counts per pass).

Equal slopes of neighbouring segments are also decided by structure, with no bound:
each segment keeps the set of neurons in which its exact slopes and intercepts may
differ from its left neighbour's (a 64-bit mask, for layers up to 64 wide). Siblings
differ in the neurons that switch between them; the next layer's maps can differ only
in the neurons that those reach through nonzero weights, and its rows only in those
that are on in either segment or switch. Where the output is reached by none, the two
segments are one affine piece: a switch behind a dead neuron or a zero weight.

Bounds grow with depth as ``sum |W||a| / |W a|`` per layer, so deep wide nets leave
decisions open more often (see ``benchmarks/bench_count.py``). When a bound cannot
decide, the segment's input maps are recomputed from the weights in double-double
(:func:`_refresh_rows`) and the segment is decided again; open equalities of output
slopes likewise (:func:`_output_slope_dd`). Only where that cannot decide either does
the kernel return status 1, and the caller sweeps the net again in double-double
(``_certified_dd``), then in rationals (``count.py``).
"""

import math

import numpy as np
from numba import njit, prange

from ._certified_bounds import (_EXACT, _FLAT, _INFLATE, _KNOWN, _MASK_BITS, _NOGRAIN, _ONE, _SAFE_HI, _STASH, _TINY,
                                _U, _WMIN, _ZERO, AMBIGUOUS, _bound_terms, _child_diff, _end_sign, _exact_end_signs,
                                _exact_sums, _fill_reach, _grain, _inflated, _layer_grains, _pair_decision, _reached,
                                _safe, exact_sign, sign_beyond)
from ._certified_refresh import _refine_open_slopes, _refresh_rows
from ._segment_sums import sums4
from ._count_cpu import breakpoints_of

__all__ = ["sweep", "merge_pieces", "open_pairs", "segments", "count_one", "count_in", "count_batch", "exact_sign",
           "sign_beyond", "AMBIGUOUS", "new_workspace"]


@njit(cache=True)
def new_workspace(capacity, wmax):
    """Buffers of the sweep, reused across the nets of a batch.

    Two segment sets, each: the ends and their error bounds; per segment its flags
    (_FLAT: every slope is exactly 0; _EXACT: every A and B is exact, and the error
    bounds are not stored; _KNOWN: its DIFF mask is valid); per segment and neuron A, B
    and the error bounds of A and B. Then the output's slope, its error bound and
    intercept per segment, per-neuron scratch, and (both sets) per segment the bitmasks
    DIFF (the neurons in which its exact A, B may differ from its left neighbour's) and
    ACT (its active neurons), and per input neuron the bitmask of the neurons its
    weights reach; per segment whether its output is structurally its left
    neighbour's (SAME); last, how many segments had their input maps, and how many
    output slopes, recomputed in double-double by the last sweep (see ``sweep``).
    """
    capacity = max(capacity, 1)
    wmax = max(wmax, 1)
    return (
        np.empty(capacity + 1), np.empty(capacity + 1), np.empty(capacity, np.int8),
        np.empty((capacity, wmax)), np.empty((capacity, wmax)),
        np.empty((capacity, wmax)), np.empty((capacity, wmax)),
        np.empty(capacity + 1), np.empty(capacity + 1), np.empty(capacity, np.int8),
        np.empty((capacity, wmax)), np.empty((capacity, wmax)),
        np.empty((capacity, wmax)), np.empty((capacity, wmax)),
        np.empty(capacity), np.empty(capacity), np.empty(capacity),
        np.empty((8, wmax)), np.empty((6, wmax), np.int64),
        np.empty(capacity, np.uint64), np.empty(capacity, np.uint64),
        np.empty(capacity, np.uint64), np.empty(capacity, np.uint64), np.empty(wmax, np.uint64),
        np.empty(capacity, np.bool_), np.zeros(2, np.int64),
    )


@njit(cache=True)
def _grow2(n_keep, grown, arr):
    o = np.empty((grown, arr.shape[1]))
    o[:n_keep] = arr[:n_keep]
    return o


@njit(cache=True)
def _grow(n_keep, grown, xs, ex, F, A, B, EA, EB, DIFF, ACT):
    out_x = np.empty(grown + 1)
    out_x[:n_keep] = xs[:n_keep]
    out_ex = np.empty(grown + 1)
    out_ex[:n_keep] = ex[:n_keep]
    out_F = np.empty(grown, np.int8)
    out_F[:n_keep] = F[:n_keep]
    out_D = np.empty(grown, np.uint64)
    out_D[:n_keep] = DIFF[:n_keep]
    out_act = np.empty(grown, np.uint64)
    out_act[:n_keep] = ACT[:n_keep]
    return (out_x, out_ex, out_F, _grow2(n_keep, grown, A), _grow2(n_keep, grown, B),
            _grow2(n_keep, grown, EA), _grow2(n_keep, grown, EB), out_D, out_act)



@njit(cache=True)
def sweep(wt, bf, sizes, a, b, ws):
    """The certified layer-by-layer sweep of one packed net, in the buffers ``ws``.

    Returns ``(nseg, ws, status)``; buffers that had to grow are replaced in the
    returned workspace, whose ``ws[0][:nseg+1]`` holds the segment ends and
    ``ws[14:17]`` the output's slope, its error bound and intercept per segment.
    ``status`` is 1 (and ``nseg`` 0) when some decision could not be certified.
    """
    n_layers = sizes.size - 1
    wmax = sizes.max()
    if ws[3].shape[1] < wmax:
        ws = new_workspace(ws[3].shape[0], wmax)
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


@njit(cache=True)
def merge_pieces(slope, serr, same):
    """``(new, status)``: ``new[k]`` is True where segment k starts a new affine piece.

    Neighbouring slopes are equal when ``same`` says so (the segment's exact affine
    map is its left neighbour's by structure: see ``sweep``) or both are exact and
    equal, different when they differ by more than their error bounds; otherwise
    ``status`` is 1 (undecided; :func:`open_pairs` says which pairs).
    """
    new, undecided = open_pairs(slope, serr, same)
    for k in range(undecided.size):
        if undecided[k]:
            return new, 1
    return new, 0


@njit(cache=True)
def open_pairs(slope, serr, same):
    """``(new, open)``: as :func:`merge_pieces`, with ``open[k]`` True (and ``new[k]``
    False) where the equality of the slopes of segments k-1 and k is undecided; the
    caller decides those pairs exactly."""
    n = slope.size
    new = np.zeros(n, np.bool_)
    undecided = np.zeros(n, np.bool_)
    if n > 0:
        new[0] = True
    for k in range(1, n):
        d = _pair_decision(slope, serr, same, k)
        if d == AMBIGUOUS:
            undecided[k] = True
        else:
            new[k] = d == 1
    return new, undecided


@njit(cache=True)
def segments(wt, bf, sizes, a, b, capacity):
    """``(status, xs, ex, slope, serr, same)`` of the sweep alone: the segment ends and
    their error bounds, per segment the output's slope, its bound and whether it is
    structurally its left neighbour's; ``status`` 1 (and empty arrays) where a decision
    of the sweep could not be certified."""
    ws = new_workspace(capacity, sizes.max())
    nseg, ws, status = sweep(wt, bf, sizes, a, b, ws)
    if status != 0:
        z = np.empty(0)
        return status, z, z, z, z, np.empty(0, np.bool_)
    return (0, ws[0][: nseg + 1].copy(), ws[1][: nseg + 1].copy(), ws[14][:nseg].copy(), ws[15][:nseg].copy(),
            ws[24][:nseg].copy())


@njit(cache=True)
def count_one(wt, bf, sizes, a, b, capacity):
    """``(pieces, regions, breakpoints, status)`` of one packed net; ``status`` 1 means
    a decision of the sweep was undecided, 2 that only the equality of some
    neighbouring slopes was (the segments are right: :func:`open_pairs`); the counts are
    then 0 and the caller decides the net exactly."""
    p, r, bps, status, _, _ = count_in(wt, bf, sizes, a, b, new_workspace(capacity, sizes.max()))
    return p, r, bps, status


@njit(cache=True)
def count_in(wt, bf, sizes, a, b, ws):
    """:func:`count_one` in the workspace ``ws`` (see :func:`new_workspace`), which it
    returns, grown where it had to: a caller that keeps it counts the next net without
    allocating (fresh pages cost about a sixth of a count). Returns
    ``(pieces, regions, breakpoints, status, ws, nseg)``; where ``status`` is 2, the
    sweep's ``nseg`` segments are in ``ws`` (ends ``ws[0]``, their bounds ``ws[1]``,
    slopes ``ws[14]``, bounds ``ws[15]``, structural equality ``ws[24]``)."""
    nseg, ws, status = sweep(wt, bf, sizes, a, b, ws)
    if status == 0:
        new, status = merge_pieces(ws[14][:nseg], ws[15][:nseg], ws[24][:nseg])
        status *= 2
    if status != 0:
        return 0, 0, np.empty(0), status, ws, nseg
    bps = breakpoints_of(new, ws[0][: nseg + 1])
    return bps.size + 1, nseg, bps, 0, ws, nseg


@njit(cache=True, parallel=True)
def count_batch(wt, bf, sizes, w_off, b_off, s_off, a, b, capacity, n_workers):
    """``(pieces, regions, status)`` of every net of a packed batch, one workspace per
    worker as in ``_count_cpu.count_batch``; ``status[i]`` is nonzero where net i is
    undecided in float64, as :func:`count_one` says (its counts are then 0; the caller
    decides it)."""
    n = w_off.size - 1
    pieces = np.zeros(n, np.int64)
    regions = np.zeros(n, np.int64)
    status = np.zeros(n, np.int64)
    wmax = sizes.max() if sizes.size else 1
    for r in prange(n_workers):
        ws = new_workspace(capacity, wmax)
        for i in range(r, n, n_workers):
            nseg, ws, st = sweep(wt[w_off[i] : w_off[i + 1]], bf[b_off[i] : b_off[i + 1]],
                                 sizes[s_off[i] : s_off[i + 1]], a, b, ws)
            if st == 0:
                new, st = merge_pieces(ws[14][:nseg], ws[15][:nseg], ws[24][:nseg])
                st *= 2
            if st == 0:
                pieces[i] = breakpoints_of(new, ws[0][: nseg + 1]).size + 1
                regions[i] = nseg
            status[i] = st
    return pieces, regions, status
