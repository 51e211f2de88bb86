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

from .growth import fit_growth
from .mechanism import approx_findings, assumption_findings, backprop_findings, config_grid_n
from .outcomes import outcome_findings
from .perturbation import perturbation_findings, perturbation_table
from .stats import delta_label, fmt, fmt_ci, log_slope
from .summary import summary_sentences
from .survival import lstar_text, survival_findings, survival_table

__all__ = ["findings", "write_findings", "survival_table", "perturbation_table", "lstar_text", "fmt", "fmt_ci",
           "log_slope", "delta_label", "config_grid_n"]

_delta_label = delta_label  # the name the templates' callers used


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


def findings(data):
    """The findings of a loaded run: ``{"questions": {...}, "disagree": [...]}``."""
    out, disagree = {}, []
    for f in (_growth_findings, outcome_findings, survival_findings, perturbation_findings, assumption_findings,
              backprop_findings, approx_findings):
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
