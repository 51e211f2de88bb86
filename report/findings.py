"""What a run found, computed from its data: one paragraph per question of the study,
and the list of places where the data disagree with the theory.

Every number in a sentence is computed here from the run's rows; a sentence is written
only where the data carry its claim (a verdict of the fit, a CI that excludes a value,
a test at the 5% level). ``findings(data)`` returns a JSON-able dict that
``report.render`` prints first and ``write_findings`` stores as ``findings.json``.

Statistics used (all with statsmodels / scipy):

- growth in depth: :func:`report.growth.fit_growth` (GLM linear vs exponential, Vuong);
- survival depth L*: per seed, the largest grid depth L such that every grid depth up
  to L survived (outcome kept or repaired, :mod:`report.outcomes`); right-censored ("> Lmax") where all survived.
  Its median over seeds has a distribution-free 95% CI from binomial order statistics;
- slopes in log-log (E[pieces] vs η, 1/|Δb| vs width), in log2 (max |∂z/∂x| vs layer,
  gradient error vs depth) and L* vs K: OLS with cluster-robust (by net) 95% CIs;
- the crossing bound: a net's mean regions over its noise draws exceeds its mean bound
  "by more than 4 standard errors" when ``excess_mean > 4 * excess_se``.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

from .controls import control_findings, iteration_findings
from .growth import fit_growth
from .outcomes import outcome_findings
from .summary import summary_sentences

__all__ = ["findings", "write_findings", "survival_table", "fmt", "fmt_ci", "log_slope"]


def fmt(v, digits=3):
    """One number format for the report's prose and tables."""
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v == int(v) and abs(v) < 1e5:
        return str(int(v))
    if abs(v) < 1e-3 or abs(v) >= 1e5:
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def fmt_ci(v, lo, hi):
    """``"x [lo, hi]"``."""
    return f"{fmt(v)} [{fmt(lo)}, {fmt(hi)}]"


def _precision_bits(p):
    from pieces.precision import parse_precision

    try:
        return parse_precision(str(p)).bits
    except ValueError:
        return None


def _delta_label(d, precision=None):
    if d is None or (isinstance(d, float) and math.isnan(d)):
        return "–"
    d = float(d)
    if d == 0:
        return "0 (exact start)"
    k = math.log2(d)
    if k == int(k):
        return f"2^{int(k)}"
    return fmt(d)


def log_slope(x, y, groups=None, base=None):
    """OLS slope of log(y) on log(x) (``base=None``) or of log2(y) on x (``base=2``),
    with a 95% CI, cluster-robust by ``groups`` where given. Returns (b, lo, hi, n)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (y > 0) & ((x > 0) if base is None else True)
    if ok.sum() < 3 or len(np.unique(x[ok])) < 2:
        return float("nan"), float("nan"), float("nan"), int(ok.sum())
    X = sm.add_constant(np.log(x[ok]) if base is None else x[ok])
    Y = np.log(y[ok]) if base is None else np.log2(y[ok])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if groups is not None and len(np.unique(np.asarray(groups)[ok])) > 2:
            res = sm.OLS(Y, X).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(np.asarray(groups)[ok])[0]})
        else:
            res = sm.OLS(Y, X).fit()
    lo, hi = res.conf_int()[1]
    return float(res.params[1]), float(lo), float(hi), int(ok.sum())


def _curvature_p(x, y):
    """p-value of a quadratic term in a log–log fit (is log y linear in log x?)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 5 or len(np.unique(x[ok])) < 3:
        return float("nan")
    lx = np.log(x[ok])
    X = sm.add_constant(np.column_stack([lx, lx**2]))
    return float(sm.OLS(np.log(y[ok]), X).fit().pvalues[2])


def _mean_ci(v):
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan"), 0
    if v.size == 1 or np.all(v == v[0]):
        return float(v.mean()), float(v.mean()), float(v.mean()), int(v.size)
    m = float(v.mean())
    h = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - h, m + h, int(v.size)


# -- survival depth -----------------------------------------------------------------------


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
            "experiment": exp, "init": init, "precision": prec, "optimizer": opt, "bits": _precision_bits(prec),
            "delta": float(delta), "delta_label": _delta_label(delta), "n": n, "depths": depths,
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


# -- the paragraphs ---------------------------------------------------------------------------


def _gname(g):
    return f"{g['experiment']} {g['precision']} {g['stage']}, {g['target']}, w={g['width']}"


