"""Survival depth L* of the trained constructions, and the fp64 control of the exact
starts (the survival paragraph of the findings)."""

from __future__ import annotations

import math

import numpy as np
import statsmodels.api as sm
from scipy import stats

from .stats import delta_label, fmt, fmt_ci, precision_bits

__all__ = ["survival_table", "lstar_text", "survival_findings"]


def survival_table(data):
    """One row per (experiment, init, precision, optimizer, delta): L* per seed, its median and
    95% CI (order statistics), censoring, and the grid's depths."""
    df = data.select(metric="survived")
    if not len(df):
        return []
    und = data.select(metric="lr_underflow")
    rows = []
    df = df.assign(optimizer=df["optimizer"].fillna("") if "optimizer" in df else "")
    for (exp, init, prec, opt, delta), sub in df.groupby(["experiment", "init", "precision", "optimizer", "delta"],
                                                         sort=True):
        depths = sorted(int(d) for d in sub["depth"].unique())
        lmax = depths[-1]
        per_seed = []
        for seed, s in sub.groupby("seed"):
            surv = dict(zip(s["depth"].astype(int), s["value"] > 0))
            Ls = 0
            for L in depths:
                if not surv.get(L, False):
                    break
                Ls = L
            per_seed.append((int(seed), Ls, Ls == lmax))
        lstar = np.array([p[1] for p in per_seed], float)
        censored = np.array([p[2] for p in per_seed])
        n = lstar.size
        med = float(np.median(lstar))
        srt = np.sort(lstar)
        # distribution-free CI of the median: order statistics (binomial, >= 95%)
        if n >= 6:
            lo_k = int(stats.binom.ppf(0.025, n, 0.5))
            hi_k = n - lo_k - 1
            lo_k = max(lo_k - 1, 0)
            lo, hi = float(srt[lo_k]), float(srt[min(hi_k + 1, n - 1)])
        else:
            lo, hi = float(srt[0]), float(srt[-1])
        u = und[(und["experiment"] == exp) & (und["init"] == init) & (und["precision"] == prec)]
        u = u[np.isclose(u["delta"].astype(float), float(delta))]
        rows.append({
            "experiment": exp, "init": init, "precision": prec, "optimizer": opt, "bits": precision_bits(prec),
            "delta": float(delta), "delta_label": delta_label(delta), "n": n, "depths": depths,
            "lstar": lstar.tolist(), "censored": censored.tolist(), "median": med, "lo": lo, "hi": hi,
            "median_censored": bool(med >= lmax and censored[lstar >= med].any()),
            "hi_censored": bool(hi >= lmax), "lmax": lmax,
            "underflow_depths": sorted(int(d) for d in u[u["value"] > 0]["depth"].unique()),
        })
    return rows


def lstar_text(r):
    """"L* = 7 [6, 8]", with "> Lmax" where censored."""
    med = f"> {r['lmax']}" if r["median_censored"] else fmt(r["median"])
    hi = f"> {r['lmax']}" if r["hi_censored"] else fmt(r["hi"])
    return f"{med} [{fmt(r['lo'])}, {hi}]"


def _lstar_vs_bits(surv, init, delta_kind):
    """OLS of per-seed L* on K over the precisions of the precision experiment (delta
    'ulp': 2**-K, or 0); censored L* enter at the grid's deepest depth (a lower bound)."""
    xs, ys, cens = [], [], 0
    for r in surv:
        if r["experiment"] != "precision" or r["init"] != init or r["bits"] is None or r["optimizer"] != "gd":
            continue
        is_ulp = r["delta"] > 0 and math.isclose(r["delta"], 2.0 ** -r["bits"])
        if (delta_kind == "ulp") != is_ulp:
            continue
        xs += [r["bits"]] * r["n"]
        ys += r["lstar"]
        cens += int(sum(r["censored"]))
    if len(set(xs)) < 3:
        return None
    X = sm.add_constant(np.asarray(xs, float))
    res = sm.OLS(np.asarray(ys, float), X).fit()
    lo, hi = res.conf_int()[1]
    return {"init": init, "delta": delta_kind, "a": float(res.params[0]), "b": float(res.params[1]),
            "b_lo": float(lo), "b_hi": float(hi), "n": len(xs), "n_precisions": len(set(xs)), "censored": cens,
            "resid": dict(zip(map(int, xs), (np.asarray(ys) - res.fittedvalues).tolist()))}


