"""Kernels written as inlined stages, compiled as the one loop they were before the split.

A hot Numba loop split into stages (``@njit(inline="always")``) pays for the split where
Numba binds a stage's parameters: each array argument becomes a new variable, with an
atomic reference count taken and dropped every time the stage runs. LLVM's reference
count pruning removes such pairs only when no other release lies between them, and in a
stage with loops several do, so the counts stay in the loop: the certified sweep, split
into six stages, ran 3.5-10x slower than the same code written as one function
(sawtooth(16): 6.5 -> 66 ms; perf put two thirds of the time on NRT's atomic
increment and decrement).

:class:`StagedCompiler` is Numba's own nopython pipeline with one pass added after the
typed rewrites: copy propagation and dead-code removal (``numba.core.ir_utils.simplify``,
the same simplification that Numba's parallel pipeline runs). The parameters of an
inlined stage are plain copies of the caller's variables, so it replaces each by the
caller's variable and drops the copy, and with it the reference counts. Nothing else
changes: no statement is reordered, no arithmetic is touched, so results stay bit for
bit those of the unsplit code (``tests/test_staged.py`` checks both).

Use it as ``@njit(cache=True, pipeline_class=StagedCompiler)`` on the function that
calls the stages; the stages themselves stay ``@njit(inline="always")``.

Examples
--------
>>> import numpy as np
>>> from numba import njit
>>> @njit(inline="always")
... def _double(x, out):
...     for i in range(x.size):
...         out[i] = 2.0 * x[i]
>>> @njit(pipeline_class=StagedCompiler)
... def doubled(x):
...     out = np.empty_like(x)
...     _double(x, out)
...     return out
>>> doubled(np.arange(3.0))
array([0., 2., 4.])
"""

from numba.core import ir_utils
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import FunctionPass, register_pass
from numba.core.typed_passes import NopythonRewrites

__all__ = ["StagedCompiler"]


@register_pass(mutates_CFG=True, analysis_only=False)
class PropagateCopies(FunctionPass):
    """Copy propagation and dead-code removal on the typed IR (see the module)."""

    _name = "pieces_propagate_copies"

    def __init__(self):
        FunctionPass.__init__(self)

    def run_pass(self, state):
        ir_utils.simplify(state.func_ir, state.typemap, state.calltypes, state.metadata)
        return True


class StagedCompiler(CompilerBase):
    """Numba's nopython pipeline with :class:`PropagateCopies` after the typed rewrites."""

    def define_pipelines(self):
        pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
        pm.add_pass_after(PropagateCopies, NopythonRewrites)
        pm.finalize()
        return [pm]
