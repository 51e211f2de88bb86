"""Counting the affine pieces and activation regions of a 1-D ReLU network.

The public entry points dispatch to the certified kernels (``_certified_cpu`` in
float64 and its CUDA twin ``_certified_cuda``, then ``_certified_dd`` in double-double),
the exact rational oracle (``_rational``), the tolerance kernels (``_count_cpu`` and
their CUDA twin ``_count_cuda``) or the sampling estimate (``_grid``).

What each method guarantees:

- ``"exact"`` equals ``"rational"`` for every net with finite weights and every
  interval, by construction. Design (the filtered predicates of exact geometry
  libraries such as CGAL): the sweep runs in float64, and every float64 quantity
  carries a rigorous bound on its distance to the value the same algorithm computes in
  rational arithmetic (a sum of n products is within ``gamma_{n+1} * sum |w| |a|`` of
  the exact sum of the same floats, and the inputs' own errors pass through ``|W|``).
  Each decision is taken only when the bound proves it:

  * a preactivation's sign at a segment end (which also says whether a crossing lies
    strictly inside: exactly when the signs at both ends are strictly opposite);
  * whether two crossings are one point (certified apart, or both exact and equal);
  * whether neighbouring output slopes are equal (certified apart, both exact and
    equal, or equal by structure: no switching neuron reaches the output);
  * a neuron's activity on a segment (the sign at an end proved nonzero).

  Dyadic constructions (sawtooth, Yarotsky) are decided exactly in float64: values
  whose sums are proved exact by their grains have zero bounds, and the sign of
  ``s*x + t`` comes from one fused multiply-add. Where a segment's bounds are too wide
  for a decision, the maps of that segment's inputs (or, for the output's slope, of
  the output's inputs) are recomputed from the weights in double-double along its
  activation pattern, read off at a point certified inside it, and the decision is
  taken again with those bounds (of order ``n**2 u**2`` per layer). A net still
  undecided is swept again wholly in double-double, and counted in rationals if that
  cannot decide either (crossings that coincide exactly while their values are
  inexact). Proof sketch: every comparison the rational algorithm makes is made here
  on intervals that contain its exact operands, and only taken where the intervals do
  not overlap, so the two runs take the same branches and return the same partition.
  Bounds grow with depth (about ``sum|W||a| / |sum W a|`` per layer, ~1e-3 relative
  at width 64 and depth 16): He nets of that size on [-3, 3] need a few local
  recomputations each (about 1.4-1.5x the tolerance counter's time, where a whole
  double-double sweep took 8x). On weights that are not finite every method raises.
- ``"tolerance"`` is the float64 sweep with tolerances that "exact" replaced:
  crossings closer than ``config.MERGE_RTOL`` (relative to the interval) are merged and
  slopes equal to ``config.SLOPE_RTOL`` are one piece. It is faster (the exact counter
  costs about 1.1-1.4x its time on generic nets, 1.5-2.3x on sawtooth(20): see
  ``benchmarks/bench_count.py``), but it is wrong on wide intervals,
  with tiny biases and on near-degenerate nets (tests/test_certified.py measures it).
- ``"rational"`` is the same algorithm in exact rational arithmetic: slow, the oracle.
- ``"grid"`` is a sampling estimate, as other tools count.
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np

from . import _count_cpu
from .. import config
from .._jit.device import resolve_device
from ..net import ReLUNet
from ._beyond_float64 import certified_beyond_float64, exact_regions
from ._chunked import check_budget, count_exact, segment_bytes
from ._count_errors import CountLimitError, CountMemoryError
from ._multi_output import check_map_method, count_map
from ._piece_count import PieceCount

__all__ = ["PieceCount", "count_pieces", "count_pieces_batch", "check_interval", "exact_regions", "CountLimitError",
           "CountMemoryError"]


def check_interval(interval):
    """Validate ``interval`` and return ``(a, b)`` as floats.

    ``a`` may be ``-inf`` and ``b`` ``+inf`` (the whole line); NaN, an empty or a
    reversed interval is a ``ValueError``.
    """
    try:
        a, b = interval
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        raise ValueError(f"interval must be a pair of numbers (a, b), got {interval!r}") from None
    if math.isnan(a) or math.isnan(b):
        raise ValueError(f"interval ends must not be NaN, got ({a}, {b})")
    if a == math.inf or b == -math.inf:
        raise ValueError(f"interval ({a}, {b}) is empty")
    if not a < b:
        kind = "empty" if a == b else "reversed"
        raise ValueError(f"interval ({a}, {b}) is {kind}; need a < b")
    return a, b


def _check_net(net):
    if not isinstance(net, ReLUNet):
        raise ValueError(f"expected a ReLUNet, got {type(net).__name__}")


def count_pieces(net, interval=(0.0, 1.0), method="exact", n=None, max_memory=None, breakpoints=True,
                 max_seconds=None, progress=None, segment=None):
    """Count the affine pieces and activation regions of ``net`` on ``interval``, or
    along ``segment``.

    Parameters
    ----------
    net : ReLUNet
    interval : (float, float)
        ``(a, b)`` with ``a < b``; ``(-inf, inf)`` counts over the whole line.
    method : {"exact", "tolerance", "rational", "grid", "certified"}
        ``"exact"``: equal to ``"rational"`` always, at float64 speed where its error
        bounds decide (module docstring); ``"certified"`` is another name for it.
        ``"tolerance"``: the float64 sweep with tolerances (crossings closer than
        ``config.MERGE_RTOL`` relative are one; not exact at every scale).
        ``"rational"``: the same algorithm in exact rational arithmetic (slow; the
        test oracle). ``"grid"``: a sampling estimate on ``n`` points (default
        ``config.GRID_DEFAULT_N``), as other tools do.
    n : int, optional
        Grid points for ``"grid"``.
    max_memory : int, optional
        Memory budget in bytes (default ``config.COUNT_MAX_MEMORY``). ``"exact"``
        counts a net that needs more in chunks joined exactly, with the same result
        (``_chunked``), on every Numba thread; the other methods raise
        :class:`CountMemoryError` instead.
    breakpoints : bool or path
        True: keep them in ``PieceCount.breakpoints`` (where they exceed half the
        budget, ``CountMemoryError``); False: count without them (``breakpoints`` is
        None); a path (``"exact"`` only): stream them to that ``.npy`` file.
    max_seconds : float, optional
        ``"exact"``: stop with :class:`CountLimitError` as soon as the estimated time
        of the count exceeds it (within seconds where the estimate is far over).
    progress : callable, optional
        ``"exact"``: called as ``progress(fraction_done, pieces_so_far)`` while a
        chunked count runs.
    segment : (array_like, array_like), optional
        ``(x0, x1)``, points of the net's input dimension d: count
        t -> net(x0 + t (x1 - x0)) on t in [0, 1] (``interval`` must then be left at
        its default), with breakpoints as t. Needed where d > 1. ``"exact"`` counts
        the exact restriction (``ReLUNet.restrict``), ``"rational"`` folds the line
        into the first layer in Fractions.

    With several outputs (k > 1), ``pieces`` and ``breakpoints`` are the map's (maximal
    intervals on which every output is affine) and ``per_output`` each output's; only
    ``"exact"`` and ``"rational"`` count them.

    Returns
    -------
    PieceCount

    Examples
    --------
    >>> from pieces import sawtooth
    >>> c = count_pieces(sawtooth(3), (0.0, 1.0))
    >>> c.pieces, c.regions, c.breakpoints.tolist()
    (8, 8, [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875])
    >>> count_pieces(sawtooth(20), (0.0, 1.0), breakpoints=False, max_memory=2**26).pieces
    1048576
    >>> net2 = ReLUNet([[[1.0, 1.0]], [[1.0]]], [[-1.0], [0.0]])  # relu(x + y - 1) on R^2
    >>> count_pieces(net2, segment=([0.0, 0.0], [1.0, 1.0])).breakpoints.tolist()
    [0.5]
    """
    _check_net(net)
    if segment is not None:
        return _count_segment(net, interval, method, n, max_memory, breakpoints, max_seconds, progress, segment)
    if net.in_dim != 1:
        raise ValueError(f"this net takes points of R^{net.in_dim}: count it along a segment, "
                         "count_pieces(net, segment=(x0, x1))")
    a, b = check_interval(interval)
    budget = check_budget(max_memory)
    if net.out_dim > 1:
        return _count_outputs(net, a, b, method, budget, breakpoints)
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float))
                                    or not max_seconds > 0):
        raise ValueError(f"max_seconds must be a positive number of seconds, got {max_seconds!r}")
    if method in ("exact", "certified"):
        c = count_exact(net, a, b, budget, breakpoints, max_seconds, progress)
        return PieceCount(c.pieces, c.regions, c.breakpoints, method)
    if not isinstance(breakpoints, bool):
        raise ValueError(f"method {method!r} keeps breakpoints in memory or not at all (True or False); "
                         "streaming them to a file is for method 'exact'")
    c = _count_in_memory(net, a, b, method, n, budget)
    return c if breakpoints else PieceCount(c.pieces, c.regions, None, c.method)


def _count_segment(net, interval, method, n, max_memory, breakpoints, max_seconds, progress, segment):
    """:func:`count_pieces` along a segment."""
    from ._rational_line import count_line_rational
    from ._segment import restrict, segment_ends

    if tuple(float(v) for v in interval) != (0.0, 1.0):
        raise ValueError("a segment is counted on t in [0, 1]; leave interval at its default")
    x0, x1 = segment_ends(net, segment)
    check_map_method(net, method)
    if method == "rational":
        p, r, bps, per = count_line_rational(net, x0, x1, 0.0, 1.0)
        arr = np.array([float(x) for x in bps], dtype=np.float64) if breakpoints is True else None
        return PieceCount(p, r, arr, "rational", tuple(per) if net.out_dim > 1 else None)
    return count_pieces(restrict(net, x0, x1), (0.0, 1.0), method, n, max_memory, breakpoints, max_seconds,
                        progress)


def _count_outputs(net, a, b, method, budget, breakpoints):
    """:func:`count_pieces` of a net with several outputs."""
    check_map_method(net, method)
    if not isinstance(breakpoints, bool):
        raise ValueError("the breakpoints of a net with several outputs are kept in memory or not at all "
                         "(True or False)")
    if method == "rational":
        from ._rational_line import count_line_rational

        p, r, bps, per = count_line_rational(net, [0.0], [1.0], a, b)
        arr = np.array([float(x) for x in bps], dtype=np.float64) if breakpoints else None
        return PieceCount(p, r, arr, "rational", tuple(per))
    c = count_map(net, a, b, budget, breakpoints)
    return PieceCount(c.pieces, c.regions, c.breakpoints, method, c.per_output)


def _count_in_memory(net, a, b, method, n, budget):
    """The methods that count in one pass, refusing where they would exceed ``budget``."""
    wmax = max(net.widths, default=1)
    if method == "tolerance":
        wt, bf, sizes, *_ = _count_cpu.pack([net])
        limit = budget // (24 + 48 * wmax)  # two segment sets of ends and rows, the output's slopes
        p, r, bps = _count_cpu.count_one(
            wt, bf, sizes, a, b, config.MERGE_RTOL, config.SLOPE_RTOL, config.COUNT_INITIAL_CAPACITY, limit
        )
        if p < 0:
            raise CountMemoryError(f"method 'tolerance' counts in one pass and this net needs more than "
                                   f"max_memory={budget} bytes; method 'exact' counts it in chunks")
        return PieceCount(int(p), int(r), bps, "tolerance")
    if method == "rational":
        from ._rational import count_rational

        # its Fractions take about 400 bytes per neuron and segment: refuse before, from the exact count
        need = count_exact(net, a, b, budget, False).regions * 400 * (wmax + 1)
        if need > budget:
            raise CountMemoryError(f"method 'rational' would need about {need} bytes, over "
                                   f"max_memory={budget}; method 'exact' gives the same count")
        p, r, bps = count_rational(net, a, b)
        return PieceCount(p, r, np.array([float(x) for x in bps], dtype=np.float64), "rational")
    if method == "grid":
        from ._grid import count_grid

        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError("method 'grid' needs a finite interval")
        n = config.GRID_DEFAULT_N if n is None else n
        if isinstance(n, bool) or int(n) != n or n < 3:
            raise ValueError(f"grid needs an integer n >= 3 points, got {n!r}")
        if 32 * int(n) * (wmax + 1) > budget:
            raise CountMemoryError(f"method 'grid' on {int(n)} points needs about {32 * int(n) * (wmax + 1)} "
                                   f"bytes, over max_memory={budget}")
        p, r, bps = count_grid(net, a, b, int(n))
        return PieceCount(int(p), int(r), bps, "grid")
    raise ValueError(f"unknown method {method!r}; expected one of {', '.join(config.METHODS)}")


def count_pieces_batch(nets, interval=(0.0, 1.0), device="cpu", method="exact"):
    """Pieces and regions of many nets, in parallel.

    On the CPU one net runs per Numba thread (``numba.set_num_threads`` sets how many);
    on the GPU one net runs per CUDA thread. The answers equal :func:`count_pieces` net
    by net.

    Parameters
    ----------
    nets : sequence of ReLUNet
    interval : (float, float)
    device : {"cpu", "cuda", "auto"}
        ``"cuda"`` raises ``RuntimeError`` where no GPU is usable; ``"auto"`` takes the
        GPU if there is one, else the CPU. On the GPU, nets with more than
        ``config.CUDA_COUNT_CAPACITY`` segments, and (exact) nets the GPU's float64
        stage leaves undecided, are counted on the CPU, with a ``GPUFallbackWarning``.
    method : {"exact", "tolerance", "certified"}
        As for :func:`count_pieces`. Exact: nets that the float64 stage leaves
        undecided are decided one by one afterwards.

    Returns
    -------
    (pieces, regions) : two int64 arrays of ``len(nets)``

    Examples
    --------
    >>> from pieces import sawtooth
    >>> count_pieces_batch([sawtooth(2), sawtooth(4)], (0.0, 1.0))[0].tolist()
    [4, 16]
    """
    nets = list(nets)
    for net in nets:
        _check_net(net)
        net.require_scalar("count_pieces_batch and its kernels")
    a, b = check_interval(interval)
    if method not in ("exact", "tolerance", "certified"):
        raise ValueError(f"count_pieces_batch counts with method 'exact' or 'tolerance', got {method!r}")
    exact = method != "tolerance"
    device = resolve_device(device, "counting")
    if not nets:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return count_packed(_count_cpu.pack(nets), a, b, device, exact=exact, nets=nets)


def count_packed(packed, a, b, device="cpu", exact=True, nets=None, max_seconds=None):
    """Pieces and regions of nets already packed (see ``_count_cpu.pack``), in parallel.

    ``exact``: the exact counter's float64 stage on ``device`` (``"cpu"`` or ``"cuda"``,
    already resolved), each worker's buffers within its share of
    ``config.COUNT_MAX_MEMORY``; the nets it leaves undecided, or that need more
    segments than that, are unpacked (or taken from ``nets``) and decided one by one on
    the CPU, in chunks where they need them (:func:`count_exact`, no breakpoints kept;
    ``max_seconds`` as there). Otherwise the tolerance counter.
    """
    wt, bf, sizes, w_off, b_off, s_off = packed
    n = w_off.size - 1
    workers = max(1, min(numba.get_num_threads(), n))
    wmax = int(sizes.max()) if sizes.size else 1
    limit = max(1, int(config.COUNT_MAX_MEMORY // (workers * segment_bytes(wmax))))
    if exact:
        if device == "cuda":
            from . import _certified_cuda as kernels
            from ._count_cuda import GPUFallbackWarning
        else:
            from . import _certified_cpu as kernels
        pieces, regions, status = kernels.count_batch(
            wt, bf, sizes, w_off, b_off, s_off, float(a), float(b),
            config.CUDA_COUNT_CAPACITY if device == "cuda" else config.COUNT_INITIAL_CAPACITY, workers, limit)
        if device == "cuda" and status.any():
            warnings.warn(f"{int(status.sum())} of {n} nets were undecided on the GPU or need more than "
                          f"{config.CUDA_COUNT_CAPACITY} segments (config.CUDA_COUNT_CAPACITY); they were "
                          "decided on the CPU", GPUFallbackWarning, stacklevel=3)
        for i in np.flatnonzero(status):
            net = nets[i] if nets is not None else _unpack(packed, i)
            if device == "cpu" and status[i] == 1:  # a sweep the CPU left undecided is not run again
                c = certified_beyond_float64(net, a, b, False)
            else:  # over the budget on the CPU, or undecided or overflowing on the GPU
                c = count_exact(net, a, b, breakpoints=False, max_seconds=max_seconds)
            pieces[i], regions[i] = c.pieces, c.regions
        return pieces, regions
    if device == "cuda":
        from . import _count_cuda as kernels
    else:
        kernels = _count_cpu
    return kernels.count_batch(
        wt, bf, sizes, w_off, b_off, s_off, float(a), float(b),
        config.MERGE_RTOL, config.SLOPE_RTOL,
        config.CUDA_COUNT_CAPACITY if device == "cuda" else config.COUNT_INITIAL_CAPACITY,
        workers,
    )


def _unpack(packed, i):
    """Net ``i`` of a packed batch, as a ReLUNet."""
    wt, bf, sizes, w_off, b_off, s_off = packed
    return _net_of(wt[w_off[i] : w_off[i + 1]], bf[b_off[i] : b_off[i + 1]], sizes[s_off[i] : s_off[i + 1]])


def _net_of(w, bvec, sz):
    """The ReLUNet of one packed net's weights ``w``, biases ``bvec`` and sizes ``sz``."""
    weights, biases, wo, bo = [], [], 0, 0
    for n_in, n_out in zip(sz[:-1], sz[1:]):
        weights.append(w[wo : wo + n_in * n_out].reshape(n_in, n_out).T.copy())
        biases.append(bvec[bo : bo + n_out].copy())
        wo += n_in * n_out
        bo += n_out
    return ReLUNet(weights, biases)