def _control_sentence(data, r, disagree):
    """The fp64 control of one exact construction, depth by depth: where training left
    every parameter unchanged its exact count must be 2^L (else the control failed);
    where round-off moved them, the count is what it is, and any change is reported."""
    sel = dict(experiment="constructions", init=r["init"], stage="trained")
    pieces = data.select(metric="pieces", **sel)
    pieces = pieces[pieces["delta"] == 0]
    moved = data.select(metric="max_parameter_change", **sel)
    moved = moved[moved["delta"] == 0]
    loss = data.select(metric="loss", **sel)
    max_loss = float(loss[loss["delta"] == 0]["value"].max()) if len(loss) else float("nan")
    by_depth = {}
    for _, row in pieces.iterrows():
        by_depth.setdefault(int(row["depth"]), []).append(float(row["value"]))
    change = {}
    for _, row in moved.iterrows():
        change[int(row["depth"])] = max(change.get(int(row["depth"]), 0.0), float(row["value"]))
    still = [L for L in sorted(by_depth) if change.get(L, 0.0) == 0.0]
    stirred = [L for L in sorted(by_depth) if change.get(L, 0.0) != 0.0]
    still_exact = all(v == 2.0**L for L in still for v in by_depth[L])
    off = [L for L in stirred if any(v != 2.0**L for v in by_depth[L])]
    head = f"Control: the exact {r['init']} trained in fp64 on its own target"
    if still_exact and not off:
        text = (f"{head} keeps exactly 2^L pieces at every depth up to {r['lmax']}; its largest parameter change is "
                f"{fmt(max(change.values(), default=0.0))}")
    else:
        parts = []
        if still:
            parts.append(f"where training left every parameter unchanged (depths {_depths(still)}) it "
                         + ("keeps exactly 2^L pieces" if still_exact else "does not keep exactly 2^L pieces"))
        if off:
            counts = "; ".join(f"L = {L}: {fmt(max(by_depth[L]))} against 2^L = {2 ** L}" for L in off)
            parts.append(f"where fp64 round-off moved its parameters (by at most "
                         f"{fmt(max(change[L] for L in off))}) its exact count differs from 2^L ({counts})")
        text = f"{head}: " + "; ".join(parts)
        if off:
            more = all(v >= 2.0**L for L in off for v in by_depth[L])
            disagree.append(
                f"Round-off in fp64 training moved the exact {r['init']} construction's parameters by at most "
                f"{fmt(max(change[L] for L in off))} and changed its exact piece count at depths {_depths(off)}"
                + (" upwards: coincident breakpoints of the construction split, so round-off added pieces instead "
                   "of removing them (a counter with tolerances merges the split breakpoints and sees 2^L)."
                   if more else "."))
    if not still_exact or not max_loss <= 1e-30:
        disagree.append(f"The exact {r['init']} construction did not stay exact under fp64 training where its "
                        f"parameters did not move, or its loss left the rounding level (largest loss "
                        f"{fmt(max_loss)}): the control failed.")
    return text + f"; its largest fp64 loss is {fmt(max_loss)} (the rounding of evaluating the net and its target)."


def _depths(ls):
    return ", ".join(str(L) for L in ls)


def survival_findings(data, out, disagree):
    surv = survival_table(data)
    if not surv:
        return
    sents = []
    ctrl = [r for r in surv if r["experiment"] == "constructions" and r["delta"] == 0]
    for r in ctrl:
        sents.append(_control_sentence(data, r, disagree))
    rest = [r for r in surv if not (r["experiment"] == "constructions" and r["delta"] == 0)]
    fail = [r for r in rest if not r["median_censored"]]
    whole = [r for r in rest if r["median_censored"]]
    if fail:
        sents.append("Starts whose median survival depth lies inside the grid: " + "; ".join(
            f"{r['init']} in {r['precision']} by {r['optimizer']} from δ = {r['delta_label']} ({r['experiment']}): "
            f"L* = {lstar_text(r)}, "
            f"n = {r['n']}" for r in fail) + ".")
    if whole:
        lmax = max(r["lmax"] for r in whole)
        sents.append(f"The other {len(whole)} of {len(rest)} (construction, precision, optimizer, δ) starts survive "
                     f"(kept or repaired) at every depth of the grid in at least half of their seeds (L* > {lmax}, "
                     "censored; see the table).")
    under = [r for r in rest if r["underflow_depths"]]
    for r in under:
        sents.append(f"In {r['precision']} the stable step of {r['init']} (δ = {r['delta_label']}) underflows to 0 at "
                     f"depths {', '.join(map(str, r['underflow_depths']))}: the net cannot move there, and its count "
                     "is that of the start rounded to the format.")
    fits = [f for f in (_lstar_vs_bits(surv, init, kind) for init in ("sawtooth", "yarotsky_square")
                        for kind in ("ulp", "zero")) if f]
    unfit = [f for f in fits if f["censored"] > f["n"] / 2]
    fits = [f for f in fits if f["censored"] <= f["n"] / 2]
    for f in unfit:
        sents.append(f"{f['init']} (δ = {'2^-K' if f['delta'] == 'ulp' else '0'}): L* against K cannot be fitted: "
                     f"{f['censored']} of its {f['n']} (seed, precision) runs survive every depth of the grid.")
    for f in fits:
        sents.append(f"{f['init']} (δ = {'2^-K' if f['delta'] == 'ulp' else '0'}): L* = a + b·K with "
                     f"b = {fmt_ci(f['b'], f['b_lo'], f['b_hi'])} layers per significand bit "
                     f"(OLS, n = {f['n']} over {f['n_precisions']} precisions, {f['censored']} censored at the grid's end).")
        for K, res in f["resid"].items():
            if abs(res) > 3:
                disagree.append(f"{f['init']}: at K = {K} the survival depth departs from the fitted K line by "
                                f"{fmt(res)} layers.")
                break
    out["survival"] = {"title": "Constructions under training: survival depth", "plot": "survival",
                       "test": "L* per seed; median with order-statistic 95% CI; right-censored at the deepest depth; "
                               "L* vs K by OLS",
                       "text": " ".join(sents), "rows": surv, "fits": fits}
