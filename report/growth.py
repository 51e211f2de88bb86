"""Linear or exponential growth of pieces in depth: count GLMs fitted with statsmodels.

For counts ``y`` at depths ``L`` (one row per network) three models of the mean are
fitted on the same response, with the same family:

- linear:       E[y] = a + b L          (GLM, identity link)
- exponential:  E[y] = c r**L           (GLM, log link: log E = log c + L log r)
- power law:    E[y] = c L**k           (GLM, log link on log L)

The family is Poisson unless the Cameron-Trivedi test finds overdispersion (p < 0.05),
then negative binomial with the test's estimate of alpha (Var = mu + alpha mu**2).
95% confidence intervals of b and r are profile-likelihood intervals. Linear and
exponential are compared with Vuong's test for non-nested models (same number of
parameters, so no correction).

Verdict rule (``RULE``): *exponential* if Vuong's test prefers it at the 5% level and
the profile CI of r lies above 1; *linear* if Vuong's test prefers the linear model at
the 5% level; otherwise *inconclusive*.

Examples
--------
>>> import numpy as np
>>> L = np.repeat(np.arange(1, 13), 10)  # 10 seeds per depth, depths 1..12
>>> fit_growth(L, 2 ** L).verdict
'exponential'
>>> rng = np.random.default_rng(0)
>>> fit_growth(L, rng.poisson(3 + 8 * L)).verdict
'linear'
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm
from scipy import optimize, stats

__all__ = ["fit_growth", "GrowthFit", "ModelFit", "RULE", "overdispersion_test"]

RULE = ("exponential if Vuong's test prefers c·r^L over a + b·L at the 5% level and the 95% "
        "profile CI of r lies above 1; linear if Vuong's test prefers a + b·L at the 5% level; "
        "inconclusive otherwise")

_LEVEL = 0.05
_CHI2 = stats.chi2.ppf(0.95, 1)


@dataclass
class ModelFit:
    """One fitted mean model."""

    name: str
    params: dict
    ci: dict
    llf: float
    aic: float
    bic: float
    converged: bool
    loglike_obs: np.ndarray
    mu: np.ndarray


@dataclass
class GrowthFit:
    """Result of :func:`fit_growth`."""

    n: int
    family: str
    alpha: float
    overdispersion_p: float
    linear: ModelFit
    exponential: ModelFit
    power: ModelFit
    vuong_z: float
    vuong_p: float
    verdict: str

    @property
    def slope(self):
        """Pieces per layer b of the linear model."""
        return self.linear.params["b"]

    @property
    def slope_ci(self):
        return self.linear.ci["b"]

    @property
    def rate(self):
        """r of the exponential model c r**L."""
        return self.exponential.params["r"]

    @property
    def rate_ci(self):
        return self.exponential.ci["r"]

    def summary_row(self):
        return {
            "n": self.n, "family": self.family, "alpha": self.alpha,
            "slope": self.slope, "slope_lo": self.slope_ci[0], "slope_hi": self.slope_ci[1],
            "rate": self.rate, "rate_lo": self.rate_ci[0], "rate_hi": self.rate_ci[1],
            "power_k": self.power.params["k"],
            "aic_linear": self.linear.aic, "aic_exponential": self.exponential.aic, "aic_power": self.power.aic,
            "bic_linear": self.linear.bic, "bic_exponential": self.exponential.bic, "bic_power": self.power.bic,
            "vuong_z": self.vuong_z, "vuong_p": self.vuong_p, "verdict": self.verdict,
        }


def _family(kind, alpha, link):
    if kind == "poisson":
        return sm.families.Poisson(link=link)
    return sm.families.NegativeBinomial(alpha=alpha, link=link)


def _glm(y, X, family, start=None, offset=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sm.GLM(y, X, family=family, offset=offset)
        try:
            res = model.fit(start_params=start, maxiter=200)
        except (ValueError, np.linalg.LinAlgError, FloatingPointError):
            return None
    if not np.all(np.isfinite(res.params)) or not np.all(res.mu > 0):
        return None
    return res


def overdispersion_test(y, mu):
    """Cameron-Trivedi test of Var = mu + alpha mu**2 against alpha = 0.

    Returns ``(alpha_hat, p_value)`` (one-sided).
    """
    y = np.asarray(y, float)
    mu = np.asarray(mu, float)
    z = ((y - mu) ** 2 - y) / mu
    denom = np.sum(mu**2)
    alpha = float(np.sum(z * mu) / denom)
    resid = z - alpha * mu
    dof = max(len(y) - 1, 1)
    se = np.sqrt(np.sum(resid**2) / dof / denom)
    if se == 0:
        return alpha, 0.0 if alpha > 0 else 1.0
    return alpha, float(stats.t.sf(alpha / se, dof))


def _profile_llf(y, x, family, identity):
    """The profile log-likelihood of the coefficient v of ``x``: the intercept is
    maximised out. Its score is monotone in the intercept for Poisson and negative
    binomial with identity or log link, so the maximum is the score's one root."""
    alpha = float(getattr(family, "alpha", 0.0)) if isinstance(family, sm.families.NegativeBinomial) else 0.0

    def mean(a, off):
        return a + off if identity else np.exp(np.clip(a + off, -700, 700))

    def score(a, off):
        mu = mean(a, off)
        w = 1.0 / (mu * (1.0 + alpha * mu)) if identity else 1.0 / (1.0 + alpha * mu)
        return float(np.sum((y - mu) * w))

    def llf(v):
        off = v * x
        if identity:
            lo = -off.min()
            lo = lo + 1e-12 * max(1.0, abs(lo))  # every mean > 0
            step = max(abs(y).max(), 1.0)
        else:
            lo = np.log(max(y.sum(), 1e-300) / np.exp(np.clip(off, -700, 700)).sum()) - 1.0
            step = 1.0
        if score(lo, off) <= 0:  # the maximum is at the domain's edge
            a = lo
        else:
            hi = lo + step
            while score(hi, off) > 0:
                hi += step
                step *= 2
                if step > 1e300:
                    return -np.inf
            a = optimize.brentq(lambda t: score(t, off), lo, hi, xtol=1e-12 * max(1.0, abs(hi)))
        ll = np.sum(family.loglike_obs(y, mean(a, off), scale=1.0))
        return float(ll) if np.isfinite(ll) else -np.inf

    return llf


