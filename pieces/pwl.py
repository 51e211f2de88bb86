"""Exact measures of a net as a piecewise-linear function: per-layer slopes, the
crossing bound of a perturbed step, and the sup error against x².

Every measure here reads the net on its **activation regions** (the partition that the
exact counter enumerates): inside a region every preactivation is affine and keeps its
sign, so slopes taken at a region's midpoint by forward-mode differentiation are the
exact slopes of that region (no finite differences), and a preactivation changes sign
only at region ends.

Examples
--------
>>> from pieces import sawtooth
>>> [float(v) for v in max_input_derivative(sawtooth(3))]
[1.0, 2.0, 4.0]
>>> from pieces import yarotsky_square
>>> sup_error_square(yarotsky_square(2)) == 2.0 ** -6   # Yarotsky's 2**(-2m-2)
True
>>> sup_error_between(sawtooth(4), sawtooth(4))
0.0
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .count import _certified_cpu, _count_cpu
from . import config
from .count._count import _net_of
from .count import exact_regions
from .net import ReLUNet

__all__ = ["region_ends", "layer_slopes", "max_input_derivative", "crossing_bound", "CrossingBound",
           "sup_error_square", "sup_error_between"]


def _finite(interval):
    a, b = float(interval[0]), float(interval[1])
    if not (math.isfinite(a) and math.isfinite(b) and a < b):
        raise ValueError(f"need a finite interval a < b, got {interval!r}")
    return a, b


def region_ends(net, interval=(0.0, 1.0)):
    """Sorted ends of the activation regions of ``net`` on the finite ``interval``: the
    exact partition (see :func:`pieces.count.exact_regions`)."""
    a, b = _finite(interval)
    return exact_regions(net, a, b)[0]


def layer_slopes(net, x):
    """``(values, slopes, output, output_slope)`` at the points ``x``: per hidden layer
    the preactivations and their derivatives in x, ``(width, len(x))`` each.

    Sums run over a layer's inputs in index order, one product at a time, so a term that
    is exactly zero (an inactive neuron) leaves the sum bit for bit unchanged.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    h = x[None, :]
    dh = np.ones_like(h)
    values, slopes = [], []
    for l, (w, b) in enumerate(zip(net._weights, net._biases)):
        z = np.repeat(b[:, None], x.size, axis=1).astype(np.float64)
        dz = np.zeros_like(z)
        for i in range(w.shape[1]):
            z += w[:, i : i + 1] * h[i]
            dz += w[:, i : i + 1] * dh[i]
        if l == len(net._weights) - 1:
            return values, slopes, z[0], dz[0]
        values.append(z)
        slopes.append(dz)
        on = z > 0
        h = np.where(on, z, 0.0)
        dh = np.where(on, dz, 0.0)
    raise AssertionError("unreachable")


def max_input_derivative(net, interval=(0.0, 1.0)):
    """Assumption (B): ``max_x |∂z_n/∂x|`` over the neurons of each hidden layer and
    x in ``interval``, exactly (the largest slope of any region), one value a layer."""
    xs = region_ends(net, interval)
    mid = 0.5 * (xs[:-1] + xs[1:])
    _, slopes, _, _ = layer_slopes(net, mid)
    return np.array([float(np.max(np.abs(s))) for s in slopes])


class CrossingBound:
    """The bound on the regions after a perturbed step, for one draw of the noise.

    A neuron n whose new bias is uniform on an interval of width ``δ_n`` crosses zero
    on D at most ``min(TV(a_n) / δ_n, pieces(a_n))`` times in expectation, with ``a_n``
    its preactivation without the bias (Banach's indicatrix: the integral over levels
    t of #{x in D : a_n(x) = t} is TV(a_n)). A neuron with ``δ_n = 0`` contributes its
    actual sign changes. So ``E[regions] <= 1 + sum_n`` of those terms.

    Attributes
    ----------
    bound : float
        ``1 + sum`` of the per-neuron terms for this draw (its mean over draws bounds
        the mean regions).
    tv, pieces, crossings : numpy.ndarray
        Per hidden neuron (layer order): TV(a_n) on D, pieces of a_n (slope changes
        counted with exact float comparison, so never fewer than the true pieces), and
        the actual sign changes of z_n.
    """

    def __init__(self, bound, tv, pieces, crossings):
        self.bound, self.tv, self.pieces, self.crossings = bound, tv, pieces, crossings


def crossing_bound(net, delta_width, interval=(0.0, 1.0)):
    """The :class:`CrossingBound` of ``net`` (the net after the step, for one draw),
    given each hidden neuron's noise width ``delta_width`` (a list of arrays, one a
    hidden layer; ``2 * eta * |Δb_n|``)."""
    if not isinstance(net, ReLUNet):
        raise ValueError(f"expected a ReLUNet, got {type(net).__name__}")
    a, b = _finite(interval)
    wt, bf, sizes, *_ = _count_cpu.pack([net])
    dw = np.concatenate([np.asarray(d, dtype=np.float64).ravel() for d in delta_width])
    if dw.size != int(sizes[1:-1].sum()):
        raise ValueError(f"delta_width has {dw.size} entries for {int(sizes[1:-1].sum())} hidden neurons")
    _, _, bound, tv, pieces, cross = draw_measures(wt, bf, sizes, dw, a, b)
    return CrossingBound(bound, tv, pieces, cross)


