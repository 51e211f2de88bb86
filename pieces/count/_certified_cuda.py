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

The sweep runs in the same named stages as the CPU's (``_certified_cuda_stages``:
bounds and grains, sums, signs and crossings, boundaries, children); device functions
carry no reference counts, so they need no special compiler.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from ._certified_bounds import _EXACT, _FLAT, _INFLATE, _KNOWN, _MASK_BITS, _U
from ._certified_cuda_bounds import _ONE, _ZERO
from ._certified_cuda_stages import (_boundaries, _children, _crossings, _fill_reach, _input_grains, _layer_scale,
                                     _reached, _segment_sums)
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
        ok, Cw, bmax, gW, gb = _layer_scale(wt, bf, w_off, b_off, n_in, n_out)
        if not ok:
            return -2
        masks = n_in <= _MASK_BITS and n_out <= _MASK_BITS
        if masks:
            _fill_reach(wt, w_off, n_in, n_out, reach)
        g0 = (n_in + 2) * _U * 1.001
        n_new = 0
        for k in range(nseg):
            lo = xs[k]
            hi = xs[k + 1]
            elo = ex[k]
            ehi = ex[k + 1]
            flat = (F[k] & _FLAT) != 0
            known_aff = masks and k > 0 and (F[k] & _KNOWN) != 0
            aff = _reached(DIFF[k], reach, n_in) if known_aff else _ZERO
            exact_in = (F[k] & _EXACT) != 0
            g = g0
            if exact_in and _input_grains(A, B, k, n_in, gW, gb, Cw, bmax):
                g = 0.0
            _segment_sums(wt, bf, w_off, b_off, A, B, EA, EB, k, n_in, n_out, g, exact_in, flat, s, t, ea, eb)
            if last:
                slope[k] = s[0]
                serr[k] = ea[0]
                same[k] = 1 if (known_aff and (aff & _ONE) == _ZERO) else 0
                continue
            m = _crossings(s, t, ea, eb, lo, hi, elo, ehi, jb, up, act0, cx, ce, cj, n_out)
            if m < 0:
                return -2
            nb = _boundaries(cx, ce, cj, m, bx, be, jb)
            if nb < 0:
                return -2
            if n_new + nb + 1 > cap:
                return -1
            n_new = _children(nxs, nex, nF, nA, nB, nEA, nEB, nDIFF, nACT, n_new, lo, elo, bx, be, nb, s, t, ea, eb,
                              jb, up, act0, n_out, flat, masks, known_aff, aff)
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
