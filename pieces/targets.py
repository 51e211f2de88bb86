"""Target functions for training, by name or as any vectorised callable.

Names take an optional integer parameter after a colon:

========== ============================================ ==========
name        function on [0, 1]                           parameter
========== ============================================ ==========
square      x**2                                         —
sine:k      sin(2 pi k x)                                k = 1
sawtooth:k  triangle wave with k teeth, 0 at 0 and 1     k = 1
abs         |2x - 1|                                     —
yarotsky:m  Yarotsky's f_m: interpolant of x**2 at       m = 3
            the points j / 2**m
========== ============================================ ==========

``sawtooth:2**(L-1)`` is exactly the function of ``sawtooth(L)`` and ``yarotsky:m`` that
of ``yarotsky_square(m)``, so a construction started on its own target has zero loss.

Examples
--------
>>> import numpy as np
>>> f = resolve_target("sawtooth:2")
>>> f(np.array([0.0, 0.25, 0.5, 0.75, 1.0])).tolist()
[0.0, 1.0, 0.0, 1.0, 0.0]
"""

from __future__ import annotations

import numpy as np

__all__ = ["TARGETS", "resolve_target", "target_name"]


def _square(x, _):
    return x * x


def _sine(x, k):
    return np.sin(2.0 * np.pi * k * x)


def _sawtooth(x, k):
    t = k * x
    return 1.0 - np.abs(2.0 * (t - np.floor(t)) - 1.0)


def _abs(x, _):
    return np.abs(2.0 * x - 1.0)


def _yarotsky(x, m):
    nodes = np.arange(2**m + 1) / 2.0**m
    return np.interp(x, nodes, nodes * nodes)


#: name -> (function, default parameter or None if it takes none)
TARGETS = {
    "square": (_square, None),
    "sine": (_sine, 1),
    "sawtooth": (_sawtooth, 1),
    "abs": (_abs, None),
    "yarotsky": (_yarotsky, 3),
}


def resolve_target(target):
    """A vectorised float64 function for ``target`` (a name or a callable).

    Raises
    ------
    ValueError
        For an unknown name or a bad parameter.
    """
    if callable(target):
        def call(x, _f=target):
            y = np.asarray(_f(np.asarray(x, dtype=np.float64)), dtype=np.float64)
            if y.shape != np.shape(x):
                raise ValueError(f"target returned shape {y.shape} for input shape {np.shape(x)}")
            return y

        return call
    if not isinstance(target, str):
        raise ValueError(f"target must be a name or a callable, got {type(target).__name__}")
    name, _, arg = target.partition(":")
    if name not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)} or a callable")
    fn, default = TARGETS[name]
    if arg and default is None:
        raise ValueError(f"target {name!r} takes no parameter, got {target!r}")
    param = default
    if arg:
        try:
            param = int(arg)
        except ValueError:
            raise ValueError(f"target {target!r}: parameter must be an integer") from None
        if param < 1 or (name == "yarotsky" and param > 30):
            raise ValueError(f"target {target!r}: parameter out of range")
    return lambda x: fn(np.asarray(x, dtype=np.float64), param)


def target_name(target) -> str:
    """A printable name for ``target``."""
    if isinstance(target, str):
        return target
    return getattr(target, "__name__", type(target).__name__)
