"""Outcomes of the trained constructions: one row per run, per-depth counts, the
positive control, absorbed updates, and their sentences.

The ``outcome`` metric of ``results.csv`` is an index into :data:`OUTCOMES` (the same
tuple as ``pieces.study.OUTCOMES``; a test keeps them equal, since ``report`` reads
run data and imports no experiment code).

Examples
--------
>>> OUTCOMES.index("frozen")
2
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import fmt

__all__ = ["OUTCOMES", "SURVIVING", "outcome_runs", "depth_table", "positive_control", "outcome_findings"]

OUTCOMES = ("kept", "repaired", "frozen", "broken", "collapsed")
SURVIVING = ("kept", "repaired")

_RUN_KEYS = ["experiment", "init", "precision", "optimizer", "delta", "depth", "seed"]
_RUN_METRICS = ("outcome", "tau", "loss_ratio", "absorbed_fraction", "lr", "lambda_max", "steps_done",
                "pieces_fraction", "lr_underflow", "diverged")


def outcome_runs(data):
    """One row per trained construction run: its outcome (a name), the sup distances
    to the exact construction at the start and the end, and the run's step, curvature,
    budget, loss ratio and absorbed fraction."""
    df = data.results
    df = df[df["experiment"].isin(["constructions", "precision"]) & (df["init"] != "he")]
    tr = df[(df["stage"] == "trained") & df["metric"].isin(_RUN_METRICS)]
    if not len(tr) or "outcome" not in set(tr["metric"]):
        return pd.DataFrame()
    wide = tr.pivot_table(index=_RUN_KEYS, columns="metric", values="value", aggfunc="first", dropna=False)
    wide = wide.reindex(columns=list(_RUN_METRICS))
    err = df[df["metric"] == "sup_error_exact"].pivot_table(index=_RUN_KEYS, columns="stage", values="value",
                                                             aggfunc="first")
    wide["err_start"] = err.get("init")
    wide["err_end"] = err.get("trained")
    half = df[(df["metric"] == "step_half_ulp")].pivot_table(index=_RUN_KEYS, values="value", aggfunc="first")
    wide["step_half_ulp"] = half["value"] if len(half) else np.nan
    wide = wide.reset_index()
    wide = wide[wide["outcome"].notna()]
    wide["outcome"] = [OUTCOMES[int(v)] for v in wide["outcome"]]
    return wide


def depth_table(runs):
    """Per (experiment, init, precision, optimizer, δ, depth): the runs, the count of
    each outcome, and the medians of lr, λ_max, steps, loss ratio and absorbed fraction."""
    if not len(runs):
        return []
    out = []
    for key, s in runs.groupby(["experiment", "init", "precision", "optimizer", "delta", "depth"], sort=True):
        counts = s["outcome"].value_counts()
        out.append({**dict(zip(["experiment", "init", "precision", "optimizer", "delta", "depth"], key)),
                    "depth": int(key[-1]), "n": len(s), **{o: int(counts.get(o, 0)) for o in OUTCOMES},
                    "lr": float(s["lr"].median()), "lambda_max": float(s["lambda_max"].median()),
                    "steps": float(s["steps_done"].median()), "loss_ratio": float(s["loss_ratio"].median()),
                    "absorbed": float(s["absorbed_fraction"].median()),
                    "step_half_ulp": float(s["step_half_ulp"].median()),
                    "err_start": float(s["err_start"].median()), "err_end": float(s["err_end"].median())})
    return out


def positive_control(runs):
    """The positive control of the constructions: the sawtooth in fp64 from the largest
    δ, per optimizer. Per depth where the start is beyond τ in at least half the
    seeds, the fraction repaired; the control passes where some optimizer repairs at
    least half of the seeds at some such depth (training demonstrably can repair)."""
    s = runs[(runs["experiment"] == "constructions") & (runs["init"] == "sawtooth") & (runs["precision"] == "fp64")]
    if not len(s) or not (s["delta"] > 0).any():
        return None
    s = s[s["delta"] == s["delta"].max()]
    per = []
    for (opt, L), g in s.groupby(["optimizer", "depth"], sort=True):
        off = g["err_start"] > g["tau"]
        if off.mean() < 0.5:
            continue
        rep = float((g["outcome"] == "repaired").mean())
        per.append({"optimizer": opt, "depth": int(L), "repaired": rep, "n": len(g)})
    passing = [p for p in per if p["repaired"] >= 0.5]
    best = max(passing, key=lambda p: (p["depth"], p["repaired"])) if passing else None
    return {"delta": float(s["delta"].max()), "depths": per, "passed": bool(passing), "best": best}


def _fmt(v):
    return fmt(v)


def _counts_text(s):
    c = s["outcome"].value_counts()
    return ", ".join(f"{int(c.get(o, 0))} {o}" for o in OUTCOMES if c.get(o, 0))


def _depths(ls):
    return ", ".join(str(int(L)) for L in sorted(ls))


def outcome_findings(data, out, disagree):
    """The outcomes' paragraph (``out["outcomes"]``) and its disagreements: the
    positive control, outcome counts per start, frozen and broken runs, and the
    absorbed updates per precision."""
    runs = outcome_runs(data)
    if not len(runs):
        return
    sents = []
    ctrl = positive_control(runs)
    if ctrl is not None:
        if ctrl["passed"]:
            b = ctrl["best"]
            sents.append(f"Positive control: from δ = {_fmt(ctrl['delta'])} in fp64, {b['optimizer']} repairs "
                         f"{_fmt(100 * b['repaired'])}% of the sawtooth(L = {b['depth']}) starts that were beyond τ "
                         f"(n = {b['n']}): training can repair a construction, so a run that is not repaired says so "
                         "about the run, not about the experiment.")
        else:
            sents.append(f"Positive control failed: no optimizer repairs half the sawtooth starts from "
                         f"δ = {_fmt(ctrl['delta'])} in fp64 at any depth.")
            disagree.append("The positive control failed: no optimizer repaired at least half of the fp64 sawtooth "
                            f"starts from δ = {_fmt(ctrl['delta'])} at any depth, so 'not repaired' cannot be read "
                            "as a finding about round-off.")
    groups = []
    for key, s in runs.groupby(["experiment", "init", "precision", "optimizer", "delta"], sort=True):
        exp, init, prec, opt, delta = key
        counts = {o: int((s["outcome"] == o).sum()) for o in OUTCOMES}
        surv = s["outcome"].isin(SURVIVING)
        deepest = int(s[surv]["depth"].max()) if surv.any() else 0
        frozen_depths = [int(L) for L, g in s.groupby("depth") if (g["outcome"] == "frozen").mean() > 0.5]
        broken = s[s["outcome"] == "broken"]
        groups.append({"experiment": exp, "init": init, "precision": prec, "optimizer": opt, "delta": float(delta),
                       "n": len(s), **counts, "deepest_surviving": deepest, "frozen_depths": frozen_depths})
        where = f"{init} in {prec} by {opt} from δ = {_fmt(delta)} ({exp})"
        if frozen_depths:
            disagree.append(f"Mostly frozen: {where} at depths {_depths(frozen_depths)}; training could not move "
                            "the net there, so survival is undecidable at those depths.")
        if len(broken):
            disagree.append(f"Broken: {where}: {len(broken)} runs keep ≥ 90% of their pieces but end beyond τ of "
                            f"the construction (depths {_depths(broken['depth'].unique())}; median sup distance "
                            f"{_fmt(float(broken['err_end'].median()))}).")
    tot = runs["outcome"].value_counts()
    sents.append(f"Outcomes of all {len(runs)} trained construction runs: "
                 + ", ".join(f"{int(tot.get(o, 0))} {o}" for o in OUTCOMES)
                 + "; survival (L*) counts kept and repaired only.")
    fz = runs[runs["outcome"] == "frozen"]
    if len(fz):
        by = fz.groupby(["experiment", "init", "precision", "optimizer"]).size()
        sents.append("Frozen runs (not survival): " + "; ".join(
            f"{n} {init} in {prec} by {opt} ({exp})" for (exp, init, prec, opt), n in by.items()) + ".")
    absorbed_gd = _absorbed_gd(runs)
    sents += [r["text"] for r in absorbed_gd]
    out["outcomes"] = {"title": "Outcomes of the trained constructions", "plot": "outcomes",
                       "test": "outcome per run from the exact sup distance to the construction (τ: 1/16 for the "
                               "sawtooth, 2^(-2m-2) for Yarotsky); positive control: ≥ half of the fp64 sawtooth "
                               "starts beyond τ repaired",
                       "text": " ".join(sents), "groups": groups, "positive_control": ctrl,
                       "depth_table": depth_table(runs), "absorbed": _absorbed_table(data),
                       "absorbed_gd": absorbed_gd}


def _absorbed_table(data):
    """Median absorbed fraction and first step / half-ulp per (experiment, init,
    precision, optimizer, depth), every training run."""
    df = data.select(metric="absorbed_fraction", stage="trained")
    half = data.select(metric="step_half_ulp")
    if not len(df):
        return []
    keys = ["experiment", "init", "precision", "optimizer", "depth"]
    a = df.groupby(keys)["value"].median().rename("absorbed")
    h = half.groupby(keys)["value"].median().rename("step_half_ulp") if len(half) else None
    t = pd.concat([a, h], axis=1) if h is not None else a.to_frame()
    t = t.reset_index()
    return [{k: (int(v) if k == "depth" else v) for k, v in r.items()} for r in t.to_dict("records")]


def _absorbed_gd(runs):
    """Per precision, GD at the stable step: absorbed fraction and first step / half
    ulp at the deepest depth, and the depths where the format cannot move the net."""
    recs = []
    gd = runs[runs["optimizer"] == "gd"]
    if (gd["experiment"] == "precision").any():  # the formats side by side, at the same depths
        gd = gd[gd["experiment"] == "precision"]
    for prec, s in gd.groupby("precision", sort=True):
        under = sorted(int(L) for L in s[s["lr_underflow"] > 0]["depth"].unique())
        stuck = sorted(int(L) for L, g in s.groupby("depth") if (g["absorbed_fraction"] >= 0.99).mean() > 0.5)
        stuck = [L for L in stuck if L not in under]
        deep = int(s["depth"].max())
        d = s[s["depth"] == deep]
        part = (f"GD at the stable step in {prec}: median absorbed fraction {_fmt(float(d['absorbed_fraction'].median()))}"
                f" and first step {_fmt(float(d['step_half_ulp'].median()))}× half an ulp at L = {deep}")
        if under or stuck:
            part += ("; the format cannot move the construction where "
                     + ("the step underflows to 0 (L = " + _depths(under) + ")" if under else "")
                     + (" and " if under and stuck else "")
                     + ("every update is absorbed (L = " + _depths(stuck) + ")" if stuck else "")
                     + ": a finding about round-off, since a larger step is unstable (it is 1/λ_max)")
        recs.append({"precision": prec, "depth": deep, "absorbed": float(d["absorbed_fraction"].median()),
                     "step_half_ulp": float(d["step_half_ulp"].median()), "underflow_depths": under,
                     "absorbed_depths": stuck, "text": part + "."})
    return recs
