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

from . import plots
from .growth import RULE, fit_growth
from .load import load_run

__all__ = ["render_html", "write_report", "growth_table"]

_GROWTH_EXPERIMENTS = ("growth", "constructions", "precision")


def _fmt(v, digits=3):
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    v = float(v)
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


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
    keys = ["experiment", "init", "target", "width", "precision", "stage"]
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
        div = data.select(experiment=g["experiment"], init=g["init"], precision=g["precision"], metric="diverged")
        div = div[(div["width"] == g["width"]) & div["depth"].isin(set(depths.astype(int)))]
        if g["init"] == "he":
            div = div[div["target"] == g["target"]]
        n_div = int(div["value"].sum()) if g["stage"] == "trained" else 0
        loss = data.select(experiment=g["experiment"], init=g["init"], precision=g["precision"], metric="loss",
                           stage=g["stage"])
        loss = loss[(loss["width"] == g["width"]) & loss["depth"].isin(set(depths.astype(int)))]
        if g["init"] == "he":
            loss = loss[loss["target"] == g["target"]]
        med_loss = float(loss["value"].median()) if len(loss) else float("nan")
        out.append({**g, "fit": fit, "error": err, "depths": depths, "pieces": pieces, "diverged": n_div, "median_loss": med_loss,
                    "n_seeds": int(sub["seed"].nunique()), "depth_range": f"{int(depths.min())}–{Lmax}",
                    "mean_at_max": mean_at, "refs_at_max": refs})
    return out