def _profile_ci(llf, best_value, llf_max, width_guess):
    """95% profile-likelihood CI: where 2 (llf_max - llf(v)) crosses chi2(1, 0.95)."""

    def dev(v):
        return 2 * (llf_max - llf(v)) - _CHI2

    def bound(direction):
        step = max(abs(width_guess), 1e-6 * max(abs(best_value), 1.0))
        lo = best_value
        for _ in range(60):
            hi = best_value + direction * step
            d = dev(hi)
            if not np.isfinite(d):  # outside the model's domain: bisect to its edge
                a, b = lo, hi
                for _ in range(80):
                    m = 0.5 * (a + b)
                    dm = dev(m)
                    if np.isfinite(dm) and dm > 0:
                        return optimize.brentq(dev, a, m, xtol=1e-10 * max(1, abs(m)))
                    if np.isfinite(dm):
                        a = m
                    else:
                        b = m
                return a
            if d > 0:
                return optimize.brentq(dev, lo, hi, xtol=1e-10 * max(1, abs(hi)))
            lo = hi
            step *= 2
        return direction * np.inf

    return (bound(-1), bound(+1))


def _fit_model(name, y, L, kind, alpha):
    n = len(y)
    one = np.ones(n)
    if name == "linear":
        link = sm.families.links.Identity()
        X = np.column_stack([one, L])
        ols = np.linalg.lstsq(X, y, rcond=None)[0]
        start = ols if np.all(X @ ols > 0) else np.array([max(y.mean(), 1e-3), 0.0])
        fam = _family(kind, alpha, link)
        res = _glm(y, X, fam, start=start)
        if res is None:
            return _failed(name, n)
        a, b = res.params
        se = float(res.bse[1]) if np.isfinite(res.bse[1]) else abs(b) + 1
        ci_b = _profile_ci(_profile_llf(y, L, fam, True), b, res.llf, 2 * se)
        params, ci = {"a": float(a), "b": float(b)}, {"b": ci_b}
    else:
        link = sm.families.links.Log()
        xr = L if name == "exponential" else np.log(L)
        X = np.column_stack([one, xr])
        fam = _family(kind, alpha, link)
        res = _glm(y, X, fam)
        if res is None:
            return _failed(name, n)
        c, slope = res.params
        se = float(res.bse[1]) if np.isfinite(res.bse[1]) else abs(slope) + 1
        lo, hi = _profile_ci(_profile_llf(y, xr, fam, False), slope, res.llf, 2 * se)
        if name == "exponential":
            params, ci = {"c": float(np.exp(c)), "r": float(np.exp(slope))}, {"r": (float(np.exp(lo)), float(np.exp(hi)))}
        else:
            params, ci = {"c": float(np.exp(c)), "k": float(slope)}, {"k": (float(lo), float(hi))}
    ll_obs = fam.loglike_obs(y, res.mu, scale=1.0)
    llf = float(np.sum(ll_obs))
    k = 2 + (kind == "negbin")
    return ModelFit(name, params, ci, llf, 2 * k - 2 * llf, k * np.log(n) - 2 * llf,
                    bool(res.converged), ll_obs, np.asarray(res.mu))


