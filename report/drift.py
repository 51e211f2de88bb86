"""The CI gate: metric drift and speed drift between two measurements.

A side is an asv commit hash or ref (its result file under ``.asv/results``), an asv
result file, or a study run directory.

Metric drift: a deterministic count (a ``track_`` value with a count unit, or a study's
pieces/regions per configuration and seed) that changes by more than ``metric_tol``; a
change of growth verdict; a slope or rate whose confidence intervals no longer overlap.

Speed drift: for each ``time_`` benchmark both sides recorded samples for, the ratio of
medians candidate/baseline with a bootstrap 95% CI; a regression when the CI's lower
bound exceeds ``factor``, an improvement when its upper bound is below ``1/factor``; the
one-sided bootstrap p-values are Holm-corrected across benchmarks. Speed is gated only
when both sides ran on the same machine.

Load bursts. A shared runner slows down in bursts (another job starts), and a burst
that hits only one side looks like a regression to any unpaired rule. With
``paired=True`` (``pieces gate --paired``) the two sides' samples are taken to be
interleaved in time (``asv run --interleave-rounds`` over both commits, or
``asv continuous --interleave-rounds``): sample i of one side was taken beside sample i
of the other, so the rule compares them pairwise (the median of the ratios
``candidate_i / baseline_i``, bootstrapped over pairs) and a burst that hits both
cancels. What a user should expect on a shared runner: with ``--paired`` and
interleaved rounds, false alarms at about the nominal rate under bursts, lognormal
jitter and heavy tails (``tests/test_gate.py`` calibrates this on seeded synthetic
samples; ``benchmarks/gate_aa.py`` measures it with real timings); unpaired, a burst on
one side is a false alarm, so gate speed only on a dedicated machine.

Examples
--------
``gate("HEAD~1", "HEAD")`` compares the asv results of two commits.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["gate", "GateResult", "load_side", "GateError", "holm"]

COUNT_UNITS = ("pieces", "regions")


class GateError(ValueError):
    """Bad input or missing data: exit code 2."""


@dataclass
class Side:
    label: str
    machine: str
    metrics: dict  # name -> float (deterministic values)
    samples: dict  # name -> list of seconds
    verdicts: dict  # name -> str
    intervals: dict  # name -> (lo, hi)


@dataclass
class GateResult:
    """Outcome of :func:`gate`: ``drifted`` and the table of every comparison."""

    drifted: bool
    speed_gated: bool
    rows: list = field(default_factory=list)

    def to_json(self):
        return {"drifted": self.drifted, "speed_gated": self.speed_gated, "rows": self.rows}


# ---------------------------------------------------------------- loading


def _param_names(params):
    if not params:
        return [""]
    return ["(" + ", ".join(str(p) for p in combo) + ")" for combo in itertools.product(*params)]


def _asv_side(path, label):
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise GateError(f"{path}: not a readable asv result file ({exc})") from None
    if "results" not in data or "result_columns" not in data:
        raise GateError(f"{path}: not an asv result file")
    cols = data["result_columns"]
    machine = str(data.get("params", {}).get("machine", ""))
    metrics, samples, verdicts, intervals = {}, {}, {}, {}
    for name, entry in data["results"].items():
        row = dict(zip(cols, entry))
        values = row.get("result")
        params = row.get("params") or []
        if values is None:
            continue
        if not isinstance(values, list):
            values = [values]
        names = [name + p for p in _param_names(params)]
        short = name.rsplit(".", 1)[-1]
        if short.startswith("track_"):
            for n, v in zip(names, values):
                if v is not None:
                    metrics[n] = float(v)
            if short == "track_growth_verdict" and values and values[0] is not None:
                verdicts[name] = {1: "linear", 2: "exponential", 0: "inconclusive"}.get(int(values[0]), "?")
        elif short.startswith("time_"):
            smp = row.get("samples")
            for i, n in enumerate(names):
                if smp and i < len(smp) and smp[i]:
                    samples[n] = list(map(float, smp[i]))
                elif values[i] is not None:
                    samples[n] = [float(values[i])]
    for kind in ("slope", "rate"):
        key = f"track_growth_{kind}"
        found = {n: v for n, v in metrics.items() if key in n}
        lo = [v for n, v in found.items() if n.endswith("(lo)")]
        hi = [v for n, v in found.items() if n.endswith("(hi)")]
        if lo and hi:
            intervals[kind] = (lo[0], hi[0])
    return Side(label, machine, metrics, samples, verdicts, intervals)


def _study_side(run_dir, label):
    from .load import load_run
    from .render import growth_table

    try:
        data = load_run(run_dir)
    except ValueError as exc:
        raise GateError(str(exc)) from None
    df = data.results
    counts = df[df["metric"].isin(COUNT_UNITS)]
    metrics = {}
    for r in counts.itertuples(index=False):
        key = f"{r.experiment}/{r.stage}/{r.init}/{r.target}/w{r.width}/L{r.depth}/s{r.seed}/{r.precision}/" \
              f"delta{r.delta}/eta{r.eta}/step{r.step}/{r.metric}"
        metrics[key] = float(r.value)
    verdicts, intervals = {}, {}
    for g in growth_table(data):
        if g["fit"] is None:
            continue
        key = f"{g['experiment']}/{g['init']}/{g['target']}/w{g['width']}/{g['precision']}/delta{g['delta']}/{g['stage']}"
        verdicts[key] = g["fit"].verdict
        intervals[key + "/slope"] = g["fit"].slope_ci
        intervals[key + "/rate"] = g["fit"].rate_ci
    machine = json.dumps(data.meta.get("machine", {}), sort_keys=True)
    return Side(label, machine, metrics, {}, verdicts, intervals)


def load_side(spec, results_dir=".asv/results", machine=None):
    """A side of the gate from an asv commit/ref, an asv result file or a run dir."""
    p = Path(spec)
    if p.is_dir() and (p / "results.csv").exists():
        return _study_side(p, spec)
    if p.is_file():
        return _asv_side(p, spec)
    # a commit hash or ref: find its asv result file
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", f"{spec}^{{commit}}"], capture_output=True,
                             text=True, timeout=10)
        commit = out.stdout.strip() if out.returncode == 0 else spec
    except (OSError, subprocess.SubprocessError):
        commit = spec
    root = Path(results_dir)
    if not root.is_dir():
        raise GateError(f"no asv results directory {root}")
    machines = [d for d in root.iterdir() if d.is_dir() and (machine is None or d.name == machine)]
    found = sorted(f for d in machines for f in d.glob(f"{commit[:8]}-*.json"))
    if not found:
        raise GateError(f"no asv results for {spec!r} ({commit[:8]}) under {root}")
    return _asv_side(found[-1], spec)


# ---------------------------------------------------------------- statistics


def holm(pvalues):
    """Holm-adjusted p-values (step-down, monotone)."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p)
    m = p.size
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj


