"""The HTML report of a run: one self-contained file (inline SVG, no script, no network).

Examples
--------
``write_report("runs/default")`` writes ``runs/default/report.html``;
``render_html(load_run("runs/default"))`` returns the HTML text.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from . import findings as findings_mod
from . import plots
from .growth import RULE, fit_growth
from .load import load_run
from .sections import control_figures, outcome_figures

__all__ = ["render_html", "write_report", "growth_table"]

_GROWTH_EXPERIMENTS = ("growth", "constructions", "precision")


def _fmt(v, digits=3):
    return findings_mod.fmt(v, digits)


def _references(init, width, depths):
    L = np.asarray(depths, float)
    refs = {"(w+1)^L (max regions)": (width + 1.0) ** L}
    if init == "he":
        refs["w·L + 1 (random init)"] = width * L + 1
    else:
        refs["2^L (construction)"] = 2.0**L
    return refs


def growth_table(data):
    """One fit per (experiment, init, target, width, precision, stage).

    Returns a list of dicts (the group, the fit, its summary row and the references).
    """
    df = data.select(metric="pieces")
    df = df[df["stage"].isin(["init", "trained"]) & df["experiment"].isin(_GROWTH_EXPERIMENTS)].copy()
    # a construction trains on its own target, whose parameter grows with depth
    own = df["init"] != "he"
    df.loc[own, "target"] = df.loc[own, "target"].str.split(":").str[0] + " (own)"
    out = []
    df["delta"] = df["delta"].fillna(-1.0)  # He nets have no start perturbation
    keys = ["experiment", "init", "target", "width", "precision", "delta", "stage"]
    for group, sub in df.groupby(keys, sort=True):
        g = dict(zip(keys, group))
        depths = sub["depth"].to_numpy(dtype=float)
        pieces = sub["value"].to_numpy(dtype=float)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = fit_growth(depths, pieces)
            err = None
        except ValueError as exc:
            fit, err = None, str(exc)
        Lmax = int(depths.max())
        mean_at = float(pieces[depths == Lmax].mean())
        refs = {k: float(v[-1]) for k, v in _references(g["init"], int(g["width"]), [Lmax]).items()}
        if g["delta"] == -1.0:
            g["delta"] = float("nan")
        same_delta = (lambda d: d["delta"].isna()) if math.isnan(g["delta"]) else (lambda d: d["delta"] == g["delta"])
        div = data.select(experiment=g["experiment"], init=g["init"], precision=g["precision"], metric="diverged")
        div = div[(div["width"] == g["width"]) & div["depth"].isin(set(depths.astype(int))) & same_delta(div)]
        if g["init"] == "he":
            div = div[div["target"] == g["target"]]
        n_div = int(div["value"].sum()) if g["stage"] == "trained" else 0
        loss = data.select(experiment=g["experiment"], init=g["init"], precision=g["precision"], metric="loss",
                           stage=g["stage"])
        loss = loss[(loss["width"] == g["width"]) & loss["depth"].isin(set(depths.astype(int))) & same_delta(loss)]
        if g["init"] == "he":
            loss = loss[loss["target"] == g["target"]]
        med_loss = float(loss["value"].median()) if len(loss) else float("nan")
        out.append({**g, "fit": fit, "error": err, "depths": depths, "pieces": pieces, "diverged": n_div, "median_loss": med_loss,
                    "n_seeds": int(sub["seed"].nunique()), "depth_range": f"{int(depths.min())}–{Lmax}",
                    "mean_at_max": mean_at, "refs_at_max": refs})
    return out


def _fig(fid, title, svg, caption):
    return {"id": fid, "title": title, "svg": svg, "caption": caption}


def _training_curves(data, experiment, init="he"):
    tr = data.select(experiment=experiment, stage="training", metric="pieces", init=init)
    figs = []
    for (target, width, prec), sub in tr.groupby(["target", "width", "precision"], sort=True):
        depths = sorted(sub["depth"].unique())
        pick = depths if len(depths) <= 4 else [depths[0], depths[len(depths) // 3], depths[2 * len(depths) // 3], depths[-1]]
        series = []
        for L in pick:
            table = sub[sub["depth"] == L].pivot_table(index="seed", columns="step", values="value")
            series.append((f"L={int(L)}", table.columns.to_numpy(), table.to_numpy()))
        figs.append(_fig(f"{experiment}-training-{target}-{width}-{prec}".replace(":", ""),
                         f"pieces during training: {init}, {target}, w={width}, {prec}",
                         plots.line_plot(series, "step", "pieces", f"during training ({target}, w={width})"),
                         "Faint lines are seeds, bold their median. Look for whether deep nets gain pieces "
                         "during training faster than shallow ones."))
    return figs


def _growth_section(data, rows):
    figs = []
    mine = [r for r in rows if r["experiment"] == "growth"]
    keys = sorted({(r["target"], int(r["width"])) for r in mine})
    for target, width in keys:
        groups = []
        for r in mine:
            if (r["target"], int(r["width"])) != (target, width):
                continue
            L = sorted(set(r["depths"]))
            refs = _references("he", width, L)
            groups.append((r["stage"], r["depths"], r["pieces"], r["fit"], ("w·L + 1 (random init)", L, refs["w·L + 1 (random init)"])))
        figs.append(_fig(f"growth-{target}-{width}".replace(":", ""), f"He nets, target {target}, width {width}",
                         plots.growth_plot(groups, f"{target}, w={width}"),
                         "Pieces per net (dots) with the fitted linear (solid) and exponential (dashed) means and "
                         "their 95% bands, on linear and log axes. A straight rise on the left panel is linear "
                         "growth; a straight rise on the right panel is exponential."))
    return figs + _training_curves(data, "growth")


def _survival_section(data, found):
    figs = []
    q = found["questions"].get("survival")
    surv = q["rows"] if q else []
    df = data.select(metric="pieces_fraction", stage="trained")
    for (exp, init), sub in df.groupby(["experiment", "init"], sort=True):
        series = []
        for (prec, delta), s in sub.groupby(["precision", "delta"], sort=True):
            t = s.pivot_table(index="seed", columns="depth", values="value")
            label = f"{prec}, δ={findings_mod.delta_label(delta)}" if exp == "precision" else f"δ={findings_mod.delta_label(delta)}"
            series.append((label, t.columns.to_numpy(), t.to_numpy()))
        figs.append(_fig(f"survival-{exp}-{init}", f"{init} after training ({exp}): pieces / 2^L",
                         plots.line_plot(series, "depth L", "pieces / 2^L", f"{init} ({exp})", logy=True,
                                         hline=(0.9, "survival threshold 0.9")),
                         "Each line is one start (precision, δ); faint lines are seeds. A construction survives "
                         "where it stays above the dotted 0.9 line; the depth where a line falls below it is L*."))
    fits = q["fits"] if q else []
    ladder = [r for r in surv if r["experiment"] == "precision" and r["bits"] is not None]
    if ladder:
        figs.append(_fig("survival-vs-bits", "survival depth L* against significand bits K",
                         plots.survival_plot(ladder, fits),
                         "Median L* per precision with its 95% CI (triangles: censored at the grid's deepest "
                         "depth, so L* is larger). Solid: the fitted L* = a + b·K; dotted: L = K, the depth "
                         "whose breakpoints 2^-L a K-bit format can still place."))
    return figs


def _perturbation_section(data, found):
    q = found["questions"].get("perturbation")
    if not q:
        return []
    t = findings_mod.perturbation_table(data)
    figs = []
    for init, sub in t.groupby("init", sort=True):
        series, bounds = [], []
        for stage, s in sub.groupby("stage", sort=True):
            s = s[s["eta"] > 0]
            m = s.groupby("eta")
            series.append((f"{stage}", m["pieces_mean"].mean().index.to_numpy(), m["pieces_mean"].mean().to_numpy()))
            bounds.append((f"bound ({stage})", m["bound_mean"].mean().index.to_numpy(), m["bound_mean"].mean().to_numpy()))
        figs.append(_fig(f"perturbation-eta-{init}", f"E[pieces] after one perturbed step against η: {init}",
                         plots.line_plot(series + bounds, "η", "mean pieces (over nets and draws)", f"{init}",
                                         logy=True, logx=True, dashed_from=len(series)),
                         "Mean pieces after the step (solid) and the per-net crossing bound (dashed), on log–log "
                         "axes; the η = 0 control is in the table of findings. A slope of −1 is the 1/η law of "
                         "the theorem's bound; a flat line means the noise level does not matter."))
        pos = sub[sub["eta"] > 0]
        series = []
        for eta, s in pos.groupby("eta", sort=True):
            series.append((f"η={findings_mod.fmt(eta)}", s["depth"].to_numpy(float), (s["regions_mean"] / s["bound_mean"]).to_numpy()))
        figs.append(_fig(f"perturbation-ratio-{init}", f"measured regions / crossing bound, per net: {init}",
                         plots.scatter_plot(series, "depth L", "measured / bound", f"{init}", logy=True,
                                            hline=(1.0, "bound")),
                         "One dot per net and η: its mean regions over the noise draws divided by its mean bound. "
                         "Every dot must lie below 1 (within noise); how far below says how loose the bound is."))
        he_eta = sub[sub["stage"].isin(sorted(sub["stage"].unique())[-1:])]
        series = []
        for eta, s in he_eta.groupby("eta", sort=True):
            g = s.groupby("depth")["pieces_mean"].mean()
            series.append((f"η={findings_mod.fmt(eta)}", g.index.to_numpy(float), g.to_numpy()))
        figs.append(_fig(f"perturbation-depth-{init}", f"E[pieces] after the step against depth: {init}",
                         plots.line_plot(series, "depth L", "mean pieces", f"{init}", logy=True),
                         "Mean pieces after the step at each η against depth; linear growth bends on these log "
                         "axes, exponential growth is a straight line."))
    return figs


def _assumptions_section(data, found):
    figs = []
    df = data.select(experiment="assumptions", metric="mean_inv_bias_update")
    if len(df):
        series = []
        for stage in sorted(df["stage"].unique(), key=lambda st: float(str(st).rstrip("%") or 0)):
            s = df[df["stage"] == stage]
            t = s.pivot_table(index="seed", columns="width", values="value")
            series.append((f"{stage} of training", t.columns.to_numpy(float), t.to_numpy()))
        figs.append(_fig("assumption-a", "(A) mean 1/|Δb| against width",
                         plots.line_plot(series, "width N", "mean 1/|Δb|", "(A) bias-update sizes", logy=True, logx=True,
                                         xticks=sorted(df["width"].dropna().astype(int).unique())),
                         "The paper assumes the mean inverse bias update grows at most polynomially in the width: "
                         "on these log–log axes, a straight line whose slope is the degree."))
    mid = data.select(metric="max_input_derivative")
    if len(mid):
        series = []
        for (exp, init, stage), s in mid.groupby(["experiment", "init", "stage"], sort=True):
            if stage not in ("init", "trained", "0%", "100%"):
                continue
            if exp == "constructions":
                s = s[s["delta"] == s["delta"].max()]
            s = s[s["depth"] == s["depth"].max()]
            t = s.pivot_table(index="seed", columns="layer", values="value")
            series.append((f"{init} {stage} (L={int(s['depth'].max())})", t.columns.to_numpy(float) + 1, t.to_numpy()))
        figs.append(_fig("assumption-b", "(B) max |∂z/∂x| per layer",
                         plots.line_plot(series, "layer", "max |∂z/∂x| on [0, 1]", "(B) input derivatives", logy=True),
                         "Exact largest slope of each layer's preactivations. (B) bounds it independently of depth; "
                         "the sawtooth's doubles every layer (a straight line on this log axis), which is where "
                         "constructions leave the theorem's assumptions."))
    return figs


def _backprop_section(data, found):
    df = data.select(experiment="backprop", metric="backprop_error")
    figs = []
    for init, sub in df.groupby("init", sort=True):
        series = []
        for prec, s in sub.groupby("precision", sort=True):
            t = s.pivot_table(index="seed", columns="depth", values="value")
            series.append((prec, t.columns.to_numpy(), t.to_numpy()))
        figs.append(_fig(f"backprop-{init}", f"relative gradient error vs depth: {init}",
                         plots.line_plot(series, "depth L", "relative error vs fp64", f"backprop error ({init})", logy=True),
                         "Relative error of the gradient computed in each precision against fp64. A straight rise "
                         "means the error grows geometrically with depth."))
    return figs


def _approximation_section(data, found):
    q = found["questions"].get("approximation")
    if not q:
        return []
    series = []
    rows = pd.DataFrame(q["rows"])
    # the growth experiment's He nets (fp64) and the exact constructions: the precision
    # experiment's groups are in findings.json, not in this plot
    rows = rows[rows["experiment"].isin(["growth", "constructions"])]
    for (exp, init, prec), s in rows.groupby(["experiment", "init", "precision"], sort=True):
        s = s.sort_values("depth")
        name = "He nets, trained" if init == "he" else "Yarotsky, trained from its exact weights"
        series.append((f"{name}: best", s["depth"].to_numpy(float), s["best"].to_numpy()))
        if init == "he":
            series.append((f"{name}: median", s["depth"].to_numpy(float), s["median"].to_numpy()))
    for o_target, o in pd.DataFrame(q.get("other_targets") or [], columns=["target", "depth", "best", "median", "n"]) \
            .groupby("target", sort=True):
        o = o.sort_values("depth")
        series.append((f"He nets on {o_target} (grid): median", o["depth"].to_numpy(float), o["median"].to_numpy()))
    L = np.arange(1, int(rows["depth"].max()) + 1)
    series.append(("Yarotsky 2^(-2L-2)", L.astype(float), 2.0 ** (-2 * L - 2)))
    return [_fig("approximation", "sup error on [0, 1] against depth (target x²)",
                 plots.line_plot(series, "depth L", "sup |f − x²|", "approximation error", logy=True),
                 "Exact sup error against x² of trained nets (best and median over seeds) beside Yarotsky's "
                 "construction 2^(-2L-2); for other targets the median sup error on a dense grid of "
                 f"{findings_mod.config_grid_n()} points. Trained nets that stay flat while the construction's error falls by 4× a layer are "
                 "the paper's practical point: gradient descent does not find the constructions.")]


def _reproduce(meta):
    from pieces.study.schema import to_toml

    out = str(meta.get("out", "RUN_DIR"))
    exps = meta.get("experiments", [])
    cmd = "pieces study --config settings.toml --out " + out
    if exps:
        cmd += " --experiments " + ",".join(exps)
    if meta.get("device", "cpu") != "cpu":
        cmd += f" --device {meta.get('device')}"
    return {"command": cmd, "toml": to_toml(meta.get("settings", {})), "commit": str(meta.get("git_commit") or "unknown")}


def _settings_rows(meta):
    s = meta.get("settings", {})
    return [(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in s.items()]


def render_html(data, found=None):
    """The report of a loaded run (:class:`report.load.RunData`) as HTML text;
    ``found``: its :func:`report.findings.findings` (computed if not given)."""
    found = findings_mod.findings(data) if found is None else found
    rows = growth_table(data)
    summary = []
    for r in rows:
        f = r["fit"]
        summary.append({
            "experiment": r["experiment"], "init": r["init"], "target": r["target"], "width": int(r["width"]),
            "precision": r["precision"], "delta": findings_mod.delta_label(r["delta"]), "stage": r["stage"],
            "n_seeds": r["n_seeds"], "depths": r["depth_range"], "diverged": r["diverged"],
            "median_loss": _fmt(r["median_loss"]), "verdict": f.verdict if f else "error", "error": r["error"],
            "slope": findings_mod.fmt_ci(f.slope, *f.slope_ci) if f else "",
            "rate": findings_mod.fmt_ci(f.rate, *f.rate_ci) if f else "",
            "vuong": f"z={_fmt(f.vuong_z)}, p={_fmt(f.vuong_p)}" if f else "",
            "mean_at_max": _fmt(r["mean_at_max"]),
            "refs": "; ".join(f"{k.split(' (')[0]}: {_fmt(v)}" for k, v in r["refs_at_max"].items()
                              if not k.startswith("(w+1)")),
        })
    fitted = []
    for r in rows:
        if r["fit"] is None:
            continue
        s = r["fit"].summary_row()
        fitted.append({"group": f"{r['experiment']} · {r['init']} · {r['target']} · w={int(r['width'])} · {r['precision']}"
                                f" · δ={findings_mod.delta_label(r['delta'])} · {r['stage']}",
                       **{k: _fmt(v) for k, v in s.items()}})
    present = set(data.results["experiment"].unique())
    sections = []
    for exps, sid, title, build in [
        (("growth",), "growth", "Growth: pieces vs depth at init and after training", lambda: _growth_section(data, rows)),
        (("constructions", "precision"), "survival", "Constructions under training: survival depth per precision",
         lambda: _survival_section(data, found)),
        (("constructions", "precision", "growth"), "outcomes", "Outcomes and absorbed updates",
         lambda: outcome_figures(data)),
        (("perturbation",), "perturbation", "Theorem 3.4: one perturbed GD step",
         lambda: _perturbation_section(data, found) + control_figures(data)),
        (("assumptions", "constructions"), "assumptions", "Assumptions (A) and (B) along training",
         lambda: _assumptions_section(data, found)),
        (("backprop",), "backprop", "Backprop: gradient error vs depth and precision", lambda: _backprop_section(data, found)),
        (("growth", "constructions"), "approximation", "Approximation error against depth",
         lambda: _approximation_section(data, found)),
    ]:
        if present & set(exps):
            figs = build()
            if figs:
                sections.append({"id": sid, "title": title, "figures": figs})
    section_ids = {s["id"] for s in sections}
    questions = []
    for key, q in found["questions"].items():
        questions.append({"title": q["title"], "text": q["text"], "test": q["test"],
                          "plot": q["plot"] if q["plot"] in section_ids else None})
    outc = found["questions"].get("outcomes") or {}
    counts = {(g["experiment"], g["init"], g["precision"], g["optimizer"], g["delta"]): g for g in outc.get("groups", [])}
    survival = []
    for r in (found["questions"].get("survival", {}) or {}).get("rows", []):
        g = counts.get((r["experiment"], r["init"], r["precision"], r["optimizer"], r["delta"]))
        oc = " / ".join(str(g[o]) for o in ("kept", "repaired", "frozen", "broken", "collapsed")) if g else ""
        survival.append({**r, "lstar_text": findings_mod.lstar_text(r), "outcome_counts": oc})
    depth_rows = [{**r, "delta": findings_mod.delta_label(r["delta"]),
                   **{k: _fmt(r[k]) for k in ("lr", "lambda_max", "steps", "loss_ratio", "absorbed", "step_half_ulp",
                                              "err_start", "err_end")}}
                  for r in outc.get("depth_table", [])]
    meta = data.meta
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("report", "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["safe_svg"] = lambda s: jinja2.utils.markupsafe.Markup(s)  # our own matplotlib output only
    template = env.get_template("report.html")
    return template.render(
        title=str(meta.get("settings", {}).get("title", "relu-pieces study")),
        rule=RULE, summary=summary, sections=sections, fitted=fitted, questions=questions,
        disagree=found["disagree"], survival=survival, depth_rows=depth_rows, answer=found.get("summary", []),
        reproduce=_reproduce(meta),
        settings=_settings_rows(meta), versions=sorted((meta.get("versions") or {}).items()),
        meta_rows=[("run directory", str(data.path)), ("size", str(meta.get("size", ""))),
                   ("experiments", ", ".join(meta.get("experiments", []))),
                   ("git commit", str(meta.get("git_commit") or "unknown")),
                   ("machine", json.dumps(meta.get("machine", {}))),
                   ("device", str(meta.get("device", "cpu"))),
                   ("wall time", f"{float(meta.get('wall_s_total', 0.0)):.1f} s"),
                   ("finished", str(meta.get("finished") or "not finished"))],
        n_rows=len(data.results),
    )


def write_report(run_dir, out=None):
    """Render the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``),
    atomically. Returns the path."""
    from pieces._io import atomic_write

    data = load_run(run_dir)
    found = findings_mod.findings(data)
    out = Path(out) if out is not None else Path(run_dir) / "report.html"
    atomic_write(out, render_html(data, found))
    findings_mod.write_findings(found, Path(run_dir) / "findings.json")
    return out