def _failed(name, n):
    keys = {"linear": ("a", "b"), "exponential": ("c", "r"), "power": ("c", "k")}[name]
    nan = float("nan")
    return ModelFit(name, {k: nan for k in keys}, {keys[1]: (nan, nan)}, -np.inf, np.inf, np.inf, False,
                    np.full(n, -np.inf), np.full(n, nan))


def vuong(ll1, ll2):
    """Vuong's z and two-sided p for two non-nested models with as many parameters."""
    m = np.asarray(ll1) - np.asarray(ll2)
    if not np.all(np.isfinite(m)):
        inf1, inf2 = np.isneginf(ll1).any(), np.isneginf(ll2).any()
        if inf1 and not inf2:
            return -np.inf, 0.0
        if inf2 and not inf1:
            return np.inf, 0.0
        return 0.0, 1.0
    sd = m.std(ddof=1) if m.size > 1 else 0.0
    if sd == 0:
        z = 0.0 if m.mean() == 0 else np.sign(m.mean()) * np.inf
    else:
        z = np.sqrt(m.size) * m.mean() / sd
    return float(z), float(2 * stats.norm.sf(abs(z)))


def fit_growth(depths, pieces):
    """Fit linear, exponential and power-law growth of ``pieces`` in ``depths``.

    Parameters
    ----------
    depths, pieces : array_like
        One entry per network (seeds × depths); pieces are counts >= 1.

    Returns
    -------
    GrowthFit
    """
    L = np.asarray(depths, dtype=float)
    y = np.asarray(pieces, dtype=float)
    if L.shape != y.shape or L.ndim != 1:
        raise ValueError("depths and pieces must be 1-D and of equal length")
    if y.size < 4 or np.unique(L).size < 3:
        raise ValueError("need at least 4 networks over at least 3 depths")
    if not (np.all(np.isfinite(y)) and np.all(y >= 0) and np.all(L >= 1)):
        raise ValueError("pieces must be finite counts and depths >= 1")
    # family: Poisson unless overdispersed around the better Poisson fit
    pl = _fit_model("linear", y, L, "poisson", 0.0)
    pe = _fit_model("exponential", y, L, "poisson", 0.0)
    best = pl if pl.llf >= pe.llf else pe
    alpha, p_over = overdispersion_test(y, best.mu) if np.all(np.isfinite(best.mu)) else (0.0, 1.0)
    if p_over < _LEVEL and alpha > 0:
        kind = "negbin"
        lin = _fit_model("linear", y, L, kind, alpha)
        exp = _fit_model("exponential", y, L, kind, alpha)
        pw = _fit_model("power", y, L, kind, alpha)
    else:
        kind, alpha = "poisson", 0.0
        lin, exp = pl, pe
        pw = _fit_model("power", y, L, kind, alpha)
    z, p = vuong(lin.loglike_obs, exp.loglike_obs)
    if p < _LEVEL and z < 0 and exp.ci["r"][0] > 1:
        verdict = "exponential"
    elif p < _LEVEL and z > 0:
        verdict = "linear"
    else:
        verdict = "inconclusive"
    return GrowthFit(int(y.size), kind, float(alpha), float(p_over), lin, exp, pw, z, p, verdict)
