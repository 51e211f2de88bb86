"""Plots as inline SVG strings (matplotlib, Agg): no files, no network."""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["svg", "growth_plot", "line_plot", "hist_plot", "scatter_plot", "survival_plot"]

plt.rcParams.update({"svg.hashsalt": "relu-pieces", "font.size": 9, "figure.dpi": 96})


def svg(fig):
    """The figure as an ``<svg>`` element (no XML prolog), deterministic ids."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # RDF boilerplate
    return text[text.index("<svg"):]


def growth_plot(groups, title):
    """Pieces vs depth, per-seed points, fitted curves with CI bands; log and linear axes.

    ``groups``: list of ``(label, depths, pieces, fit or None, reference or None)`` where
    reference is ``(name, depths, values)``.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    ys = np.concatenate([np.asarray(g[2], float) for g in groups]) if groups else np.array([1.0])
    ys = ys[np.isfinite(ys)]
    top = float(ys.max()) if ys.size else 1.0
    low = float(ys[ys > 0].min()) if np.any(ys > 0) else 1.0
    for ax, scale in zip(axes, ("linear", "log")):
        for k, (label, L, y, fit, ref) in enumerate(groups):
            color = f"C{k}"
            jitter = (np.random.default_rng(k).random(len(L)) - 0.5) * 0.25
            ax.plot(np.asarray(L) + jitter, y, ".", color=color, alpha=0.35, ms=3)
            grid = np.linspace(min(L), max(L), 100)
            if fit is not None and np.isfinite(fit.slope):
                a, b = fit.linear.params["a"], fit.linear.params["b"]
                lo, hi = fit.slope_ci
                ax.plot(grid, a + b * grid, "-", color=color, lw=1.2, label=f"{label}: linear")
                if np.isfinite(lo) and np.isfinite(hi):
                    ax.fill_between(grid, a + lo * grid, a + hi * grid, color=color, alpha=0.12)
            if fit is not None and np.isfinite(fit.rate):
                c, r = fit.exponential.params["c"], fit.rate
                rlo, rhi = fit.rate_ci
                ax.plot(grid, c * r**grid, "--", color=color, lw=1.0, label=f"{label}: exponential")
                if np.isfinite(rlo) and np.isfinite(rhi):
                    ax.fill_between(grid, c * rlo**grid, c * rhi**grid, color=color, alpha=0.08)
            if ref is not None:
                name, rL, rv = ref
                ax.plot(rL, rv, ":", color="k", lw=1, label=name if k == 0 else None)
        ax.set_yscale(scale)
        # the data decide the axis: a rejected model's CI band may be far wider
        if scale == "linear":
            ax.set_ylim(0, 1.3 * top)
        else:
            ax.set_ylim(0.5 * low, 2.0 * top)
        ax.set_xlabel("depth L")
        ax.set_ylabel("pieces")
        ax.set_title(f"{scale} axis")
    axes[1].legend(fontsize=7, loc="upper left")
    return svg(fig)


def line_plot(series, xlabel, ylabel, title, logy=False, logx=False, hline=None, dashed_from=None, xticks=None):
    """``series``: list of ``(label, x, y)`` (y may be 2-D: rows are seeds, plotted
    faintly, with their median bold). ``hline``: ``(y, label)`` of a dotted reference;
    series from index ``dashed_from`` on are drawn dashed, in the colours of the first."""
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for k, (label, x, y) in enumerate(series):
        y = np.asarray(y, dtype=float)
        x = np.asarray(x, dtype=float)
        dashed = dashed_from is not None and k >= dashed_from
        color = f"C{(k - dashed_from) % 10 if dashed else k % 10}"
        if y.ndim == 2:
            for row in y[:12]:  # a few seeds faintly: enough to see the spread, not megabytes
                ax.plot(x, row, "-", color=color, alpha=0.15, lw=0.7)
            with np.errstate(all="ignore"):
                y = np.nanmedian(y, axis=0)
        if logy:
            y = np.where(y > 0, y, np.nan)
        ax.plot(x, y, "--" if dashed else "-o", color=color, ms=3, lw=1.3, label=label)
    if xticks is not None:
        ax.set_xscale("log" if logx else "linear")
        ax.set_xticks(list(xticks), [str(t) for t in xticks])
        ax.minorticks_off()
        logx = False
    return _finish(fig, ax, xlabel, ylabel, title, logy, logx, hline, bool(series))


