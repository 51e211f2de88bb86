"""Numba CPU kernels of the exact piece counter (float64 breakpoint enumeration).

Networks are passed packed (see :func:`pack`): ``wt`` holds every weight matrix
transposed, ``(n_in, n_out)`` row-major, one after another; ``bf`` the biases; ``sizes``
the layer sizes ``[1, w_1, ..., w_L, 1]``. A batch concatenates nets and adds offsets.

The algorithm works layer by layer. On each segment of the current partition of the
interval, every neuron of the previous layer is affine in x (``A*x + B``), so each
preactivation of the next layer is affine too; its zero crossings inside the segment
split it, and on each sub-segment the activation pattern is constant. Crossings closer
than ``merge_rtol`` (relative) are one point. After the output layer, neighbouring
segments with equal slope are one affine piece.
"""

import math

import numpy as np
from numba import njit, prange

from .._jit.staged import StagedCompiler

__all__ = ["pack", "pack_subset", "new_workspace", "sweep", "enumerate_segments", "merge_pieces", "count_one", "count_batch",
           "breakpoints_of"]


def pack(nets):
    """Pack nets for the kernels (see ``ReLUNet.packed``).

    Returns ``(wt, bf, sizes, w_off, b_off, s_off)``; net ``i`` has layer sizes
    ``sizes[s_off[i]:s_off[i+1]]`` and its weights start at ``w_off[i]``, biases at
    ``b_off[i]``.
    """
    parts = [net.packed() for net in nets]
    if not parts:
        z = np.zeros(0, np.int64)
        return np.zeros(0), np.zeros(0), z, np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(1, np.int64)
    offsets = [np.concatenate(([0], np.cumsum([p[i].size for p in parts]))).astype(np.int64) for i in range(3)]
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        *offsets,
    )


def pack_subset(packed, idx):
    """The packed batch of the nets ``idx`` (in that order) of a packed batch."""
    wt, bf, sizes, w_off, b_off, s_off = packed
    parts = []
    for arr, off in ((wt, w_off), (bf, b_off), (sizes, s_off)):
        pieces = [arr[off[i] : off[i + 1]] for i in idx]
        lens = np.array([p.size for p in pieces], np.int64)
        parts.append((np.concatenate(pieces) if pieces else arr[:0], np.concatenate(([0], np.cumsum(lens))).astype(np.int64)))
    return parts[0][0], parts[1][0], parts[2][0], parts[0][1], parts[1][1], parts[2][1]


@njit(cache=True, inline="always")
def _near(x, y, rtol, span):
    if math.isinf(x) or math.isinf(y):
        return x == y
    m = span
    ax = abs(x)
    ay = abs(y)
    if ax > m:
        m = ax
    if ay > m:
        m = ay
    return abs(x - y) <= rtol * m


@njit(cache=True, inline="always")
def _interior_point(lo, hi):
    if math.isinf(lo) and math.isinf(hi):
        return 0.0
    if math.isinf(lo):
        return hi - max(1.0, abs(hi))
    if math.isinf(hi):
        return lo + max(1.0, abs(lo))
    return 0.5 * lo + 0.5 * hi


@njit(cache=True)
def new_workspace(capacity, wmax):
    """Buffers of the sweep: two segment sets (ends, A, B), the output per segment
    (slope, intercept, scale) and per-neuron scratch. Reused across nets of a batch."""
    capacity = max(capacity, 1)
    wmax = max(wmax, 1)
    return (
        np.empty(capacity + 1), np.empty((capacity, wmax)), np.empty((capacity, wmax)),
        np.empty(capacity + 1), np.empty((capacity, wmax)), np.empty((capacity, wmax)),
        np.empty(capacity), np.empty(capacity), np.empty(capacity),
        np.empty(wmax), np.empty(wmax), np.empty(wmax), np.empty(wmax),
        np.empty(wmax, np.int64), np.zeros(wmax, np.int64), np.empty(wmax, np.bool_),
    )


@njit(cache=True)
def enumerate_segments(wt, bf, sizes, a, b, merge_rtol, capacity, limit=0):
    """Partition [a, b] into activation regions and give f's slope on each.

    Returns ``(xs, slope, intercept, scale)``: ``xs`` the ``n+1`` segment ends, and per
    segment the output's slope and intercept and ``scale = sum |v_i| |A_i|``, the size
    of the terms that make up the slope (for a relative equality test). Where a layer
    needs more than ``limit`` segments (0: no limit), ``xs`` is empty.
    """
    ws = new_workspace(capacity, sizes.max())
    nseg, ws = sweep(wt, bf, sizes, a, b, merge_rtol, ws, limit)
    if nseg < 0:
        return np.empty(0), np.empty(0), np.empty(0), np.empty(0)
    return ws[0][: nseg + 1].copy(), ws[6][:nseg].copy(), ws[7][:nseg].copy(), ws[8][:nseg].copy()


