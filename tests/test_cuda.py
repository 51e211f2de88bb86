"""The CUDA kernels equal their CPU twins.

These run in numba-cuda's simulator on CPU-only machines (the root conftest turns it on;
``NUMBA_ENABLE_CUDASIM=0`` on a GPU machine runs them on the GPU). Sizes are tiny and
threads per block are patched small, so that every launch has several blocks and
every block several threads. ``test_kernels_compile_for_hopper`` compiles each kernel
for the real target, which the simulator never does.
"""

import dataclasses
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pieces import (
    ReLUNet, TrainConfig, config, count_pieces, count_pieces_batch, sawtooth, train_batch,
    yarotsky_square,
)
from pieces.count import _certified_cpu, _certified_cuda, _count_cpu
from pieces._jit.device import resolve_device, simulated
from pieces.train import evaluate_batch, net_to_theta
from strategies import nets as net_strategy

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.filterwarnings(
    # numpy scalars in the simulator warn where the GPU (and the CPU kernels) compute
    # inf or nan silently, e.g. a divergent step
    "ignore:overflow encountered:RuntimeWarning",
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:divide by zero encountered:RuntimeWarning",
)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    monkeypatch.setattr(config, "CUDA_COUNT_THREADS", 2)
    monkeypatch.setattr(config, "CUDA_TRAIN_THREADS", 3)


def test_the_simulator_is_on():
    # without a GPU these tests are only meaningful in the simulator
    assert simulated() or resolve_device("auto", "test") == "cuda"
    assert resolve_device("cuda", "test") == "cuda"


# ---------------------------------------------------------------- counting
# Exact counting: the twin of the certified float64 stage (_certified_cuda), with the
# CPU deciding what the GPU leaves undecided. Tolerance counting: _count_cuda.


@settings(max_examples=30)
@given(st.lists(net_strategy(max_depth=3, max_width=5), min_size=1, max_size=4),
       st.sampled_from([(0.0, 1.0), (-1e9, 1e9), (-np.inf, np.inf)]),
       st.sampled_from([1.0, 2.0**-30]))
def test_exact_count_makes_the_cpus_certified_decisions(nets, interval, scale):
    """Net by net: decided on the GPU exactly where the CPU's float64 stage decides, with
    the same counts; the public counts equal the CPU's exact ones (and so the rational)."""
    nets = [ReLUNet(n.weights, [scale * b for b in n.biases]) for n in nets]
    packed = _count_cpu.pack(nets)
    g = _certified_cuda.count_batch(*packed, *interval, 4096, 1)
    c = _certified_cpu.count_batch(*packed, *interval, 64, 1)
    np.testing.assert_array_equal(g[2], c[2])
    decided = c[2] == 0
    np.testing.assert_array_equal(g[0][decided], c[0][decided])
    np.testing.assert_array_equal(g[1][decided], c[1][decided])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        gpu = count_pieces_batch(nets, interval, device="cuda")
    cpu = count_pieces_batch(nets, interval, device="cpu")
    np.testing.assert_array_equal(gpu, cpu)


def test_exact_count_on_cuda_decides_constructions_and_the_wide_interval():
    nets = [sawtooth(L) for L in range(1, 6)] + [yarotsky_square(4)]
    nets += [ReLUNet.random([8] * 4, init="he", seed=s) for s in range(3)]
    for interval in [(0.0, 1.0), (-1e9, 1e9)]:
        pieces, regions, status = _certified_cuda.count_batch(*_count_cpu.pack(nets), *interval, 4096, 1)
        assert status.tolist() == [0] * len(nets)
        for net, p, r in zip(nets, pieces, regions):
            exact = count_pieces(net, interval, method="rational")
            assert (p, r) == (exact.pieces, exact.regions)
        if interval == (0.0, 1.0):
            assert pieces[:5].tolist() == [2**L for L in range(1, 6)]


