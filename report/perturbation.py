"""Theorem 3.4: one perturbed GD step against η, its control (η = 0), its positive
control and the whole iteration (:mod:`report.controls`), and the crossing bound."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .stats import fmt, fmt_ci, log_slope, mean_ci
from .controls import control_findings, iteration_findings
from .growth import fit_growth

__all__ = ["perturbation_table", "perturbation_findings"]


def perturbation_table(data):
    """Per net (init, stage, depth, width, seed, eta): the perturbation rows, wide."""
    df = data.select(experiment="perturbation")
    if not len(df):
        return pd.DataFrame()
    keys = ["init", "target", "stage", "width", "depth", "seed"]
    df = df[(df["stage"] != "iteration") & ~df["metric"].str.startswith("control_")]
    after = df[df["eta"].notna()].pivot_table(index=keys + ["eta"], columns="metric", values="value").reset_index()
    before = df[df["metric"].isin(["pieces_before", "regions_before", "lr"])].pivot_table(
        index=keys, columns="metric", values="value").reset_index()
    return after.merge(before, on=keys, how="left")


def perturbation_findings(data, out, disagree):
    t = perturbation_table(data)
    if not len(t):
        return
    sents, laws, per_eta = [], [], []
    t["net"] = t["init"] + "|" + t["target"] + "|" + t["stage"] + "|" + t["depth"].astype(str) + "|" + t["seed"].astype(str)
    # the control: eta = 0
    z = t[t["eta"] == 0]
    cons = z[z["init"] != "he"]
    if len(cons):
        kept = float((cons["pieces_mean"] / cons["pieces_before"]).min())
        sents.append(f"Control (η = 0): the unperturbed step at lr = auto keeps at least {fmt(100 * kept)}% of a "
                     f"construction's pieces at every depth ({len(cons)} nets).")
        if kept < 0.99:
            disagree.append(f"The unperturbed step (η = 0) keeps only {fmt(100 * kept)}% of a construction's pieces: "
                            "the step, not the noise, moves the count.")
    he = z[z["init"] == "he"]
    if len(he):
        ch = (he["pieces_mean"] - he["pieces_before"]).abs()
        sents.append(f"For He nets the unperturbed step changes the piece count of {int((ch > 0).sum())} of "
                     f"{len(he)} nets (median |change| {fmt(float(ch.median()))}, max {fmt(float(ch.max()))}).")
    for (init, stage), sub in t.groupby(["init", "stage"], sort=True):
        pos = sub[sub["eta"] > 0]
        b, lo, hi, n = log_slope(pos["eta"], pos["pieces_mean"], groups=pos["net"])
        law = {"init": init, "stage": stage, "slope": b, "lo": lo, "hi": hi, "n": n}
        laws.append(law)
        for eta, s in sub.groupby("eta", sort=True):
            m = mean_ci(s["pieces_mean"])
            rec = {"init": init, "stage": stage, "eta": float(eta), "mean": m[0], "lo": m[1], "hi": m[2], "n": m[3]}
            if s["depth"].nunique() >= 3 and len(s) >= 10:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        f = fit_growth(s["depth"].to_numpy(float), np.round(s["pieces_mean"].to_numpy(float)))
                        rec.update(verdict=f.verdict, slope=f.slope, rate=f.rate)
                    except ValueError:
                        pass
            per_eta.append(rec)
    fin = [q for q in laws if np.isfinite(q["slope"])]
    if fin:
        sents.append("Log–log slope of E[pieces] in η (η > 0; OLS, cluster-robust by net): " + "; ".join(
            f"{q['init']} {q['stage']} {fmt_ci(q['slope'], q['lo'], q['hi'])} (n = {q['n']})" for q in fin) + ".")
        moving = [q for q in fin if not (q["lo"] <= 0 <= q["hi"])]
        widest = max(max(abs(q["lo"]), abs(q["hi"])) for q in fin)
        sents.append((f"{len(moving)} of {len(fin)} CIs exclude 0" if moving else "Every CI includes 0")
                     + (f"; all lie within ±{fmt(widest)}, so a 1/η law (slope −1) is excluded for every start."
                        if widest < 1 else "."))
    ctrl_sents, ctrl = control_findings(data, laws, log_slope, fmt, fmt_ci)
    sents += ctrl_sents
    if ctrl is not None and not ctrl["detected"]:
        sents.append("Since the positive control did not detect its effect, no absence of an η effect is claimed.")
        disagree.append("The perturbation law's positive control (absolute bias noise) did not detect an effect on "
                        "E[pieces]: the η experiment's flat slopes cannot be read as 'no η effect'.")
    iter_sents, iteration = iteration_findings(data, log_slope, fmt, fmt_ci, disagree)
    sents += iter_sents
    verdicts = {}
    for r in per_eta:
        if "verdict" in r and r["init"] == "he":
            verdicts.setdefault(r["verdict"], []).append(f"{r['stage']} η={fmt(r['eta'])}")
    for v, where in sorted(verdicts.items()):
        sents.append(f"E[pieces] against depth (He, per η and stage, fit_growth): {v} in {len(where)} of "
                     f"{sum(len(w) for w in verdicts.values())} fits.")
    # the bound
    ratio = (t["regions_mean"] / t["bound_mean"]).replace([np.inf, -np.inf], np.nan)
    viol = t[(t["excess_mean"] > 4 * t["excess_se"]) & (t["excess_mean"] > 0)]
    sents.append(f"Measured mean regions / per-net crossing bound: median {fmt(float(ratio.median()))}, "
                 f"max {fmt(float(ratio.max()))} over {int(ratio.notna().sum())} net-η pairs; "
                 f"{len(viol)} exceed the bound by more than 4 standard errors.")
    for _, v in viol.head(10).iterrows():
        disagree.append(f"Crossing bound exceeded: {v['init']} {v['stage']} L={int(v['depth'])} seed {int(v['seed'])} "
                        f"η={fmt(v['eta'])}: regions {fmt(v['regions_mean'])} vs bound {fmt(v['bound_mean'])} "
                        f"(excess {fmt(v['excess_mean'])} ± {fmt(v['excess_se'])}).")
    out["perturbation"] = {"title": "Theorem 3.4: one perturbed GD step", "plot": "perturbation",
                           "test": "per-η means with t CIs over nets; log–log OLS slope, cluster-robust by net; "
                                   "fit_growth in depth per η; bound exceeded at > 4 SE",
                           "text": " ".join(sents), "laws": laws, "per_eta": per_eta,
                           "positive_control": ctrl, "iteration": iteration,
                           "bound_ratio_median": float(ratio.median()), "bound_violations": int(len(viol))}
