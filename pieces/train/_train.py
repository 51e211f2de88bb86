"""Training by GD, SGD or Adam in any precision, recording exact piece counts.

Examples
--------
>>> from pieces import ReLUNet, TrainConfig, train
>>> cfg = TrainConfig(optimizer="adam", lr=0.01, steps=200, record_every=100)
>>> res = train(ReLUNet.random([8, 8], seed=0), "square", cfg)
>>> res.history["step"].tolist(), res.diverged
([0, 100, 200], False)
>>> bool(res.history["loss"][-1] < res.history["loss"][0])
True
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace

import numpy as np

from . import _train_cpu
from .. import config as _config
from .._io import atomic_write
from .._jit.device import resolve_device
from ._train_types import (HISTORY_DTYPE, SAMPLINGS, SCHEDULES, TrainConfig, TrainResult, net_to_theta,
                           theta_to_net)
from ..count._count import _check_net, count_packed
from ..precision import parse_precision, round_array
from ..targets import resolve_target

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "train_batch",
    "HISTORY_DTYPE",
    "SCHEDULES",
    "SAMPLINGS",
    "history_to_csv",
    "net_to_theta",
    "theta_to_net",
    "training_data",
    "evaluate_batch",
]


def training_data(target, config):
    """``(x, y)`` float64 training points and targets of ``config``."""
    a, b = config.interval
    if config.sampling == "grid":
        x = np.linspace(a, b, config.n_samples)
    else:
        x = np.random.default_rng([config.seed, 2]).uniform(a, b, config.n_samples)
    y = resolve_target(target)(x)
    if not np.all(np.isfinite(y)):
        raise ValueError("the target is not finite at every training point")
    return x, y


def _kernels(device, what):
    """``(device, module)``: the resolved device and its training kernels."""
    device = resolve_device(device, what)
    if device == "cuda":
        from . import _train_cuda

        return device, _train_cuda
    return device, _train_cpu


def _by_architecture(nets):
    """``{widths: [indices]}`` of ``nets``: the kernels run one architecture at a time."""
    groups = {}
    for i, net in enumerate(nets):
        groups.setdefault(tuple(net.widths), []).append(i)
    return groups


class _Plan:
    """Everything the kernels need that does not depend on the net."""

    def __init__(self, target, config):
        self.device, self.kernels = _kernels(config.device, "training")
        self.config = config
        fmt = config.format
        self.fmt = fmt
        dt = fmt.compute_dtype
        self.dtype = dt
        self.x, self.y = training_data(target, config)
        self.X = round_array(self.x, fmt).astype(dt)
        self.Y = round_array(self.y, fmt).astype(dt)
        self.lr = round_array(config.learning_rates(), fmt).astype(dt)
        if np.any(self.lr == 0):
            raise ValueError(f"lr underflows to 0 in {fmt.name}")
        b1, b2 = config.betas
        t = np.arange(1, config.steps + 1, dtype=np.float64)
        self.bc = round_array(np.stack([1 - b1**t, 1 - b2**t], axis=1), fmt).astype(dt)
        self.bc[self.bc == 0] = 1  # beta = 0: no correction
        self.hp = round_array(np.array([b1, 1 - b1, b2, 1 - b2, config.adam_eps]), fmt).astype(dt)
        self.rounding = fmt.rounding
        self.opt = _train_cpu.OPTIMIZERS[config.optimizer]
        self.batch = config.effective_batch if config.effective_batch < config.n_samples else 0

    def theta(self, net):
        return round_array(net_to_theta(net), self.fmt).astype(self.dtype)

    def record(self, thetas, sizes, steps):
        """History rows for the parameter vectors ``thetas`` (one architecture), all at
        ``steps``: the fp64 loss and the exact counts, straight from the parameters."""
        thetas = np.asarray(thetas, dtype=np.float64)
        n = thetas.shape[0]
        w_idx, b_idx = _train_cpu.counter_indices(sizes)
        packed = (
            np.ascontiguousarray(thetas[:, w_idx]).ravel(),
            np.ascontiguousarray(thetas[:, b_idx]).ravel(),
            np.tile(np.asarray(sizes, np.int64), n),
            np.arange(n + 1, dtype=np.int64) * w_idx.size,
            np.arange(n + 1, dtype=np.int64) * b_idx.size,
            np.arange(n + 1, dtype=np.int64) * len(sizes),
        )
        pieces, regions = count_packed(packed, *self.config.interval, self.device,
                                       max_seconds=_config.TRAIN_COUNT_MAX_SECONDS)
        losses, _ = self.kernels.evaluate_batch(thetas, sizes, self.x, self.y, ())
        return [(steps, float(loss), int(p), int(r)) for loss, p, r in zip(losses, pieces, regions)]


def train(net, target, config=None) -> TrainResult:
    """Train ``net`` on ``target`` as ``config`` says.

    Parameters
    ----------
    net : ReLUNet
        The starting network (its weights are rounded to the precision first).
    target : str or callable
        A name of :mod:`pieces.targets` or a vectorised function of x.
    config : TrainConfig

    Returns
    -------
    TrainResult
        Never raises on divergence: the run stops with ``diverged=True``.
    """
    return train_batch([net], target, config)[0]


def train_batch(nets, target, config=None, seeds=None, on_underflow="raise"):
    """Train many nets in parallel (one per Numba thread), as :func:`train` would.

    Net ``i`` is trained with ``replace(config, seed=seeds[i])`` (default: all with
    ``config.seed``); results are bit-identical to training them one by one.
    A given ``lr`` that rounds to 0 in the precision raises ``ValueError``, or with
    ``on_underflow="freeze"`` gives the start after 0 steps with ``lr_underflow=True``
    (as ``lr="auto"`` always does: the study's runs record it as frozen).

    Returns
    -------
    list of TrainResult
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    nets = list(nets)
    for net in nets:
        _check_net(net)
        net.require_scalar("training and its kernels")
    seeds = [config.seed] * len(nets) if seeds is None else [int(s) for s in seeds]
    if len(seeds) != len(nets):
        raise ValueError(f"{len(seeds)} seeds for {len(nets)} nets")
    if any(s < 0 for s in seeds):
        raise ValueError("seeds must be non-negative")
    if isinstance(config.lr, str):
        return _train_auto(nets, target, config, seeds)
    if on_underflow not in ("raise", "freeze"):
        raise ValueError(f"on_underflow must be 'raise' or 'freeze', got {on_underflow!r}")
    if on_underflow == "freeze" and round_array(np.array([float(config.lr)]), config.format)[0] == 0:
        return _underflowed(nets, target, config, seeds)
    if config.sampling == "random" and len(set(seeds)) > 1:
        # the training points depend on the seed: plan per seed
        out = [None] * len(nets)
        for s in sorted(set(seeds)):
            idx = [i for i, t in enumerate(seeds) if t == s]
            for i, res in zip(idx, train_batch([nets[i] for i in idx], target, replace(config, seed=s))):
                out[i] = res
        return out
    plan = _Plan(target, config)
    results = [None] * len(nets)
    for widths, idx in _by_architecture(nets).items():
        sizes = np.array([1, *widths, 1], dtype=np.int64)
        for i, res in zip(idx, _train_group([nets[i] for i in idx], sizes, [seeds[i] for i in idx], plan)):
            results[i] = res
    return results


def resolve_auto_lr(net, target, config):
    """``(lr, lambda_max)`` that ``lr="auto"`` gives ``net`` on the training points of
    ``config`` (:func:`pieces.curvature.auto_lr`)."""
    from ..curvature import auto_lr

    x, _ = training_data(target, config)
    return auto_lr(net, x)


def _train_auto(nets, target, config, seeds):
    """``lr="auto"``: resolve the step of every net at its start, then train the nets
    that share a step together."""
    resolved = [resolve_auto_lr(net, target, replace(config, seed=s)) for net, s in zip(nets, seeds)]
    out = [None] * len(nets)
    for lr in sorted({lr for lr, _ in resolved}):
        idx = [i for i, (v, _) in enumerate(resolved) if v == lr]
        if round_array(np.array([lr]), config.format)[0] == 0:
            for i, r in zip(idx, _underflowed([nets[i] for i in idx], target, replace(config, lr=lr),
                                              [seeds[i] for i in idx])):
                r.lambda_max = resolved[i][1]
                out[i] = r
            continue
        res = train_batch([nets[i] for i in idx], target, replace(config, lr=lr), [seeds[i] for i in idx])
        for i, r in zip(idx, res):
            r.lambda_max = resolved[i][1]
            out[i] = r
    return out


def _underflowed(nets, target, config, seeds):
    """Results of nets whose step ``config.lr`` rounds to 0 in the format: the start
    rounded to the format, after 0 steps, ``lr_underflow=True``."""
    lr = float(config.lr)
    plan = _Plan(target, replace(config, lr=1.0))  # records the start only
    out = []
    for net, seed in zip(nets, seeds):
        sizes = np.array([1, *net.widths, 1], dtype=np.int64)
        theta = plan.theta(net)[None]
        out.append(TrainResult(net=theta_to_net(theta[0], sizes),
                               history=np.array(plan.record(theta, sizes, 0), dtype=HISTORY_DTYPE),
                               diverged=False, steps_done=0, config=replace(config, lr=lr, seed=seed),
                               lr=lr, lr_underflow=True))
    return out


def _train_group(nets, sizes, seeds, plan):
    cfg = plan.config
    thetas = np.stack([plan.theta(n) for n in nets])
    ms = np.zeros_like(thetas)
    vs = np.zeros_like(thetas)
    seeds_arr = np.array(seeds, dtype=np.int64)
    active = np.ones(len(nets), dtype=np.bool_)
    done = np.zeros(len(nets), dtype=np.int64)
    counts = np.zeros((len(nets), 2, thetas.shape[1]), dtype=np.int64)
    histories = [[] for _ in nets]
    rows = plan.record(thetas, sizes, 0)
    for h, row in zip(histories, rows):
        h.append(row)
    step = 0
    while step < cfg.steps and active.any():
        chunk = min(cfg.record_every, cfg.steps - step)
        d, _, div = plan.kernels.run_steps_batch(
            thetas, ms, vs, sizes, plan.X, plan.Y, plan.lr, plan.bc, plan.hp, plan.opt,
            step, chunk, plan.batch, seeds_arr, active, plan.rounding, counts,
        )
        for i in np.flatnonzero(active):
            done[i] += d[i]
        ok = active & ~div
        if ok.any():
            rows = plan.record(thetas[ok], sizes, step + chunk)
            for i, row in zip(np.flatnonzero(ok), rows):
                histories[i].append(row)
        for i in np.flatnonzero(active & div):
            if d[i] > 0:  # the last finite state, where the run stopped
                rows = plan.record(thetas[i : i + 1], sizes, step + int(d[i]))
                histories[i].append(rows[0])
        active &= ~div
        step += chunk
    out = []
    for i in range(len(nets)):
        out.append(
            TrainResult(
                net=theta_to_net(thetas[i], sizes),
                history=np.array(histories[i], dtype=HISTORY_DTYPE),
                diverged=not active[i],
                steps_done=int(done[i]),
                config=replace(cfg, seed=seeds[i]),
                lr=float(cfg.lr),
                updates=counts[i],
            )
        )
    return out


def evaluate_batch(nets, x, precision="fp64", device="cpu"):
    """Outputs of many nets at the points ``x``, computed in ``precision`` on ``device``.

    Nets of one architecture run together (one CUDA block per net on the GPU). In an
    emulated precision the points and weights are rounded to the format first and every
    operation after, as in training; the GPU's results then equal the CPU's bit for bit.

    Returns
    -------
    numpy.ndarray
        ``(len(nets), len(x))`` float64.

    Examples
    --------
    >>> from pieces import sawtooth
    >>> evaluate_batch([sawtooth(1), sawtooth(2)], [0.25, 0.5]).tolist()
    [[0.5, 1.0], [1.0, 0.0]]
    """
    nets = list(nets)
    for net in nets:
        _check_net(net)
        net.require_scalar("evaluate_batch and its kernels")
    fmt = parse_precision(precision)
    _, kernels = _kernels(device, "evaluation")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError("x must be a 1-D array of finite numbers")
    dt = fmt.compute_dtype
    xr = round_array(x, fmt).astype(dt)
    out = np.empty((len(nets), x.size))
    for widths, idx in _by_architecture(nets).items():
        sizes = np.array([1, *widths, 1], dtype=np.int64)
        thetas = np.stack([round_array(net_to_theta(nets[i]), fmt).astype(dt) for i in idx])
        _, outputs = kernels.evaluate_batch(thetas, sizes, xr, np.zeros_like(xr), fmt.rounding)
        out[idx] = outputs
    return out


def history_to_csv(history, path=None):
    """Write (or return, if ``path`` is None) the history as CSV; written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(history.dtype.names)
    for row in history:
        w.writerow([repr(float(v)) if isinstance(v, (float, np.floating)) else int(v) for v in row])
    text = buf.getvalue()
    if path is None:
        return text
    atomic_write(path, text)
    return None
