"""Sampling estimates of pieces and regions, as other tools compute them.

They exist to be compared with the exact count, not to be trusted: a grid merges
breakpoints that fall in neighbouring cells, misses pieces narrower than a cell, and
reads the activation pattern *at* the sample points, so an end point that sits on a
breakpoint adds a region.
"""

import numpy as np

from .. import config

__all__ = ["count_grid", "count_walk"]


def count_grid(net, a, b, n):
    """``(pieces, regions, breakpoints)`` estimated on ``n`` equally spaced points.

    Pieces: 1 + the number of runs of grid nodes where the second difference of f is
    non-zero (a kink inside a cell shows at both of its nodes). Regions: 1 + the number
    of pattern changes between consecutive samples. Breakpoints: the centre of each run.
    """
    x = np.linspace(a, b, n)
    y = net(x)
    d2 = y[2:] - 2.0 * y[1:-1] + y[:-2]
    scale = np.abs(y[2:]) + 2.0 * np.abs(y[1:-1]) + np.abs(y[:-2]) + np.finfo(float).tiny
    kink = np.abs(d2) > config.GRID_KINK_RTOL * scale
    # runs of consecutive kink nodes
    edges = np.diff(np.concatenate(([0], kink.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    bps = 0.5 * (x[1 + starts] + x[stops])
    patterns = net.activation_patterns(x)
    changes = int(np.count_nonzero(np.any(patterns[1:] != patterns[:-1], axis=1)))
    return len(starts) + 1, changes + 1, bps


def count_walk(net, a, b, eps):
    """Regions found by an ε-stepping walker, as peers implement it.

    From ``x = a``, read the activation pattern at x, find the nearest point ahead
    where some preactivation of the current region's affine map vanishes, and jump
    ``eps * (b - a)`` past it. Regions narrower than about ``2 eps (b - a)`` are stepped
    over, and a start exactly on a boundary reads the boundary's pattern (z = 0 counts
    as inactive), which for a sawtooth skips every other tooth.

    Returns the number of regions visited.
    """
    step = eps * (b - a)
    x = float(a)
    regions = 0
    while x < b:
        regions += 1
        nxt = _next_boundary(net, x, b)
        x = nxt + step
    return regions


def _next_boundary(net, x, b):
    """Smallest crossing > x of the preactivations of the region's affine map at x."""
    h_slope = np.ones(1)  # d(input)/dx; val holds the inputs' values at x
    best = b
    val = np.array([x])
    for w, bias in zip(net._weights[:-1], net._biases[:-1]):
        z = w @ val + bias
        dz = w @ h_slope
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(dz != 0, -z / dz, np.inf)
        ahead = dist[dist > 0]
        if ahead.size:
            best = min(best, x + float(ahead.min()))
        on = z > 0
        val = np.where(on, z, 0.0)
        h_slope = np.where(on, dz, 0.0)
    return best
