"""The loss's curvature at a point, and the step size ``lr="auto"`` taken from it.

A depth-L sawtooth has slope 2**L, so the curvature of the MSE grows like 4**L and any
fixed step overshoots at some depth: the net then collapses because of the step size,
not because of round-off. ``lr="auto"`` removes that confound by taking the step from
the curvature of the loss at the start of training:

    lr = config.AUTO_LR_FACTOR / λ_max,

where λ_max is the largest eigenvalue of the **Gauss-Newton matrix** ``G = (2/N) JᵀJ``
of the MSE ``(1/N) Σ (f(x_s) - y_s)²``, with ``J[s, :] = ∂f(x_s)/∂θ``, computed in
float64. Why Gauss-Newton and not Hessian-vector products: the constructions place a
breakpoint on every training point, where the loss of a ReLU net is not twice
differentiable, so finite-difference Hessian-vector products are ill-defined there
(they measure the jump of the gradient divided by the difference step). ``G`` is the
Hessian's positive semi-definite part, equal to the Hessian where the residual is zero
(a construction on its own target), and the standard curvature model of least squares.
GD on a quadratic with curvature λ_max is stable for ``lr < 2 / λ_max``; the factor 1
takes half of that limit. λ_max is computed by power iteration on ``G v = (2/N) Jᵀ(J v)``
(the smaller Gram matrix of J, seeded start, a relative tolerance of
``config.AUTO_LR_RTOL``), so it is deterministic.

Examples
--------
>>> import numpy as np
>>> from pieces import sawtooth
>>> x = np.linspace(0, 1, 33)
>>> lam3 = gauss_newton_lambda_max(sawtooth(3), x)
>>> lam5 = gauss_newton_lambda_max(sawtooth(5), x)
>>> bool(10 < lam5 / lam3 < 20)   # about 4**2: the curvature grows like 4**L
True
"""

from __future__ import annotations

import math

import numpy as np

from . import config

__all__ = ["output_jacobian", "gauss_newton_lambda_max", "auto_lr", "resolve_lr"]


def output_jacobian(net, x):
    """``J``, ``(len(x), n_params)``: the float64 derivative of f(x_s) with respect to
    every weight and bias (ReLU'(0) = 0, as in training). Columns are grouped by layer,
    weights then biases; their order does not matter for the curvature."""
    x = np.asarray(x, dtype=np.float64).ravel()
    hs = [x[:, None]]  # activations, (N, n_in) per layer
    masks = []
    for w, b in zip(net._weights[:-1], net._biases[:-1]):
        z = hs[-1] @ w.T + b
        masks.append(z > 0)
        hs.append(np.where(masks[-1], z, 0.0))
    blocks = []
    delta = np.ones((x.size, 1))  # ∂f/∂z of the output layer
    for l in range(len(net._weights) - 1, -1, -1):
        h = hs[l]
        blocks.append(delta)  # biases
        blocks.append((delta[:, :, None] * h[:, None, :]).reshape(x.size, -1))  # weights
        if l > 0:
            delta = (delta @ net._weights[l]) * masks[l - 1]
    return np.concatenate(blocks[::-1], axis=1)


def gauss_newton_lambda_max(net, x, rtol=None, max_iter=None):
    """Largest eigenvalue of the Gauss-Newton matrix ``(2/N) JᵀJ`` of the MSE at ``x``.

    Power iteration on the smaller of ``JᵀJ`` and ``JJᵀ`` (same non-zero spectrum),
    from a seeded start, until the Rayleigh quotient changes by less than ``rtol``.
    """
    rtol = config.AUTO_LR_RTOL if rtol is None else rtol
    max_iter = config.AUTO_LR_MAX_ITER if max_iter is None else max_iter
    J = output_jacobian(net, x)
    n = J.shape[0]
    gram = J.T @ J if J.shape[1] <= J.shape[0] else J @ J.T
    if not np.any(gram):
        return 0.0
    v = np.random.default_rng(0).standard_normal(gram.shape[0])
    v /= np.linalg.norm(v)
    lam = 0.0
    for _ in range(max_iter):
        u = gram @ v
        new = float(v @ u)
        norm = np.linalg.norm(u)
        if norm == 0:
            break
        v = u / norm
        if abs(new - lam) <= rtol * abs(new):
            lam = new
            break
        lam = new
    return 2.0 * lam / n


def auto_lr(net, x):
    """``(lr, lambda_max)``: ``config.AUTO_LR_FACTOR / λ_max`` at ``net`` on the points
    ``x`` (see the module docstring). A net with zero curvature (every training point
    in a dead region) gets ``config.AUTO_LR_FALLBACK``."""
    lam = gauss_newton_lambda_max(net, x)
    if not (lam > 0 and math.isfinite(lam)):
        return float(config.AUTO_LR_FALLBACK), float(lam)
    return float(config.AUTO_LR_FACTOR / lam), float(lam)


def resolve_lr(lr, net, x):
    """``(lr, lambda_max)``: a number is taken as it is (λ_max NaN); ``"auto"`` is
    resolved by :func:`auto_lr`."""
    if isinstance(lr, str):
        if lr != "auto":
            raise ValueError(f"lr must be a positive number or 'auto', got {lr!r}")
        return auto_lr(net, x)
    return float(lr), float("nan")
