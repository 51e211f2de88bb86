"""Speed and memory of training, as ratios measured in one run.

Run: ``.venv/bin/python benchmarks/bench_train.py``. The PyTorch comparison needs
``pip install torch==2.13.0`` in the same environment (not a dependency of the package);
without it those lines are skipped.
"""

import os

if not os.environ.get("BENCH_DEFAULT_THREADS"):  # the child of bench_vs_torch_default_threads
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import resource
import subprocess
import sys
import time

import numba
import numpy as np

from pieces import ReLUNet, TrainConfig, train_batch
from pieces.train import _train_cpu
from pieces.train._gemm_cpu import FUSED, INIT_ZERO, gemm
from pieces.precision import kernel_rounding, mul, parse_precision, rnd
from pieces.train import net_to_theta

try:
    import torch
except ImportError:  # the comparison is optional
    torch = None


def report(name, value, goal, ok):
    print(f"{'PASS' if ok else 'MISS'}  {name:62} {value:>30}   goal {goal}")


def ours_step_seconds(w, L, N, precision, steps=40, repeat=3):
    """Seconds per full-batch GD step of the kernel that ``train`` runs."""
    fmt = parse_precision(precision)
    dt = fmt.compute_dtype
    sizes = np.array([1] + [w] * L + [1], dtype=np.int64)
    theta = net_to_theta(ReLUNet.random([w] * L, seed=0)).astype(dt)
    x = np.linspace(0, 1, N).astype(dt)
    y = (x * x).astype(dt)
    lr = np.full(steps, 1e-3, dt)
    bc = np.ones((steps, 2), dt)
    hp = np.array([0.9, 0.1, 0.999, 0.001, 1e-3], dt)

    def run():
        th = theta[None].copy()
        done, _, div = _train_cpu.run_steps_batch(th, th * 0, th * 0, sizes, x, y, lr, bc, hp, 0, 0, steps, 0,
                                                  np.zeros(1, np.int64), np.ones(1, bool), fmt.rounding)
        assert done[0] == steps and not div[0]

    run()
    best = min(_timed(run) for _ in range(repeat))
    return best / steps


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def torch_step_seconds(w, L, N, steps=40, repeat=3):
    torch.manual_seed(0)
    sizes = [1] + [w] * L + [1]
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    x = torch.linspace(0, 1, N).reshape(-1, 1)
    y = x * x
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def run():
        for _ in range(steps):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()

    run()
    return min(_timed(run) for _ in range(repeat)) / steps


def sgemm_peak():
    a = np.random.default_rng(0).random((1500, 1500)).astype(np.float32)
    a @ a
    return 2 * 1500**3 / min(_timed(lambda: a @ a) for _ in range(3)) / 1e9


def bench_vs_torch():
    numba.set_num_threads(1)
    peak = sgemm_peak()
    print(f"      one-core fp32 peak, measured as numpy SGEMM: {peak:.1f} GFLOP/s; 1 thread for both")
    if torch is None:
        print("      PyTorch is not installed: pip install torch==2.13.0 for the comparison")
    else:
        torch.set_num_threads(1)
    for w, L, N, goal in [(16, 8, 256, 5.0), (32, 8, 1024, 2.0)]:
        ours = ours_step_seconds(w, L, N, "fp32")
        flops = 6 * N * w * w * L  # forward 2, backward 4 per weight and sample
        line = f"{ours * 1e3:.3f} ms, {flops / ours / 1e9:.1f} GFLOP/s"
        if torch is not None:
            theirs = torch_step_seconds(w, L, N)
            report(f"GD step fp32 w={w} L={L} N={N}: ours vs PyTorch {torch.__version__}",
                   f"{ours * 1e3:.3f} vs {theirs * 1e3:.3f} ms = {theirs / ours:.1f}x", f">= {goal:g}x",
                   theirs / ours >= goal)
            print(f"      GFLOP/s: ours {flops / ours / 1e9:.1f}, PyTorch {flops / theirs / 1e9:.1f}, "
                  f"peak {peak:.0f}")
        else:
            report(f"GD step fp32 w={w} L={L} N={N}", line, "(no torch)", True)


def bench_emulation():
    """Emulated steps against the native step they emulate from: fp16 and bf16 compute
    in float32 (goal <= 4x the fp32 step), pK in float64 (goal <= 8x the fp64 step)."""
    numba.set_num_threads(1)
    for w, L, N in [(16, 8, 256), (32, 8, 1024)]:
        native = {p: ours_step_seconds(w, L, N, p) for p in ("fp32", "fp64")}
        for p, base, goal in (("fp16", "fp32", 4), ("bf16", "fp32", 4), ("p5", "fp64", 8), ("p11", "fp64", 8),
                              ("p17", "fp64", 8)):
            t = ours_step_seconds(w, L, N, p, steps=10)
            r = t / native[base]
            report(f"GD step {p} / {base}, w={w} L={L} N={N}", f"{t * 1e3:.2f} / {native[base] * 1e3:.2f} ms = {r:.1f}x",
                   f"<= {goal}x", r <= goal)


@numba.njit(cache=True)
def _rounded_madds(z, h, w, rs, reps):
    """The emulated kernels' inner loop, in L1: ``z[n] = rnd(z[n] + rnd(w h[n]))``."""
    for _ in range(reps):
        for n in range(z.size):
            z[n] = rnd(z[n] + mul(w, h[n], rs), rs)


@numba.njit(cache=True)
def _fma_products(A, B, C, reps):
    M, K = A.shape
    N = B.shape[1]
    for _ in range(reps):
        gemm(A.ravel(), 0, K, 1, B.ravel(), 0, N, C.ravel(), 0, N, M, N, K, C.ravel(), 0, 0, INIT_ZERO | FUSED)


