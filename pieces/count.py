"""Counting the affine pieces and activation regions of a 1-D ReLU network.

The public entry points dispatch to the Numba CPU kernels (``_count_cpu``), the
certified kernels (``_certified_cpu`` in float64, then ``_certified_dd`` in
double-double, which prove every decision and fall back to the rational count where
neither can), the exact rational oracle (``_rational``) or the
sampling estimate (``_grid``).

What each method guarantees:

- ``"certified"`` equals ``"rational"`` for every net with finite weights and every
  interval, by construction: each decision of the float64 sweep is taken only when a
  rigorous forward error bound proves it; a net with any undecided decision is swept
  again in double-double arithmetic, and counted in rationals if that too cannot
  decide (crossings that coincide exactly but whose values are inexact). Dyadic
  constructions (sawtooth, Yarotsky) are decided exactly in float64. Bounds grow with
  depth (about ``sum|W||a| / |sum W a|`` per layer): He nets of width 32 and depth 16
  on [-3, 3] are decided in float64, width 64 and depth 16 only in double-double
  (about 10x the float64 time).
- ``"exact"`` is the fast float64 sweep with tolerances: crossings closer than
  ``config.MERGE_RTOL`` (relative to the interval) are merged and slopes equal to
  ``config.SLOPE_RTOL`` are one piece. It equals the rational count at unit scale on the
  nets the tests draw, but not on wide intervals or with tiny biases (tests/
  test_certified.py measures both).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import numba
import numpy as np

from . import _count_cpu, config
from ._device import resolve_device
from .net import ReLUNet

__all__ = ["PieceCount", "count_pieces", "count_pieces_batch", "check_interval"]


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
    method : {"exact", "certified", "rational", "grid"}
        ``"exact"``: Numba breakpoint enumeration in float64 (crossings closer than
        ``config.MERGE_RTOL`` relative are one). ``"rational"``: the same algorithm in
        exact rational arithmetic (slow; the test oracle). ``"certified"``: equal to
        ``"rational"`` always, float64 speed where its error bounds decide (module
        docstring). ``"grid"``: a sampling
        estimate on ``n`` points (default ``config.GRID_DEFAULT_N``), as other tools do.
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
    if method == "exact":
        wt, bf, sizes, *_ = _count_cpu.pack([net])
        p, r, bps = _count_cpu.count_one(
            wt, bf, sizes, a, b, config.MERGE_RTOL, config.SLOPE_RTOL, config.COUNT_INITIAL_CAPACITY
        )
        return PieceCount(int(p), int(r), bps, "exact")
    if method == "certified":
        wt, bf, sizes, *_ = _count_cpu.pack([net])
        p, r, bps, status = _certified_float64(wt, bf, sizes, a, b)
        if status == 0:
            return PieceCount(int(p), int(r), bps, "certified")
        return _certified_beyond_float64(net, a, b)
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
    workspace above ``config.COUNT_WORKSPACE_KEEP_BYTES`` is not kept)."""
    from . import _certified_cpu

    ws = getattr(_workspaces, "certified", None)
    if ws is None or ws[3].shape[1] < sizes.max():
        ws = _certified_cpu.new_workspace(config.COUNT_INITIAL_CAPACITY, int(sizes.max()))
    p, r, bps, status, ws = _certified_cpu.count_in(wt, bf, sizes, a, b, ws)
    keep = sum(arr.nbytes for arr in ws) <= config.COUNT_WORKSPACE_KEEP_BYTES
    _workspaces.certified = ws if keep else None
    return p, r, bps, status


def _certified_beyond_float64(net, a, b):
    """The certified count of a net that the float64 stage left undecided: swept again
    in double-double, and counted in rationals if that cannot decide either."""
    from ._certified_dd import count_one_dd

    wt, bf, sizes, *_ = _count_cpu.pack([net])
    p, r, bps, status = count_one_dd(wt, bf, sizes, a, b, config.COUNT_INITIAL_CAPACITY)
    if status == 0:
        return PieceCount(int(p), int(r), bps, "certified")
    exact = count_pieces(net, (a, b), method="rational")
    return PieceCount(exact.pieces, exact.regions, exact.breakpoints, "certified")


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
        ``config.CUDA_COUNT_CAPACITY`` segments are counted on the CPU, with a
        ``GPUFallbackWarning``.
    method : {"exact", "certified"}
        As for :func:`count_pieces`. ``"certified"`` runs on the CPU (it has no CUDA
        twin yet: ``device="cuda"`` is a ``ValueError``, ``"auto"`` takes the CPU); nets
        its float64 stage leaves undecided are decided one by one afterwards.

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
    if method not in ("exact", "certified"):
        raise ValueError(f"count_pieces_batch counts with method 'exact' or 'certified', got {method!r}")
    if method == "certified":
        if device == "cuda":
            raise ValueError("method 'certified' has no CUDA twin yet; use device 'cpu' or 'auto'")
        resolve_device(device, "counting")  # validates the name
        device = "cpu"
    else:
        device = resolve_device(device, "counting")
    if not nets:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if method == "exact":
        return count_packed(_count_cpu.pack(nets), a, b, device)
    from . import _certified_cpu

    wt, bf, sizes, w_off, b_off, s_off = _count_cpu.pack(nets)
    pieces, regions, status = _certified_cpu.count_batch(
        wt, bf, sizes, w_off, b_off, s_off, a, b, config.COUNT_INITIAL_CAPACITY,
        max(1, min(numba.get_num_threads(), len(nets))))
    for i in np.flatnonzero(status):
        c = _certified_beyond_float64(nets[i], a, b)
        pieces[i], regions[i] = c.pieces, c.regions
    return pieces, regions


def count_packed(packed, a, b, device="cpu"):
    """Pieces and regions of nets already packed (see ``_count_cpu.pack``), in parallel
    on ``device`` (``"cpu"`` or ``"cuda"``, already resolved)."""
    wt, bf, sizes, w_off, b_off, s_off = packed
    n = w_off.size - 1
    if device == "cuda":
        from . import _count_cuda as kernels
    else:
        kernels = _count_cpu
    return kernels.count_batch(
        wt, bf, sizes, w_off, b_off, s_off, float(a), float(b),
        config.MERGE_RTOL, config.SLOPE_RTOL,
        config.CUDA_COUNT_CAPACITY if device == "cuda" else config.COUNT_INITIAL_CAPACITY,
        max(1, min(numba.get_num_threads(), n)),
    )
