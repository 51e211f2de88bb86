"""The study's grids: which tasks each experiment runs, for --quick, default and --full.

A task is a plain dict (JSON-able); its ``id`` is a stable string of its fields, so a
re-run finds the tasks it has finished.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["EXPERIMENTS", "SIZES", "default_settings", "make_tasks", "task_id", "short_id", "construction_samples"]

EXPERIMENTS = ("growth", "constructions", "perturbation", "assumptions", "backprop", "precision")
SIZES = ("quick", "default", "full")


def default_settings(size="default"):
    """The study's settings for a size; a ``--config`` TOML file overrides any key.

    Every experiment that tests the paper's mechanism takes its step from the loss's
    curvature (``lr = "auto"``, :mod:`pieces.curvature`), so that no finding is made by
    a step size. A start perturbation ``"ulp"`` means 2**-K of the precision (K its
    significand bits: 2**-53 in fp64).
    """
    if size not in SIZES:
        raise ValueError(f"unknown study size {size!r}")
    gd_auto = {"optimizer": "gd", "lr": "auto", "steps": 300, "record_every": 100}
    adam = {"optimizer": "adam", "lr": 1e-4, "steps": 1000, "record_every": 500, "adam_eps": 1e-7}
    s = {
        "title": "relu-pieces study",
        "seeds": 10,
        "depths": list(range(1, 13)),
        "widths": [8, 16],
        "targets": ["square", "sine:2"],
        # adam_eps = 1e-4: Adam's usual 1e-8 underflows to 0 in fp16, and fp16 Adam then
        # diverges at its first step (0/0); 1e-4 is a normal fp16 number
        "train": {"optimizer": "adam", "lr": 0.003, "steps": 2000, "n_samples": 128,
                  "schedule": "cosine", "lr_final": 0.1, "record_every": 250, "adam_eps": 1e-4},
        # constructions: sawtooth and Yarotsky nets trained on their own targets from the
        # exact weights (delta 0) and from relative perturbations delta
        # depths to 10: a depth-L construction trains on 2**(L+2)+1 points, and the
        # budget goes to seeds (the outcome counts per depth) rather than to L = 11, 12
        "construction_depths": list(range(1, 11)),
        "construction_deltas": [0.0, "ulp", 1e-6, 1e-3],
        "construction_seeds": 8,
        # GD at the stable step (the paper's setting; its step shrinks like 1/λ_max ~ 4^-L)
        # beside Adam, whose step does not: lr 1e-4 repairs the positive control
        # (sawtooth, fp64, δ = 1e-3, shallow depths); adam_eps 1e-7 is a normal or
        # subnormal number in every format of the study (1e-8 is 0 in fp16)
        "construction_train": {**gd_auto, "steps": 300, "record_every": 150},
        "construction_adam": dict(adam),
        # Theorem 3.4: one perturbed GD step from He nets at 0, 10% and 100% of a GD run,
        # and from constructions stepped toward a target not their own
        "perturbation_depths": [2, 4, 6, 8, 10, 12],
        # depths of the construction starts (default: as perturbation_depths); a depth-L
        # construction has 2**L regions to enumerate per noise draw
        "perturbation_construction_depths": None,
        "perturbation_widths": [8],
        "perturbation_targets": ["square", "sine:2"],
        "perturbation_train": {**gd_auto, "n_samples": 256},
        "perturbation_stages": [0.0, 0.1, 1.0],
        "etas": [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0],
        "noise_draws": 20,
        "perturbation_lr": "auto",
        # the positive control: the same nets and counting path with bias noise of an
        # absolute size sigma (a depth-L sawtooth loses its coordination near 2**-L)
        "control_sigmas": [1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1],
        # the whole iteration: T perturbed GD steps from He nets at init and from a
        # sawtooth stepped toward x², E[pieces] after T steps against the bound
        "iteration_steps": [1, 10, 100],
        "iteration_depths": [4, 8, 12],
        "iteration_etas": [0.0, 1e-3, 1e-1, 1.0],
        "iteration_draws": 10,
        # assumptions (A) along a GD run, over widths; (B) per layer at init and trained
        "assumption_widths": [4, 8, 16, 32, 64],
        "assumption_depths": [6],
        "assumption_stages": [0.0, 0.1, 0.5, 1.0],
        "backprop_depths": [2, 4, 8, 12, 16],
        "precisions": ["fp64", "fp32", "fp16", "bf16", "p5"],
        "precision_depths": [2, 4, 6, 8, 10, 12],
        # depths of the construction starts of the precision experiment (None: as
        # precision_depths); they train on 2**(L+2)+1 points, in emulated formats at
        # 3.5-7x the fp64 cost, so the default stops at 8
        "precision_construction_depths": [2, 4, 6, 8],
        "precision_deltas": [0.0, "ulp"],
        "precision_seeds": 10,
        "precision_construction_seeds": 4,
        "precision_construction_train": {**gd_auto, "steps": 300, "record_every": 150},
        "precision_construction_adam": dict(adam),
        # He nets of the precision experiment train half as long as those of growth: the
        # comparison is within the experiment, fp64 included
        "precision_train": {"optimizer": "adam", "lr": 0.003, "steps": 1000, "n_samples": 128,
                            "schedule": "cosine", "lr_final": 0.1, "record_every": 250, "adam_eps": 1e-4},
    }
    if size == "quick":
        s.update(seeds=3, depths=[1, 2, 3, 4], widths=[8], targets=["square"],
                 train={**s["train"], "steps": 200, "record_every": 100},
                 construction_depths=[1, 2, 3, 4], construction_deltas=[0.0, 1e-3], construction_seeds=3,
                 construction_train={**s["construction_train"], "steps": 50, "record_every": 25},
                 construction_adam={**s["construction_adam"], "steps": 300, "record_every": 150},
                 precision_construction_adam={**s["precision_construction_adam"], "steps": 100, "record_every": 50},
                 perturbation_depths=[2, 4], perturbation_targets=["square"], etas=[0.0, 1e-3, 1.0], noise_draws=5,
                 control_sigmas=[1e-6, 1e-3, 1e-1], iteration_steps=[1, 10], iteration_depths=[4],
                 iteration_etas=[0.0, 1.0], iteration_draws=3,
                 perturbation_train={**s["perturbation_train"], "steps": 50, "record_every": 50},
                 assumption_widths=[4, 8], assumption_depths=[2],
                 assumption_stages=[0.0, 1.0], backprop_depths=[2, 4],
                 precisions=["fp64", "fp16"], precision_depths=[2, 4], precision_seeds=2,
                 precision_construction_depths=[2, 4],
                 precision_train={**s["precision_train"], "steps": 200, "record_every": 100},
                 precision_construction_train={**s["precision_construction_train"], "steps": 50, "record_every": 25})
    elif size == "full":
        s.update(seeds=30, depths=list(range(1, 25)), widths=[8, 16, 32, 64],
                 targets=["square", "sine:2", "abs"], construction_depths=list(range(1, 17)),
                 construction_seeds=30,
                 perturbation_depths=list(range(2, 25, 2)), perturbation_widths=[8, 16, 32],
                 perturbation_construction_depths=list(range(2, 17, 2)),
                 etas=[0.0] + [10.0**k for k in range(-8, 1)], noise_draws=50,
                 assumption_widths=[4, 8, 16, 32, 64, 128], assumption_depths=[4, 8, 12],
                 backprop_depths=[2, 4, 8, 12, 16, 20, 24],
                 # the pK ladder: survival depth against significand bits K
                 precisions=["fp64", "fp32", "fp16", "bf16", "p4", "p6", "p8", "p10", "p12", "p14", "p16",
                             "p18", "p20", "p22", "p24"],
                 precision_depths=list(range(2, 25, 2)), precision_construction_depths=list(range(2, 17, 2)),
                 precision_seeds=30, precision_construction_seeds=10)
    return s


def _resolve_delta(delta, precision):
    """A start perturbation: a number, or ``"ulp"`` = 2**-K of ``precision``."""
    from ..precision import parse_precision

    if isinstance(delta, str):
        if delta != "ulp":
            raise ValueError(f"a start perturbation is a number >= 0 or 'ulp', got {delta!r}")
        return 2.0 ** -parse_precision(precision).bits
    return float(delta)


def construction_samples(depth):
    """Training points of a depth-L construction: 4 per piece of its target (2^(L+2) + 1
    grid points, at least 257), so that the data resolve every piece: the grid holds
    each breakpoint k/2^L of the target and three points inside each of its pieces."""
    return max(257, 2 ** (int(depth) + 2) + 1)


def _construction_tasks(exp, s, depths, deltas, precision, seeds, trains):
    """Every construction at every depth and δ, trained by each of ``trains`` (GD at the
    stable step, and a method whose step does not shrink with λ_max) on 4 points per
    piece of its target (:func:`construction_samples`)."""
    from .outcomes import tau

    tasks = []
    for train in (t for t in trains if t):
        for init in ("sawtooth", "yarotsky_square"):
            for L in depths:
                target = f"sawtooth:{2 ** (L - 1)}" if init == "sawtooth" else f"yarotsky:{L}"
                run = dict(train, n_samples=construction_samples(L))
                if train["optimizer"] == "adam":
                    # Adam's step is about lr per parameter however close to the minimum,
                    # so its lr scales with the construction's τ: a near-exact start must
                    # not be pushed beyond τ by the step size (the sawtooth takes lr)
                    run["lr"] = train["lr"] * tau(init, L) / tau("sawtooth", L)
                for d in deltas:
                    delta = _resolve_delta(d, precision)
                    # an exact start and full-batch training on a grid involve no randomness: one seed
                    tasks.append(dict(experiment=exp, init=init, target=target, width=2 if init == "sawtooth" else 3,
                                      depth=L, precision=precision, seeds=seeds if delta > 0 else seeds[:1],
                                      perturb=delta, train=run))
    return tasks


def task_id(task):
    fields = {k: v for k, v in task.items() if k != "id"}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


def short_id(task_id):
    """The 16-hex-digit id of a task in ``results.csv``, ``done.txt`` and dask keys."""
    return hashlib.sha1(task_id.encode()).hexdigest()[:16]


def _with_id(task):
    task["id"] = task_id(task)
    return task


def make_tasks(settings, experiments):
    """The list of tasks of ``experiments`` under ``settings``, in a fixed order."""
    unknown = [e for e in experiments if e not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment {unknown[0]!r}; expected some of {', '.join(EXPERIMENTS)}")
    s = settings
    seeds = list(range(int(s["seeds"])))
    tasks = []
    for exp in experiments:
        if exp == "growth":
            for target in s["targets"]:
                for w in s["widths"]:
                    for L in s["depths"]:
                        tasks.append(dict(experiment=exp, init="he", target=target, width=w, depth=L,
                                          precision="fp64", seeds=seeds, train=s["train"]))
        elif exp == "constructions":
            tasks += _construction_tasks(exp, s, s["construction_depths"], s["construction_deltas"], "fp64",
                                         list(range(int(s["construction_seeds"]))),
                                         [s["construction_train"], s.get("construction_adam")])
        elif exp == "perturbation":
            for target in s["perturbation_targets"]:
                for w in s["perturbation_widths"]:
                    for L in s["perturbation_depths"]:
                        tasks.append(dict(experiment=exp, init="he", target=target, width=w, depth=L,
                                          precision="fp64", seeds=seeds, etas=s["etas"], draws=s["noise_draws"],
                                          lr=s["perturbation_lr"], stages=s["perturbation_stages"],
                                          train=s["perturbation_train"], sigmas=s["control_sigmas"]))
            for init in ("sawtooth", "yarotsky_square"):
                for L in s.get("perturbation_construction_depths") or s["perturbation_depths"]:
                    # an exact construction stepped toward a target that is not its own
                    tasks.append(dict(experiment=exp, init=init, target="square" if init == "sawtooth" else "sine:2",
                                      width=2 if init == "sawtooth" else 3, depth=L, precision="fp64", seeds=[0],
                                      etas=s["etas"], draws=s["noise_draws"], lr=s["perturbation_lr"],
                                      sigmas=s["control_sigmas"]))
            for init, target in (("he", "square"), ("sawtooth", "square")):
                for L in s["iteration_depths"]:
                    tasks.append(dict(experiment=exp, kind="iteration", init=init, target=target,
                                      width=s["perturbation_widths"][0] if init == "he" else 2, depth=L,
                                      precision="fp64", seeds=seeds[:3] if init == "he" else [0],
                                      etas=s["iteration_etas"], draws=s["iteration_draws"], lr=s["perturbation_lr"],
                                      iteration_steps=s["iteration_steps"]))
        elif exp == "assumptions":
            for w in s["assumption_widths"]:
                for L in s["assumption_depths"]:
                    tasks.append(dict(experiment=exp, init="he", target="square", width=w, depth=L,
                                      precision="fp64", seeds=seeds, stages=s["assumption_stages"],
                                      train=s["perturbation_train"]))
        elif exp == "backprop":
            for init in ("he", "sawtooth"):
                for L in s["backprop_depths"]:
                    tasks.append(dict(experiment=exp, init=init, target="square", width=8 if init == "he" else 2,
                                      depth=L, precisions=s["precisions"], seeds=seeds))
        elif exp == "precision":
            pseeds = list(range(int(s["precision_seeds"])))
            cdepths = s.get("precision_construction_depths") or s["precision_depths"]
            for p in s["precisions"]:
                for L in s["precision_depths"]:
                    tasks.append(dict(experiment=exp, init="he", target=s["targets"][0], width=s["widths"][0],
                                      depth=L, precision=p, seeds=pseeds,
                                      train=s.get("precision_train", s["train"])))
                cseeds = list(range(int(s.get("precision_construction_seeds", s["precision_seeds"]))))
                tasks += _construction_tasks(exp, s, cdepths, s["precision_deltas"], p, cseeds,
                                             [s["precision_construction_train"], s.get("precision_construction_adam")])
    return [_with_id(t) for t in tasks]
