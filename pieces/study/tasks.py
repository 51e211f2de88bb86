"""What one task of the study computes: rows of (config..., metric, value)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import config
from ..count import count_pieces
from ..init import initial_net
from ..net import ReLUNet
from ..perturb import backprop_error, gd_step, gradient, perturbed_iteration
from ..precision import round_array
from ..pwl import max_input_derivative, sup_error_between, sup_error_square
from ..targets import resolve_target
from ..train import TrainConfig, net_to_theta, theta_to_net, train, train_batch, training_data
from ..train._train import resolve_auto_lr
from . import outcomes
from .outcomes import half_ulp_ratio

__all__ = ["COLUMNS", "run_task", "timed_task"]

#: Columns of results.csv, in order.
COLUMNS = ("task", "experiment", "stage", "init", "target", "width", "depth", "seed", "precision",
           "optimizer", "delta", "eta", "step", "layer", "metric", "value")


def _row(task, seed, stage, metric, value, **extra):
    r = dict(task=task["id"], experiment=task["experiment"], stage=stage, init=task["init"],
             target=task["target"], width=task["width"], depth=task["depth"], seed=seed,
             precision=task.get("precision", "fp64"), optimizer=task.get("train", {}).get("optimizer", ""),
             delta=task.get("perturb", ""), eta="", step="", layer="", metric=metric, value=value)
    r.update(extra)
    return r


def _train_config(task, n_samples=None, device="cpu"):
    t = dict(task["train"])
    if n_samples is not None:
        t["n_samples"] = n_samples
    return TrainConfig(precision=task.get("precision", "fp64"), device=device, **t)


def _start_nets(task):
    L, w = task["depth"], task["width"]
    if task["init"] == "he":
        return [ReLUNet.random([w] * L, init="he", seed=s) for s in task["seeds"]]
    return [initial_net(task["init"], depth=L, seed=s, perturb=task.get("perturb", 0.0)) for s in task["seeds"]]


def _training_rows(task, n_samples=None, device="cpu"):
    cfg = _train_config(task, n_samples, device)
    starts = _start_nets(task)
    construction = task["init"] != "he"
    # a construction's τ-scaled Adam step may be below a format's smallest number: a
    # frozen run, as the stable GD step that underflows (He nets' given lr: an error)
    results = train_batch(starts, task["target"], cfg, seeds=task["seeds"],
                          on_underflow="freeze" if construction else "raise")
    rows = []
    for s, start, res in zip(task["seeds"], starts, results):
        h = res.history
        rows += [_row(task, s, "init", "pieces", int(h["pieces"][0])),
                 _row(task, s, "init", "regions", int(h["regions"][0])),
                 _row(task, s, "init", "loss", float(h["loss"][0])),
                 _row(task, s, "trained", "pieces", int(h["pieces"][-1])),
                 _row(task, s, "trained", "regions", int(h["regions"][-1])),
                 _row(task, s, "trained", "loss", float(h["loss"][-1])),
                 _row(task, s, "trained", "diverged", int(res.diverged)),
                 _row(task, s, "trained", "lr", float(res.lr)),
                 _row(task, s, "trained", "lambda_max", float(res.lambda_max)),
                 _row(task, s, "trained", "lr_underflow", int(res.lr_underflow))]
        rows += _absorption_rows(task, s, start, res)
        for step, loss, p, r in h.tolist():
            rows += [_row(task, s, "training", "pieces", p, step=step),
                     _row(task, s, "training", "loss", loss, step=step)]
        if task["target"] == "square" or task["init"] == "yarotsky_square":
            rows += [_row(task, s, "init", "sup_error_square", sup_error_square(start)),
                     _row(task, s, "trained", "sup_error_square", sup_error_square(res.net))]
        elif not construction:
            # other targets: on a stated dense grid (config.SUP_ERROR_GRID_N points)
            g = np.linspace(0.0, 1.0, config.SUP_ERROR_GRID_N)
            err = float(np.max(np.abs(res.net(g) - resolve_target(task["target"])(g))))
            rows.append(_row(task, s, "trained", "sup_error_grid", err))
        if construction:
            rows += _outcome_rows(task, s, start, res)
    return rows


def _rounded(net, fmt):
    """``net`` with its parameters rounded to ``fmt``, as training starts from it."""
    sizes = np.array([1, *net.widths, 1], dtype=np.int64)
    return theta_to_net(round_array(net_to_theta(net), fmt).astype(np.float64), sizes)


def _absorption_rows(task, s, start, res):
    """The absorbed fraction of the run's updates, overall and per layer, and the
    typical first step against half an ulp of its weight in the training format."""
    fmt = res.config.format
    rows = [_row(task, s, "trained", "absorbed_fraction", res.absorbed_fraction),
            _row(task, s, "trained", "steps_done", int(res.steps_done))]
    for layer, v in enumerate(res.absorbed_per_layer()):
        rows.append(_row(task, s, "trained", "absorbed_fraction_layer", float(v), layer=layer))
    x, y = training_data(task["target"], res.config)
    net0 = _rounded(start, fmt)
    _, g = gradient(net0, x, y, "fp64")
    if res.config.optimizer == "adam":  # Adam's first step: lr * g / (|g| + eps)
        step = res.lr * np.abs(g) / (np.abs(g) + res.config.adam_eps)
    else:
        step = res.lr * np.abs(g)
    rows.append(_row(task, s, "init", "step_half_ulp", half_ulp_ratio(step, net_to_theta(net0), fmt)))
    return rows


def _outcome_rows(task, s, start, res):
    """Kept, repaired, frozen, broken or collapsed (:mod:`pieces.study.outcomes`), from
    the exact sup distance to the exact construction at the start and at the end."""
    h = res.history
    L = task["depth"]
    exact = initial_net(task["init"], depth=L)
    err0 = sup_error_between(_rounded(start, res.config.format), exact)
    err1 = sup_error_between(res.net, exact)
    loss0, loss1 = float(h["loss"][0]), float(h["loss"][-1])
    ratio = loss1 / loss0 if loss0 > 0 else float("nan")
    t = outcomes.tau(task["init"], L)
    out = outcomes.classify(int(h["pieces"][-1]), L, err0, err1, t, ratio, res.absorbed_fraction,
                            res.lr_underflow, res.diverged)
    frac = int(h["pieces"][-1]) / 2**L
    moved = float(np.max(np.abs(net_to_theta(res.net) - net_to_theta(start))))
    rows = [_row(task, s, "init", "sup_error_exact", err0), _row(task, s, "trained", "sup_error_exact", err1),
            _row(task, s, "trained", "tau", t), _row(task, s, "trained", "loss_ratio", ratio),
            _row(task, s, "trained", "outcome", out),
            _row(task, s, "trained", "pieces_fraction", frac),
            _row(task, s, "trained", "max_parameter_change", moved),
            _row(task, s, "trained", "survived", int(outcomes.OUTCOMES[out] in outcomes.SURVIVING))]
    for stage, net in (("init", start), ("trained", res.net)):
        for layer, v in enumerate(max_input_derivative(net)):
            rows.append(_row(task, s, stage, "max_input_derivative", float(v), layer=layer))
    return rows


def _snapshots(net, target, train_cfg, fractions, seed):
    """``[(fraction, net)]``: the net at these fractions of one GD run (steps at the lr
    resolved at the start, so that the run's segments are the run)."""
    cfg = TrainConfig(**train_cfg, seed=seed)
    if isinstance(cfg.lr, str):
        cfg = replace(cfg, lr=resolve_auto_lr(net, target, cfg)[0])
    out, done, cur = [], 0, net
    for f in sorted(fractions):
        k = int(round(f * cfg.steps))
        if k > done:
            cur = train(cur, target, TrainConfig(**{**train_cfg, "lr": cfg.lr, "steps": k - done,
                                                      "record_every": k - done}, seed=seed)).net
            done = k
        out.append((f, cur))
    return out


def _stage(f):
    return f"{round(100 * f):d}%"


def _perturbation_rows(task):
    """Theorem 3.4: E[pieces] after one perturbed GD step against η, with the per-net
    crossing bound of every draw (pieces.pwl.CrossingBound)."""
    x = np.linspace(0.0, 1.0, 256)
    y = resolve_target(task["target"])(x)
    rows = []
    for s, start in zip(task["seeds"], _start_nets(task)):
        if task["init"] == "he":
            nets = [(_stage(f), n) for f, n in _snapshots(start, task["target"], task["train"], task["stages"], s)]
        else:
            nets = [("start", start)]
        for stage, net in nets:
            before = count_pieces(net, (0.0, 1.0))
            step = gd_step(net, x, y, task["lr"])
            rows += [_row(task, s, stage, "pieces_before", before.pieces),
                     _row(task, s, stage, "regions_before", before.regions),
                     _row(task, s, stage, "lr", step.lr), _row(task, s, stage, "lambda_max", step.lambda_max)]
            for eta in task["etas"]:
                draws = 1 if eta == 0 else int(task["draws"])  # eta = 0 has no noise
                rows += _draw_rows(task, s, stage, "", eta, step.draws(eta, draws, seed=s))
            if "sigmas" in task:
                # the positive control: the same nets and counting path, absolute noise
                rows.append(_row(task, s, stage, "noise_to_range", step.noise_to_range()))
                for sigma in task["sigmas"]:
                    rows += _draw_rows(task, s, stage, "control_", sigma,
                                       step.draws_absolute(sigma, int(task["draws"]), seed=s))
    return rows


def _se(v):
    return float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else 0.0


def _draw_rows(task, s, stage, prefix, level, prb, **extra):
    """Mean and standard error of the pieces, regions and bound excess over draws."""
    P, R, B = (np.asarray(v, float) for v in prb)
    return [_row(task, s, stage, prefix + metric, float(v), eta=level, **extra) for metric, v in (
        ("pieces_mean", P.mean()), ("pieces_se", _se(P)), ("regions_mean", R.mean()), ("regions_se", _se(R)),
        ("bound_mean", B.mean()), ("excess_mean", (R - B).mean()), ("excess_se", _se(R - B)),
        ("draws", P.size))]


def _iteration_rows(task):
    """The whole perturbed GD iteration: E[pieces] and E[regions] after T steps, per η,
    against the crossing bound of step T (:func:`pieces.perturb.perturbed_iteration`)."""
    x = np.linspace(0.0, 1.0, 256)
    y = resolve_target(task["target"])(x)
    rows = []
    T = sorted(task["iteration_steps"])
    for s, start in zip(task["seeds"], _start_nets(task)):
        before = count_pieces(start, (0.0, 1.0))
        rows += [_row(task, s, "start", "pieces_before", before.pieces),
                 _row(task, s, "start", "regions_before", before.regions)]
        for eta in task["etas"]:
            draws = 1 if eta == 0 else int(task["draws"])
            runs = np.stack([perturbed_iteration(start, x, y, task["lr"], eta, T, seed=[s, d]) for d in range(draws)])
            for k, t in enumerate(T):
                rows += _draw_rows(task, s, "iteration", "iter_", eta, runs[:, k].T, step=t)
    return rows


def _assumption_rows(task):
    """(A) along a GD run: mean 1/|Δb| over the non-zero hidden bias updates and the
    fraction of zero updates, at each stage; (B) exact max |∂z/∂x| per layer at the
    start and at the end."""
    x = np.linspace(0.0, 1.0, int(task["train"].get("n_samples", 256)))
    y = resolve_target(task["target"])(x)
    rows = []
    for s, start in zip(task["seeds"], _start_nets(task)):
        snaps = _snapshots(start, task["target"], task["train"], task["stages"], s)
        for f, net in snaps:
            step = gd_step(net, x, y, task["train"]["lr"])
            hidden = np.concatenate(step.bias_delta[:-1])
            nz = np.abs(hidden[hidden != 0])
            stage = _stage(f)
            rows += [_row(task, s, stage, "mean_inv_bias_update", float(np.mean(1.0 / nz)) if nz.size else float("inf")),
                     _row(task, s, stage, "zero_bias_update_fraction", float(np.mean(hidden == 0))),
                     _row(task, s, stage, "lr", step.lr)]
            if f in (min(task["stages"]), max(task["stages"])):
                for layer, v in enumerate(max_input_derivative(net)):
                    rows.append(_row(task, s, stage, "max_input_derivative", float(v), layer=layer))
    return rows


def _backprop_rows(task):
    x = np.linspace(0.0, 1.0, 64)
    y = resolve_target(task["target"])(x)
    rows = []
    for s, net in zip(task["seeds"], _start_nets(task)):
        for p in task["precisions"]:
            err = backprop_error(net, x, y, p)
            rows.append(_row(task, s, "init", "backprop_error", err.total, precision=p))
            for layer, e in enumerate(err.per_layer):
                rows.append(_row(task, s, "init", "backprop_error_layer", float(e), precision=p, layer=layer))
    return rows


def run_task(task, device="cpu"):
    """Rows of one task (a dict from :func:`pieces.study.grid.make_tasks`); training
    runs on ``device`` (``"cpu"`` or ``"cuda"``), the other experiments on the CPU."""
    exp = task["experiment"]
    if exp == "growth":
        return _training_rows(task, device=device)
    if exp in ("constructions", "precision"):
        return _training_rows(task, device=device)
    if exp == "perturbation":
        return _iteration_rows(task) if task.get("kind") == "iteration" else _perturbation_rows(task)
    if exp == "assumptions":
        return _assumption_rows(task)
    if exp == "backprop":
        return _backprop_rows(task)
    raise ValueError(f"unknown experiment {exp!r}")


def timed_task(task, device="cpu"):
    """``(rows, seconds)`` of :func:`run_task` (what the process pool and the dask
    workers run)."""
    import time

    t0 = time.perf_counter()
    rows = run_task(task, device)
    return rows, time.perf_counter() - t0
