"""The exact count beyond the float64 stage: the double-double sweep, single open slope
pairs decided in rationals, and the whole count in rationals where those cannot decide.

:func:`pieces.count.count_pieces` comes here only when the certified float64 sweep
(``_certified_cpu``) leaves a decision open; see ``_count``'s docstring for the design.

Examples
--------
>>> from pieces import sawtooth
>>> xs, pieces = exact_regions(sawtooth(2), 0.0, 1.0)
>>> xs.tolist(), pieces
([0.0, 0.25, 0.5, 0.75, 1.0], 4)
"""

from __future__ import annotations

import math

import numpy as np

from .. import config
from . import _count_cpu
from ._piece_count import PieceCount

__all__ = ["exact_regions", "certified_beyond_float64", "exact_segments"]


def certified_beyond_float64(net, a, b, segs=None):
    """The exact count of a net that the float64 stage left undecided (see
    :func:`exact_segments`, which ``segs`` is passed to), counted in rationals where
    that cannot decide."""
    found = exact_segments(net, a, b, segs)
    if found is not None:
        xs, new = found
        bps = _count_cpu.breakpoints_of(new, xs)
        return PieceCount(bps.size + 1, xs.size - 1, bps, "exact")
    from ._rational import count_rational

    p, r, bps = count_rational(net, a, b)  # as count_pieces(method="rational") gives them
    return PieceCount(p, r, np.array([float(x) for x in bps], dtype=np.float64), "exact")


def exact_segments(net, a, b, segs=None):
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
    ``segs``: the float64 sweep where the caller ran it (see :func:`exact_segments`)."""
    found = exact_segments(net, a, b, segs)
    if found is not None:
        return found[0], int(found[1].sum())
    from ._rational import count_rational, rational_region_ends

    ends = rational_region_ends(net, a, b)
    xs = np.array([(a if k == 0 else b) if e is None else float(e) for k, e in enumerate(ends)])
    return xs, count_rational(net, a, b)[0]
