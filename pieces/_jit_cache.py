"""Numba's on-disk cache of this package's kernels, keyed on the package's whole source.

Numba keeps a cached kernel as long as the file that defines it is unchanged (it
stores a hash of that one file). A kernel also holds code compiled in from other
files: ``rnd`` and the rounding intrinsics of ``precision.py`` live inside every
training kernel of ``_train_cpu.py``, ``breakpoints_of`` of ``_count_cpu.py`` inside the
certified counter. After an edit of ``precision.py`` alone, Numba would go on loading
the old training kernels, and tests would pass against code that is no longer there.

:func:`install` puts a locator in front of Numba's own: for a function defined in this
package it is the locator Numba would pick (same cache directory, so a user's
``NUMBA_CACHE_DIR`` still counts), except that its source stamp is a hash of every
``.py`` file of the package. Any edit then recompiles the package's kernels, and
nothing else's caching changes. It relies on ``numba.core.caching.CacheImpl``; where
that is missing (another Numba), Numba's own behaviour is kept.

Examples
--------
>>> from pieces import _jit_cache, _train_cpu
>>> _train_cpu.loss_grad._cache._impl.locator.get_source_stamp() == _jit_cache.SOURCE_STAMP
True
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["SOURCE_STAMP", "install"]

_PACKAGE = Path(__file__).resolve().parent


def _source_stamp(root=_PACKAGE):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return "relu-pieces:" + h.hexdigest()


#: the stamp of every cached kernel of the package: a hash of all its sources
SOURCE_STAMP = _source_stamp()


class _PackageStamped:
    """A Numba cache locator: Numba's own choice, with the package-wide source stamp."""

    fallback: list = []

    def __init__(self, inner):
        self._inner = inner

    @classmethod
    def from_function(cls, py_func, py_file):
        try:
            inside = Path(py_file).resolve().is_relative_to(_PACKAGE)
        except (OSError, ValueError):
            inside = False
        if not inside:
            return None
        for locator_class in cls.fallback:
            inner = locator_class.from_function(py_func, py_file)
            if inner is not None:
                return cls(inner)
        return None

    def get_source_stamp(self):
        return SOURCE_STAMP

    def __getattr__(self, name):  # get_cache_path, ensure_cache_path, get_disambiguator
        return getattr(self._inner, name)


def install():
    """Put the package-stamped locator first in Numba's list (once; a no-op where
    Numba's caching internals differ or ``NUMBA_CACHE_LOCATOR_CLASSES`` overrides the
    list)."""
    try:
        from numba.core.caching import CacheImpl
    except ImportError:
        return False
    classes = getattr(CacheImpl, "_locator_classes", None)
    if not isinstance(classes, list) or os.environ.get("NUMBA_CACHE_LOCATOR_CLASSES"):
        return False
    if _PackageStamped not in classes:
        _PackageStamped.fallback = list(classes)
        classes.insert(0, _PackageStamped)
    return True
