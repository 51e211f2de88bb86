"""Exact counts in bounded memory, on every thread: an interval in chunks, joined exactly.

The certified sweep holds every segment of a layer at once, so its memory grows with the
number of regions (about ``segment_bytes(width)`` per segment). :func:`count_exact`
first counts the whole interval under a small segment limit (``config.COUNT_PROBE_BYTES``:
what almost every net needs). A net that needs more is counted in chunks, on
``numba.get_num_threads()`` threads at once, each chunk under the limit that the memory
budget leaves per thread; the sweep stops a chunk that goes over it (status 3) and the
chunk is halved.

Neighbouring chunks ``[l, c]`` and ``[c, r]`` are joined exactly at the seam ``c``::

    pieces([l, r]) = pieces([l, c]) + pieces([c, r]) - j

with ``j = 1`` where the affine pieces just left and just right of ``c`` are one (``c``
is no breakpoint), else 0; regions likewise, with the activation patterns. ``j`` is a
property of f at ``c`` alone, the same for every ``L < c < R``, so three exact counts on
a small neighbourhood decide it: ``j = pieces([L, c]) + pieces([c, R]) - pieces([L, R])``.
The same certified decisions that count the chunks decide the seams, so a chunked
count equals the unchunked one: pieces, regions and breakpoints. A breakpoint's float64
value is the same in any interval holding it, except where a crossing lies within
rounding of the interval's end and is clamped to it; so near each seam the breakpoints
are taken from ``[L, R]``, whose ends are far from ``c`` (``BreakpointSink``).

Before the chunks run, :func:`_plan` samples the density of regions near the left end
and near the middle: it halves a stretch from there until the tolerance counter (fast;
an estimate only, never a count) fits it into the probe. The denser sample sizes the
chunks (about a sixteenth of the per-thread limit each) and gives the estimated pieces
and time of the whole count; a count over ``max_seconds`` stops there
(:class:`CountLimitError`), within a second or so even for sawtooth(60). As chunks
finish, the estimate is refined from the length counted so far.

Examples
--------
>>> from pieces import sawtooth
>>> c = count_exact(sawtooth(12), 0.0, 1.0, max_memory=2**20, breakpoints=False)
>>> c.pieces, c.regions, c.breakpoints is None
(4096, 4096, True)
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import numba
import numpy as np

from .. import config
from . import _certified_cpu, _count_cpu
from ._beyond_float64 import certified_beyond_float64
from ._breakpoint_sink import BreakpointSink
from ._count_errors import CountLimitError, CountMemoryError

__all__ = ["segment_bytes", "count_exact", "check_budget"]

#: a seam's neighbourhood, as a fraction of its chunk's width (few segments: cheap)
_SEAM_FRACTION = 2.0**-20


def segment_bytes(wmax):
    """Bytes of the certified sweep per segment of a layer at most ``wmax`` wide: both
    segment sets (ends, bounds, flags, masks, four rows of ``wmax``), the output's
    slopes, the pieces' flags and breakpoints, and half again while a buffer grows."""
    return int(1.5 * (101 + 64 * wmax))


def check_budget(max_memory):
    """``max_memory`` as an int number of bytes (default ``config.COUNT_MAX_MEMORY``)."""
    if max_memory is None:
        return config.COUNT_MAX_MEMORY
    if isinstance(max_memory, bool) or not isinstance(max_memory, (int, np.integer)) or max_memory <= 0:
        raise ValueError(f"max_memory must be a positive number of bytes, got {max_memory!r}")
    return int(max_memory)


_local = threading.local()


