"""Numbers and statistics of the report's prose: one number format, CIs, OLS slopes.

Examples
--------
>>> fmt(0.000123), fmt_ci(2.0, 1.5, 2.5)
('1.23e-04', '2 [1.5, 2.5]')
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

__all__ = ["fmt", "fmt_ci", "log_slope", "delta_label", "precision_bits", "mean_ci", "curvature_p"]


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


def precision_bits(p):
    from pieces.precision import parse_precision

    try:
        return parse_precision(str(p)).bits
    except ValueError:
        return None


def delta_label(d, precision=None):
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


def curvature_p(x, y):
    """p-value of a quadratic term in a log–log fit (is log y linear in log x?)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 5 or len(np.unique(x[ok])) < 3:
        return float("nan")
    lx = np.log(x[ok])
    X = sm.add_constant(np.column_stack([lx, lx**2]))
    return float(sm.OLS(np.log(y[ok]), X).fit().pvalues[2])


def mean_ci(v):
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan"), 0
    if v.size == 1 or np.all(v == v[0]):
        return float(v.mean()), float(v.mean()), float(v.mean()), int(v.size)
    m = float(v.mean())
    h = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - h, m + h, int(v.size)