def test_exact_count_on_cuda_hands_undecided_and_overflowing_nets_to_the_cpu(monkeypatch):
    """A construction moved by 1e-12 is undecided in float64 (the CPU decides it in
    double-double); sawtooth(6) overflows 16 segments. Both are counted on the CPU, with
    one warning, and equal the rational count."""
    rng = np.random.default_rng(0)
    base = sawtooth(5)
    moved = ReLUNet([w * (1 + 1e-12 * rng.standard_normal(w.shape)) for w in base.weights],
                    [v + 1e-12 * rng.standard_normal(v.shape) for v in base.biases])
    monkeypatch.setattr(config, "CUDA_COUNT_CAPACITY", 16)
    nets = [sawtooth(2), moved, sawtooth(6)]
    with pytest.warns(RuntimeWarning, match="2 of 3 nets were undecided on the GPU or need more than 16"):
        pieces, regions = count_pieces_batch(nets, (0.0, 1.0), device="cuda")
    for net, p, r in zip(nets, pieces, regions):
        exact = count_pieces(net, (0.0, 1.0), method="rational")
        assert (p, r) == (exact.pieces, exact.regions)


@settings(max_examples=40)
@given(st.lists(net_strategy(max_depth=4, max_width=5), min_size=1, max_size=5),
       st.sampled_from([(0.0, 1.0), (-2.0, 3.0), (-np.inf, np.inf)]))
def test_count_equals_cpu(nets, interval):
    gpu = count_pieces_batch(nets, interval, device="cuda", method="tolerance")
    cpu = count_pieces_batch(nets, interval, device="cpu", method="tolerance")
    np.testing.assert_array_equal(gpu[0], cpu[0])
    np.testing.assert_array_equal(gpu[1], cpu[1])


def test_count_equals_rational_and_known_counts():
    nets = [sawtooth(L) for L in range(1, 7)] + [ReLUNet.random([4, 4, 4], seed=s) for s in range(3)]
    pieces, regions = count_pieces_batch(nets, (0.0, 1.0), device="cuda", method="tolerance")
    assert pieces[:6].tolist() == [2**L for L in range(1, 7)]
    for net, p, r in zip(nets, pieces, regions):
        exact = count_pieces(net, (0.0, 1.0), method="rational")
        assert (p, r) == (exact.pieces, exact.regions)


def test_count_overflow_falls_back_to_the_cpu(monkeypatch):
    monkeypatch.setattr(config, "CUDA_COUNT_CAPACITY", 8)
    nets = [sawtooth(2), sawtooth(5), sawtooth(3), sawtooth(6)]
    with pytest.warns(RuntimeWarning, match="2 of 4 nets need more than 8 segments"):
        pieces, regions = count_pieces_batch(nets, (0.0, 1.0), device="cuda", method="tolerance")
    assert pieces.tolist() == [4, 32, 8, 64]
    assert regions.tolist() == [4, 32, 8, 64]


def test_count_in_chunks(monkeypatch):
    nets = [ReLUNet.random([3, 5], seed=s) for s in range(5)]
    whole = count_pieces_batch(nets, (-1.0, 1.0), device="cuda", method="tolerance")
    monkeypatch.setattr(config, "CUDA_WORKSPACE_BYTES", 1)  # one net per launch
    chunked = count_pieces_batch(nets, (-1.0, 1.0), device="cuda", method="tolerance")
    np.testing.assert_array_equal(whole, chunked)


# ---------------------------------------------------------------- training


def _thetas(results):
    return [net_to_theta(r.net) for r in results]


def _train_both(nets, cfg, seeds):
    gpu = train_batch(nets, "sine", dataclasses.replace(cfg, device="cuda"), seeds=seeds)
    cpu = train_batch(nets, "sine", cfg, seeds=seeds)
    return gpu, cpu


@pytest.mark.parametrize("precision", ["fp16", "bf16", "p5", "p13"])
@pytest.mark.parametrize("optimizer", ["gd", "sgd", "adam"])
def test_emulated_training_is_bit_identical(precision, optimizer):
    cfg = TrainConfig(optimizer=optimizer, lr=0.05, steps=6, n_samples=10, precision=precision,
                      record_every=3, batch_size=4 if optimizer != "gd" else None, adam_eps=1e-3)
    nets = [ReLUNet.random([3, 2], seed=s) for s in range(3)]
    gpu, cpu = _train_both(nets, cfg, seeds=[0, 1, 2])
    for g, c in zip(gpu, cpu):
        np.testing.assert_array_equal(net_to_theta(g.net), net_to_theta(c.net))
        np.testing.assert_array_equal(g.history, c.history)
        assert (g.diverged, g.steps_done) == (c.diverged, c.steps_done)
        np.testing.assert_array_equal(g.updates, c.updates)  # attempted and absorbed updates, per parameter