def _certified_float64(wt, bf, sizes, a, b, limit=0):
    """The certified float64 stage of one packed net, in this thread's kept buffers
    (counting again in the same pages saves the page faults of fresh ones; buffers
    above ``config.COUNT_WORKSPACE_KEEP_BYTES`` are not kept), a layer holding at most
    ``limit`` segments (0: any number).

    Returns ``(pieces, regions, breakpoints, status, segs)``; status 3: over the limit.
    ``segs`` is what ``exact_segments`` starts from when ``status`` is 1 or 2: the
    sweep's segments where only slope pairs are open (status 2), False where the sweep
    itself was undecided (status 1)."""
    ws = getattr(_local, "ws", None)
    if ws is None or ws[3].shape[1] < sizes.max() or 0 < limit < ws[0].shape[0] - 1:
        ws = _certified_cpu.new_workspace(config.COUNT_INITIAL_CAPACITY, int(sizes.max()))
    ws[25][2] = limit
    p, r, bps, status, ws, nseg = _certified_cpu.count_in(wt, bf, sizes, a, b, ws)
    keep = sum(arr.nbytes for arr in ws) <= config.COUNT_WORKSPACE_KEEP_BYTES
    _local.ws = ws if keep else None
    segs = None
    if status == 1:
        segs = False
    elif status == 2:
        segs = (ws[0][: nseg + 1].copy(), ws[1][: nseg + 1].copy(), ws[14][:nseg].copy(), ws[15][:nseg].copy(),
                ws[24][:nseg].copy())
    return p, r, bps, status, segs


