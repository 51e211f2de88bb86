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
import threading
import warnings
from dataclasses import dataclass, field

import numba
import numpy as np

from . import _count_cpu
from .. import config
from .._jit.device import resolve_device
from ..net import ReLUNet

__all__ = ["PieceCount", "count_pieces", "count_pieces_batch", "check_interval", "exact_regions"]


@dataclass(frozen=True)
class PieceCount:
    """Result of :func:`count_pieces`.

    Attributes
    ----------
    pieces : int
        Maximal intervals of the domain on which f is affine.
    regions : int
        Maximal intervals on which the activation pattern is constant (>= pieces).
    breakpoints : numpy.ndarray
        Sorted x where f changes affine piece (``pieces - 1`` of them, or the estimate's
        for ``"grid"``).
    method : str
        How it was counted.
    """

    pieces: int
    regions: int
    breakpoints: np.ndarray = field(repr=False)
    method: str = "exact"

    def as_dict(self, breakpoints=False):
        d = {"pieces": self.pieces, "regions": self.regions, "method": self.method}
        if breakpoints:
            d["breakpoints"] = [float(x) for x in self.breakpoints]
        return d


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


def count_pieces(net, interval=(0.0, 1.0), method="exact", n=None):
    """Count the affine pieces and activation regions of ``net`` on ``interval``.

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

    Returns
    -------
    PieceCount

    Examples
    --------
    >>> from pieces import sawtooth
    >>> c = count_pieces(sawtooth(3), (0.0, 1.0))
    >>> c.pieces, c.regions, c.breakpoints.tolist()
    (8, 8, [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875])
    """
    _check_net(net)
    a, b = check_interval(interval)
    if method in ("exact", "certified"):
        wt, bf, sizes, *_ = _count_cpu.pack([net])
        p, r, bps, status, segs = _certified_float64(wt, bf, sizes, a, b)
        if status == 0:
            return PieceCount(int(p), int(r), bps, method)
        c = _certified_beyond_float64(net, a, b, segs)
        return PieceCount(c.pieces, c.regions, c.breakpoints, method)
    if method == "tolerance":
        wt, bf, sizes, *_ = _count_cpu.pack([net])
        p, r, bps = _count_cpu.count_one(
            wt, bf, sizes, a, b, config.MERGE_RTOL, config.SLOPE_RTOL, config.COUNT_INITIAL_CAPACITY
        )
        return PieceCount(int(p), int(r), bps, "tolerance")
    if method == "rational":
        from ._rational import count_rational

        p, r, bps = count_rational(net, a, b)
        return PieceCount(p, r, np.array([float(x) for x in bps], dtype=np.float64), "rational")
    if method == "grid":
        from ._grid import count_grid

        if not (math.isfinite(a) and math.isfinite(b)):
            raise ValueError("method 'grid' needs a finite interval")
        n = config.GRID_DEFAULT_N if n is None else n
        if isinstance(n, bool) or int(n) != n or n < 3:
            raise ValueError(f"grid needs an integer n >= 3 points, got {n!r}")
        p, r, bps = count_grid(net, a, b, int(n))
        return PieceCount(int(p), int(r), bps, "grid")
    raise ValueError(f"unknown method {method!r}; expected one of {', '.join(config.METHODS)}")


_workspaces = threading.local()


def _certified_float64(wt, bf, sizes, a, b):
    """The certified float64 stage of one packed net, in this thread's kept workspace
    (counting again in the same pages saves the page faults of fresh buffers; a
    workspace above ``config.COUNT_WORKSPACE_KEEP_BYTES`` is not kept).

    Returns ``(pieces, regions, breakpoints, status, segs)``: ``segs`` is what
    :func:`_exact_segments` starts from when ``status`` is nonzero: the sweep's
    segments where only slope pairs are open (status 2), False where the sweep itself
    was undecided (status 1)."""
    from . import _certified_cpu

    ws = getattr(_workspaces, "certified", None)
    if ws is None or ws[3].shape[1] < sizes.max():
        ws = _certified_cpu.new_workspace(config.COUNT_INITIAL_CAPACITY, int(sizes.max()))
    p, r, bps, status, ws, nseg = _certified_cpu.count_in(wt, bf, sizes, a, b, ws)
    segs = None
    if status == 1:
        segs = False
    elif status == 2:
        segs = (ws[0][: nseg + 1].copy(), ws[1][: nseg + 1].copy(), ws[14][:nseg].copy(), ws[15][:nseg].copy(),
                ws[24][:nseg].copy())
    keep = sum(arr.nbytes for arr in ws) <= config.COUNT_WORKSPACE_KEEP_BYTES
    _workspaces.certified = ws if keep else None
    return p, r, bps, status, segs


def _certified_beyond_float64(net, a, b, segs=None):
    """The exact count of a net that the float64 stage left undecided (see
    :func:`_exact_segments`, which ``segs`` is passed to), counted in rationals where
    that cannot decide."""
    found = _exact_segments(net, a, b, segs)
    if found is not None:
        xs, new = found
        bps = _count_cpu.breakpoints_of(new, xs)
        return PieceCount(bps.size + 1, xs.size - 1, bps, "exact")
    exact = count_pieces(net, (a, b), method="rational")
    return PieceCount(exact.pieces, exact.regions, exact.breakpoints, "exact")