@settings(max_examples=25)
@given(net_strategy(max_depth=3, max_width=5), st.sampled_from(["fp16", "bf16", "p7", "p20"]),
       st.sampled_from(["gd", "sgd", "adam"]), st.integers(0, 2**31 - 1))
def test_training_random_and_degenerate_nets_is_bit_identical(net, precision, optimizer, seed):
    cfg = TrainConfig(optimizer=optimizer, lr=0.03, steps=3, n_samples=7, precision=precision, record_every=3,
                      batch_size=None if optimizer == "gd" else 3, adam_eps=1e-3, seed=seed % 1000)
    gpu, cpu = _train_both([net], cfg, seeds=[seed % 1000])
    np.testing.assert_array_equal(net_to_theta(gpu[0].net), net_to_theta(cpu[0].net))
    np.testing.assert_array_equal(gpu[0].history, cpu[0].history)


@pytest.mark.parametrize("widths", [[10, 3], [17], [1, 9]])
def test_tiles_with_ragged_edges(widths):
    # widths that are not multiples of the register tiles (8 outputs, 2 x 4 gradients),
    # an odd sample count (the second sample of a thread's pair runs out), 2 threads
    cfg = TrainConfig(optimizer="adam", lr=0.02, steps=2, n_samples=9, precision="fp16", record_every=2,
                      adam_eps=1e-3)
    gpu, cpu = _train_both([ReLUNet.random(widths, seed=4)], cfg, seeds=[0])
    np.testing.assert_array_equal(net_to_theta(gpu[0].net), net_to_theta(cpu[0].net))


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "adam"])
def test_native_half_equals_the_emulation(monkeypatch, optimizer):
    # in the simulator, half operations are numpy's, correctly rounded as the GPU's are;
    # on a GPU only a fused multiply-add could tell them apart (gpu_check.py measures it)
    monkeypatch.setattr(config, "CUDA_NATIVE_HALF", True)
    cfg = TrainConfig(optimizer=optimizer, lr=0.05, steps=4, n_samples=10, precision="fp16", record_every=2,
                      batch_size=None if optimizer == "gd" else 5, adam_eps=1e-3)
    nets = [ReLUNet.random([3, 4], seed=s) for s in range(2)]
    gpu, cpu = _train_both(nets, cfg, seeds=[0, 1])
    for g, c in zip(gpu, cpu):
        np.testing.assert_array_equal(net_to_theta(g.net), net_to_theta(c.net))
        np.testing.assert_array_equal(g.history, c.history)


@pytest.mark.parametrize("precision, rtol", [("fp64", 1e-12), ("fp32", 2e-5)])
def test_native_training_agrees_within_rounding(precision, rtol):
    # width 8 and 16 samples: the CPU sums these layers with BLAS, in another order
    cfg = TrainConfig(optimizer="adam", lr=0.01, steps=4, n_samples=16, precision=precision,
                      record_every=4, adam_eps=1e-4)
    nets = [ReLUNet.random([8], seed=s) for s in range(2)]
    gpu, cpu = _train_both(nets, cfg, seeds=[0, 0])
    for g, c in zip(gpu, cpu):
        a, b = net_to_theta(g.net), net_to_theta(c.net)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())
        np.testing.assert_allclose(g.history["loss"], c.history["loss"], rtol=100 * rtol)


def test_divergence_is_the_same_step():
    cfg = TrainConfig(optimizer="gd", lr=3e4, steps=8, n_samples=8, precision="fp16", record_every=4)
    nets = [ReLUNet.random([4, 4], seed=s) for s in range(2)] + [ReLUNet.random([4, 4], seed=9)]
    gpu, cpu = _train_both(nets, cfg, seeds=[0, 1, 2])
    assert any(c.diverged for c in cpu)
    for g, c in zip(gpu, cpu):
        assert (g.diverged, g.steps_done) == (c.diverged, c.steps_done)
        np.testing.assert_array_equal(net_to_theta(g.net), net_to_theta(c.net))