def _count_one(net, packed, lo, hi, limit):
    """``(pieces, regions, breakpoints)`` of ``net`` on ``[lo, hi]``, exactly, or None
    where a layer needs more than ``limit`` segments."""
    p, r, bps, status, segs = _certified_float64(*packed, lo, hi, limit)
    if status == 3:
        return None
    if status == 0:
        return int(p), int(r), bps
    if limit > 0:
        # the stages beyond float64 hold every segment too, in Fractions where it comes to
        # that (about 5x the bytes): only a chunk that the tolerance counter, as a guide,
        # finds within a fifth of the limit goes there; a larger one is halved
        tp = _count_cpu.count_one(*packed, lo, hi, config.MERGE_RTOL, config.SLOPE_RTOL,
                                  config.COUNT_INITIAL_CAPACITY, max(1, limit // 5))[0]
        if tp < 0:
            return None
    c = certified_beyond_float64(net, lo, hi, segs)
    return c.pieces, c.regions, c.breakpoints


def _join(net, packed, c, width, limit, stop):
    """``(jp, jr, w, near)`` at the seam ``c``: ``jp`` 1 where the pieces either side of
    ``c`` are one affine piece, ``jr`` 1 where the regions are one; ``near`` the
    breakpoints in ``[c - w, c + w]`` as the unchunked count computes them (a chunk's own
    may differ there by an ulp, where a crossing within rounding of ``c`` was clamped to
    the chunk's end)."""
    d = width * _SEAM_FRACTION if math.isfinite(width) else max(1.0, abs(c)) * _SEAM_FRACTION
    while not stop.is_set():
        lo = min(c - d, float(np.nextafter(c, -np.inf)))
        hi = max(c + d, float(np.nextafter(c, np.inf)))
        whole, left, right = (_count_one(net, packed, *iv, limit) for iv in ((lo, hi), (lo, c), (c, hi)))
        if whole is not None and left is not None and right is not None:
            jp = left[0] + right[0] - whole[0]
            jr = left[1] + right[1] - whole[1]
            w = 0.5 * d
            bps = whole[2]
            return jp, jr, w, bps[(bps >= c - w) & (bps <= c + w)]
        if lo == np.nextafter(c, -np.inf) and hi == np.nextafter(c, np.inf):
            raise CountMemoryError(f"the two floats around x = {c!r} need more segments than the budget allows")
        d /= 256.0
    return 0, 0, 0.0, None  # stopped: the count is abandoned


def _halves(lo, hi):
    """``[lo, c]`` and ``[c, hi]`` at a float strictly inside (ends may be infinite)."""
    c = _count_cpu._interior_point(lo, hi)
    if not lo < c < hi:
        raise CountMemoryError(f"[{lo!r}, {hi!r}] holds no float to split at, and needs more memory than the budget")
    return (lo, c), (c, hi)


def _task(net, packed, lo, hi, a, limit, stop):
    """Count the chunk ``[lo, hi]`` and join it to its left neighbour (unless ``lo`` is
    the interval's end ``a``): ``(pieces, regions, breakpoints, join)`` or None."""
    if stop.is_set():
        return None
    res = _count_one(net, packed, lo, hi, limit)
    if res is None:
        return None
    return res + ((_join(net, packed, lo, hi - lo, limit, stop) if lo != a else None),)


class _Clock:
    """Elapsed time and the estimate of a count's pieces and seconds."""

    def __init__(self, a, b, max_seconds):
        self.t0 = time.perf_counter()
        self.span = b - a if math.isfinite(b - a) else math.nan
        self.max_seconds = max_seconds

    def elapsed(self):
        return time.perf_counter() - self.t0

    def check(self, pieces, covered, force=False):
        """Raise :class:`CountLimitError` where the estimate (from ``pieces`` on the
        length ``covered`` so far) exceeds ``max_seconds``."""
        if self.max_seconds is None:
            return
        t = self.elapsed()
        frac = covered / self.span if self.span == self.span and self.span > 0 else math.nan
        est_t = t / frac if frac > 0 else math.nan
        est_p = pieces / frac if frac > 0 else math.nan
        over = est_t > self.max_seconds and (force or t > min(2.0, 0.05 * self.max_seconds))
        if over:
            raise CountLimitError(_limit_message(est_p, est_t, self.max_seconds), est_p, est_t, self.max_seconds)
        if t > self.max_seconds:
            raise CountLimitError(
                f"count stopped: it did not finish within the limit of {_duration(self.max_seconds)} "
                f"({pieces} pieces so far, on {100 * frac:.3g}% of the interval's core); raise it with "
                "max_seconds= or pieces count --max-seconds", math.nan, math.nan, self.max_seconds)


def _limit_message(est_p, est_t, max_seconds):
    what = f"an estimated {est_p:.3g} pieces would take about {_duration(est_t)}"
    return (f"count stopped: {what}, over the limit of {_duration(max_seconds)} "
            f"(raise it with max_seconds= or pieces count --max-seconds)")


def _duration(s):
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("hours", 3600), ("minutes", 60)):
        if s >= 2 * size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


def count_exact(net, a, b, max_memory=None, breakpoints=True, max_seconds=None, progress=None):
    """The exact count of ``net`` on ``[a, b]`` in at most ``max_memory`` bytes.

    Parameters
    ----------
    net : ReLUNet
    a, b : float
        The interval (checked by the caller; ends may be infinite).
    max_memory : int, optional
        Bytes for the counter's buffers on all threads and the breakpoints it keeps
        (half each where it keeps them); default ``config.COUNT_MAX_MEMORY``.
    breakpoints : bool or path
        True: keep them (:class:`CountMemoryError` where they exceed half the budget);
        False: count without them; a path: stream them to that ``.npy`` file.
    max_seconds : float, optional
        Stop with :class:`CountLimitError` when the estimated time exceeds it.
    progress : callable, optional
        Called as ``progress(fraction_done, pieces_so_far)`` while chunks finish
        (``fraction_done`` is NaN on an infinite interval).

    Returns
    -------
    PieceCount
        ``breakpoints`` is None where they were not kept.
    """
    max_memory = check_budget(max_memory)
    packed = _count_cpu.pack([net])[:3]
    wmax = int(packed[2].max())
    per_seg = segment_bytes(wmax)
    sink = BreakpointSink(breakpoints, a, max_memory // 2)
    ws_budget = max_memory - sink.budget
    threads = max(1, numba.get_num_threads())
    floor = 4 * (wmax + 2)  # one segment's children, with room to split
    probe = min(max(config.COUNT_PROBE_BYTES, 2 * floor * per_seg), ws_budget) // per_seg
    if probe < 2 * floor:
        sink.abort()
        raise CountMemoryError(f"max_memory={max_memory} bytes is too small for a layer {wmax} wide "
                               f"(at least {2 * floor * per_seg} bytes)")
    limit = max(floor, ws_budget // (threads * per_seg))
    clock = _Clock(a, b, max_seconds)
    try:
        first = _count_one(net, packed, a, b, probe)
        if first is not None:
            sink.add(a, b, first[2], None)
            return sink.result(first[0], first[1])
        return _count_chunks(net, packed, a, b, probe, limit, threads, sink, clock, progress)
    except BaseException:
        sink.abort()
        raise


def _count_chunks(net, packed, a, b, probe, limit, threads, sink, clock, progress):
    """The chunked count, after the whole interval overflowed the probe. An infinite
    interval is a finite core, planned as a finite one, and its tails."""
    lo, hi = _core(a, b)
    clock.span = hi - lo
    queue = _plan(packed, lo, hi, probe, limit, threads, clock)
    if a < lo:
        queue.appendleft((a, lo))
    if hi < b:
        queue.append((hi, b))
    stop = threading.Event()
    pieces = regions = 0
    covered = 0.0
    with ThreadPoolExecutor(threads) as ex:
        running = {}
        try:
            while queue or running:
                while queue and len(running) < 2 * threads:
                    iv = queue.popleft()
                    running[ex.submit(_task, net, packed, *iv, a, limit, stop)] = iv
                done, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
                for f in done:
                    iv = running.pop(f)
                    res = f.result()
                    if res is None:
                        queue.extendleft(reversed(_halves(*iv)))
                        continue
                    p, r, bps, join = res
                    jp, jr = (0, 0) if join is None else join[:2]
                    pieces += p - jp
                    regions += r - jr
                    if math.isfinite(iv[1] - iv[0]) and lo <= iv[0] and iv[1] <= hi:
                        covered += iv[1] - iv[0]
                    sink.add(*iv, bps, None if join is None else join[2:])
                if progress is not None:
                    progress(covered / clock.span, pieces)
                clock.check(pieces, covered)
        except BaseException:
            stop.set()
            for f in running:
                f.cancel()
            raise
    return sink.result(pieces, regions)


def _core(a, b):
    """A finite ``[lo, hi]`` inside ``[a, b]``: the interval itself where it is finite,
    else a stretch about its middle, the tails left to halving."""
    if math.isfinite(a) and math.isfinite(b):
        return a, b
    c = _count_cpu._interior_point(a, b)
    m = max(1.0, abs(c))
    return max(a, c - m), min(b, c + m)


def _descend(packed, lo, hi, probe):
    """Halve ``[lo, hi]`` from ``lo`` until the tolerance counter (fast, never falls
    back to slower arithmetic: an estimate only) counts it within the probe:
    ``(end, pieces, regions, seconds)``."""
    w = hi - lo
    while True:
        w *= 0.5
        end = lo + w
        if not lo < end:
            raise CountMemoryError(f"[{lo!r}, {hi!r}] needs more memory than the budget near x = {lo!r}")
        t = time.perf_counter()
        p, r, _ = _count_cpu.count_one(*packed, lo, end, config.MERGE_RTOL, config.SLOPE_RTOL,
                                       config.COUNT_INITIAL_CAPACITY, probe)
        if p >= 0:
            return end, p, r, time.perf_counter() - t


def _plan(packed, a, b, probe, limit, threads, clock):
    """The chunks of ``[a, b]``, sized from the density of regions near ``a`` and near
    the middle (the denser); stops here with :class:`CountLimitError` where the
    estimated time exceeds ``max_seconds``."""
    mid = 0.5 * a + 0.5 * b
    samples = [_descend(packed, lo, hi, probe) for lo, hi in ((a, mid), (mid, b))]
    dens, tpr, pdens = max((r / (e - lo), t / max(r, 1), p / (e - lo))
                           for (e, p, r, t), lo in zip(samples, (a, mid)))
    est_regions = dens * (b - a)
    est_pieces = pdens * (b - a)
    # the exact counter takes about 1.5x the tolerance counter's time
    est_seconds = clock.elapsed() + 1.5 * tpr * est_regions / threads
    if clock.max_seconds is not None and est_seconds > clock.max_seconds:
        raise CountLimitError(_limit_message(est_pieces, est_seconds, clock.max_seconds), est_pieces, est_seconds,
                              clock.max_seconds)
    n = int(min(max(2 * threads, math.ceil(16 * est_regions / limit)), 2**20))
    edges = np.unique(np.linspace(a, b, n + 1))
    return deque((float(x), float(y)) for x, y in zip(edges[:-1], edges[1:]))
