"""The perturbed GD step of Karner-Kazeev-Petersen, and the round-off of backprop.

Examples
--------
>>> import numpy as np
>>> from pieces import ReLUNet
>>> net = ReLUNet.random([8, 8], seed=0)
>>> x = np.linspace(0, 1, 64); y = x**2
>>> new, db = perturbed_step(net, x, y, lr=0.1, eta=0.01, seed=1, return_updates=True)
>>> len(db) == net.depth + 1
True
>>> err = backprop_error(net, x, y, "fp16")
>>> bool(0 < err.total < 1e-2)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import _train_cpu
from .net import ReLUNet
from .precision import parse_precision, round_array
from .train import net_to_theta, theta_to_net

__all__ = ["perturbed_step", "backprop_error", "BackpropError", "gradient", "rational_gradient"]


def _xy(x, y):
    x = np.ascontiguousarray(x, dtype=np.float64).ravel()
    y = np.ascontiguousarray(y, dtype=np.float64).ravel()
    if x.size != y.size or x.size < 1:
        raise ValueError(f"x and y must be non-empty and of equal length, got {x.size} and {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    return x, y


def _sizes(net):
    return np.array([1, *net.widths, 1], dtype=np.int64)


def gradient(net, x, y, precision="fp64"):
    """``(loss, grad)`` of the MSE of ``net`` on (x, y), computed in ``precision``.

    ``grad`` is float64, in the flat layout of :func:`pieces.train.net_to_theta`. The
    weights and data are rounded to the precision first.
    """
    if not isinstance(net, ReLUNet):
        raise ValueError(f"expected a ReLUNet, got {type(net).__name__}")
    fmt = parse_precision(precision)
    x, y = _xy(x, y)
    dt = fmt.compute_dtype
    theta = round_array(net_to_theta(net), fmt).astype(dt)
    loss, g = _train_cpu.loss_grad(
        theta, _sizes(net), round_array(x, fmt).astype(dt), round_array(y, fmt).astype(dt), fmt.rounding
    )
    return float(loss), g.astype(np.float64)


def perturbed_step(net, x, y, lr, eta, seed=0, return_updates=False):
    """One full-batch GD step on the MSE whose bias updates carry relative noise.

    The model of floating-point perturbation (after Definition 2.3 of Karner, Kazeev &
    Petersen, 2024): the gradient is computed in float64, the update of every weight is
    ``Δw = -lr * ∂L/∂w``, and every *non-zero* bias update ``Δb`` is replaced by
    ``Δb * (1 + eta * ξ)``, with ξ independent and uniform on [-1, 1] (drawn from
    ``numpy.random.default_rng(seed)``, one per bias in layer order). Zero updates stay
    zero (a dead neuron is not revived by noise). Weights get no noise.

    Parameters
    ----------
    net : ReLUNet
    x, y : array_like
        Training points and targets.
    lr : float
        Learning rate (> 0).
    eta : float
        Relative noise level (>= 0).
    seed : int
    return_updates : bool
        Also return the perturbed bias updates, one array per layer.

    Returns
    -------
    ReLUNet, or (ReLUNet, list of numpy.ndarray)
    """
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not (np.isfinite(eta) and eta >= 0):
        raise ValueError(f"eta must be a non-negative number, got {eta!r}")
    _, g = gradient(net, x, y, "fp64")
    rng = np.random.default_rng(seed)
    theta = net_to_theta(net)
    sizes = _sizes(net)
    w_off, b_off, _ = _train_cpu.param_layout(sizes)
    delta = -lr * g
    updates = []
    for l in range(len(sizes) - 1):
        sl = slice(b_off[l], b_off[l] + sizes[l + 1])
        xi = rng.uniform(-1.0, 1.0, sizes[l + 1])
        db = delta[sl]
        db = np.where(db != 0.0, db * (1.0 + eta * xi), 0.0)
        delta[sl] = db
        updates.append(db)
    new = theta_to_net(theta + delta, sizes)
    return (new, updates) if return_updates else new


@dataclass(frozen=True)
class BackpropError:
    """Relative error of a gradient computed in some precision.

    Attributes
    ----------
    per_layer : numpy.ndarray
        ``||g_p - g_ref|| / ||g_ref||`` over the weights and bias of each layer
        (hidden layers first, the output layer last; NaN where ``g_ref`` is 0 there).
    total : float
        The same over all parameters.
    precision, reference : str
    """

    per_layer: np.ndarray
    total: float
    precision: str
    reference: str


def backprop_error(net, x, y, precision, reference="fp64"):
    """Relative error of the MSE gradient computed in ``precision``.

    The weights and data are first rounded to ``precision``; the gradient of that same
    rounded problem is then computed in ``precision`` and in the ``reference``:
    ``"fp64"``, or ``"exact"`` (rational arithmetic; small nets only).

    Returns
    -------
    BackpropError
    """
    fmt = parse_precision(precision)
    if reference not in ("fp64", "exact"):
        raise ValueError(f"unknown reference {reference!r}; expected 'fp64' or 'exact'")
    x, y = _xy(x, y)
    rounded = theta_to_net(round_array(net_to_theta(net), fmt).astype(np.float64), _sizes(net))
    xr = round_array(x, fmt).astype(np.float64)
    yr = round_array(y, fmt).astype(np.float64)
    _, gp = gradient(rounded, xr, yr, fmt)
    if reference == "fp64":
        _, gref = gradient(rounded, xr, yr, "fp64")
    else:
        gref = np.array([float(v) for v in rational_gradient(rounded, xr, yr)])
    sizes = _sizes(net)
    w_off, b_off, n = _train_cpu.param_layout(sizes)
    per_layer = []
    for l in range(len(sizes) - 1):
        sl = slice(w_off[l], b_off[l] + sizes[l + 1])
        per_layer.append(_rel(gp[sl], gref[sl]))
    return BackpropError(np.array(per_layer), _rel(gp, gref), fmt.name, reference)


def _rel(a, ref):
    den = np.linalg.norm(ref)
    return float(np.linalg.norm(a - ref) / den) if den > 0 else float("nan")


def rational_gradient(net, x, y):
    """The exact MSE gradient (list of ``Fraction``) in the flat training layout."""
    Ws = [[[Fraction(float(v)) for v in row] for row in w] for w in net._weights]
    Bs = [[Fraction(float(v)) for v in b] for b in net._biases]
    n_layers = len(Ws)
    grads_w = [[[Fraction(0)] * len(row) for row in W] for W in Ws]
    grads_b = [[Fraction(0)] * len(b) for b in Bs]
    N = len(x)
    for xv, yv in zip(x, y):
        hs = [[Fraction(float(xv))]]
        for l, (W, b) in enumerate(zip(Ws, Bs)):
            z = [sum((w * h for w, h in zip(row, hs[-1])), Fraction(0)) + bj for row, bj in zip(W, b)]
            hs.append(z if l == n_layers - 1 else [v if v > 0 else Fraction(0) for v in z])
        delta = [2 * (hs[-1][0] - Fraction(float(yv))) / N]
        for l in range(n_layers - 1, -1, -1):
            for j, d in enumerate(delta):
                grads_b[l][j] += d
                for i, h in enumerate(hs[l]):
                    grads_w[l][j][i] += d * h
            if l > 0:
                delta = [
                    sum((delta[j] * Ws[l][j][i] for j in range(len(delta))), Fraction(0)) if hs[l][i] > 0 else Fraction(0)
                    for i in range(len(hs[l]))
                ]
    flat = []
    for gw, gb in zip(grads_w, grads_b):
        n_out, n_in = len(gw), len(gw[0])
        flat.extend(gw[j][i] for i in range(n_in) for j in range(n_out))  # transposed
        flat.extend(gb)
    return flat