@njit(cache=True, inline="always")
def _segment_sums(Wt, bias, A, B, k, n_in, n_out, s, t):
    """Segment k's preactivation slopes ``s`` and intercepts ``t``."""
    for j in range(n_out):
        s[j] = 0.0
        t[j] = bias[j]
    for i in range(n_in):
        ai = A[k, i]
        bi = B[k, i]
        if ai == 0.0 and bi == 0.0:
            continue  # inactive input neuron: adds nothing
        for j in range(n_out):
            wij = Wt[i, j]
            s[j] += wij * ai
            t[j] += wij * bi


@njit(cache=True, inline="always")
def _boundaries(s, t, lo, hi, merge_rtol, span, cx, cj, bx, jb, act0, n_out):
    """The zero crossings strictly inside [lo, hi], sorted, merged within the tolerance
    into ``nb`` boundaries (``bx``; ``jb[j]`` the 1-based boundary at which neuron j
    switches) and each neuron's activity at an interior point (``act0``); returns
    ``nb``."""
    m = 0
    for j in range(n_out):
        jb[j] = 0
        if s[j] != 0.0:
            c = -t[j] / s[j]
            if c > lo and c < hi:
                if not (_near(c, lo, merge_rtol, span) or _near(c, hi, merge_rtol, span)):
                    # insertion into the sorted list
                    q = m
                    while q > 0 and cx[q - 1] > c:
                        cx[q] = cx[q - 1]
                        cj[q] = cj[q - 1]
                        q -= 1
                    cx[q] = c
                    cj[q] = j
                    m += 1
    nb = 0
    for q in range(m):
        if nb == 0 or not _near(cx[q], cx[q - 1], merge_rtol, span):
            bx[nb] = cx[q]
            nb += 1
        jb[cj[q]] = nb  # neuron changes sign at boundary nb (1-based)
    mid = _interior_point(lo, hi)
    for j in range(n_out):
        act0[j] = s[j] * mid + t[j] > 0.0
    return nb


@njit(cache=True)
def _grown(n_new, need, cap, limit, nxs, nA, nB):
    """``(nxs, nA, nB, cap)``: the children's rows grown to hold ``need`` (doubled,
    within ``limit``; 0: none), the first ``n_new`` kept; ``cap`` -1 where over it."""
    grown = 2 * cap
    while need > grown:
        grown *= 2
    if limit > 0 and grown > limit:
        if need > limit:
            return nxs, nA, nB, -1  # over the memory budget: the caller refuses
        grown = limit
    gx = np.empty(grown + 1)
    gx[:n_new] = nxs[:n_new]
    gA = np.empty((grown, nA.shape[1]))
    gA[:n_new] = nA[:n_new]
    gB = np.empty((grown, nB.shape[1]))
    gB[:n_new] = nB[:n_new]
    return gx, gA, gB, grown


@njit(cache=True, inline="always")
def _children(nxs, nA, nB, n_new, lo, bx, nb, s, t, jb, act0, n_out):
    """Write the rows of the segment's ``nb + 1`` children from row ``n_new`` on;
    returns the new number of rows."""
    for q in range(nb + 1):
        nxs[n_new] = lo if q == 0 else bx[q - 1]
        for j in range(n_out):
            if jb[j] > 0:
                active = (s[j] > 0.0) == (q >= jb[j])
            else:
                active = act0[j]
            if active:
                nA[n_new, j] = s[j]
                nB[n_new, j] = t[j]
            else:
                nA[n_new, j] = 0.0
                nB[n_new, j] = 0.0
        n_new += 1
    return n_new


@njit(cache=True)
def _output_layer(wt, w_off, bias, A, B, nseg, n_in, slope, intercept, scale):
    """The output (one neuron, affine) on each segment: slope, intercept and the scale
    ``sum |w a|`` of its slope."""
    for k in range(nseg):
        sv = 0.0
        tv = bias
        sc = 0.0
        for i in range(n_in):
            wi = wt[w_off + i]
            sv += wi * A[k, i]
            tv += wi * B[k, i]
            sc += abs(wi * A[k, i])
        slope[k] = sv
        intercept[k] = tv
        scale[k] = sc


