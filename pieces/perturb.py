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

from .train import _train_cpu
from .net import ReLUNet
from .precision import kernel_rounding, parse_precision, round_array
from .train import net_to_theta, theta_to_net

__all__ = ["perturbed_step", "perturbed_iteration", "GDStep", "gd_step", "backprop_error", "BackpropError", "gradient",
           "rational_gradient"]


def _xy(x, y):
    x = np.ascontiguousarray(x, dtype=np.float64).ravel()
    y = np.ascontiguousarray(y, dtype=np.float64).ravel()
    if x.size != y.size or x.size < 1:
        raise ValueError(f"x and y must be non-empty and of equal length, got {x.size} and {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    return x, y


def _sizes(net):
    net.require_scalar("gradients and perturbed steps")
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
        theta, _sizes(net), round_array(x, fmt).astype(dt), round_array(y, fmt).astype(dt),
        kernel_rounding(fmt.rounding, finite_inputs=True),
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
    lr : float or "auto"
        Learning rate (> 0), or ``"auto"``: ``config.AUTO_LR_FACTOR / λ_max`` of the
        loss's Gauss-Newton curvature at ``net`` on ``x`` (:mod:`pieces.curvature`),
        the step that keeps an unperturbed step from collapsing a construction.
    eta : float
        Relative noise level (>= 0).
    seed : int
    return_updates : bool
        Also return the perturbed bias updates, one array per layer.

    Returns
    -------
    ReLUNet, or (ReLUNet, list of numpy.ndarray)
    """
    if not (np.isfinite(eta) and eta >= 0):
        raise ValueError(f"eta must be a non-negative number, got {eta!r}")
    step = gd_step(net, x, y, lr)
    new, updates = step.perturbed(eta, seed)
    return (new, updates) if return_updates else new


class GDStep:
    """One full-batch fp64 GD step of a net, computed once and perturbed many times.

    Attributes
    ----------
    net : ReLUNet
    lr, lambda_max : float
        The step size (resolved where it was "auto") and the curvature it came from
        (NaN for a given number).
    delta : numpy.ndarray
        ``-lr * gradient`` in the flat training layout.
    bias_delta : list of numpy.ndarray
        The unperturbed bias updates Δb per layer (hidden layers, then the output).
    """

    def __init__(self, net, x, y, lr):
        from .curvature import resolve_lr

        if not isinstance(lr, str) and not (np.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number or 'auto', got {lr!r}")
        x, y = _xy(x, y)
        self.net = net
        self.lr, self.lambda_max = resolve_lr(lr, net, x)
        _, g = gradient(net, x, y, "fp64")
        self.theta = net_to_theta(net)
        self.sizes = _sizes(net)
        self.delta = -self.lr * g
        _, self._b_off, _ = _train_cpu.param_layout(self.sizes)
        self.bias_delta = [self.delta[self._b_off[l]: self._b_off[l] + self.sizes[l + 1]].copy()
                           for l in range(len(self.sizes) - 1)]

    def draws(self, eta, n, seed=0, interval=(0.0, 1.0)):
        """``(pieces, regions, bound)`` arrays over ``n`` noise draws at level ``eta``
        (draw ``d`` uses the seed ``[seed, d]``): the exact counts of the net after the
        step and its crossing bound (:func:`pieces.pwl.crossing_bound`)."""
        dw = 2.0 * eta * np.abs(np.concatenate(self.bias_delta[:-1]))
        return self._draws(lambda d: self._perturbed_delta(eta, [seed, d]), dw, n, interval)

    def draws_absolute(self, sigma, n, seed=0, interval=(0.0, 1.0)):
        """The positive control of :meth:`draws`: the same step and counting path, but
        every hidden bias gets noise ``sigma * ξ`` (ξ uniform on [-1, 1]) of an
        absolute size, not scaled by ``lr * |∂loss/∂b|``. A depth-L sawtooth loses its
        coordination once ``sigma * 2**L`` nears 1, so its E[pieces] must move."""
        n_hidden = int(self.sizes[1:-1].sum())
        dw = np.full(n_hidden, 2.0 * float(sigma))
        return self._draws(lambda d: self._absolute_delta(sigma, [seed, d]), dw, n, interval)

    def _draws(self, delta_of, dw, n, interval):
        from .pwl import draw_measures

        w_idx, b_idx = _train_cpu.counter_indices(self.sizes)
        out = np.empty((3, n))
        for d in range(n):
            theta = self.theta + delta_of(d)
            p, r, bnd, *_ = draw_measures(theta[w_idx], theta[b_idx], self.sizes, dw, float(interval[0]),
                                          float(interval[1]))
            out[:, d] = p, r, bnd
        return out[0], out[1], out[2]

    def _absolute_delta(self, sigma, seed):
        rng = np.random.default_rng(seed)
        delta = self.delta.copy()
        for l in range(len(self.sizes) - 2):  # hidden layers
            sl = slice(self._b_off[l], self._b_off[l] + self.sizes[l + 1])
            delta[sl] += sigma * rng.uniform(-1.0, 1.0, self.sizes[l + 1])
        return delta

    def noise_to_range(self, interval=(0.0, 1.0)):
        """Median over hidden neurons of ``2 |Δb_n| / (max a_n - min a_n)`` on the
        interval: the width of neuron n's bias noise at η = 1 against the range of its
        preactivation (exact: a_n is affine on each activation region, so its extremes
        are at region ends). At level η the noise is η times this."""
        from .pwl import layer_slopes, region_ends

        xs = region_ends(self.net, interval)
        values, _, _, _ = layer_slopes(self.net, xs)
        rng_n = np.concatenate([v.max(axis=1) - v.min(axis=1) for v in values])
        width = 2.0 * np.abs(np.concatenate(self.bias_delta[:-1]))
        ok = (rng_n > 0) & (width > 0)
        return float(np.median(width[ok] / rng_n[ok])) if ok.any() else float("nan")

    def _perturbed_delta(self, eta, seed):
        rng = np.random.default_rng(seed)
        delta = self.delta.copy()
        for l in range(len(self.sizes) - 1):
            sl = slice(self._b_off[l], self._b_off[l] + self.sizes[l + 1])
            xi = rng.uniform(-1.0, 1.0, self.sizes[l + 1])
            db = delta[sl]
            delta[sl] = np.where(db != 0.0, db * (1.0 + eta * xi), 0.0)
        return delta

    def perturbed(self, eta, seed=0):
        """``(net, bias updates)`` after the step with relative bias noise ``eta``."""
        if not (np.isfinite(eta) and eta >= 0):
            raise ValueError(f"eta must be a non-negative number, got {eta!r}")
        delta = self._perturbed_delta(eta, seed)
        updates = [delta[self._b_off[l]: self._b_off[l] + self.sizes[l + 1]] for l in range(len(self.sizes) - 1)]
        return theta_to_net(self.theta + delta, self.sizes), updates


def perturbed_iteration(net, x, y, lr, eta, record, seed=0, interval=(0.0, 1.0)):
    """``max(record)`` perturbed GD steps (the paper's whole iteration), each a fresh
    fp64 gradient at the current net and relative bias noise η (draw seeds
    ``[seed, t]``). The step size is resolved once, at the start (``"auto"``: from the
    start's curvature), and kept.

    Returns
    -------
    numpy.ndarray
        ``(len(record), 3)``: after step T of ``record``, the exact pieces, regions and
        the crossing bound of that step (:meth:`GDStep.draws`' bound for its noise
        widths), which bounds the expected regions after it whatever came before.

    Examples
    --------
    >>> import numpy as np
    >>> from pieces import sawtooth
    >>> x = np.linspace(0, 1, 65)
    >>> out = perturbed_iteration(sawtooth(3), x, x * x, "auto", 0.0, [1, 5])
    >>> out.shape
    (2, 3)
    """
    from .curvature import resolve_lr
    from .pwl import draw_measures

    x, y = _xy(x, y)
    rate, _ = resolve_lr(lr, net, x)
    record = sorted(int(t) for t in record)
    out = np.empty((len(record), 3))
    cur = net
    k = 0
    for t in range(1, record[-1] + 1):
        step = GDStep(cur, x, y, rate)
        delta = step._perturbed_delta(eta, [seed, t])
        theta = step.theta + delta
        if not np.all(np.isfinite(theta)):
            raise ValueError(f"the perturbed iteration diverged at step {t}")
        cur = theta_to_net(theta, step.sizes)
        if t == record[k]:
            w_idx, b_idx = _train_cpu.counter_indices(step.sizes)
            dw = 2.0 * eta * np.abs(np.concatenate(step.bias_delta[:-1]))
            p, r, bnd, *_ = draw_measures(theta[w_idx], theta[b_idx], step.sizes, dw, float(interval[0]),
                                          float(interval[1]))
            out[k] = p, r, bnd
            k += 1
    return out


def gd_step(net, x, y, lr):
    """The :class:`GDStep` of ``net`` on (x, y) at ``lr`` (a number or "auto")."""
    if not isinstance(net, ReLUNet):
        raise ValueError(f"expected a ReLUNet, got {type(net).__name__}")
    return GDStep(net, x, y, lr)


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
