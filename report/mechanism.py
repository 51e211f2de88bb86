"""The mechanism's paragraphs: assumptions (A) and (B) along training, the backprop
error against depth and precision, and the approximation error against depth."""

from __future__ import annotations

import math

import numpy as np

from .stats import curvature_p, fmt, fmt_ci, log_slope

__all__ = ["assumption_findings", "backprop_findings", "approx_findings"]


def assumption_findings(data, out, disagree):
    sents, a_fits, b_fits = [], [], []
    df = data.select(experiment="assumptions", metric="mean_inv_bias_update")
    stages = sorted(df["stage"].unique(), key=lambda st: float(str(st).rstrip("%")) if str(st).rstrip("%").replace(".", "").isdigit() else 0)
    for stage in stages:
        sub = df[df["stage"] == stage]
        b, lo, hi, n = log_slope(sub["width"].astype(float), sub["value"], groups=sub["seed"])
        p_quad = curvature_p(sub["width"].astype(float), sub["value"])
        a_fits.append({"stage": stage, "slope": b, "lo": lo, "hi": hi, "n": n, "quadratic_p": p_quad})
        if np.isfinite(b):
            sents.append(f"(A) at {stage} of training: mean 1/|Δb| grows like N^{fmt_ci(b, lo, hi)} in the width N "
                         f"(n = {n} nets)" + (f"; a power law fits (a quadratic term in log N has p = {fmt(p_quad)})"
                                               if p_quad > 0.05 else
                                               f"; a power law does not fit (quadratic term in log N, p = {fmt(p_quad)})")
                         + ".")
            if p_quad <= 0.05 and np.isfinite(p_quad):
                disagree.append(f"(A) at {stage} of training: 1/|Δb| is not a power of the width "
                                f"(quadratic term in log N, p = {fmt(p_quad)}).")
    zf = data.select(experiment="assumptions", metric="zero_bias_update_fraction")
    if len(zf):
        sents.append(f"Zero bias updates: {fmt(100 * float(zf['value'].mean()))}% of hidden biases on average "
                     f"(max {fmt(100 * float(zf['value'].max()))}%).")
    mid = data.select(metric="max_input_derivative")
    mid = mid[mid["stage"].isin(["init", "trained", "0%", "100%"])]
    for (exp, init, prec, stage), sub in mid.groupby(["experiment", "init", "precision", "stage"], sort=True):
        if exp in ("constructions", "precision"):
            sub = sub[sub["delta"] == sub["delta"].max()]
        sub = sub[sub["depth"] == sub["depth"].max()]
        b, lo, hi, n = log_slope(sub["layer"].astype(float), sub["value"], groups=sub["seed"], base=2)
        if not np.isfinite(b):
            continue
        b_fits.append({"experiment": exp, "init": init, "precision": prec, "stage": stage,
                       "depth": int(sub["depth"].max()), "log2_per_layer": b, "lo": lo, "hi": hi, "n": n})
        if init == "he" and stage in ("trained", "100%") and lo > 0.5:
            disagree.append(f"(B) fails for trained He nets: max |∂z/∂x| grows by 2^{fmt(b)} per layer.")
    he = [f for f in b_fits if f["init"] == "he"]
    if he:
        sents.append("(B) He nets: max |∂z/∂x| changes per layer by a factor 2^b with " + "; ".join(
            f"b = {fmt_ci(f['log2_per_layer'], f['lo'], f['hi'])} at {f['stage']} (L = {f['depth']}, n = {f['n']})"
            for f in he) + ".")
    cons = [f for f in b_fits if f["init"] != "he"]
    if cons:
        lo_f = min(cons, key=lambda f: f["log2_per_layer"])
        hi_f = max(cons, key=lambda f: f["log2_per_layer"])
        sents.append(f"The constructions' grows by 2^b per layer with b from {fmt_ci(lo_f['log2_per_layer'], lo_f['lo'], lo_f['hi'])} "
                     f"to {fmt_ci(hi_f['log2_per_layer'], hi_f['lo'], hi_f['hi'])} over {len(cons)} fits (sawtooth and "
                     "Yarotsky, init and trained, every precision): (B) fails for them, as the theory says.")
    if sents:
        out["assumptions"] = {"title": "Assumptions (A) and (B) along training", "plot": "assumptions",
                              "test": "log–log OLS of 1/|Δb| on width; OLS of log2 max|∂z/∂x| on layer; "
                                      "cluster-robust by seed",
                              "text": " ".join(sents), "A": a_fits, "B": b_fits}


