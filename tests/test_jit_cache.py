"""Cached kernels follow an edit of any package file that they compile in."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from pieces.count import _certified_cpu
from pieces._jit import cache as _jit_cache
from pieces.train import _train_cpu


def test_kernels_carry_the_stamp_of_their_package_dependencies():
    for kernel, deps in ((_train_cpu.loss_grad, {"train/_train_cpu.py", "train/_train_passes.py", "train/_gemm_cpu.py",
                                                   "precision/__init__.py", "precision/_arithmetic.py",
                                                   "precision/_formats.py", "precision/_rounding.py", "_jit/llvm.py"}),
                         (_certified_cpu.count_one,
                          {"count/_certified_cpu.py", "count/_certified_sweep.py", "count/_certified_workspace.py",
                           "count/_certified_bounds.py", "count/_certified_refresh.py",
                           "count/_certified_stages.py", "count/_certified_sums.py", "count/_count_cpu.py",
                           "count/_segment_sums.py", "_jit/llvm.py", "_jit/staged.py"})):
        path = Path(kernel.py_func.__code__.co_filename)
        assert kernel._cache._impl.locator.get_source_stamp() == _jit_cache.source_stamp(path)
        assert set(_jit_cache.dependencies(path)) == deps


def test_an_edit_changes_the_stamps_of_the_files_that_import_it_only(tmp_path):
    copy = tmp_path / "pieces"
    shutil.copytree(_jit_cache._PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    train, rational = copy / "train" / "_train_cpu.py", copy / "count" / "_rational.py"
    before = {f: _jit_cache.source_stamp(f, copy) for f in (train, rational)}
    assert before[train] == _jit_cache.source_stamp(Path(_train_cpu.__file__))
    src = copy / "precision" / "_arithmetic.py"
    src.write_text(src.read_text() + "\n# an edit\n")
    _jit_cache._stamps.clear()
    assert _jit_cache.source_stamp(train, copy) != before[train]  # the precision arithmetic is compiled into it
    assert _jit_cache.source_stamp(rational, copy) == before[rational]


def test_relative_and_absolute_imports_are_followed(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__.py", "a.py", "b.py", "c.py", "sub/__init__.py", "sub/d.py", "e.py"):
        (pkg / name).write_text("")
    (pkg / "a.py").write_text("from .b import x\ndef f():\n    from . import c, e as ee\n")
    (pkg / "sub" / "d.py").write_text("from ..c import y\nimport pieces.sub.d\n")
    assert _jit_cache.dependencies(pkg / "a.py", pkg) == ["a.py", "b.py", "c.py", "e.py"]
    assert _jit_cache.dependencies(pkg / "sub" / "d.py", pkg) == ["c.py", "sub/d.py"]


def test_functions_outside_the_package_keep_numbas_own_locator(tmp_path):
    script = tmp_path / "user_code.py"
    script.write_text(textwrap.dedent("""
        import pieces, numba
        @numba.njit(cache=True)
        def f(x):
            return x + 1
        print(type(f._cache._impl.locator).__name__)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] != "_PackageStamped"
