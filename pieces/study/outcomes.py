"""The outcome of a trained construction: kept, repaired, frozen, broken or collapsed.

A construction "survives" training only if it still *works*: its pieces are there and
its function is within τ of the exact construction of that depth. A net that training
could not move (every update absorbed, the step underflowed, or the loss did not fall
from a start that was off) is **frozen**: it says nothing about survival, whatever its
count. The order of the tests below is the order of precedence.

=========  ==================================================================
collapsed  fewer than ``config.SURVIVAL_FRACTION`` × 2^L pieces after training
           (or the run diverged): the exponential count is gone
frozen     training did not move the function: the lr underflowed to 0, every
           attempted update was absorbed, or the start was beyond τ and the
           loss fell by less than ``FROZEN_LOSS_RATIO``
kept       within τ of the exact construction at the start and at the end
repaired   beyond τ at the start, within τ at the end
broken     the pieces are there (not collapsed) but the function is not
           (beyond τ at the end), and training moved the net
=========  ==================================================================

Survival (and the survival depth L*) counts ``kept`` and ``repaired`` only.

Examples
--------
>>> tau("sawtooth", 8), tau("yarotsky_square", 3) == 2.0 ** -8
(0.0625, True)
>>> OUTCOMES[classify(pieces=256, depth=8, err_start=0.4, err_end=0.01, tau=0.0625,
...                   loss_ratio=1e-4, absorbed_fraction=0.0)]
'repaired'
>>> OUTCOMES[classify(pieces=256, depth=8, err_start=0.4, err_end=0.4, tau=0.0625,
...                   loss_ratio=1.0, absorbed_fraction=1.0)]
'frozen'
"""

from __future__ import annotations

import math

from .. import config

__all__ = ["OUTCOMES", "SURVIVING", "FROZEN_LOSS_RATIO", "tau", "classify", "half_ulp_ratio"]

#: The outcomes, in the order of their index in ``results.csv`` (metric ``outcome``).
OUTCOMES = ("kept", "repaired", "frozen", "broken", "collapsed")

#: Outcomes that count as survival.
SURVIVING = ("kept", "repaired")

#: A start beyond τ whose final loss is at least this fraction of its initial loss was
#: not moved by training (a 10% fall is within what a step that cannot repair anything
#: achieves by shaving the largest residuals).
FROZEN_LOSS_RATIO = 0.9


def tau(init, depth):
    """τ of a construction: how close to the exact construction of its depth (sup norm
    on [0, 1]) a trained net must be to count as the construction.

    - ``sawtooth``: 1/16 of its amplitude 1. Within it every tooth is still a tooth
      (peaks above 15/16, valleys below 1/16): the 2^(L-1) full-amplitude oscillations
      that depth-separation arguments use are all there. A relative start perturbation
      δ = 10^-3 is beyond it from L ≈ 6 on, δ = 2^-53 at no depth of the study.
    - ``yarotsky_square``: its own approximation error 2^(-2m-2). Within it the
      trained net approximates x² to 2 · 2^(-2m-2): the construction's rate 4^-m (the
      reason it exists) is kept up to a factor 2.
    """
    if init == "sawtooth":
        return 1.0 / 16.0
    if init == "yarotsky_square":
        return 2.0 ** (-2 * int(depth) - 2)
    raise ValueError(f"no τ for init {init!r}; expected 'sawtooth' or 'yarotsky_square'")


def classify(pieces, depth, err_start, err_end, tau, loss_ratio, absorbed_fraction, lr_underflow=False,
             diverged=False):
    """The index into :data:`OUTCOMES` of one trained construction run.

    Parameters
    ----------
    pieces : int
        Exact pieces after training.
    depth : int
        L (the exact construction has 2^L pieces).
    err_start, err_end : float
        Sup distance to the exact construction at the start (after rounding to the
        format) and after training.
    tau : float
        See :func:`tau`.
    loss_ratio : float
        Final loss / initial loss (NaN where the initial loss is 0).
    absorbed_fraction : float
        Fraction of attempted updates absorbed (NaN where none was attempted).
    lr_underflow, diverged : bool
    """
    if diverged or pieces < config.SURVIVAL_FRACTION * 2**int(depth):
        return OUTCOMES.index("collapsed")
    stuck = lr_underflow or absorbed_fraction == 1.0
    still = err_start > tau and not (loss_ratio < FROZEN_LOSS_RATIO)  # NaN ratio: did not move
    if stuck or still:
        return OUTCOMES.index("frozen")
    if err_end <= tau:
        return OUTCOMES.index("kept" if err_start <= tau else "repaired")
    return OUTCOMES.index("broken")


def half_ulp_ratio(steps, weights, fmt):
    """Median of |step| / (half an ulp of its weight in ``fmt``) over the parameters
    with a non-zero step: below 1, a step is absorbed (``w - step == w``).

    Examples
    --------
    >>> import numpy as np
    >>> from pieces import parse_precision
    >>> half_ulp_ratio(np.array([2.0 ** -12]), np.array([1.0]), parse_precision("fp16"))
    0.5
    """
    import numpy as np

    steps = np.abs(np.asarray(steps, dtype=np.float64))
    w = np.abs(np.asarray(weights, dtype=np.float64))
    on = steps > 0
    if not on.any():
        return math.nan
    _, e = np.frexp(w[on])
    e = np.where(w[on] == 0, fmt.emin, np.maximum(e - 1, fmt.emin))  # the binade (subnormals, 0: emin)
    half = np.ldexp(1.0, e - fmt.bits)
    return float(np.median(steps[on] / half))
