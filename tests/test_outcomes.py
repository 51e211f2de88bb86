"""Outcomes of trained constructions, absorbed updates, the exact sup distance, the
perturbation law's positive control and the summary (issue: a construction survives
only if it still works)."""

import numpy as np
import pytest

from pieces import ReLUNet, TrainConfig, sawtooth, train, yarotsky_square
from pieces.init import initial_net
from pieces.perturb import gd_step
from pieces.pwl import sup_error_between
from pieces.study import OUTCOMES
from pieces.study.grid import construction_samples
from pieces.study.outcomes import classify, half_ulp_ratio, tau
from pieces.study.tasks import run_task
from pieces.precision import parse_precision


def _task(init, depth, precision, delta, train_cfg, seeds=(0,)):
    target = f"sawtooth:{2 ** (depth - 1)}" if init == "sawtooth" else f"yarotsky:{depth}"
    return dict(id="t", experiment="precision", init=init, target=target, width=2 if init == "sawtooth" else 3,
                depth=depth, precision=precision, seeds=list(seeds), perturb=delta,
                train={**train_cfg, "n_samples": construction_samples(depth)})


def _outcomes(rows):
    return [OUTCOMES[int(r["value"])] for r in rows if r["metric"] == "outcome"]


def _metric(rows, name, stage="trained"):
    return [r["value"] for r in rows if r["metric"] == name and r["stage"] == stage]


def test_report_and_study_agree_on_the_outcomes():
    from report.outcomes import OUTCOMES as REPORT_OUTCOMES, SURVIVING

    from pieces.study.outcomes import SURVIVING as STUDY_SURVIVING

    assert REPORT_OUTCOMES == OUTCOMES and SURVIVING == STUDY_SURVIVING


def test_frozen_where_the_fp16_step_underflows():
    rows = run_task(_task("sawtooth", 12, "fp16", 0.0, {"optimizer": "gd", "lr": "auto", "steps": 5,
                                                        "record_every": 5}))
    assert _metric(rows, "lr_underflow") == [1]
    assert _outcomes(rows) == ["frozen"]
    assert _metric(rows, "absorbed_fraction") == [1.0]
    assert _metric(rows, "survived") == [0]
    assert np.isnan(_metric(rows, "step_half_ulp", "init")[0])  # the exact start: no gradient, no step


def test_repaired_for_a_shallow_fp64_sawtooth_from_a_large_delta():
    rows = run_task(_task("sawtooth", 4, "fp64", 1e-3, {"optimizer": "adam", "lr": 1e-4, "steps": 300,
                                                        "record_every": 300, "adam_eps": 1e-7}))
    err0, = _metric(rows, "sup_error_exact", "init")
    err1, = _metric(rows, "sup_error_exact")
    assert err0 > tau("sawtooth", 4) >= err1
    assert _outcomes(rows) == ["repaired"]
    assert _metric(rows, "survived") == [1]


def test_a_fixed_large_step_collapses_or_breaks_it():
    rows = run_task(_task("sawtooth", 6, "fp64", 1e-3, {"optimizer": "gd", "lr": 0.5, "steps": 50,
                                                        "record_every": 50}, seeds=(0, 1)))
    assert set(_outcomes(rows)) <= {"collapsed", "broken"} and _outcomes(rows)
    assert _metric(rows, "survived") == [0, 0]


def test_classify_order_of_precedence():
    kw = dict(pieces=16, depth=4, tau=0.1, loss_ratio=0.5, absorbed_fraction=0.0)
    assert OUTCOMES[classify(err_start=0.01, err_end=0.01, **kw)] == "kept"
    assert OUTCOMES[classify(err_start=0.5, err_end=0.01, **kw)] == "repaired"
    assert OUTCOMES[classify(err_start=0.01, err_end=0.5, **kw)] == "broken"
    assert OUTCOMES[classify(err_start=0.5, err_end=0.01, **{**kw, "pieces": 14})] == "collapsed"
    assert OUTCOMES[classify(err_start=0.01, err_end=0.01, **{**kw, "absorbed_fraction": 1.0})] == "frozen"
    assert OUTCOMES[classify(err_start=0.5, err_end=0.4, **{**kw, "loss_ratio": 0.95})] == "frozen"
    assert OUTCOMES[classify(err_start=0.5, err_end=0.01, lr_underflow=True, **kw)] == "frozen"
    assert OUTCOMES[classify(err_start=0.5, err_end=0.01, diverged=True, **kw)] == "collapsed"