@njit(cache=True, pipeline_class=StagedCompiler)
def sweep(wt, bf, sizes, a, b, merge_rtol, ws, limit=0):
    """The layer-by-layer sweep of one packed net, in the buffers ``ws``.

    Returns ``(nseg, ws)``; buffers that had to grow are replaced in the returned
    workspace, whose ``ws[0][:nseg+1]`` holds the segment ends and ``ws[6:9]`` the
    slope, intercept and scale of each segment.
    """
    span = b - a
    if not np.isfinite(span):
        span = 1.0
    n_layers = sizes.size - 1
    wmax = sizes.max()
    if ws[1].shape[1] < wmax:
        ws = new_workspace(ws[1].shape[0], wmax)
    xs, A, B, nxs, nA, nB, slope, intercept, scale, s, t, cx, bx, cj, jb, act0 = ws
    cap_cur = A.shape[0]
    cap_new = nA.shape[0]
    nseg = 1
    xs[0] = a
    xs[1] = b
    A[0, 0] = 1.0
    B[0, 0] = 0.0
    w_off = 0
    b_off = 0
    for layer in range(n_layers - 1):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        n_new = 0
        if cap_new < 2 * nseg:  # a layer at most ~doubles the segments: grow before, no copy
            cap_new = 2 * nseg if limit == 0 else max(min(2 * nseg, limit), cap_new)
            nxs = np.empty(cap_new + 1)
            nA = np.empty((cap_new, nA.shape[1]))
            nB = np.empty((cap_new, nB.shape[1]))
        Wt = wt[w_off : w_off + n_in * n_out].reshape((n_in, n_out))
        bias = bf[b_off : b_off + n_out]
        for k in range(nseg):
            lo = xs[k]
            _segment_sums(Wt, bias, A, B, k, n_in, n_out, s, t)
            nb = _boundaries(s, t, lo, xs[k + 1], merge_rtol, span, cx, cj, bx, jb, act0, n_out)
            if n_new + nb + 1 > cap_new:
                nxs, nA, nB, cap_new = _grown(n_new, n_new + nb + 1, cap_new, limit, nxs, nA, nB)
                if cap_new < 0:
                    return -1, ws  # over the memory budget: the caller refuses
            n_new = _children(nxs, nA, nB, n_new, lo, bx, nb, s, t, jb, act0, n_out)
        nxs[n_new] = b
        xs, nxs = nxs, xs
        A, nA = nA, A
        B, nB = nB, B
        cap_cur, cap_new = cap_new, cap_cur
        nseg = n_new
        w_off += n_in * n_out
        b_off += n_out
    if slope.size < nseg:
        slope = np.empty(cap_cur)
        intercept = np.empty(cap_cur)
        scale = np.empty(cap_cur)
    _output_layer(wt, w_off, bf[b_off], A, B, nseg, sizes[n_layers - 1], slope, intercept, scale)
    return nseg, (xs, A, B, nxs, nA, nB, slope, intercept, scale, s, t, cx, bx, cj, jb, act0)




@njit(cache=True)
def merge_pieces(slope, scale, slope_rtol):
    """Flags ``new[k]``: segment k starts a new affine piece (``new[0]`` is True)."""
    n = slope.size
    new = np.zeros(n, np.bool_)
    if n > 0:
        new[0] = True
    for k in range(1, n):
        m = max(abs(slope[k - 1]), abs(slope[k]), scale[k - 1], scale[k])
        new[k] = abs(slope[k] - slope[k - 1]) > slope_rtol * m
    return new


@njit(cache=True)
def count_one(wt, bf, sizes, a, b, merge_rtol, slope_rtol, capacity, limit=0):
    """``(pieces, regions, breakpoints)`` of one packed net; ``(-1, -1, [])`` where a
    layer needs more than ``limit`` segments (0: no limit)."""
    xs, slope, intercept, scale = enumerate_segments(wt, bf, sizes, a, b, merge_rtol, capacity, limit)
    if xs.size == 0:
        return -1, -1, np.empty(0)
    bps = breakpoints_of(merge_pieces(slope, scale, slope_rtol), xs)
    return bps.size + 1, slope.size, bps


@njit(cache=True)
def breakpoints_of(new, xs):
    """The breakpoints: the segment ends ``xs[k]`` where segment k starts a new piece
    (``new[k]``, with ``new[0]`` True)."""
    pieces = 0
    for k in range(new.size):
        if new[k]:
            pieces += 1
    bps = np.empty(pieces - 1)
    q = 0
    for k in range(1, new.size):
        if new[k]:
            bps[q] = xs[k]
            q += 1
    return bps


@njit(cache=True, parallel=True)
def count_batch(wt, bf, sizes, w_off, b_off, s_off, a, b, merge_rtol, slope_rtol, capacity, n_workers):
    """Pieces and regions of every net of a packed batch.

    Worker ``r`` of ``n_workers`` takes nets ``r, r + n_workers, ...`` and reuses one
    workspace for all of them: allocating per net serialises the threads on page faults.
    """
    n = w_off.size - 1
    pieces = np.empty(n, np.int64)
    regions = np.empty(n, np.int64)
    wmax = sizes.max() if sizes.size else 1
    for r in prange(n_workers):
        ws = new_workspace(capacity, wmax)
        for i in range(r, n, n_workers):
            nseg, ws = sweep(
                wt[w_off[i] : w_off[i + 1]],
                bf[b_off[i] : b_off[i + 1]],
                sizes[s_off[i] : s_off[i + 1]],
                a, b, merge_rtol, ws,
            )
            new = merge_pieces(ws[6][:nseg], ws[8][:nseg], slope_rtol)
            p = 0
            for k in range(nseg):
                if new[k]:
                    p += 1
            pieces[i] = p
            regions[i] = nseg
    return pieces, regions