def draw_measures(wt, bf, sizes, dw, a, b):
    """``(pieces, regions, bound, tv, pieces_a, crossings)`` of one packed net on
    [a, b]: its exact counts (as ``count_pieces``) and its :class:`CrossingBound` terms,
    measured on its exact activation regions."""
    status, xs, ex, slope, serr, same = _certified_cpu.segments(wt, bf, sizes, a, b, config.COUNT_INITIAL_CAPACITY)
    if status == 0:
        new, undecided = _certified_cpu.open_pairs(slope, serr, same)
    if status == 0 and not undecided.any():
        pieces = int(new.sum())
    else:  # undecided in float64: slope pairs alone, or double-double, then rationals
        segs = False if status else (xs, ex, slope, serr, same)
        xs, pieces = exact_regions(_net_of(wt, bf, sizes), a, b, segs)
    return (pieces,) + _measures(xs, wt, bf, sizes, dw)


@njit(cache=True)
def _measures(xs, wt, bf, sizes, dw):
    """``(regions, bound, tv, pieces_a, crossings)`` on the regions with ends ``xs``."""
    nm = xs.size - 1
    wmax = sizes.max()
    h = np.empty((wmax, nm))
    dh = np.empty((wmax, nm))
    z = np.empty((wmax, nm))
    dz = np.empty((wmax, nm))
    for m in range(nm):
        h[0, m] = 0.5 * (xs[m] + xs[m + 1])
        dh[0, m] = 1.0
    n_hidden = 0
    for layer in range(1, sizes.size - 1):
        n_hidden += sizes[layer]
    tv = np.zeros(n_hidden)
    pa = np.ones(n_hidden, np.int64)
    cross = np.zeros(n_hidden, np.int64)
    bound = 1.0
    w_off = 0
    b_off = 0
    k = 0
    for layer in range(sizes.size - 2):
        n_in = sizes[layer]
        n_out = sizes[layer + 1]
        for j in range(n_out):
            for m in range(nm):
                zz = bf[b_off + j]
                dd = 0.0
                for i in range(n_in):  # in input order, one product at a time
                    w = wt[w_off + i * n_out + j]
                    zz += w * h[i, m]
                    dd += w * dh[i, m]
                z[j, m] = zz
                dz[j, m] = dd
            t = 0.0
            for m in range(nm):
                t += abs(dz[j, m]) * (xs[m + 1] - xs[m])
                if m > 0:
                    if dz[j, m] != dz[j, m - 1]:
                        pa[k] += 1
                    if (z[j, m] > 0.0) != (z[j, m - 1] > 0.0):
                        cross[k] += 1
            tv[k] = t
            if dw[k] > 0.0:
                bound += min(t / dw[k], float(pa[k]))
            else:
                bound += cross[k]
            k += 1
        for j in range(n_out):
            for m in range(nm):
                if z[j, m] > 0.0:
                    h[j, m] = z[j, m]
                    dh[j, m] = dz[j, m]
                else:
                    h[j, m] = 0.0
                    dh[j, m] = 0.0
        w_off += n_in * n_out
        b_off += n_out
    return nm, bound, tv, pa, cross


def sup_error_square(net, interval=(0.0, 1.0)):
    """``max_{x in interval} |f(x) - x²|``, exactly: f is affine on each activation
    region, so on each the maximum of |f - x²| is at an end or at the vertex of the
    parabola ``f - x²`` (x = slope / 2) where that lies inside."""
    xs = region_ends(net, interval)
    mid = 0.5 * (xs[:-1] + xs[1:])
    _, _, f_mid, slope = layer_slopes(net, mid)
    intercept = f_mid - slope * mid
    lo, hi = xs[:-1], xs[1:]

    def err(x):
        return np.abs(slope * x + intercept - x * x)

    e = np.maximum(err(lo), err(hi))
    v = 0.5 * slope
    inside = (v > lo) & (v < hi)
    e = np.where(inside, np.maximum(e, err(np.clip(v, lo, hi))), e)
    return float(e.max())


def sup_error_between(net, ref, interval=(0.0, 1.0)):
    """``max_{x in interval} |net(x) - ref(x)|`` of two nets, from their exact
    activation regions: the difference is affine on each cell of the common refinement
    of both partitions, so its maximum is at a cell end. Each net's affine map on a cell
    is read at the cell's midpoint (exact slopes, as :func:`layer_slopes`), then
    evaluated at both ends; the only error is float64 rounding of those evaluations
    (relative ~1e-16 of ``|slope| * |x| + |intercept|``), never a sampling error.

    Examples
    --------
    >>> from pieces import sawtooth
    >>> sup_error_between(sawtooth(2), sawtooth(1))   # |t∘t - t| is 1 at x = 1/2
    1.0
    """
    if not isinstance(net, ReLUNet) or not isinstance(ref, ReLUNet):
        raise ValueError("sup_error_between takes two ReLUNet")
    xs = np.union1d(region_ends(net, interval), region_ends(ref, interval))
    mid = 0.5 * (xs[:-1] + xs[1:])
    _, _, f, df = layer_slopes(net, mid)
    _, _, g, dg = layer_slopes(ref, mid)
    e = np.maximum(np.abs((f - g) + (df - dg) * (xs[:-1] - mid)), np.abs((f - g) + (df - dg) * (xs[1:] - mid)))
    return float(e.max()) if e.size else 0.0
