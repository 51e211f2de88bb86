"""Numba's on-disk cache of this package's kernels, keyed on every file they compile in.

Numba keeps a cached kernel as long as the file that defines it is unchanged (it
stores a hash of that one file). A kernel also holds code compiled in from other
files: ``rnd`` and the rounding intrinsics of ``precision`` live inside every
training kernel of ``train/_train_cpu.py``, ``breakpoints_of`` of ``count/_count_cpu.py`` inside the
certified counter. After an edit of ``precision/_arithmetic.py`` alone, Numba would go on loading
the old training kernels, and tests would pass against code that is no longer there.

:func:`install` puts a locator in front of Numba's own: for a function defined in this
package it is the locator Numba would pick (same cache directory, so a user's
``NUMBA_CACHE_DIR`` still counts), except that its source stamp hashes the defining
file together with every file of the package that it imports, directly or not (``from
.x import``, ``from . import x``, ``pieces.x``, at any indentation). An edit then
recompiles exactly the kernels that may have compiled the edited code in, and nothing
else's caching changes. It relies on ``numba.core.caching.CacheImpl``; where that is
missing (another Numba), Numba's own behaviour is kept.

Examples
--------
>>> from pathlib import Path
>>> from pieces._jit import cache as _jit_cache
>>> from pieces.train import _train_cpu
>>> stamp = _train_cpu.loss_grad._cache._impl.locator.get_source_stamp()
>>> stamp == _jit_cache.source_stamp(Path(_train_cpu.__file__))
True
>>> "precision/_arithmetic.py" in _jit_cache.dependencies(Path(_train_cpu.__file__))
True
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

__all__ = ["dependencies", "install", "source_stamp"]

_PACKAGE = Path(__file__).resolve().parent.parent  # pieces/
_RELATIVE = re.compile(r"^[ \t]*from[ \t]+(\.+)([\w.]*)[ \t]+import[ \t]+\(?([\w., \t]+)", re.M)
_ABSOLUTE = re.compile(r"^[ \t]*(?:from|import)[ \t]+pieces\.([\w.]+)", re.M)


def _module_file(root, parts):
    """The file of module ``parts`` (a package's ``__init__.py``) under ``root``, or None."""
    base = root.joinpath(*parts) if parts else root
    for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _imports(path, root):
    """The package files that the file ``path`` imports (one step)."""
    text = path.read_text(encoding="utf-8")
    here = path.parent.relative_to(root).parts
    found = set()
    for dots, module, names in _RELATIVE.findall(text):
        up = len(dots) - 1
        if up > len(here):
            continue
        base = list(here[: len(here) - up]) + [p for p in module.split(".") if p]
        target = _module_file(root, base) if module else None  # ``from . import x``: x only
        if target is not None:
            found.add(target)
        for name in names.replace("(", " ").split(","):  # ``from . import a, b``: modules
            name = name.strip().split(" ")[0]
            if name and _module_file(root, base + [name]) is not None:
                found.add(_module_file(root, base + [name]))
    for module in _ABSOLUTE.findall(text):
        parts = module.split(".")
        for k in range(len(parts), 0, -1):  # pieces.study.grid, or a name from pieces.study
            target = _module_file(root, parts[:k])
            if target is not None:
                found.add(target)
                break
    return found


def dependencies(path, root=_PACKAGE):
    """The files (paths relative to ``root``, sorted) that the package file ``path``
    compiles in: itself and what it imports from the package, transitively."""
    path, root = Path(path).resolve(), Path(root).resolve()
    seen, todo = set(), [path]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(_imports(p, root) - seen)
    return sorted(p.relative_to(root).as_posix() for p in seen)


_stamps: dict = {}


def source_stamp(path, root=_PACKAGE):
    """A hash of the package file ``path`` and of every package file it imports."""
    key = (Path(path).resolve(), Path(root).resolve())
    if key not in _stamps:
        h = hashlib.sha256()
        for rel in dependencies(*key):
            h.update(rel.encode())
            h.update(b"\0")
            h.update((key[1] / rel).read_bytes())
        _stamps[key] = "relu-pieces:" + h.hexdigest()
    return _stamps[key]


class _PackageStamped:
    """A Numba cache locator: Numba's own choice, with the stamp of the defining file's
    package dependencies."""

    fallback: list = []

    def __init__(self, inner, py_file):
        self._inner = inner
        self._py_file = py_file

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
                return cls(inner, py_file)
        return None

    def get_source_stamp(self):
        return source_stamp(self._py_file)

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
