"""What one task of the study computes: rows of (config..., metric, value)."""

from __future__ import annotations

import numpy as np

from ..count import count_pieces
from ..init import initial_net
from ..net import ReLUNet
from ..perturb import backprop_error, perturbed_step
from ..targets import resolve_target
from ..train import TrainConfig, train_batch

__all__ = ["COLUMNS", "run_task"]

#: Columns of results.csv, in order.
COLUMNS = ("task", "experiment", "stage", "init", "target", "width", "depth", "seed", "precision",
           "optimizer", "eta", "step", "layer", "metric", "value")


def _row(task, seed, stage, metric, value, **extra):
    r = dict(task=task["id"], experiment=task["experiment"], stage=stage, init=task["init"],
             target=task["target"], width=task["width"], depth=task["depth"], seed=seed,
             precision=task.get("precision", "fp64"), optimizer=task.get("train", {}).get("optimizer", ""),
             eta="", step="", layer="", metric=metric, value=value)
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
    results = train_batch(_start_nets(task), task["target"], cfg, seeds=task["seeds"])
    rows = []
    for s, res in zip(task["seeds"], results):
        h = res.history
        rows += [_row(task, s, "init", "pieces", int(h["pieces"][0])),
                 _row(task, s, "init", "regions", int(h["regions"][0])),
                 _row(task, s, "init", "loss", float(h["loss"][0])),
                 _row(task, s, "trained", "pieces", int(h["pieces"][-1])),
                 _row(task, s, "trained", "regions", int(h["regions"][-1])),
                 _row(task, s, "trained", "loss", float(h["loss"][-1])),
                 _row(task, s, "trained", "diverged", int(res.diverged))]
        for step, loss, p, r in h.tolist():
            rows += [_row(task, s, "training", "pieces", p, step=step),
                     _row(task, s, "training", "loss", loss, step=step)]
    return rows


def _construction_samples(task):
    return max(256, 2 ** (task["depth"] + 1) + 1)


def _perturbation_rows(task):
    x = np.linspace(0.0, 1.0, 256)
    y = resolve_target(task["target"])(x)
    rows = []
    for s, net in zip(task["seeds"], _start_nets(task)):
        before = count_pieces(net, (0.0, 1.0))
        rows += [_row(task, s, "before", "pieces", before.pieces), _row(task, s, "before", "regions", before.regions)]
        for eta in task["etas"]:
            after = count_pieces(perturbed_step(net, x, y, lr=task["lr"], eta=eta, seed=s), (0.0, 1.0))
            rows += [_row(task, s, "after", "pieces", after.pieces, eta=eta),
                     _row(task, s, "after", "regions", after.regions, eta=eta)]
    return rows


def _assumption_rows(task):
    x = np.linspace(0.0, 1.0, 256)
    y = resolve_target(task["target"])(x)
    h = 1e-7
    xs = np.linspace(0.0, 1.0, 2001)
    rows = []
    for s, net in zip(task["seeds"], _start_nets(task)):
        _, updates = perturbed_step(net, x, y, lr=task["lr"], eta=0.0, seed=s, return_updates=True)
        hidden = np.concatenate(updates[:-1])
        nz = np.abs(hidden[hidden != 0])
        rows += [_row(task, s, "step", "mean_inv_bias_update", float(np.mean(1.0 / nz)) if nz.size else float("inf")),
                 _row(task, s, "step", "zero_bias_update_fraction", float(np.mean(hidden == 0)))]
        zp, zm = net.preactivations(xs + h), net.preactivations(xs - h)
        for layer, (a, b) in enumerate(zip(zp, zm)):
            rows.append(_row(task, s, "init", "max_input_derivative", float(np.max(np.abs(a - b)) / (2 * h)), layer=layer))
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
    if exp == "constructions":
        return _training_rows(task, _construction_samples(task), device)
    if exp == "precision":
        return _training_rows(task, _construction_samples(task) if task["init"] != "he" else None, device)
    if exp == "perturbation":
        return _perturbation_rows(task)
    if exp == "assumptions":
        return _assumption_rows(task)
    if exp == "backprop":
        return _backprop_rows(task)
    raise ValueError(f"unknown experiment {exp!r}")