def _bootstrap_ratio(base, cand, rng, n_boot=2000, paired=False):
    b = np.asarray(base, float)
    c = np.asarray(cand, float)
    if paired:
        r = c / b
        return np.median(rng.choice(r, (n_boot, r.size)), axis=1)
    rb = np.median(rng.choice(b, (n_boot, b.size)), axis=1)
    rc = np.median(rng.choice(c, (n_boot, c.size)), axis=1)
    return rc / rb


# ---------------------------------------------------------------- the gate


def gate(baseline, candidate, metric_tol=0.0, factor=1.2, alpha=0.05, results_dir=".asv/results",
         machine=None, seed=0, paired=False):
    """Compare two sides; see the module docstring (``paired``: the samples were taken
    in interleaved rounds; a benchmark whose sides differ in sample count is compared
    unpaired).

    Returns
    -------
    GateResult
    """
    if not factor > 1:
        raise GateError(f"--factor must be > 1, got {factor}")
    if not metric_tol >= 0:
        raise GateError(f"--metric-tol must be >= 0, got {metric_tol}")
    base = baseline if isinstance(baseline, Side) else load_side(baseline, results_dir, machine)
    cand = candidate if isinstance(candidate, Side) else load_side(candidate, results_dir, machine)
    rows = []
    drifted = False
    common = sorted(set(base.metrics) & set(cand.metrics))
    if not common and not (set(base.samples) & set(cand.samples)):
        raise GateError("the two sides share no benchmark or measurement")
    for name in common:
        b, c = base.metrics[name], cand.metrics[name]
        is_count = any(u in name for u in ("pieces", "regions")) and "slope" not in name and "rate" not in name
        if not is_count:
            continue
        bad = not (abs(c - b) <= metric_tol or (np.isnan(b) and np.isnan(c)))
        drifted |= bad
        rows.append({"kind": "metric", "name": name, "baseline": b, "candidate": c,
                     "status": "DRIFT" if bad else "ok"})
    for name in sorted(set(base.verdicts) & set(cand.verdicts)):
        bad = base.verdicts[name] != cand.verdicts[name]
        drifted |= bad
        rows.append({"kind": "verdict", "name": name, "baseline": base.verdicts[name],
                     "candidate": cand.verdicts[name], "status": "DRIFT" if bad else "ok"})
    for name in sorted(set(base.intervals) & set(cand.intervals)):
        (b0, b1), (c0, c1) = base.intervals[name], cand.intervals[name]
        bad = bool(c0 > b1 or c1 < b0)
        drifted |= bad
        rows.append({"kind": "interval", "name": name, "baseline": [b0, b1], "candidate": [c0, c1],
                     "status": "DRIFT" if bad else "ok"})
    speed_gated = bool(base.machine) and base.machine == cand.machine
    timed = sorted(set(base.samples) & set(cand.samples))
    rng = np.random.default_rng(seed)
    speed = []
    for name in timed:
        pair = paired and len(base.samples[name]) == len(cand.samples[name])
        ratios = _bootstrap_ratio(base.samples[name], cand.samples[name], rng, paired=pair)
        if pair:
            point = float(np.median(np.asarray(cand.samples[name], float) / np.asarray(base.samples[name], float)))
        else:
            point = float(np.median(cand.samples[name]) / np.median(base.samples[name]))
        lo, hi = (float(v) for v in np.quantile(ratios, [alpha / 2, 1 - alpha / 2]))
        p_slow = float(np.mean(ratios <= factor))
        p_fast = float(np.mean(ratios >= 1 / factor))
        speed.append([name, point, lo, hi, p_slow, p_fast])
    if speed:
        adj_slow = holm([s[4] for s in speed])
        adj_fast = holm([s[5] for s in speed])
        for (name, point, lo, hi, _, _), ps, pf in zip(speed, adj_slow, adj_fast):
            status = "ok"
            if lo > factor and ps < alpha:
                status = "SLOWER"
            elif hi < 1 / factor and pf < alpha:
                status = "FASTER"
            if status != "ok" and speed_gated:
                drifted = True
            rows.append({"kind": "speed", "name": name, "baseline": float(np.median(base.samples[name])),
                         "candidate": float(np.median(cand.samples[name])), "ratio": point,
                         "ci": [lo, hi], "p_holm": float(min(ps, pf)),
                         "status": status if speed_gated or status == "ok" else status + " (not gated)"})
    return GateResult(drifted, speed_gated, rows)


