"""The study's grids: which tasks each experiment runs, for --quick, default and --full.

A task is a plain dict (JSON-able); its ``id`` is a stable string of its fields, so a
re-run finds the tasks it has finished.
"""

from __future__ import annotations

import json

__all__ = ["EXPERIMENTS", "SIZES", "default_settings", "make_tasks", "task_id"]

EXPERIMENTS = ("growth", "constructions", "perturbation", "assumptions", "backprop", "precision")
SIZES = ("quick", "default", "full")


def default_settings(size="default"):
    """The study's settings for a size; a ``--config`` TOML file overrides any key."""
    if size not in SIZES:
        raise ValueError(f"unknown study size {size!r}")
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
        "construction_depths": list(range(1, 13)),
        "construction_perturb": 1e-3,
        "construction_train": {"optimizer": "gd", "lr": 0.01, "steps": 500, "record_every": 100},
        "perturbation_depths": [2, 4, 6, 8, 10, 12],
        "perturbation_widths": [8],
        "etas": [0.01, 0.1, 1.0],
        "perturbation_lr": 0.05,
        "backprop_depths": [2, 4, 8, 12, 16],
        "precisions": ["fp32", "fp16", "bf16", "p8"],
        "precision_depths": [2, 4, 6, 8, 10, 12],
        # depths of the sawtooth starts of the precision experiment (default: as
        # precision_depths); they train on 2**(L+1)+1 points, so the full grid stops at 16
        "precision_construction_depths": None,
        "precision_seeds": 5,
    }
    if size == "quick":
        s.update(seeds=3, depths=[1, 2, 3, 4], widths=[8], targets=["square"],
                 train={**s["train"], "steps": 200, "record_every": 100},
                 construction_depths=[1, 2, 3, 4], construction_train={**s["construction_train"], "steps": 50, "record_every": 25},
                 perturbation_depths=[2, 4], etas=[0.1], backprop_depths=[2, 4],
                 precisions=["fp32", "fp16"], precision_depths=[2, 4], precision_seeds=2)
    elif size == "full":
        s.update(seeds=30, depths=list(range(1, 25)), widths=[8, 16, 32, 64],
                 targets=["square", "sine:2", "abs"], construction_depths=list(range(1, 19)),
                 perturbation_depths=list(range(2, 25, 2)), perturbation_widths=[8, 16, 32],
                 backprop_depths=[2, 4, 8, 12, 16, 20, 24],
                 precisions=["fp32", "fp16", "bf16", "p4", "p8", "p12", "p16", "p20"],
                 precision_depths=list(range(2, 25, 2)), precision_construction_depths=list(range(2, 17, 2)),
                 precision_seeds=30)
    return s


def task_id(task):
    fields = {k: v for k, v in task.items() if k != "id"}
    return json.dumps(fields, sort_keys=True, separators=(",", ":"))


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
            for init in ("sawtooth", "yarotsky_square"):
                for L in s["construction_depths"]:
                    target = f"sawtooth:{2 ** (L - 1)}" if init == "sawtooth" else f"yarotsky:{L}"
                    tasks.append(dict(experiment=exp, init=init, target=target, width=2 if init == "sawtooth" else 3,
                                      depth=L, precision="fp64", seeds=seeds, perturb=s["construction_perturb"],
                                      train=s["construction_train"]))
        elif exp == "perturbation":
            for init in ("he", "sawtooth"):
                widths = s["perturbation_widths"] if init == "he" else [2]
                for w in widths:
                    for L in s["perturbation_depths"]:
                        tasks.append(dict(experiment=exp, init=init, target="square", width=w, depth=L,
                                          precision="fp64", seeds=seeds, etas=s["etas"], lr=s["perturbation_lr"]))
        elif exp == "assumptions":
            for w in s["perturbation_widths"]:
                for L in s["perturbation_depths"]:
                    tasks.append(dict(experiment=exp, init="he", target="square", width=w, depth=L,
                                      precision="fp64", seeds=seeds, lr=s["perturbation_lr"]))
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
                                      depth=L, precision=p, seeds=pseeds, train=s["train"]))
                    if L not in cdepths:
                        continue
                    tasks.append(dict(experiment=exp, init="sawtooth", target=f"sawtooth:{2 ** (L - 1)}", width=2,
                                      depth=L, precision=p, seeds=pseeds, perturb=s["construction_perturb"],
                                      train=s["construction_train"]))
    return [_with_id(t) for t in tasks]
