"""The package's cached kernels follow an edit of any of its files."""

import shutil
import subprocess
import sys
import textwrap

from pieces import _jit_cache, _train_cpu, _certified_cpu


def test_every_kernel_of_the_package_carries_the_package_wide_stamp():
    for kernel in (_train_cpu.loss_grad, _certified_cpu.count_one):
        assert kernel._cache._impl.locator.get_source_stamp() == _jit_cache.SOURCE_STAMP


def test_an_edit_of_one_file_changes_the_stamp(tmp_path):
    copy = tmp_path / "pieces"
    shutil.copytree(_jit_cache._PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = _jit_cache._source_stamp(copy)
    assert before == _jit_cache.SOURCE_STAMP
    src = copy / "precision.py"
    src.write_text(src.read_text() + "\n# an edit\n")
    assert _jit_cache._source_stamp(copy) != before


def test_functions_outside_the_package_keep_numbas_own_stamp(tmp_path):
    script = tmp_path / "user_code.py"
    script.write_text(textwrap.dedent("""
        import pieces, numba
        @numba.njit(cache=True)
        def f(x):
            return x + 1
        print(type(f._cache._impl.locator).__name__, f._cache._impl.locator.get_source_stamp() != pieces._jit_cache.SOURCE_STAMP)
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] != "_PackageStamped" and out[1] == "True"