def format_table(result):
    lines = [f"{'kind':9} {'status':20} {'baseline':>14} {'candidate':>14} {'ratio [95% CI]':>24}  name"]
    for r in result.rows:
        def f(v):
            if isinstance(v, list):
                return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
            return f"{v:.6g}" if isinstance(v, float) else str(v)
        ratio = f"{r['ratio']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]" if "ratio" in r else ""
        lines.append(f"{r['kind']:9} {r['status']:20} {f(r['baseline']):>14} {f(r['candidate']):>14} {ratio:>24}  {r['name']}")
    n_bad = sum(1 for r in result.rows if r["status"] in ("DRIFT", "SLOWER", "FASTER"))
    gated = "speed gated (same machine)" if result.speed_gated else "speed reported, not gated (different machines)"
    lines.append(f"{'DRIFT' if result.drifted else 'no drift'}: {n_bad} of {len(result.rows)} comparisons; {gated}")
    return "\n".join(lines)


def junit_xml(result):
    from xml.sax.saxutils import escape, quoteattr

    cases = []
    for r in result.rows:
        name = quoteattr(f"{r['kind']}:{r['name']}")
        if r["status"] in ("DRIFT", "SLOWER", "FASTER"):
            msg = quoteattr(f"{r['status']}: {r['baseline']} -> {r['candidate']}")
            cases.append(f'<testcase classname="pieces.gate" name={name}><failure message={msg}/></testcase>')
        else:
            cases.append(f'<testcase classname="pieces.gate" name={name}/>')
    n_fail = sum(1 for r in result.rows if r["status"] in ("DRIFT", "SLOWER", "FASTER"))
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<testsuite name="pieces gate" tests="{len(cases)}" '
            f'failures="{n_fail}">\n' + "\n".join(cases) + "\n</testsuite>\n")


def html_page(result):
    import jinja2

    env = jinja2.Environment(autoescape=True)
    t = env.from_string(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>pieces gate</title>"
        "<style>body{font-family:sans-serif} td,th{border:1px solid #ccc;padding:2px 6px}"
        " table{border-collapse:collapse} .bad{background:#fde8e8}</style></head><body>"
        "<h1>{{ 'DRIFT' if r.drifted else 'no drift' }}</h1><p>{{ gated }}</p><table>"
        "<tr><th>kind</th><th>status</th><th>baseline</th><th>candidate</th><th>ratio</th><th>name</th></tr>"
        "{% for x in r.rows %}<tr class='{{ 'bad' if x.status in ('DRIFT','SLOWER','FASTER') else '' }}'>"
        "<td>{{ x.kind }}</td><td>{{ x.status }}</td><td>{{ x.baseline }}</td><td>{{ x.candidate }}</td>"
        "<td>{{ x.get('ratio', '') }}</td><td>{{ x.name }}</td></tr>{% endfor %}</table></body></html>")
    gated = "speed gated (same machine)" if result.speed_gated else "speed reported, not gated"
    return t.render(r=result, gated=gated)
