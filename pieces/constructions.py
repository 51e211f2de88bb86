"""Networks from approximation theory whose pieces grow exponentially with depth."""

from __future__ import annotations

import numpy as np

from .net import ReLUNet

__all__ = ["sawtooth", "yarotsky_square", "tent_layer"]


def tent_layer():
    """Weights of one tent map t(x) = 2 relu(x) - 4 relu(x - 1/2) as a width-2 layer.

    Returns ``(W_in, b_in, w_out)``: the hidden layer ``relu(W_in x + b_in)`` on a scalar
    input and the output row ``w_out`` with ``t(x) = w_out @ hidden``.
    """
    return np.array([[1.0], [1.0]]), np.array([0.0, -0.5]), np.array([2.0, -4.0])


def sawtooth(depth):
    """Telgarsky's sawtooth: the tent map composed ``depth`` times.

    Width 2, ``depth`` hidden layers; on [0, 1] it has exactly ``2**depth`` affine pieces
    and ``2**(depth-1)`` teeth of height 1.

    Examples
    --------
    >>> from pieces import count_pieces
    >>> count_pieces(sawtooth(5), (0.0, 1.0)).pieces
    32
    """
    depth = _positive_int(depth, "depth")
    w_in, b_in, w_out = tent_layer()
    ws, bs = [w_in], [b_in]
    inner = np.outer(w_in[:, 0], w_out)  # tent output fed to the next tent's two neurons
    for _ in range(depth - 1):
        ws.append(inner.copy())
        bs.append(b_in.copy())
    ws.append(w_out.reshape(1, 2))
    bs.append(np.zeros(1))
    return ReLUNet(ws, bs)


def yarotsky_square(m):
    """Yarotsky's ReLU approximation f_m of x**2 on [0, 1].

    ``f_m(x) = x - sum_{s=1}^{m} g_s(x) / 4**s`` with ``g_s`` the s-fold tent map. It is
    the piecewise-linear interpolant of x**2 at the ``2**m + 1`` points k / 2**m, so it
    has ``2**m`` pieces and sup error ``2**(-2m-2)``. Width 3, ``m`` hidden layers: one
    neuron carries the partial sum f_{s-1} (non-negative on [0, 1], so ReLU keeps it),
    two neurons compute the next tent.

    Examples
    --------
    >>> net = yarotsky_square(3)
    >>> float(net(0.5))
    0.25
    """
    m = _positive_int(m, "m")
    w_in, b_in, w_out = tent_layer()
    # layer 1: [f_0 = x, tent neurons of g_1 on x]
    ws = [np.array([[1.0], [1.0], [1.0]])]
    bs = [np.array([0.0, 0.0, -0.5])]
    for s in range(1, m):
        # from [f_{s-1}, p_s, q_s] with g_s = 2 p_s - 4 q_s:
        # f_s = f_{s-1} - g_s / 4**s ; next tent neurons take g_s
        w = np.zeros((3, 3))
        w[0, 0] = 1.0
        w[0, 1:] = -w_out / 4.0**s
        w[1, 1:] = w_out
        w[2, 1:] = w_out
        ws.append(w)
        bs.append(np.array([0.0, 0.0, -0.5]))
    last = np.zeros((1, 3))
    last[0, 0] = 1.0
    last[0, 1:] = -w_out / 4.0**m
    ws.append(last)
    bs.append(np.zeros(1))
    return ReLUNet(ws, bs)


def _positive_int(value, name):
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