def _exact_segments(net, a, b, segs=None):
    """``(xs, new)``: the exact regions' ends and which start a new piece, or None where
    only the rationals can decide.

    The float64 sweep, or the double-double one where that is undecided, gives the
    regions (``segs``: the float64 sweep's ``(xs, ex, slope, serr, same)`` where the
    caller has them, False where it knows the sweep undecided, None to run it); a pair
    of neighbouring slopes that neither can prove equal or different is decided alone,
    by the exact slopes at a rational point certified inside each region
    (``_rational.slope_at``), as exact geometry libraries decide one predicate.
    """
    from . import _certified_cpu
    from ._certified_dd import sweep_dd
    from ._rational import slope_at

    if segs is None:
        wt, bf, sizes, *_ = _count_cpu.pack([net])
        status, xs, ex, slope, serr, same = _certified_cpu.segments(wt, bf, sizes, a, b,
                                                                    config.COUNT_INITIAL_CAPACITY)
    elif segs is False:
        status = 1
    else:
        status = 0
        xs, ex, slope, serr, same = segs
    if status != 0:
        wt, bf, sizes, *_ = _count_cpu.pack([net])
        _, xs, ex, slope, serr, same, status = sweep_dd(wt, bf, sizes, a, b, config.COUNT_INITIAL_CAPACITY)
    if status != 0:
        return None
    new, undecided = _certified_cpu.open_pairs(slope, serr, same)
    exact = {}  # segment -> its exact slope (a segment can be in two open pairs)
    for k in np.flatnonzero(undecided):
        for seg in (k - 1, k):
            if seg not in exact:
                x = _point_inside(xs[seg], xs[seg + 1], ex[seg], ex[seg + 1])
                if x is None:
                    return None
                exact[seg] = slope_at(net, x)
        new[k] = exact[k - 1] != exact[k]
    return xs, new


def _point_inside(lo, hi, elo, ehi):
    """A rational point strictly inside the exact segment whose float ends ``lo``,
    ``hi`` lie within ``elo``, ``ehi`` of its exact ends, or None if none is certain."""
    from fractions import Fraction

    if math.isinf(lo) and math.isinf(hi):
        return Fraction(0)
    if math.isinf(lo):
        m = Fraction(hi) - max(1, abs(Fraction(hi)))
    elif math.isinf(hi):
        m = Fraction(lo) + max(1, abs(Fraction(lo)))
    else:
        m = (Fraction(lo) + Fraction(hi)) / 2
    if not math.isinf(lo) and not m - Fraction(lo) > Fraction(elo):
        return None
    if not math.isinf(hi) and not Fraction(hi) - m > Fraction(ehi):
        return None
    return m


def exact_regions(net, a, b, segs=None):
    """``(ends, pieces)`` of ``net`` on [a, b]: the ends of its activation regions (the
    exact partition; float64 ends, each within its certified bound of the exact one, or
    the exact end rounded where the rationals decided) and its exact piece count.
    ``segs``: the float64 sweep where the caller ran it (see :func:`_exact_segments`)."""
    found = _exact_segments(net, a, b, segs)
    if found is not None:
        return found[0], int(found[1].sum())
    from ._rational import count_rational, rational_region_ends

    ends = rational_region_ends(net, a, b)
    xs = np.array([(a if k == 0 else b) if e is None else float(e) for k, e in enumerate(ends)])
    return xs, count_rational(net, a, b)[0]


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
    a, b = check_interval(interval)
    if method not in ("exact", "tolerance", "certified"):
        raise ValueError(f"count_pieces_batch counts with method 'exact' or 'tolerance', got {method!r}")
    exact = method != "tolerance"
    device = resolve_device(device, "counting")
    if not nets:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return count_packed(_count_cpu.pack(nets), a, b, device, exact=exact, nets=nets)


def count_packed(packed, a, b, device="cpu", exact=True, nets=None):
    """Pieces and regions of nets already packed (see ``_count_cpu.pack``), in parallel.

    ``exact``: the exact counter's float64 stage on ``device`` (``"cpu"`` or ``"cuda"``,
    already resolved); the nets it leaves undecided are unpacked, or taken from
    ``nets``, and decided one by one on the CPU. Otherwise the tolerance counter.
    """
    wt, bf, sizes, w_off, b_off, s_off = packed
    n = w_off.size - 1
    workers = max(1, min(numba.get_num_threads(), n))
    if exact:
        if device == "cuda":
            from . import _certified_cuda as kernels
            from ._count_cuda import GPUFallbackWarning
        else:
            from . import _certified_cpu as kernels
        pieces, regions, status = kernels.count_batch(
            wt, bf, sizes, w_off, b_off, s_off, float(a), float(b),
            config.CUDA_COUNT_CAPACITY if device == "cuda" else config.COUNT_INITIAL_CAPACITY, workers)
        if device == "cuda" and status.any():
            warnings.warn(f"{int(status.sum())} of {n} nets were undecided on the GPU or need more than "
                          f"{config.CUDA_COUNT_CAPACITY} segments (config.CUDA_COUNT_CAPACITY); they were "
                          "decided on the CPU", GPUFallbackWarning, stacklevel=3)
        for i in np.flatnonzero(status):
            net = nets[i] if nets is not None else _unpack(packed, i)
            # a sweep the CPU left undecided is not run again (the GPU's status 1 may
            # also be an overflow of its buffers)
            c = _certified_beyond_float64(net, a, b, False if device == "cpu" and status[i] == 1 else None)
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