def _fit_depth(sub):
    """``fit_growth`` of a group's pieces against depth, or None where it cannot fit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fit_growth(sub["depth"].to_numpy(float), sub["value"].to_numpy(float))
        except ValueError:
            return None


def _growth_controls(data):
    """The same fit on the exact constructions at init: it must see their 2^L."""
    df = data.select(metric="pieces", experiment="constructions", stage="init")
    df = df[df["delta"] == 0] if "delta" in df else df.iloc[:0]
    sents, recs = [], []
    for init, sub in df.groupby("init", sort=True):
        fit = _fit_depth(sub)
        if fit is None:
            continue
        rate = (f", r = {fmt_ci(fit.rate, *fit.rate_ci)}" if fit.verdict == "exponential" else "")
        sents.append(f"Control: the same test on the exact {init} at init (depths "
                     f"{int(sub['depth'].min())}–{int(sub['depth'].max())}, n = {fit.n}) says {fit.verdict}{rate}.")
        recs.append({"init": init, "verdict": fit.verdict, "rate": fit.rate, "rate_lo": fit.rate_ci[0],
                     "rate_hi": fit.rate_ci[1], "n": fit.n})
    return sents, recs


def _growth_findings(data, out, disagree):
    df = data.select(metric="pieces", init="he")
    df = df[df["stage"].isin(["init", "trained"]) & df["experiment"].isin(["growth", "precision"])]
    df = df[(df["experiment"] == "growth") | (df["stage"] == "trained")]
    if not len(df):
        return
    sents, groups = [], []
    for (exp, prec, stage, target, width), sub in df.groupby(["experiment", "precision", "stage", "target", "width"],
                                                             sort=True):
        fit = _fit_depth(sub)
        if fit is None:
            continue
        g = {"experiment": exp, "precision": prec, "stage": stage, "target": target, "width": int(width),
             "n": fit.n, "verdict": fit.verdict,
             "slope": fit.slope, "slope_lo": fit.slope_ci[0], "slope_hi": fit.slope_ci[1], "rate": fit.rate,
             "rate_lo": fit.rate_ci[0], "rate_hi": fit.rate_ci[1], "vuong_p": fit.vuong_p}
        groups.append(g)
        if fit.verdict == "exponential" and stage == "trained":
            disagree.append(f"Trained He nets ({exp}, {prec}, target {target}, width {int(width)}) grow exponentially "
                            "in depth: "
                            f"rate r = {fmt_ci(fit.rate, *fit.rate_ci)}, Vuong p = {fmt(fit.vuong_p)}, n = {fit.n}.")
        if fit.verdict == "inconclusive" and fit.n >= 60:
            disagree.append(f"Growth of He nets ({exp}, {prec}, {stage}, target {target}, width {int(width)}) is "
                            "inconclusive "
                            f"with n = {fit.n} nets (Vuong p = {fmt(fit.vuong_p)}): the study had the sample "
                            "size for a verdict, the data did not decide.")
    lin = [g for g in groups if g["verdict"] == "linear"]
    if lin:
        lo_g = min(lin, key=lambda g: g["slope"])
        hi_g = max(lin, key=lambda g: g["slope"])
        sents.append(f"{len(lin)} of {len(groups)} He groups (growth: init and trained, per target and width; "
                     f"precision: trained, per format) grow linearly in depth, with slopes from "
                     f"b = {fmt_ci(lo_g['slope'], lo_g['slope_lo'], lo_g['slope_hi'])} ({_gname(lo_g)}) to "
                     f"b = {fmt_ci(hi_g['slope'], hi_g['slope_lo'], hi_g['slope_hi'])} ({_gname(hi_g)}) pieces per "
                     f"layer (n = {min(g['n'] for g in lin)}–{max(g['n'] for g in lin)} nets each).")
    for verdict in ("exponential", "inconclusive"):
        gs = [g for g in groups if g["verdict"] == verdict]
        if gs:
            sents.append(f"{len(gs)} {'is' if len(gs) == 1 else 'are'} {verdict}: " + "; ".join(
                f"{_gname(g)}, " + (f"r = {fmt_ci(g['rate'], g['rate_lo'], g['rate_hi'])}" if verdict == "exponential"
                                    else f"Vuong p = {fmt(g['vuong_p'])}") + f", n = {g['n']}" for g in gs) + ".")
    if not [g for g in groups if g["verdict"] == "exponential"]:
        sents.append("No He group grows exponentially.")
    ctrl_sents, controls = _growth_controls(data)
    sents.extend(ctrl_sents)
    out["growth"] = {"title": "Growth at init and after training", "plot": "growth",
                     "test": "GLM linear vs exponential in depth, Vuong's test at 5%, profile-likelihood CIs",
                     "text": " ".join(sents), "groups": groups, "controls": controls}


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


def _survival_findings(data, out, disagree):
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


def _perturbation_findings(data, out, disagree):
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
            m = _mean_ci(s["pieces_mean"])
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


def _assumption_findings(data, out, disagree):
    sents, a_fits, b_fits = [], [], []
    df = data.select(experiment="assumptions", metric="mean_inv_bias_update")
    stages = sorted(df["stage"].unique(), key=lambda st: float(str(st).rstrip("%")) if str(st).rstrip("%").replace(".", "").isdigit() else 0)
    for stage in stages:
        sub = df[df["stage"] == stage]
        b, lo, hi, n = log_slope(sub["width"].astype(float), sub["value"], groups=sub["seed"])
        p_quad = _curvature_p(sub["width"].astype(float), sub["value"])
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


def _backprop_findings(data, out, disagree):
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


def _approx_findings(data, out, disagree):
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


def findings(data):
    """The findings of a loaded run: ``{"questions": {...}, "disagree": [...]}``."""
    out, disagree = {}, []
    for f in (_growth_findings, outcome_findings, _survival_findings, _perturbation_findings, _assumption_findings,
              _backprop_findings, _approx_findings):
        f(data, out, disagree)
    return {"summary": summary_sentences(out), "questions": out, "disagree": disagree}


def _jsonable(o):
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating, float)):
        v = float(o)
        return v if math.isfinite(v) else None
    if isinstance(o, np.bool_):
        return bool(o)
    return o


def write_findings(found, path):
    """Write findings as JSON, atomically (non-finite numbers as null)."""
    from pieces._io import atomic_write

    atomic_write(path, json.dumps(_jsonable(found), indent=2, allow_nan=False))