@pytest.mark.parametrize("net", [sawtooth(7), yarotsky_square(5), ReLUNet.random([5, 4], seed=3)])
def test_sup_error_exact_is_zero_for_the_construction_and_a_fine_grids_otherwise(net):
    assert sup_error_between(net, net) == 0.0
    other = initial_net("he", widths=[5, 4], seed=8)
    exact = sup_error_between(net, other)
    x = np.linspace(0.0, 1.0, 200_001)
    grid = float(np.max(np.abs(net(x) - other(x))))
    # the grid can only miss the maximum: by at most its spacing times the largest slope
    slope = max(np.abs(np.diff(net(x)) / np.diff(x)).max(), np.abs(np.diff(other(x)) / np.diff(x)).max())
    assert grid <= exact * (1 + 1e-12) + 1e-15
    assert exact - grid <= 2 * slope * (x[1] - x[0])


def test_sup_error_of_a_perturbed_sawtooth_sees_its_teeth():
    exact = sawtooth(8)
    assert sup_error_between(initial_net("sawtooth", depth=8, seed=0, perturb=1e-3), exact) > tau("sawtooth", 8)
    assert sup_error_between(initial_net("sawtooth", depth=8, seed=0, perturb=1e-12), exact) < 1e-8


def test_absorbed_fraction_is_one_when_every_step_is_below_half_an_ulp():
    net = ReLUNet.random([6, 6], seed=1)
    res = train(net, "square", TrainConfig(optimizer="gd", lr=1e-7, steps=20, n_samples=32, precision="fp16",
                                           record_every=20))
    assert not res.lr_underflow
    assert res.absorbed_fraction == 1.0
    assert np.all(res.absorbed_per_layer() == 1.0)
    assert res.updates[0].sum() > 0  # updates were attempted, and each one rounded away


def test_absorbed_fraction_is_zero_in_fp64_with_a_large_step():
    res = train(ReLUNet.random([6, 6], seed=1), "square", TrainConfig(optimizer="gd", lr=0.05, steps=20,
                                                                     record_every=20))
    assert res.absorbed_fraction == 0.0
    assert res.updates[0].sum() > 0


def test_absorbed_fraction_is_one_when_the_lr_underflows():
    rows = run_task(_task("sawtooth", 12, "fp16", 0.0, {"optimizer": "gd", "lr": "auto", "steps": 2,
                                                        "record_every": 2}))
    assert _metric(rows, "absorbed_fraction") == [1.0]


def test_half_ulp_ratio():
    fp16 = parse_precision("fp16")
    assert half_ulp_ratio([2.0**-11], [1.0], fp16) == 1.0
    assert half_ulp_ratio([2.0**-11], [0.0], fp16) > 1  # at zero the spacing is the smallest subnormal
    assert np.isnan(half_ulp_ratio([0.0], [1.0], fp16))


def test_the_positive_control_detects_absolute_noise_on_a_sawtooth():
    x = np.linspace(0.0, 1.0, 256)
    step = gd_step(sawtooth(8), x, x * x, "auto")
    small, _, _ = step.draws_absolute(1e-9, 10, seed=0)
    large, _, _ = step.draws_absolute(3e-2, 10, seed=0)
    assert small.mean() == step.draws(0.0, 1)[0][0]  # tiny absolute noise: the step's own count
    assert large.mean() < 0.9 * small.mean()  # a sawtooth loses its coordination near 2**-L
    from report.findings import log_slope

    sig = np.repeat([1e-9, 1e-6, 1e-3, 3e-2], 10)
    p = np.concatenate([step.draws_absolute(s, 10, seed=0)[0] for s in (1e-9, 1e-6, 1e-3, 3e-2)])
    b, lo, hi, _ = log_slope(sig, p)
    assert hi < 0


def test_noise_to_range_scales_with_the_update():
    x = np.linspace(0.0, 1.0, 64)
    step = gd_step(ReLUNet.random([6, 6], seed=2), x, x * x, 0.01)
    double = gd_step(ReLUNet.random([6, 6], seed=2), x, x * x, 0.02)
    assert 0 < step.noise_to_range() < double.noise_to_range()
    assert double.noise_to_range() == pytest.approx(2 * step.noise_to_range())


def test_the_perturbed_iteration_with_zero_noise_is_plain_gd():
    from pieces.perturb import perturbed_iteration

    net = ReLUNet.random([4, 4], seed=0)
    x = np.linspace(0.0, 1.0, 32)
    out = perturbed_iteration(net, x, x * x, 0.05, 0.0, [1, 3])
    cur = net
    for _ in range(3):
        cur = gd_step(cur, x, x * x, 0.05).perturbed(0.0)[0]
    from pieces import count_pieces

    assert out[-1, 0] == count_pieces(cur, (0.0, 1.0)).pieces