def backprop_findings(data, out, disagree):
    df = data.select(experiment="backprop", metric="backprop_error")
    if not len(df):
        return
    sents, fits = [], []
    for (init, prec), sub in df.groupby(["init", "precision"], sort=True):
        b, lo, hi, n = log_slope(sub["depth"].astype(float), sub["value"], groups=sub["seed"], base=2)
        med = float(sub[sub["depth"] == sub["depth"].max()]["value"].median())
        fits.append({"init": init, "precision": prec, "log2_per_layer": b, "lo": lo, "hi": hi, "n": n,
                     "median_at_max_depth": med})
        # a construction is one net: where every seed gives the same error at every
        # depth, the seeds are not independent draws and a CI over them means nothing
        one_net = bool(sub.groupby("depth")["value"].nunique().max() == 1) and sub["seed"].nunique() > 1
        fits[-1]["one_net"] = one_net
        if np.isfinite(b) and one_net:
            sents.append(f"{init}, {prec}: relative gradient error ×2^{fmt(b)} per layer, "
                         f"{fmt(med)} at L = {int(sub['depth'].max())} (one net: its {sub['seed'].nunique()} "
                         "seeds give identical errors, so no CI).")
        elif np.isfinite(b):
            sents.append(f"{init}, {prec}: relative gradient error ×2^{fmt_ci(b, lo, hi)} per layer, median "
                         f"{fmt(med)} at L = {int(sub['depth'].max())} (n = {n}).")
    out["backprop"] = {"title": "Backprop error against depth and precision", "plot": "backprop",
                       "test": "OLS of log2 relative error on depth, cluster-robust by seed",
                       "text": " ".join(sents), "fits": fits}


def approx_findings(data, out, disagree):
    df = data.select(metric="sup_error_square", stage="trained")
    if not len(df):
        return
    sents, rows = [], []
    for (exp, init, prec), sub in df.groupby(["experiment", "init", "precision"], sort=True):
        if exp == "constructions":
            sub = sub[sub["delta"] == 0]
        if init != "he" and init != "yarotsky_square":
            continue
        for L, s in sub.groupby("depth", sort=True):
            rows.append({"experiment": exp, "init": init, "precision": prec, "depth": int(L),
                         "best": float(s["value"].min()), "median": float(s["value"].median()), "n": len(s),
                         "yarotsky": 2.0 ** (-2 * int(L) - 2)})
    he = [r for r in rows if r["init"] == "he" and r["experiment"] == "growth"]
    if he:
        deep = max(r["depth"] for r in he)
        r = [r for r in he if r["depth"] == deep][0]
        best = min(he, key=lambda q: q["best"])
        sents.append(f"Trained He nets on x²: best sup error {fmt(best['best'])} (at L = {best['depth']}); at L = {deep} "
                     f"best {fmt(r['best'])}, median {fmt(r['median'])} over {r['n']} nets, against Yarotsky's "
                     f"2^(-2L-2) = {fmt(r['yarotsky'])}: the trained nets are "
                     f"{fmt(r['best'] / r['yarotsky'])}× the construction's error.")
        b, lo, hi, n = log_slope([q["depth"] for q in he], [q["median"] for q in he], base=2)
        if np.isfinite(b):
            sents.append(f"The median error changes by 2^{fmt_ci(b, lo, hi)} per layer (the construction: 2^-2).")
    grid = data.select(metric="sup_error_grid", stage="trained", experiment="growth")
    other = []
    for (target, L), s in grid.groupby(["target", "depth"], sort=True):
        other.append({"target": target, "depth": int(L), "best": float(s["value"].min()),
                      "median": float(s["value"].median()), "n": len(s)})
    for target in sorted({o["target"] for o in other}):
        mine = [o for o in other if o["target"] == target]
        deep = max(mine, key=lambda o: o["depth"])
        best = min(mine, key=lambda o: o["best"])
        b, lo, hi, n = log_slope([o["depth"] for o in mine], [o["median"] for o in mine], base=2)
        sents.append(f"On {target} (sup error on a {config_grid_n()}-point grid): best {fmt(best['best'])} (at L = "
                     f"{best['depth']}); at L = {deep['depth']} best {fmt(deep['best'])}, median {fmt(deep['median'])} "
                     f"over {deep['n']} nets; the median changes by 2^{fmt_ci(b, lo, hi)} per layer.")
    ya = [r for r in rows if r["init"] == "yarotsky_square" and r["experiment"] == "constructions"]
    if ya:
        exact = all(math.isclose(r["best"], r["yarotsky"], rel_tol=1e-9) for r in ya)
        sents.append("The exact Yarotsky nets keep the error 2^(-2m-2) after fp64 training at every depth."
                     if exact else "The Yarotsky nets trained from their exact weights do not all keep 2^(-2m-2).")
    out["approximation"] = {"title": "Approximation error against depth", "plot": "approximation",
                            "test": "exact sup |f − x²| on [0, 1] (piecewise: end points and vertices); other "
                                    "targets on a stated dense grid; OLS of log2 median error on depth",
                            "text": " ".join(sents), "rows": rows, "other_targets": other}


def config_grid_n():
    from pieces import config

    return f"{config.SUP_ERROR_GRID_N:,}"
