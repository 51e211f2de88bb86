"""Exact counts of a net from R to R^k: the map's pieces and each output's.

All outputs share the hidden layers, so their activation regions are one partition of
the interval, in the same order. The exact counter gives, per output ``j``, the
regions' ends and which region starts a new piece of that output (``new_j``,
``_beyond_float64.exact_segments``: certified float64, double-double where needed,
single slope pairs in rationals). The map starts a new piece where any output does:
``new = new_1 | ... | new_k``, region by region. The outputs are counted on all Numba
threads at once (the sweep releases the GIL). Where some output cannot be decided
that way, the whole map is folded in rationals (``_rational_line``).

Examples
--------
>>> from pieces import ReLUNet
>>> net = ReLUNet([[[1.0], [1.0]], [[1.0, 0.0], [0.0, 1.0]]], [[0.0, -0.5], [0.0, 0.0]])
>>> c = count_map(net, 0.0, 1.0)
>>> c.pieces, c.regions, c.per_output, c.breakpoints.tolist()
(2, 2, (1, 2), [0.5])
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from .. import config
from . import _count_cpu
from ._beyond_float64 import exact_segments
from ._chunked import check_budget, segment_bytes
from ._count_errors import CountMemoryError
from ._piece_count import PieceCount

__all__ = ["count_map", "check_map_method"]

_local = threading.local()


def count_map(net, a, b, max_memory=None, breakpoints=True):
    """The exact :class:`PieceCount` of ``net`` (R to R^k) on ``[a, b]``, with
    ``per_output`` the pieces of each output.

    The map is counted in memory: where its regions would need more than
    ``max_memory``, :class:`CountMemoryError` (each output alone, ``net.output(j)``, is
    counted in chunks as any net from R to R)."""
    budget = check_budget(max_memory)
    threads = max(1, min(numba.get_num_threads(), net.out_dim))
    per_thread = budget // threads
    outs = [net.output(j) for j in range(net.out_dim)]
    if threads == 1:
        found = [_regions_and_new(o, a, b, per_thread) for o in outs]
    else:  # the sweep releases the GIL: one output per thread
        with ThreadPoolExecutor(threads) as ex:
            found = list(ex.map(lambda o: _regions_and_new(o, a, b, per_thread), outs))
    if all(f is not None for f in found) and len({f[0].size for f in found}) == 1:
        xs = found[0][0]
        news = [f[1] for f in found]
        new = np.logical_or.reduce(news)
        per = tuple(int(n.sum()) for n in news)
        bps = _count_cpu.breakpoints_of(new, xs)
        return PieceCount(bps.size + 1, xs.size - 1, bps if breakpoints else None, "exact", per)
    return _rational_map(net, a, b, breakpoints)


def _regions_and_new(net, a, b, budget):
    """``(xs, new)`` of one output (``exact_segments``), the float64 sweep first within
    ``budget``; None where only the rationals decide."""
    from . import _certified_cpu

    wt, bf, sizes = net.packed()
    wmax = int(sizes.max())
    limit = budget // segment_bytes(wmax)
    if limit < 4 * (wmax + 2):
        raise CountMemoryError(f"max_memory={budget} bytes is too small for a layer {wmax} wide")
    ws = getattr(_local, "ws", None)  # this thread's buffers of the last output, reused
    if ws is None or ws[3].shape[1] < wmax or limit < ws[0].shape[0] - 1:
        ws = _certified_cpu.new_workspace(config.COUNT_INITIAL_CAPACITY, wmax)
    ws[25][2] = limit
    p, r, bps, status, ws, nseg = _certified_cpu.count_in(wt, bf, sizes, a, b, ws)
    _local.ws = ws if sum(arr.nbytes for arr in ws) <= config.COUNT_WORKSPACE_KEEP_BYTES else None
    if status == 3:
        raise CountMemoryError(f"the map of a net with several outputs is counted in memory, and its regions "
                               f"need more than max_memory={budget} bytes; count each output alone "
                               "(net.output(j)) or raise max_memory")
    if status == 0:
        xs = ws[0][: nseg + 1].copy()
        new = np.zeros(nseg, np.bool_)
        new[0] = True
        new[np.searchsorted(xs, bps)] = True  # the breakpoints are these ends, bit for bit
        return xs, new
    segs = False if status == 1 else (ws[0][: nseg + 1].copy(), ws[1][: nseg + 1].copy(), ws[14][:nseg].copy(),
                                      ws[15][:nseg].copy(), ws[24][:nseg].copy())
    return exact_segments(net, a, b, segs)


def _rational_map(net, a, b, breakpoints):
    from ._rational_line import count_line_rational

    p, r, bps, per = count_line_rational(net, [0.0], [1.0], a, b)
    arr = np.array([float(x) for x in bps], dtype=np.float64)
    return PieceCount(p, r, arr if breakpoints else None, "exact", tuple(per))


def check_map_method(net, method):
    """Only the exact and rational counters count several outputs."""
    if net.out_dim > 1 and method not in ("exact", "certified", "rational"):
        raise ValueError(f"method {method!r} counts nets with one output; this one has {net.out_dim} "
                         "(use method 'exact' or 'rational', or count net.output(j))")

