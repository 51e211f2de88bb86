"""Nets from R^d along a segment, exactly: the restriction as a net from R with float
weights that are exactly the line's.

Along x(t) = x0 + t (x1 - x0) the first layer's preactivations are W x(t) + b, whose
coefficients W (x1 - x0) and W x0 + b no float holds in general. Rounding them would
move every crossing, so the restriction instead carries the line into the first layer
through two layers whose weights are the ends' coordinates themselves. On t in [0, 1],
with p = relu(t) and q = relu(1 - t) (so p + q = 1, p, q >= 0):

- x_m(t) = x0_m q + x1_m p. Where x0_m and x1_m have one sign, r_m = relu(±x_m) equals
  ±x_m on all of [0, 1], with no kink inside it, and the first layer takes ±W[:, m] r_m;
  a coordinate that is zero at both ends is dropped.
- Where they have opposite signs, r_m = relu(x_m + M_m) with M_m a power of two at
  least twice |x0_m| and |x1_m| (so r_m >= M_m / 2 > 0), beside the constant
  c_m = relu(M_m p + M_m q) = M_m; the first layer takes W[:, m] r_m - W[:, m] c_m.

Every new neuron is active on all of (0, 1), so pieces, regions and breakpoints (as t)
of the restriction on [0, 1] are those of f along the segment, and every weight is a
float of the net or of the ends: the exact counter's count of the restriction is exact.

Examples
--------
>>> import numpy as np
>>> from pieces import ReLUNet
>>> net = ReLUNet([[[1.0, 1.0]], [[1.0]]], [[-1.0], [0.0]])  # relu(x + y - 1)
>>> g = restrict(net, [0.0, 0.0], [1.0, 1.0])
>>> g(np.array([0.25, 0.75])).tolist()
[0.0, 0.5]
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["restrict", "segment_ends"]


def segment_ends(net, segment):
    """``(x0, x1)`` as float64 arrays of the net's input dimension, checked."""
    try:
        x0, x1 = segment
    except (TypeError, ValueError):
        raise ValueError("segment must be a pair of points (x0, x1)") from None
    d = net.in_dim
    ends = []
    for name, x in (("x0", x0), ("x1", x1)):
        try:
            x = np.array(x, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"segment end {name} must be numeric") from None
        if x.size != d:
            raise ValueError(f"segment end {name} has {x.size} coordinates; this net takes {d}")
        if not np.isfinite(x).all():
            raise ValueError(f"segment end {name} must be finite (found NaN or inf)")
        ends.append(x)
    return ends[0], ends[1]


def _offset(u, v):
    """A power of two >= 2 max(|u|, |v|) and >= 1."""
    m = 2.0 * max(abs(u), abs(v), 0.5)
    return 2.0 ** math.ceil(math.log2(m))


def restrict(net, x0, x1):
    """The net from R to R^k equal to ``t -> net(x0 + t (x1 - x0))`` on [0, 1], with
    exact weights (module docstring); a net of the same class as ``net``."""
    x0, x1 = segment_ends(net, (x0, x1))
    W, b = net.weights[0], net.biases[0]
    lift = [np.array([[1.0], [-1.0]])], [np.array([0.0, 1.0])]  # p = relu(t), q = relu(1 - t)
    rows, bias, cols = [], [], []  # the second lifting layer, and what the first layer takes
    for m in range(x0.size):
        u, v = x0[m], x1[m]
        if u == 0.0 and v == 0.0:
            continue
        if u >= 0.0 and v >= 0.0 or u <= 0.0 and v <= 0.0:
            sign = 1.0 if (u > 0.0 or v > 0.0) else -1.0
            rows.append([sign * v, sign * u])
            bias.append(0.0)
            cols.append(sign * W[:, m])
        else:
            M = _offset(u, v)
            rows += [[v, u], [M, M]]
            bias += [M, 0.0]
            cols += [W[:, m], -W[:, m]]
    if not rows:  # a segment through no coordinate: f is constant on it, f(0)
        rows, bias, cols = [[1.0, 1.0]], [0.0], [np.zeros(W.shape[0])]
    ws = lift[0] + [np.array(rows), np.stack(cols, axis=1)] + list(net.weights[1:])
    bs = lift[1] + [np.array(bias), b] + list(net.biases[1:])
    return type(net)(ws, bs)