def bench_emulation_bound():
    """Why fp16 and bf16 steps cost what they do: multiply-adds per second of the fp32
    products (FMA chains, 32x32x1024) against the emulated kernels' inner loop, whose
    two roundings per multiply-add (four F16C conversions for fp16, eight integer
    operations for bf16) run in L1. Products are most of a step, so the step's ratio
    comes out near this one (lower where the weight gradients skip zero activations)."""
    numba.set_num_threads(1)
    rng = np.random.default_rng(0)
    dt = np.float32
    A, B, C = (rng.random(shape).astype(dt) for shape in ((32, 32), (32, 1024), (32, 1024)))
    _fma_products(A, B, C, 1)
    reps = 200
    native = 32 * 32 * 1024 * reps / min(_timed(lambda: _fma_products(A, B, C, reps)) for _ in range(3))
    for p in ("fp16", "bf16"):
        rs = kernel_rounding(parse_precision(p).rounding, finite_inputs=True)
        z, h = rng.random(1024).astype(dt) * 0.01, rng.random(1024).astype(dt)
        w = dt(0.5)
        _rounded_madds(z, h, w, rs, 1)
        reps = 2000
        rate = 1024 * reps / min(_timed(lambda: _rounded_madds(z, h, w, rs, reps)) for _ in range(3))
        print(f"      multiply-adds/s: fp32 products {native / 1e9:.1f} G, {p} rounded in L1 "
              f"{rate / 1e9:.2f} G: an emulated {p} multiply-add costs {native / rate:.1f}x an fp32 one")

def _default_threads_child():
    w, L, N = 32, 8, 1024
    ours = ours_step_seconds(w, L, N, "fp32")
    theirs = torch_step_seconds(w, L, N)
    print(ours, theirs, torch.get_num_threads())


def bench_vs_torch_default_threads():
    """The same comparison as a user runs it: both libraries at their default threads
    (OpenBLAS and PyTorch use every core), in a fresh process."""
    if torch is None:
        return
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["BENCH_DEFAULT_THREADS"] = "1"
    out = subprocess.run([sys.executable, "-c", "import bench_train as b; b._default_threads_child()"],
                         capture_output=True, text=True, check=True, env=env, cwd=os.path.dirname(__file__))
    ours, theirs, threads = out.stdout.split()
    ours, theirs = float(ours), float(theirs)
    report(f"GD step fp32 w=32 L=8 N=1024, default threads ({threads}): ours vs PyTorch",
           f"{ours * 1e3:.3f} vs {theirs * 1e3:.3f} ms = {theirs / ours:.2f}x", ">= 2x", theirs / ours >= 2)


def bench_batch_scaling(pairs=7):
    """train_batch on 2 threads against 1: the median of ``pairs`` ratios, each from a
    1-thread and a 2-thread run back to back (a noisy 2-core machine varies by 10%)."""
    nets = [ReLUNet.random([16] * 8, seed=s) for s in range(64)]
    cfg = TrainConfig(optimizer="gd", lr=1e-3, steps=200, record_every=100, precision="fp32", n_samples=256)
    train_batch(nets[:2], "square", cfg)
    ratios, times, cpu = [], {1: [], 2: []}, {1: [], 2: []}
    for _ in range(pairs):
        for th in (1, 2):
            numba.set_num_threads(th)
            c0 = resource.getrusage(resource.RUSAGE_SELF)
            times[th].append(_timed(lambda: train_batch(nets, "square", cfg)))
            c1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu[th].append(c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime)
        ratios.append(times[1][-1] / times[2][-1])
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    med = float(np.median(ratios))
    report(f"train_batch, 64 nets w=16 L=8 N=256, 200 GD steps: 2 threads vs 1, median of {pairs}",
           f"{np.median(times[1]):.2f} / {np.median(times[2]):.2f} s = {med:.2f}x", ">= 1.8x", med >= 1.8)
    print(f"      ratios: {' '.join(f'{r:.2f}' for r in sorted(ratios))}")
    # where the time goes: the same work costs this much more CPU time on 2 threads
    # (a serial part or an imbalance would show as wall time, not CPU time)
    print(f"      CPU seconds (user + system), median: {np.median(cpu[1]):.2f} on 1 thread, "
          f"{np.median(cpu[2]):.2f} on 2 = {np.median(cpu[2]) / np.median(cpu[1]):.2f}x the work's cost; "
          f"2 / that = {2 * np.median(cpu[1]) / np.median(cpu[2]):.2f}x at best")


_MEM_CHILD = """
import numba
from pieces import ReLUNet, TrainConfig, train
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
cfg = TrainConfig(optimizer="adam", lr=1e-3, steps=10_000, record_every=100, n_samples=256)
r = train(ReLUNet.random([16] * 8, seed=0), "square", cfg)
assert r.steps_done == 10_000 and len(r.history) == 101
print(hwm())
"""


def bench_memory():
    out = subprocess.run([sys.executable, "-c", _MEM_CHILD], capture_output=True, text=True, check=True)
    peak = int(out.stdout.split()[-1]) / 1024
    report("peak RSS, 10,000 Adam steps recorded every 100 (whole process)", f"{peak:.0f} MiB",
           "< 200 MiB", peak < 200)


def main():
    print(f"relu-pieces training benchmarks; numba {numba.__version__}, "
          f"{numba.config.NUMBA_NUM_THREADS} threads available")
    bench_batch_scaling()  # before torch: torch.set_num_threads(1) caps the shared OpenMP pool
    bench_vs_torch()
    bench_vs_torch_default_threads()
    bench_emulation()
    bench_emulation_bound()
    bench_memory()


if __name__ == "__main__":
    main()