@pytest.mark.parametrize("where", ["global", "chunks"])
def test_parameters_in_global_memory_and_chunks(monkeypatch, where):
    cfg = TrainConfig(optimizer="adam", lr=0.02, steps=3, n_samples=6, precision="bf16",
                      record_every=3, device="cuda", adam_eps=1e-3)
    nets = [ReLUNet.random([2, 3], seed=s) for s in range(3)]
    shared = _thetas(train_batch(nets, "square", cfg))
    if where == "global":
        monkeypatch.setattr(config, "CUDA_SHARED_BYTES", 0)
    else:
        monkeypatch.setattr(config, "CUDA_WORKSPACE_BYTES", 1)
    other = _thetas(train_batch(nets, "square", cfg))
    for a, b in zip(shared, other):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("precision", ["fp64", "fp16"])
def test_evaluate_batch_equals_cpu(precision):
    nets = [ReLUNet.random([3, 4], seed=s) for s in range(3)]
    x = np.linspace(-1, 1, 7)
    gpu = evaluate_batch(nets, x, precision=precision, device="cuda")
    cpu = evaluate_batch(nets, x, precision=precision, device="cpu")
    np.testing.assert_array_equal(gpu, cpu)
    if precision == "fp64":
        np.testing.assert_allclose(cpu, np.stack([net(x) for net in nets]), rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------- no GPU, and the real target


def _no_gpu(code):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=300)


def test_without_a_gpu_cuda_is_an_error_and_auto_falls_back():
    out = _no_gpu(
        "from pieces import count_pieces_batch, sawtooth, train, TrainConfig, ReLUNet\n"
        "try:\n    count_pieces_batch([sawtooth(2)], device='cuda')\nexcept RuntimeError as e:\n    print('E1', e)\n"
        "try:\n    train(ReLUNet.random([2]), 'square', TrainConfig(steps=1, device='cuda'))\n"
        "except RuntimeError as e:\n    print('E2', e)\n"
        "print('AUTO', count_pieces_batch([sawtooth(3)], device='auto')[0].tolist())\n"
    )
    assert out.returncode == 0, out.stderr
    assert "E1 counting on device='cuda': no CUDA GPU" in out.stdout
    assert "E2 training on device='cuda': no CUDA GPU" in out.stdout
    assert "AUTO [8]" in out.stdout


def test_cli_device_cuda_without_gpu_exits_2(tmp_path):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([sys.executable, "-m", "pieces.cli", "study", "--quick", "--device", "cuda",
                          "--out", str(tmp_path / "run"), "--no-progress"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "no CUDA GPU" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "results.csv").exists()


def test_kernels_compile_for_hopper():
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "cuda_ptx_check.py")], capture_output=True,
                         text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert out.stdout.count(" ok ") == 23


# ---------------------------------------------------------------- the study on the GPU


def test_study_on_cuda_gives_the_cpu_rows_and_keeps_its_device(tmp_path):
    from pieces.study import default_settings, run_study
    from pieces.study.runner import StudyError

    s = default_settings("quick")
    s.update(seeds=2, depths=[1, 2], widths=[3], targets=["square"],
             train={"optimizer": "adam", "lr": 0.01, "steps": 4, "n_samples": 8, "record_every": 2})
    run_study(tmp_path / "gpu", s, ["growth"], device="cuda", jobs=2, progress=False, report=False)
    run_study(tmp_path / "cpu", s, ["growth"], device="cpu", progress=False, report=False)
    gpu = (tmp_path / "gpu" / "results.csv").read_text()
    # widths below the BLAS threshold: the CPU's order of every sum is the GPU's
    assert gpu == (tmp_path / "cpu" / "results.csv").read_text()
    meta = (tmp_path / "gpu" / "meta.json").read_text()
    assert '"device": "cuda"' in meta and '"jobs": 1' in meta and '"gpu": "CUDA simulator"' in meta
    with pytest.raises(StudyError, match="started with --device cuda"):
        run_study(tmp_path / "gpu", s, ["growth"], device="cpu", progress=False, report=False)


def test_gpu_check_script_runs_in_the_simulator():
    # its figures mean nothing here; this keeps its code paths from rotting between
    # the sessions that have a GPU
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--tiny", "--skip-agreement"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "counts equal" in out.stdout and "native half" in out.stdout
    assert "PASS  count" in out.stdout
