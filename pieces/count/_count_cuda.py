"""CUDA twin of the exact piece counter: one GPU thread sweeps one net.

Same public signature as :func:`pieces.count._count_cpu.count_batch`, same algorithm, same
float64 operations in the same order (see that module for the sweep): products go
through ``mul_rn``, which the GPU never fuses with the sum that follows, so every
breakpoint is the CPU's to the last bit and the counts are equal. The per-net
segment buffers live in device memory and are bounded by ``capacity`` segments; a
net that needs more (at some layer) is flagged on the GPU and counted again by the CPU
kernel, whose buffers grow, with a :class:`GPUFallbackWarning` that says how many.
Batches whose buffers exceed the workspace budget (``config.CUDA_WORKSPACE_BYTES``)
run in chunks.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numba import cuda

from . import _count_cpu
from .. import config
from ._count_cpu import _near
from .._jit.cuda import blocks_for, mul_rn, to_device, workspace_budget

__all__ = ["count_batch", "GPUFallbackWarning"]


class GPUFallbackWarning(RuntimeWarning):
    """Some nets of a CUDA batch overflowed the GPU buffers and were counted on the CPU."""


@cuda.jit(device=True)
def _interior_point(lo, hi):
    """:func:`pieces.count._count_cpu._interior_point`, with its products kept unfused."""
    if math.isinf(lo) and math.isinf(hi):
        return 0.0
    if math.isinf(lo):
        return hi - max(1.0, abs(hi))
    if math.isinf(hi):
        return lo + max(1.0, abs(lo))
    return mul_rn(0.5, lo) + mul_rn(0.5, hi)


@cuda.jit(device=True)
def _sweep(wt, bf, sizes, a, b, merge_rtol, xs, A, B, nxs, nA, nB, s, t, cx, bx, cj, jb, act0):
    """Layer sweep of one net into its buffers; the number of segments (the segment ends
    in ``xs``, the final ``A``, ``B`` per segment, ping-ponged with ``n*``: the caller
    gets them back in ``xs, A, B`` when the layer count is even, else in ``nxs, nA, nB``
    - see ``_count_kernel``), or -1 when a layer needs more than the capacity."""
    cap = A.shape[0]
    span = b - a
    if not (abs(span) < np.inf):
        span = 1.0
    n_layers = sizes.size - 1
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
        for k in range(nseg):
            lo = xs[k]
            hi = xs[k + 1]
            for j in range(n_out):
                s[j] = 0.0
                t[j] = bf[b_off + j]
            for i in range(n_in):
                ai = A[k, i]
                bi = B[k, i]
                if ai == 0.0 and bi == 0.0:
                    continue
                for j in range(n_out):
                    wij = wt[w_off + i * n_out + j]
                    s[j] += mul_rn(wij, ai)
                    t[j] += mul_rn(wij, bi)
            m = 0
            for j in range(n_out):
                jb[j] = 0
                if s[j] != 0.0:
                    c = -t[j] / s[j]
                    if c > lo and c < hi:
                        if not (_near(c, lo, merge_rtol, span) or _near(c, hi, merge_rtol, span)):
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
                jb[cj[q]] = nb
            mid = _interior_point(lo, hi)
            for j in range(n_out):
                act0[j] = 1 if mul_rn(s[j], mid) + t[j] > 0.0 else 0
            if n_new + nb + 1 > cap:
                return -1
            for q in range(nb + 1):
                nxs[n_new] = lo if q == 0 else bx[q - 1]
                for j in range(n_out):
                    if jb[j] > 0:
                        active = (s[j] > 0.0) == (q >= jb[j])
                    else:
                        active = act0[j] != 0
                    if active:
                        nA[n_new, j] = s[j]
                        nB[n_new, j] = t[j]
                    else:
                        nA[n_new, j] = 0.0
                        nB[n_new, j] = 0.0
                n_new += 1
        nxs[n_new] = b
        xs, nxs = nxs, xs
        A, nA = nA, A
        B, nB = nB, B
        nseg = n_new
        w_off += n_in * n_out
        b_off += n_out
    return nseg


@cuda.jit
def _count_kernel(wt, bf, sizes, w_off, b_off, s_off, first, a, b, merge_rtol, slope_rtol,
                  XS, AB, S, CJ, pieces, regions):
    r = cuda.grid(1)
    if r >= XS.shape[0]:
        return
    i = first + r
    if i >= pieces.size:
        return
    sz = sizes[s_off[i] : s_off[i + 1]]
    w0 = w_off[i]
    b0 = b_off[i]
    nseg = _sweep(wt[w0 : w_off[i + 1]], bf[b0 : b_off[i + 1]], sz, a, b, merge_rtol,
                  XS[r, 0], AB[r, 0], AB[r, 1], XS[r, 1], AB[r, 2], AB[r, 3],
                  S[r, 0], S[r, 1], S[r, 2], S[r, 3], CJ[r, 0], CJ[r, 1], CJ[r, 2])
    if nseg < 0:
        pieces[i] = -1
        regions[i] = -1
        return
    # the sweep swapped its buffers once per hidden layer
    n_layers = sz.size - 1
    odd = (n_layers - 1) % 2 == 1
    A = AB[r, 2] if odd else AB[r, 0]
    # output layer, and neighbouring segments of equal slope are one piece
    # (as _count_cpu.merge_pieces)
    n_in = sz[n_layers - 1]
    wl = w0 + (w_off[i + 1] - w0) - n_in
    p = 0
    prev_slope = 0.0
    prev_scale = 0.0
    for k in range(nseg):
        sv = 0.0
        sc = 0.0
        for q in range(n_in):
            wq = wt[wl + q]
            sv += mul_rn(wq, A[k, q])
            sc += abs(mul_rn(wq, A[k, q]))
        if k == 0:
            p = 1
        else:
            mm = max(abs(prev_slope), abs(sv), prev_scale, sc)
            if abs(sv - prev_slope) > slope_rtol * mm:
                p += 1
        prev_slope = sv
        prev_scale = sc
    pieces[i] = p
    regions[i] = nseg


def count_batch(wt, bf, sizes, w_off, b_off, s_off, a, b, merge_rtol, slope_rtol, capacity, n_workers):
    """Pieces and regions of every net of a packed batch, on the GPU.

    The twin of :func:`pieces.count._count_cpu.count_batch` (``n_workers`` is not used: the
    GPU runs one thread per net). Nets that overflow ``capacity`` segments on the GPU
    are counted on the CPU, with a :class:`GPUFallbackWarning`.
    """
    n = w_off.size - 1
    pieces = np.zeros(n, np.int64)
    regions = np.zeros(n, np.int64)
    if n == 0:
        return pieces, regions
    cap = max(int(capacity), 1)
    wmax = max(int(sizes.max()), 1)
    per_net = 8 * (2 * (cap + 1) + 4 * cap * wmax + 4 * wmax) + 8 * 3 * wmax
    chunk = max(1, min(n, workspace_budget() // per_net))
    d_args = [to_device(v) for v in (wt, bf, sizes, w_off, b_off, s_off)]
    d_pieces = cuda.device_array(n, np.int64)
    d_regions = cuda.device_array(n, np.int64)
    XS = cuda.device_array((chunk, 2, cap + 1), np.float64)
    AB = cuda.device_array((chunk, 4, cap, wmax), np.float64)
    S = cuda.device_array((chunk, 4, wmax), np.float64)
    CJ = cuda.device_array((chunk, 3, wmax), np.int64)
    threads = config.CUDA_COUNT_THREADS
    for first in range(0, n, chunk):
        m = min(chunk, n - first)
        _count_kernel[blocks_for(m, threads), threads](
            *d_args, first, float(a), float(b), float(merge_rtol), float(slope_rtol),
            XS[:m], AB[:m], S[:m], CJ[:m], d_pieces, d_regions,
        )
    pieces = d_pieces.copy_to_host()
    regions = d_regions.copy_to_host()
    over = np.flatnonzero(pieces < 0)
    if over.size:
        warnings.warn(
            f"{over.size} of {n} nets need more than {cap} segments (config.CUDA_COUNT_CAPACITY); "
            "they were counted on the CPU", GPUFallbackWarning, stacklevel=3)
        sub = _count_cpu.pack_subset((wt, bf, sizes, w_off, b_off, s_off), over)
        p, r = _count_cpu.count_batch(*sub, a, b, merge_rtol, slope_rtol, capacity, n_workers)
        pieces[over] = p
        regions[over] = r
    return pieces, regions
