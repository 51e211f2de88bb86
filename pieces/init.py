"""Initial networks for training: random, or a construction, optionally perturbed.

Examples
--------
>>> initial_net("he", widths=[8, 8], seed=1).widths
(8, 8)
>>> initial_net("sawtooth", depth=3).widths
(2, 2, 2)
"""

from __future__ import annotations

import numpy as np

from . import config
from .constructions import sawtooth, yarotsky_square
from .net import ReLUNet

__all__ = ["INIT_SPECS", "initial_net"]

#: Accepted values of ``init``.
INIT_SPECS = config.INITS + ("sawtooth", "yarotsky_square")


def initial_net(init="he", widths=None, depth=None, seed=0, perturb=0.0):
    """A starting network.

    Parameters
    ----------
    init : {"he", "glorot", "uniform", "sawtooth", "yarotsky_square"}
    widths : sequence of int
        Hidden widths, for the random inits.
    depth : int
        Depth of a construction (``m`` for ``yarotsky_square``).
    seed : int
        Seed of the random init and of the perturbation.
    perturb : float
        Standard deviation of Gaussian noise added to every weight and bias, relative
        to the largest absolute parameter of its layer (0: none).
    """
    if init in config.INITS:
        if widths is None:
            raise ValueError(f"init {init!r} needs widths")
        net = ReLUNet.random(widths, init=init, seed=seed)
    elif init == "sawtooth":
        if depth is None:
            raise ValueError("init 'sawtooth' needs depth")
        net = sawtooth(depth)
    elif init == "yarotsky_square":
        if depth is None:
            raise ValueError("init 'yarotsky_square' needs depth (m)")
        net = yarotsky_square(depth)
    else:
        raise ValueError(f"unknown init {init!r}; expected one of {', '.join(INIT_SPECS)}")
    perturb = float(perturb)
    if not (perturb >= 0 and np.isfinite(perturb)):
        raise ValueError(f"perturb must be finite and >= 0, got {perturb}")
    if perturb > 0:
        rng = np.random.default_rng([seed, 1])
        ws, bs = [], []
        for w, b in zip(net.weights, net.biases):
            scale = perturb * max(np.abs(w).max(), np.abs(b).max(), 1e-300)
            ws.append(w + rng.normal(0.0, scale, w.shape))
            bs.append(b + rng.normal(0.0, scale, b.shape))
        net = ReLUNet(ws, bs)
    return net
