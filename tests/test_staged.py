"""The staged compiler (``pieces._jit.staged``): kernels split into inlined stages compile
to the code they were before the split, without per-call reference counts, and with the
same results bit for bit."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from numba import njit
from numba.core import ir_utils
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.compiler_machinery import FunctionPass, register_pass
from numba.core.typed_passes import NopythonRewrites

from pieces import ReLUNet, sawtooth, yarotsky_square
from pieces._jit import staged
from pieces._jit.staged import StagedCompiler
from pieces.count import _count_cpu
from pieces.count._certified_stages import _children, _split
from pieces.count._certified_sweep import sweep
from pieces.count._certified_workspace import new_workspace
from strategies import nets


def _segment_loop(xs, ex, scr, iscr, rows, n_out, reps):
    """The sweep's segment loop in small: the real stages that split a segment and
    write its children, run on every segment of ``xs``."""
    nxs, nex, nF, nA, nB, nEA, nEB, nDIFF, nACT = rows
    s, t, ea, eb, cx, ce, bx, be = scr[0], scr[1], scr[2], scr[3], scr[4], scr[5], scr[6], scr[7]
    cj, jb, up, act0, live, pend = iscr[0], iscr[1], iscr[2], iscr[3], iscr[4], iscr[5]
    bias = np.zeros(n_out)
    children = 0
    for _ in range(reps):
        for k in range(xs.size - 1):
            n_err, nb, amb = _split(s, t, ea, eb, bias, 0.0, False, xs[k], xs[k + 1], ex[k], ex[k + 1], act0, jb,
                                    pend, up, cx, ce, cj, bx, be, n_out)
            if amb:
                break
            children += _children(nxs, nex, nF, nA, nB, nEA, nEB, nDIFF, nACT, 0, xs[k], ex[k], bx, be, nb, s, t, ea,
                                  eb, jb, up, act0, pend, n_out, 2, (0.0, 0, 0.0, 0), True, False, np.uint64(0))
    return children, nA[:2, :n_out].copy()


def _run_loop(fn):
    scr = np.zeros((8, 3))
    scr[0, :2] = [1.0, -1.0]  # two neurons: x - 1/2 and 1/2 - x
    scr[1, :2] = [-0.5, 0.5]
    rows = (np.empty(9), np.empty(9), np.empty(8, np.int8), np.empty((8, 3)), np.empty((8, 3)), np.empty((8, 3)),
            np.empty((8, 3)), np.empty(8, np.uint64), np.empty(8, np.uint64))
    return fn(np.linspace(0.0, 1.0, 8), np.zeros(8), scr, np.zeros((6, 3), np.int64), rows, 2, 3)


def _refcounts(fn):
    return len(re.findall(r"call void @NRT_(?:incref|decref)", "\n".join(fn.inspect_llvm().values())))


_AGREES = []


@register_pass(mutates_CFG=True, analysis_only=False)
class _CheckedPropagation(FunctionPass):
    """StagedCompiler's pass, checking first that its copy propagation finds what
    Numba's own finds (``numba.core.ir_utils.copy_propagate``, the oracle)."""

    _name = "pieces_test_checked_propagation"

    def __init__(self):
        FunctionPass.__init__(self)

    def run_pass(self, state):
        ours = staged.copy_propagate(state.func_ir.blocks, state.typemap)
        _AGREES.append(ours == ir_utils.copy_propagate(state.func_ir.blocks, state.typemap))
        staged.simplify(state.func_ir, state.typemap, state.calltypes, state.metadata)
        return True


class _CheckedCompiler(CompilerBase):
    def define_pipelines(self):
        pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
        pm.add_pass_after(_CheckedPropagation, NopythonRewrites)
        pm.finalize()
        return [pm]


def test_copy_propagation_removes_the_stages_reference_counts():
    plain = njit(_segment_loop)
    staged_loop = njit(pipeline_class=_CheckedCompiler)(_segment_loop)
    (n_plain, rows_plain), (n_staged, rows_staged) = _run_loop(plain), _run_loop(staged_loop)
    assert _AGREES and all(_AGREES)  # the same copies as Numba's own propagation
    assert n_plain == n_staged == 3 * 8  # of seven segments, the one about 1/2 splits: 8 children
    assert rows_plain.tobytes() == rows_staged.tobytes()
    # inlined without copy propagation, the stages' array arguments keep reference
    # counts in the loop (measured: 139 against 75 calls, 12x the time)
    assert _refcounts(staged_loop) < 0.75 * _refcounts(plain)


@pytest.fixture(scope="module")
def unstaged_sweep():
    """The certified sweep compiled by Numba's default pipeline (stages inlined, no copy
    propagation): the reference for bit-identical results."""
    return njit(sweep.py_func)


def _run(fn, net, a, b, limit=0):
    wt, bf, sizes, *_ = _count_cpu.pack([net])
    ws = new_workspace(4, int(sizes.max()))
    ws[25][2] = limit
    nseg, ws, status = fn(wt, bf, sizes, a, b, ws)
    return (nseg, status, tuple(ws[25][:2]), ws[0][: nseg + 1].tobytes(), ws[1][: nseg + 1].tobytes(),
            ws[14][:nseg].tobytes(), ws[15][:nseg].tobytes(), ws[16][:nseg].tobytes(), ws[24][:nseg].tobytes())


@pytest.mark.parametrize("net, interval", [(sawtooth(9), (0.0, 1.0)), (yarotsky_square(6), (0.0, 1.0)),
                                           (ReLUNet.random([32] * 8, init="he", seed=0), (-3.0, 3.0)),
                                           (ReLUNet.random([8] * 6, seed=1), (-np.inf, np.inf))])
def test_staged_sweep_is_bit_identical(unstaged_sweep, net, interval):
    for limit in (0, 40):  # with a segment budget, the growth and status-3 paths too
        assert _run(sweep, net, *interval, limit) == _run(unstaged_sweep, net, *interval, limit)


@settings(max_examples=40, deadline=None)
@given(nets())
def test_staged_sweep_is_bit_identical_on_random_nets(unstaged_sweep, net):
    assert _run(sweep, net, -2.0, 3.0) == _run(unstaged_sweep, net, -2.0, 3.0)
