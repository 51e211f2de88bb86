"""The answer on one screen: at most 8 sentences, one per question, each with its key
number (and CI) and the control that backs it, built from the findings' records (so
from the run's data). ``findings.json["summary"]`` holds the same list.

Examples
--------
>>> summary_sentences({})
[]
"""

from __future__ import annotations

import math

from .stats import fmt, fmt_ci
from .survival import lstar_text

__all__ = ["summary_sentences", "MAX_SENTENCES"]

#: The summary's length: it must fit above the fold at 1280×800.
MAX_SENTENCES = 8


def _f(v):
    return fmt(v)


def _ci(v, lo, hi):
    return fmt_ci(v, lo, hi)


def _finite(*v):
    return all(x is not None and isinstance(x, (int, float)) and math.isfinite(x) for x in v)


def _growth(q):
    trained = [g for g in q.get("groups", []) if g["stage"] == "trained"]
    if not trained:
        return None
    lin = [g for g in trained if g["verdict"] == "linear"]
    exp = [g for g in trained if g["verdict"] == "exponential"]
    s = f"Growth: {len(lin)} of {len(trained)} groups of trained He nets grow linearly in depth"
    if lin:
        lo = min(lin, key=lambda g: g["slope"])
        hi = max(lin, key=lambda g: g["slope"])
        s += (f" (slopes {_ci(lo['slope'], lo['slope_lo'], lo['slope_hi'])} to "
              f"{_ci(hi['slope'], hi['slope_lo'], hi['slope_hi'])} pieces per layer)")
    s += f", {len(exp)} exponentially"
    ctrl = [c for c in q.get("controls", []) if c["verdict"] == "exponential"]
    if ctrl:
        c = ctrl[0]
        s += f"; control: the same test calls the exact {c['init']} exponential, r = {_ci(c['rate'], c['rate_lo'], c['rate_hi'])}"
    elif q.get("controls"):
        s += "; control: the same test does not call the exact constructions exponential (the test is blind here)"
    return s + "."


def _survival(surv, outc):
    rows = [r for r in (surv or {}).get("rows", []) if r["experiment"] == "constructions" and r["delta"] > 0]
    if not rows:
        return None
    top = max(r["delta"] for r in rows)
    parts = [f"{r['init']} by {r['optimizer']} L* = {_lstar(r)}" for r in rows if r["delta"] == top]
    s = f"Survival in fp64 from δ = {_f(top)} (kept or repaired, never frozen): " + "; ".join(parts)
    ctrl = (outc or {}).get("positive_control")
    if ctrl and ctrl.get("passed"):
        b = ctrl["best"]
        s += (f"; positive control: {b['optimizer']} repairs {_f(100 * b['repaired'])}% of sawtooth(L = {b['depth']}) "
              "starts")
    elif ctrl:
        s += "; the positive control failed (no optimizer repairs the shallow sawtooth)"
    return s + "."


def _lstar(r):
    return lstar_text(r)


def _outcomes(outc):
    if not outc:
        return None
    groups = outc.get("groups", [])
    tot = {o: sum(g[o] for g in groups) for o in ("kept", "repaired", "frozen", "broken", "collapsed")}
    n = sum(tot.values())
    return (f"Outcomes of the {n} trained construction runs: " + ", ".join(f"{v} {k}" for k, v in tot.items())
            + " (frozen runs say nothing about survival and are listed below).")


def _roundoff(outc):
    recs = (outc or {}).get("absorbed_gd", [])
    low = [r for r in recs if r["precision"] != "fp64"]
    ref = [r for r in recs if r["precision"] == "fp64"]
    if not low:
        return None
    worst = max(low, key=lambda r: (r["absorbed"] if _finite(r["absorbed"]) else -1))
    s = (f"Round-off: GD at the stable step in {worst['precision']} has {_f(worst['absorbed'])} of its updates "
         f"absorbed at L = {worst['depth']} (first step {_f(worst['step_half_ulp'])}× half an ulp)")
    if worst["underflow_depths"]:
        s += f" and its step underflows to 0 at L = {', '.join(map(str, worst['underflow_depths']))}"
    if ref:
        s += (f"; fp64 beside it absorbs {_f(ref[0]['absorbed'])} at L = {ref[0]['depth']} (first step "
              f"{_f(ref[0]['step_half_ulp'])}× half an ulp)")
    return s + "."


def _perturbation(q):
    if not q:
        return None
    laws = [w for w in q.get("laws", []) if _finite(w["slope"], w["lo"], w["hi"])]
    ctrl = q.get("positive_control")
    if not laws:
        return None
    lo = min(w["lo"] for w in laws)
    hi = max(w["hi"] for w in laws)
    s = f"One perturbed step: the log–log slope of E[pieces] in η lies in [{_f(lo)}, {_f(hi)}] at every start"
    if ctrl:
        s += (f"; the positive control (absolute noise) {'detects' if ctrl['detected'] else 'does not detect'} "
              f"its effect, slope {_ci(ctrl['slope'], *ctrl['ci'])}")
        if ctrl["detected"] and _finite(ctrl["detectable_eta_slope"]):
            s += f"; the η experiment detects slopes of magnitude ≥ {_f(ctrl['detectable_eta_slope'])}"
        if _finite(ctrl.get("noise_to_range_eta1")):
            s += f" (at η = 1 the noise is {_f(ctrl['noise_to_range_eta1'])} of a preactivation's range)"
    return s + "."


def _bound(q):
    if not q or "bound_ratio_median" not in q:
        return None
    s = (f"The per-net crossing bound holds: measured regions / bound has median {_f(q['bound_ratio_median'])}, "
         f"{q['bound_violations']} net-η pairs exceed it by more than 4 SE")
    it = q.get("iteration")
    if it:
        r = [x for x in it["rows"] if x["init"] == "he"] or it["rows"]
        s += (f"; along {it['steps'][-1]} perturbed steps E[pieces] of {r[0]['init']} nets changes by a median "
              f"factor {_f(r[0]['ratio_last_first'])}, {it['violations']} cells exceed the bound")
    return s + "."


def _mechanism(assump, back):
    parts = []
    a = [f for f in (assump or {}).get("A", []) if _finite(f["slope"])]
    if a:
        parts.append(f"(A) mean 1/|Δb| grows like N^{_ci(a[0]['slope'], a[0]['lo'], a[0]['hi'])} in the width at "
                     f"{a[0]['stage']} of training")
    fits = [f for f in (back or {}).get("fits", []) if f["init"] == "he" and _finite(f["log2_per_layer"])]
    if fits:
        f = max(fits, key=lambda f: f["median_at_max_depth"])
        parts.append(f"the gradient error of He nets in {f['precision']} is {_f(f['median_at_max_depth'])} at the "
                     f"deepest depth, ×2^{_ci(f['log2_per_layer'], f['lo'], f['hi'])} per layer")
    if not parts:
        return None
    return "Assumptions and backprop: " + "; ".join(parts) + "."


def summary_sentences(questions):
    """The summary of a run's findings (``findings(data)["questions"]``)."""
    q = questions
    sents = [_growth(q["growth"]) if "growth" in q else None,
             _survival(q.get("survival"), q.get("outcomes")),
             _outcomes(q.get("outcomes")),
             _roundoff(q.get("outcomes")),
             _perturbation(q.get("perturbation")),
             _bound(q.get("perturbation")),
             _mechanism(q.get("assumptions"), q.get("backprop"))]
    return [s for s in sents if s][:MAX_SENTENCES]
