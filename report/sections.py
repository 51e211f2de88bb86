"""Figures of the outcomes, the absorbed updates, the perturbation law's positive
control and the whole perturbed iteration (inline SVG through :mod:`report.plots`)."""

from __future__ import annotations

import numpy as np

from . import plots
from .controls import control_table, iteration_table
from .outcomes import SURVIVING, outcome_runs

__all__ = ["outcome_figures", "control_figures"]


def _fig(fid, title, svg, caption):
    return {"id": fid, "title": title, "svg": svg, "caption": caption}


def outcome_figures(data):
    """Survival (kept or repaired) and frozen fractions against depth, per start; the
    absorbed fraction and the first step / half-ulp against depth per precision."""
    runs = outcome_runs(data)
    figs = []
    if not len(runs):
        return figs
    for (exp, init), sub in runs.groupby(["experiment", "init"], sort=True):
        series, frozen = [], []
        for (prec, opt, delta), s in sub[sub["delta"] > 0].groupby(["precision", "optimizer", "delta"], sort=True):
            g = s.groupby("depth")["outcome"]
            label = f"{prec} {opt} δ={delta:.3g}"
            series.append((label, g.size().index.to_numpy(float), g.apply(lambda o: o.isin(SURVIVING).mean()).to_numpy()))
            frozen.append((f"frozen: {label}", g.size().index.to_numpy(float),
                           g.apply(lambda o: (o == "frozen").mean()).to_numpy()))
        if series:
            figs.append(_fig(f"outcomes-{exp}-{init}", f"{init} ({exp}): survival and frozen fractions",
                             plots.line_plot(series + frozen, "depth L", "fraction of seeds", f"{init} ({exp})",
                                             dashed_from=len(series)),
                             "Solid: the fraction of seeds kept or repaired (survival); dashed, same colour: the "
                             "fraction frozen (training could not move the net; not survival). A solid line that "
                             "falls while its dashed twin rises is a step that stopped acting, not a construction "
                             "that training destroyed."))
    df = data.select(metric="absorbed_fraction", stage="trained")
    half = data.select(metric="step_half_ulp")
    for what, d, ylabel, logy, ref in (("absorbed", df, "absorbed fraction of updates", False, None),
                                       ("step", half, "first step / half an ulp", True, (1.0, "absorbed below"))):
        for init_kind, sub in d.assign(kind=np.where(d["init"] == "he", "he", "construction")).groupby("kind"):
            series = []
            for (prec, opt), s in sub.groupby(["precision", "optimizer"], sort=True):
                g = s.groupby("depth")["value"].median()
                series.append((f"{prec} {opt}", g.index.to_numpy(float), g.to_numpy()))
            if series:
                figs.append(_fig(f"{what}-{init_kind}", f"{ylabel} against depth: {init_kind} nets",
                                 plots.line_plot(series, "depth L", ylabel, f"{init_kind} nets", logy=logy, hline=ref),
                                 "Median over runs, per precision and optimizer. An update is absorbed when "
                                 "w − step rounds back to w in the training format; a step below half an ulp of its "
                                 "weight is always absorbed. GD's stable step shrinks like 1/λ_max, so deep nets in "
                                 "narrow formats cross that line: the format, not the step size, stops them."))
    return figs


def control_figures(data):
    """The positive control's dose–response and E[pieces] along the iteration."""
    figs = []
    t = control_table(data)
    if len(t):
        series = []
        for (init, L), s in t.groupby(["init", "depth"], sort=True):
            g = (s["pieces_mean"] / s["pieces_before"]).groupby(s["sigma"]).median()
            series.append((f"{init} L={int(L)}", g.index.to_numpy(float), g.to_numpy()))
        figs.append(_fig("perturbation-control", "positive control: E[pieces] against absolute bias noise σ",
                         plots.line_plot(series, "σ (absolute bias noise)", "E[pieces] / pieces before",
                                         "positive control", logx=True, hline=(1.0, "no effect")),
                         "The same nets and counting path as the η experiment, with noise of a fixed size instead "
                         "of one scaled by lr·|∂loss/∂b|. The curves must leave 1 as σ grows (a sawtooth of depth L "
                         "near σ ≈ 2^-L): that shows the experiment could see a noise effect."))
    it = iteration_table(data)
    if len(it):
        for init, s in it.groupby("init", sort=True):
            series = []
            for eta, e in s.groupby("eta", sort=True):
                g = (e["pieces_mean"] / e["pieces_before"]).groupby(e["step"]).median()
                series.append((f"η={eta:g}", g.index.to_numpy(float), g.to_numpy()))
            figs.append(_fig(f"iteration-{init}", f"the whole perturbed iteration: {init}",
                             plots.line_plot(series, "perturbed GD steps T", "E[pieces] / pieces at start",
                                             f"{init}", logx=True),
                             "Median over nets of E[pieces] after T perturbed steps, relative to the start, per "
                             "noise level η (η = 0: the unperturbed iteration, the control)."))
    return figs
