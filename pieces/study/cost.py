"""What a study will cost, from per-task costs measured on this kind of machine.

Each task has a **work** count (flop-like units: steps × samples × depth × width² × seeds
for training, draws × etas × regions for the perturbation step, ...); its seconds are
``c0 + work × c`` with two constants per kind of task (experiment, random or
construction start, native or emulated precision): a fixed cost per task and a cost
per unit. They are fitted (least squares, both clamped at 0) to the tasks of a
calibration run (its ``timings.csv``), and
``costs.json`` beside this file holds those of the default study on the reference
machine (2 cores, see its ``measured_on``).

Examples
--------
>>> from pieces.study import default_settings, make_tasks
>>> est = estimate(make_tasks(default_settings("quick"), ["growth"]))
>>> est["n_tasks"], est["cpu_s"] > 0
(4, True)
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from ..precision import parse_precision

__all__ = ["work", "kind", "calibrate", "estimate", "load_costs", "COSTS_FILE"]

COSTS_FILE = Path(__file__).with_name("costs.json")


def _samples(task):
    if "n_samples" in task.get("train", {}):
        return int(task["train"]["n_samples"])
    if task["init"] == "he":
        return 256
    return max(256, 2 ** (task["depth"] + 1) + 1)


def kind(task):
    """The key of a task's cost constant."""
    emulated = any(not parse_precision(p).native for p in task.get("precisions", [task.get("precision", "fp64")]))
    exp = task["experiment"] + ("-iteration" if task.get("kind") == "iteration" else "")
    return f"{exp}/{'he' if task['init'] == 'he' else 'construction'}/{'emulated' if emulated else 'native'}"


def work(task):
    """The work units of a task (proportional to its seconds within its kind)."""
    L, w, n = int(task["depth"]), int(task["width"]), len(task["seeds"])
    exp = task["experiment"]
    if exp in ("growth", "constructions", "precision"):
        return float(n * task["train"]["steps"] * _samples(task) * L * w * w)
    if exp == "perturbation" and task.get("kind") == "iteration":
        regions = w * L if task["init"] == "he" else 2.0**L
        steps = max(task["iteration_steps"])
        return float(n * len(task["etas"]) * int(task["draws"]) * (steps * 256 * L * w * w + regions * L * w))
    if exp == "perturbation":
        draws = (len(task["etas"]) + len(task.get("sigmas", []))) * int(task["draws"])
        stages = len(task.get("stages", [0]))
        regions = w * L if task["init"] == "he" else 2.0**L
        train = task.get("train", {}).get("steps", 0) * 256 * L * w * w
        return float(n * (stages * draws * regions * L * w + train))
    if exp == "assumptions":
        return float(n * task["train"]["steps"] * int(task["train"].get("n_samples", 256)) * L * w * w)
    if exp == "backprop":
        return float(n * len(task["precisions"]) * 64 * L * w * w)
    raise ValueError(f"unknown experiment {exp!r}")


def calibrate(run_dir):
    """Cost constants ``{kind: seconds per work unit}`` from a run dir's timings."""
    from .grid import make_tasks, short_id

    run_dir = Path(run_dir)
    meta = json.loads((run_dir / "meta.json").read_text())
    tasks = {short_id(t["id"]): t for t in make_tasks(meta["settings"], meta["experiments"])}
    ratios = {}
    with open(run_dir / "timings.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            t = tasks.get(row["task"])
            if t is None:
                continue
            ratios.setdefault(kind(t), []).append((work(t), float(row["seconds"])))
    out = {}
    for k, pts in sorted(ratios.items()):
        w, sec = np.array(pts).T
        if len(pts) >= 3 and np.ptp(w) > 0:
            (c0, c), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(w), w]), sec, rcond=None)
            if c <= 0:
                c0, c = float(np.median(sec)), 0.0
            elif c0 < 0:
                c0, c = 0.0, float(np.median(sec / np.maximum(w, 1.0)))
        else:
            c0, c = 0.0, float(np.median(sec / np.maximum(w, 1.0)))
        out[k] = [float(c0), float(c)]
    return out


def load_costs(path=None):
    """The shipped cost constants (or those of ``path``); ``{}`` where there are none."""
    p = Path(path or COSTS_FILE)
    if not p.is_file():
        return {}
    return json.loads(p.read_text())


def estimate(tasks, costs=None, jobs=1):
    """``{"n_tasks", "cpu_s", "wall_s", "per_experiment": {exp: (tasks, cpu_s)}, "unknown"}``.

    A kind without a constant takes the largest constant of its experiment (or of all):
    an estimate that errs long.
    """
    costs = load_costs() if costs is None else costs
    consts = costs.get("constants", costs)
    if not consts:
        return {"n_tasks": len(tasks), "cpu_s": float("nan"), "wall_s": float("nan"), "per_experiment": {},
                "unknown": []}
    per, unknown, total = {}, set(), 0.0
    for t in tasks:
        k = kind(t)
        c = consts.get(k)
        if c is None:
            unknown.add(k)
            same = [v for q, v in consts.items() if q.split("/")[0] == t["experiment"]]
            c = max(same or list(consts.values()), key=lambda v: v[1])
        s = c[0] + work(t) * c[1]
        total += s
        n, cs = per.get(t["experiment"], (0, 0.0))
        per[t["experiment"]] = (n + 1, cs + s)
    return {"n_tasks": len(tasks), "cpu_s": total, "wall_s": total / max(jobs, 1), "per_experiment": per,
            "unknown": sorted(unknown)}


def format_estimate(est, jobs):
    """Lines that ``pieces study`` prints before it starts."""
    if not est["per_experiment"]:
        return [f"{est['n_tasks']} tasks (no cost calibration in {COSTS_FILE.name})"]
    lines = [f"estimated cost: {est['cpu_s']:.0f} CPU-s, about {est['wall_s'] / 60:.1f} min on {jobs} "
             f"process(es), {est['n_tasks']} tasks (from measured per-task costs, {COSTS_FILE.name})"]
    for exp, (n, s) in sorted(est["per_experiment"].items(), key=lambda kv: -kv[1][1]):
        lines.append(f"  {exp:14s} {n:5d} tasks  {s:9.0f} CPU-s")
    if est["unknown"]:
        lines.append(f"  (no measured cost for {', '.join(est['unknown'])}: taken from the costliest kind)")
    return lines