def _finish(fig, ax, xlabel, ylabel, title, logy, logx, hline, legend):
    """Axes, labels, the reference line and the legend; the figure as SVG."""
    if hline is not None:
        ax.axhline(hline[0], color="k", ls=":", lw=1, label=hline[1])
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if legend:
        ax.legend(fontsize=6)
    return svg(fig)


def scatter_plot(series, xlabel, ylabel, title, logy=False, hline=None):
    """``series``: list of ``(label, x, y)`` points, jittered in x."""
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for k, (label, x, y) in enumerate(series):
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        jitter = (np.random.default_rng(k).random(x.size) - 0.5) * 0.4
        ax.plot(x + jitter, y, ".", color=f"C{k % 10}", ms=3, alpha=0.6, label=label)
    return _finish(fig, ax, xlabel, ylabel, title, logy, False, hline, bool(series))


def survival_plot(rows, fits):
    """Median survival depth L* (with CI; censored as triangles) against significand
    bits K, per construction and start, with the fitted lines and L = K."""
    fig, ax = plt.subplots(figsize=(5.4, 3.6))
    kinds = sorted({(r["init"], r["delta"] > 0) for r in rows})
    for k, (init, pert) in enumerate(kinds):
        sel = [r for r in rows if r["init"] == init and (r["delta"] > 0) == pert]
        K = np.array([r["bits"] for r in sel], float)
        med = np.array([r["median"] for r in sel])
        lo = np.array([r["lo"] for r in sel])
        hi = np.array([r["hi"] for r in sel])
        cens = np.array([r["median_censored"] for r in sel])
        off = (k - (len(kinds) - 1) / 2) * 0.25
        color = f"C{k}"
        label = f"{init}, δ={'2^-K' if pert else '0'}"
        ax.errorbar(K[~cens] + off, med[~cens], yerr=[med[~cens] - lo[~cens], hi[~cens] - med[~cens]], fmt="o",
                    color=color, ms=4, capsize=2, label=label)
        if cens.any():
            ax.plot(K[cens] + off, med[cens], "^", color=color, ms=6, label=f"{label} (censored)")
        for f in fits:
            if f["init"] == init and (f["delta"] == "ulp") == pert:
                g = np.linspace(K.min(), K.max(), 50)
                ax.plot(g, f["a"] + f["b"] * g, "-", color=color, lw=1)
    allK = np.array([r["bits"] for r in rows], float)
    g = np.linspace(allK.min(), allK.max(), 50)
    top = max(r["lmax"] for r in rows)
    ax.plot(g, np.minimum(g, top + 1), "k:", lw=1, label="L = K")
    ax.set_xlabel("significand bits K")
    ax.set_ylabel("survival depth L*")
    ax.set_title("survival depth against precision")
    ax.legend(fontsize=6)
    return svg(fig)


def hist_plot(series, xlabel, title):
    """``series``: list of ``(label, values)``; histograms on a log x axis."""
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    vals = [np.asarray(v, float) for _, v in series]
    vals = [v[np.isfinite(v) & (v > 0)] for v in vals]
    allv = np.concatenate(vals) if vals else np.array([1.0])
    if allv.size == 0:
        allv = np.array([1.0])
    bins = np.logspace(np.log10(allv.min()), np.log10(allv.max()) + 1e-9, 30)
    for k, ((label, _), v) in enumerate(zip(series, vals)):
        ax.hist(v, bins=bins, alpha=0.5, color=f"C{k}", label=label)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("networks")
    ax.set_title(title)
    if series:
        ax.legend(fontsize=7)
    return svg(fig)