def _growth_section(data, rows, experiment):
    figs = []
    mine = [r for r in rows if r["experiment"] == experiment]
    keys = sorted({(r["init"], r["target"], int(r["width"]), r["precision"]) for r in mine})
    for init, target, width, prec in keys:
        groups = []
        for r in mine:
            if (r["init"], r["target"], int(r["width"]), r["precision"]) != (init, target, width, prec):
                continue
            L = sorted(set(r["depths"]))
            refs = _references(init, width, L)
            ref_name = "2^L (construction)" if init != "he" else "w·L + 1 (random init)"
            groups.append((r["stage"], r["depths"], r["pieces"], r["fit"], (ref_name, L, refs[ref_name])))
        title = f"{init}, target {target}, width {width}, {prec}"
        figs.append({"title": title, "svg": plots.growth_plot(groups, title)})
    # pieces during training
    tr = data.select(experiment=experiment, stage="training", metric="pieces").copy()
    own = tr["init"] != "he"
    tr.loc[own, "target"] = tr.loc[own, "target"].str.split(":").str[0] + " (own)"
    for (init, target, width, prec), sub in tr.groupby(["init", "target", "width", "precision"], sort=True):
        depths = sorted(sub["depth"].unique())
        pick = depths if len(depths) <= 4 else [depths[0], depths[len(depths) // 3], depths[2 * len(depths) // 3], depths[-1]]
        series = []
        for L in pick:
            s = sub[sub["depth"] == L]
            table = s.pivot_table(index="seed", columns="step", values="value")
            series.append((f"L={int(L)}", table.columns.to_numpy(), table.to_numpy()))
        figs.append({"title": f"pieces during training: {init}, {target}, w={width}, {prec}",
                     "svg": plots.line_plot(series, "step", "pieces", f"during training ({init}, w={width}, {prec})")})
    return figs


def _perturbation_section(data):
    df = data.select(experiment="perturbation", stage="after", metric="pieces")
    figs = []
    for (init, width), sub in df.groupby(["init", "width"], sort=True):
        series = []
        for eta, s in sub.groupby("eta", sort=True):
            t = s.pivot_table(index="seed", columns="depth", values="value")
            series.append((f"η={eta:g}", t.columns.to_numpy(), t.to_numpy()))
        before = data.select(experiment="perturbation", stage="before", metric="pieces", init=init)
        before = before[before["width"] == width]
        if len(before):
            t = before.pivot_table(index="seed", columns="depth", values="value")
            series.append(("before the step", t.columns.to_numpy(), t.to_numpy()))
        figs.append({"title": f"pieces after one perturbed GD step: {init}, w={width}",
                     "svg": plots.line_plot(series, "depth L", "pieces", f"after a perturbed step ({init}, w={width})",
                                            logy=True)})
    return figs


def _assumptions_section(data):
    figs = []
    df = data.select(experiment="assumptions", metric="mean_inv_bias_update")
    if len(df):
        series = [(f"L={int(L)}", s["value"].to_numpy()) for L, s in df.groupby("depth", sort=True)]
        figs.append({"title": "bias-update sizes: mean of 1/|Δb| per network",
                     "svg": plots.hist_plot(series, "mean 1/|Δb|", "bias-update distribution")})
    df = data.select(experiment="assumptions", metric="max_input_derivative")
    if len(df):
        series = []
        for L, s in df.groupby("depth", sort=True):
            t = s.pivot_table(index="seed", columns="layer", values="value")
            series.append((f"L={int(L)}", t.columns.to_numpy() + 1, t.to_numpy()))
        figs.append({"title": "max |∂z/∂x| of the preactivations, by layer",
                     "svg": plots.line_plot(series, "layer", "max |dz/dx|", "input-derivative bounds", logy=True)})
    return figs


def _backprop_section(data):
    df = data.select(experiment="backprop", metric="backprop_error")
    figs = []
    for init, sub in df.groupby("init", sort=True):
        series = []
        for prec, s in sub.groupby("precision", sort=True):
            t = s.pivot_table(index="seed", columns="depth", values="value")
            series.append((prec, t.columns.to_numpy(), t.to_numpy()))
        figs.append({"title": f"relative gradient error vs depth: {init}",
                     "svg": plots.line_plot(series, "depth L", "relative error vs fp64", f"backprop error ({init})",
                                            logy=True)})
    return figs


def _settings_rows(meta):
    s = meta.get("settings", {})
    return [(k, json.dumps(v) if not isinstance(v, str) else v) for k, v in s.items()]


def render_html(data):
    """The report of a loaded run (:class:`report.load.RunData`) as HTML text."""
    rows = growth_table(data)
    summary = []
    for r in rows:
        f = r["fit"]
        summary.append({
            "experiment": r["experiment"], "init": r["init"], "target": r["target"], "width": int(r["width"]),
            "precision": r["precision"], "stage": r["stage"], "n_seeds": r["n_seeds"], "depths": r["depth_range"], "diverged": r["diverged"], "median_loss": _fmt(r["median_loss"]),
            "verdict": f.verdict if f else "error", "error": r["error"],
            "slope": _fmt(f.slope) if f else "", "slope_ci": f"[{_fmt(f.slope_ci[0])}, {_fmt(f.slope_ci[1])}]" if f else "",
            "rate": _fmt(f.rate) if f else "", "rate_ci": f"[{_fmt(f.rate_ci[0])}, {_fmt(f.rate_ci[1])}]" if f else "",
            "vuong": f"z={_fmt(f.vuong_z)}, p={_fmt(f.vuong_p)}" if f else "",
            "mean_at_max": _fmt(r["mean_at_max"]),
            "refs": "; ".join(f"{k}: {_fmt(v)}" for k, v in r["refs_at_max"].items()),
        })
    fitted = []
    for r in rows:
        if r["fit"] is None:
            continue
        s = r["fit"].summary_row()
        fitted.append({"group": f"{r['experiment']} · {r['init']} · {r['target']} · w={int(r['width'])} · {r['precision']} · {r['stage']}",
                       **{k: _fmt(v) for k, v in s.items()}})
    present = set(data.results["experiment"].unique())
    sections = []
    for exp, title, build in [
        ("growth", "Growth: pieces vs depth at init and after training", lambda: _growth_section(data, rows, "growth")),
        ("constructions", "Constructions: do sawtooth and Yarotsky nets keep 2^L pieces?", lambda: _growth_section(data, rows, "constructions")),
        ("perturbation", "Perturbation: pieces after one perturbed GD step", lambda: _perturbation_section(data)),
        ("assumptions", "Assumptions: bias updates and input-derivative bounds", lambda: _assumptions_section(data)),
        ("backprop", "Backprop: gradient error vs depth and precision", lambda: _backprop_section(data)),
        ("precision", "Precision: growth and constructions in lower precision", lambda: _growth_section(data, rows, "precision")),
    ]:
        if exp in present:
            sections.append({"id": exp, "title": title, "figures": build()})
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
        rule=RULE, summary=summary, sections=sections, fitted=fitted,
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
    out = Path(out) if out is not None else Path(run_dir) / "report.html"
    atomic_write(out, render_html(data))
    return out
