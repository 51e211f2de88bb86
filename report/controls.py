"""The perturbation law's positive control and the whole perturbed iteration.

- **Positive control**: the perturbation experiment's nets, the same step and counting
  path, with bias noise of an absolute size σ (metrics ``control_*``, σ in the ``eta``
  column). Its log–log slope of E[pieces] in σ must be detectably non-zero, or the η
  experiment's "no η effect" is no finding.
- **Detectable slope**: the smallest |slope| in η that the η experiment would detect at
  the 5% level with 80% power, from its CI: (z_0.975 + z_0.8) · SE.
- **Iteration**: T perturbed GD steps (metrics ``iter_*``, T in ``step``), E[pieces]
  against T and η, and the crossing bound of step T.

Examples
--------
>>> round(detectable_slope(-0.1, 0.1), 3)     # a CI of ±0.1 detects |slope| >= 0.143
0.143
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["control_table", "iteration_table", "detectable_slope", "control_findings", "iteration_findings"]

_KEYS = ["init", "target", "stage", "width", "depth", "seed"]


def detectable_slope(lo, hi, power=0.8):
    """The smallest |slope| a two-sided 5% test detects with ``power``, given a 95% CI."""
    se = (hi - lo) / (2 * stats.norm.ppf(0.975))
    return float((stats.norm.ppf(0.975) + stats.norm.ppf(power)) * se)


def control_table(data):
    """Per net and σ: the positive control's means, wide, with the net's pieces before
    the step and its noise / range ratio (at η = 1)."""
    df = data.select(experiment="perturbation")
    if not len(df):
        return pd.DataFrame()
    c = df[df["metric"].str.startswith("control_")]
    if not len(c):
        return pd.DataFrame()
    wide = c.assign(metric=c["metric"].str.removeprefix("control_")).pivot_table(
        index=_KEYS + ["eta"], columns="metric", values="value").reset_index().rename(columns={"eta": "sigma"})
    before = df[df["metric"].isin(["pieces_before", "noise_to_range"])].pivot_table(
        index=_KEYS, columns="metric", values="value").reset_index()
    return wide.merge(before, on=_KEYS, how="left")


def iteration_table(data):
    """Per net, η and T: the iteration's means, wide."""
    df = data.select(experiment="perturbation", stage="iteration")
    if not len(df):
        return pd.DataFrame()
    df = df.assign(metric=df["metric"].str.removeprefix("iter_"))
    wide = df.pivot_table(index=_KEYS + ["eta", "step"], columns="metric", values="value").reset_index()
    before = data.select(experiment="perturbation", stage="start")
    before = before[before["metric"] == "pieces_before"][["init", "depth", "seed", "value"]]
    before = before.rename(columns={"value": "pieces_before"}).drop_duplicates(["init", "depth", "seed"])
    return wide.merge(before, on=["init", "depth", "seed"], how="left")


def control_findings(data, laws, log_slope, fmt, fmt_ci):
    """``(sentences, positive_control)`` of the positive control, given the η
    experiment's fitted ``laws`` (dicts with slope, lo, hi)."""
    t = control_table(data)
    if not len(t):
        return [], None
    t = t.assign(net=t["init"] + "|" + t["stage"] + "|" + t["depth"].astype(str) + "|" + t["seed"].astype(str))
    b, lo, hi, n = log_slope(t["sigma"], t["pieces_mean"], groups=t["net"])
    detected = bool(np.isfinite(lo) and (hi < 0 or lo > 0))
    per_init = {}
    for init, s in t.groupby("init", sort=True):
        bi, loi, hii, ni = log_slope(s["sigma"], s["pieces_mean"], groups=s["net"])
        top = s[s["sigma"] == s["sigma"].max()]
        per_init[init] = {"slope": bi, "ci": [loi, hii], "n": ni,
                          "ratio_at_max_sigma": float((top["pieces_mean"] / top["pieces_before"]).median())}
    fin = [q for q in laws if np.isfinite(q["lo"])]
    mde = max((detectable_slope(q["lo"], q["hi"]) for q in fin), default=float("nan"))
    ntr = float(t.drop_duplicates("net")["noise_to_range"].median())
    ctrl = {"detected": detected, "slope": b, "ci": [lo, hi], "n": n, "sigmas": sorted(t["sigma"].unique().tolist()),
            "per_init": per_init, "detectable_eta_slope": mde, "noise_to_range_eta1": ntr}
    sents = [f"Positive control (bias noise of absolute size σ = {fmt(min(ctrl['sigmas']))}…{fmt(max(ctrl['sigmas']))}, "
             f"the same nets and counting path): log–log slope of E[pieces] in σ {fmt_ci(b, lo, hi)} (n = {n}), "
             + ("detected" if detected else "not detected") + "; "
             + "; ".join(f"{k}: {fmt_ci(v['slope'], *v['ci'])}, E[pieces] at the largest σ "
                         f"{fmt(v['ratio_at_max_sigma'])}× its count before" for k, v in per_init.items()) + "."]
    if np.isfinite(mde):
        sents.append(f"The η experiment would detect a log–log slope of magnitude {fmt(mde)} or more (5% level, 80% "
                     "power, its widest CI).")
    if np.isfinite(ntr):
        sents.append(f"The relative noise is small against the preactivations: at η = 1 the bias noise's width is "
                     f"a median {fmt(ntr)} of a neuron's range on D (2|Δb_n| / (max a_n − min a_n)), and η times "
                     "that at level η.")
    return sents, ctrl


def iteration_findings(data, log_slope, fmt, fmt_ci, disagree):
    """``(sentences, record)`` of the whole perturbed iteration."""
    t = iteration_table(data)
    if not len(t):
        return [], None
    T = sorted(int(v) for v in t["step"].unique())
    sents, rows = [], []
    for init, s in t.groupby("init", sort=True):
        last = s[s["step"] == T[-1]]
        first = s[s["step"] == T[0]]
        ratio = (last.set_index(["depth", "seed", "eta"])["pieces_mean"]
                 / first.set_index(["depth", "seed", "eta"])["pieces_mean"])
        pos = last[last["eta"] > 0]
        net = pos["depth"].astype(str) + "|" + pos["seed"].astype(str)
        b, lo, hi, n = log_slope(pos["eta"], pos["pieces_mean"], groups=net)
        rows.append({"init": init, "T": T, "ratio_last_first": float(ratio.median()), "eta_slope": b,
                     "eta_ci": [lo, hi], "n": n})
        sents.append(f"Whole iteration, {init}: after T = {T[-1]} perturbed steps E[pieces] is a median "
                     f"{fmt(float(ratio.median()))}× its value after T = {T[0]}; its log–log slope in η at T = {T[-1]} "
                     f"is {fmt_ci(b, lo, hi)} (n = {n}).")
    viol = t[(t["excess_mean"] > 4 * t["excess_se"]) & (t["excess_mean"] > 0)]
    sents.append(f"The crossing bound of step T holds along the iteration in {len(t) - len(viol)} of {len(t)} "
                 "(net, η, T) cells (exceeded by more than 4 SE in the rest).")
    for _, v in viol.head(10).iterrows():
        disagree.append(f"Crossing bound exceeded along the iteration: {v['init']} L={int(v['depth'])} seed "
                        f"{int(v['seed'])} η={fmt(v['eta'])} T={int(v['step'])}: regions {fmt(v['regions_mean'])} vs "
                        f"bound {fmt(v['bound_mean'])}.")
    return sents, {"rows": rows, "violations": int(len(viol)), "steps": T}
