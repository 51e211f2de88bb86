"""``pieces report --asv``: speed trends and the pieces-vs-depth metric over the commits
in asv's results, as one self-contained HTML file (inline SVG, no network)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import jinja2
import numpy as np

from . import plots
from .drift import GateError, _asv_side

__all__ = ["load_history", "render_asv_html", "write_asv_report"]

_VERDICTS = {1: "linear", 2: "exponential", 0: "inconclusive"}


def load_history(results_dir):
    """Every asv result file under ``results_dir``, oldest commit first.

    Returns a list of dicts: ``commit``, ``date``, ``machine``, ``side`` (see drift.Side).
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise GateError(f"no asv results directory {root}")
    out = []
    for f in sorted(root.glob("*/*.json")):
        if f.name == "machine.json":
            continue
        try:
            data = json.loads(f.read_text())
        except ValueError:
            raise GateError(f"{f}: not valid JSON") from None
        if "results" not in data:
            continue
        out.append({"commit": data.get("commit_hash", "?")[:8], "date": data.get("date") or 0,
                    "machine": data.get("params", {}).get("machine", ""), "side": _asv_side(f, f.name)})
    if not out:
        raise GateError(f"no asv result files under {root}")
    out.sort(key=lambda r: (r["date"], r["commit"]))
    return out


def _speed_section(history, factor):
    series = defaultdict(list)
    for i, h in enumerate(history):
        for name, smp in h["side"].samples.items():
            series[name].append((i, float(np.median(smp))))
    figs, regressions = [], []
    for name in sorted(series):
        pts = series[name]
        x = [p[0] for p in pts]
        y = [p[1] for p in pts]
        for (i0, a), (i1, b) in zip(pts[:-1], pts[1:]):
            if b / a > factor:
                regressions.append({"benchmark": name, "commit": history[i1]["commit"], "ratio": f"{b / a:.2f}"})
        figs.append((name, x, y))
    svgs = []
    for k in range(0, len(figs), 6):
        group = figs[k : k + 6]
        marks = {r["benchmark"] for r in regressions}
        svgs.append(plots.line_plot([(("⚠ " if n in marks else "") + n.split(".", 1)[-1], x, y) for n, x, y in group],
                                    "commit (oldest → newest)", "median seconds", "speed trends", logy=True))
    return svgs, regressions


def _metric_section(history):
    figs, changes = [], []
    prev = None
    for h in history:
        m = h["side"].metrics
        pieces = {k: v for k, v in m.items() if ".track_trained_pieces(" in k}
        verdict = next((_VERDICTS.get(int(v), "?") for k, v in m.items() if k.endswith("track_growth_verdict")), "–")
        if pieces:
            by_depth = defaultdict(list)
            for k, v in pieces.items():
                depth = int(k.rsplit("(", 1)[1].split(",")[0].rstrip(")").strip("' "))
                by_depth[depth].append(v)
            L = sorted(by_depth)
            figs.append({"commit": h["commit"], "verdict": verdict,
                         "svg": plots.line_plot([(f"{h['commit']} ({verdict})", L, [np.mean(by_depth[d]) for d in L])],
                                                "depth L", "mean pieces", f"commit {h['commit']}: {verdict}")})
        if prev is not None:
            for k in sorted(set(m) & set(prev["side"].metrics)):
                a, b = prev["side"].metrics[k], m[k]
                if not (a == b or (np.isnan(a) and np.isnan(b))):
                    changes.append({"commit": h["commit"], "metric": k, "before": f"{a:.6g}", "after": f"{b:.6g}"})
        prev = h
    return figs, changes


_TEMPLATE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>relu-pieces: asv history</title>
<style>body{font-family:system-ui,sans-serif;max-width:1150px;margin:1.5em auto;padding:0 1em}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:3px 6px}
figure{display:inline-block;margin:.4em}</style></head><body>
<h1>relu-pieces across commits</h1>
<p>{{ n }} result files, commits {{ commits|join(", ") }}.</p>
<h2>Speed trends</h2>
<p>A median more than {{ factor }}× its predecessor's is a regression (⚠ in the legend).</p>
{% for s in speed %}<figure>{{ s|safe_svg }}</figure>{% endfor %}
<table><tr><th>benchmark</th><th>commit</th><th>ratio</th></tr>
{% for r in regressions %}<tr><td>{{ r.benchmark }}</td><td>{{ r.commit }}</td><td>{{ r.ratio }}</td></tr>
{% else %}<tr><td colspan="3">no regressions</td></tr>{% endfor %}</table>
<h2>Pieces vs depth, per commit</h2>
{% for f in metric %}<figure>{{ f.svg|safe_svg }}<figcaption>{{ f.commit }}: {{ f.verdict }}</figcaption></figure>
{% else %}<p>No metric benchmarks in these results.</p>{% endfor %}
<h2>Commits where a metric changed</h2>
<table><tr><th>commit</th><th>metric</th><th>before</th><th>after</th></tr>
{% for c in changes %}<tr><td>{{ c.commit }}</td><td>{{ c.metric }}</td><td>{{ c.before }}</td><td>{{ c.after }}</td></tr>
{% else %}<tr><td colspan="4">none</td></tr>{% endfor %}</table>
</body></html>"""


def render_asv_html(results_dir, factor=1.2):
    history = load_history(results_dir)
    speed, regressions = _speed_section(history, factor)
    metric, changes = _metric_section(history)
    env = jinja2.Environment(autoescape=True)
    env.filters["safe_svg"] = lambda s: jinja2.utils.markupsafe.Markup(s)  # our matplotlib output
    return env.from_string(_TEMPLATE).render(
        n=len(history), commits=[h["commit"] for h in history], speed=speed, regressions=regressions,
        metric=metric, changes=changes, factor=factor)


def write_asv_report(results_dir, out):
    from pieces._io import atomic_write

    atomic_write(out, render_asv_html(results_dir))
    return Path(out)
