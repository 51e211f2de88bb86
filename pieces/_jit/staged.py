"""Kernels written as inlined stages, compiled as the one loop they were before the split.

A hot Numba loop split into stages (``@njit(inline="always")``) pays for the split where
Numba binds a stage's parameters: each array argument becomes a new variable, with an
atomic reference count taken and dropped every time the stage runs, which LLVM's
reference-count pruning leaves in place here. The certified sweep, split into its
stages, ran 3.5-10x slower than the same code written as one function (sawtooth(16):
6.5 -> 66 ms; perf put two thirds of the time on NRT's atomic increment and decrement).

:class:`StagedCompiler` is Numba's own nopython pipeline with one pass added after the
typed rewrites: copy propagation and dead-code removal, as Numba's own
``numba.core.ir_utils.simplify`` does them (its parallel pipeline runs it), with a copy
propagation (:func:`copy_propagate`) that reaches the same fixed point without copying
every block's set of copies on every iteration. The parameters of an inlined stage are
plain copies of the caller's variables, so the pass replaces each by the caller's
variable and drops the copy, and with it the reference counts. Nothing else changes:
no statement is reordered, no arithmetic is touched, so results stay bit for bit those
of the unsplit code (``tests/test_staged.py`` checks both, and the copy propagation
against Numba's).

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
from numba.core.analysis import compute_cfg_from_blocks
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import FunctionPass, register_pass
from numba.core.typed_passes import NopythonRewrites

__all__ = ["StagedCompiler", "copy_propagate", "simplify"]


@register_pass(mutates_CFG=True, analysis_only=False)
class PropagateCopies(FunctionPass):
    """Copy propagation and dead-code removal on the typed IR (see the module)."""

    _name = "pieces_propagate_copies"

    def __init__(self):
        FunctionPass.__init__(self)

    def run_pass(self, state):
        simplify(state.func_ir, state.typemap, state.calltypes, state.metadata)
        return True


def copy_propagate(blocks, typemap):
    """``numba.core.ir_utils.copy_propagate``, the same equations iterated in the same
    order to the same fixed point, without its deep copy of every block's set of copies
    per iteration (6.4 of the certified sweep's 6.7 s in that pass)."""
    cfg = compute_cfg_from_blocks(blocks)
    entry = cfg.entry_point()
    gen_copies, _, kill_copies, in_copies, out_copies = ir_utils.init_copy_propagate_data(blocks, entry, typemap)
    predecessors = {label: [p for p, _ in cfg.predecessors(label)] for label in blocks}
    changed = True
    while changed:
        changed = False
        for label in blocks:
            if label == entry:
                continue
            preds = predecessors[label]
            in_b = out_copies[preds[0]].copy()  # in_b = intersect(predec(B))
            for p in preds:
                in_b &= out_copies[p]
            in_copies[label] = in_b
            out_b = gen_copies[label] | (in_b - kill_copies[label])  # out_b = gen_b | (in_b - kill_b)
            changed |= out_b != out_copies[label]
            out_copies[label] = out_b
    return in_copies, out_copies


def simplify(func_ir, typemap, calltypes, metadata):
    """``numba.core.ir_utils.simplify`` with :func:`copy_propagate`: propagate copies,
    remove dead code, merge blocks."""
    in_cps, _ = copy_propagate(func_ir.blocks, typemap)
    name_var_table = ir_utils.get_name_var_table(func_ir.blocks)
    save_copies = ir_utils.apply_copy_propagate(func_ir.blocks, in_cps, name_var_table, typemap, calltypes)
    var_rename_map = ir_utils.restore_copy_var_names(func_ir.blocks, save_copies, typemap)
    metadata.setdefault("var_rename_map", {}).update(var_rename_map)
    ir_utils.remove_dead(func_ir.blocks, func_ir.arg_names, func_ir, typemap)
    func_ir.blocks = ir_utils.simplify_CFG(func_ir.blocks)


class StagedCompiler(CompilerBase):
    """Numba's nopython pipeline with :class:`PropagateCopies` after the typed rewrites."""

    def define_pipelines(self):
        pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
        pm.add_pass_after(PropagateCopies, NopythonRewrites)
        pm.finalize()
        return [pm]
