"""The asv suite: speed (time_, peakmem_, track_compile_seconds) and the pieces-vs-layers
metric (track_ with unit "pieces"), deterministic for a given commit.

Run ``asv run`` (every commit of main), ``asv run -E existing --quick`` (this checkout,
in the current environment). The scripts bench_count.py and bench_train.py beside this
file print the issue goals as ratios; asv collects only the names below.
"""

import subprocess
import sys
import tempfile

import numpy as np

from pieces import ReLUNet, TrainConfig, count_pieces, count_pieces_batch, sawtooth, train_batch
from pieces.train import _train_cpu
from pieces.precision import parse_precision
from pieces.train import net_to_theta

# statsmodels (report.growth) is imported where it is used: asv starts a process per
# parameter combination, and a light import keeps the suite's --quick run short

# ---------------------------------------------------------------- speed: counting


class CountExact:
    params = ([16, 32, 64], [4, 8, 16])
    param_names = ["width", "depth"]

    def setup(self, width, depth):
        self.net = ReLUNet.random([width] * depth, seed=0)
        count_pieces(self.net, (-3.0, 3.0))  # warm the JIT

    def time_count_exact(self, width, depth):
        count_pieces(self.net, (-3.0, 3.0))

    def time_count_tolerance(self, width, depth):
        # the float64 counter with tolerances that "exact" replaced (issue 16), beside it
        count_pieces(self.net, (-3.0, 3.0), method="tolerance")


class CountHeDeepWide:
    """He nets of width 64 and depth 16 on [-3, 3]: the float64 bounds reach ~1e-3
    relative, and a few segments per net are recomputed in double-double."""

    def setup(self):
        self.net = ReLUNet.random([64] * 16, init="he", seed=0)
        count_pieces(self.net, (-3.0, 3.0))

    def time_count_exact_he_w64_l16(self):
        count_pieces(self.net, (-3.0, 3.0))

    def time_count_tolerance_he_w64_l16(self):
        count_pieces(self.net, (-3.0, 3.0), method="tolerance")


class CountSawtooth:
    params = [10, 16, 20]
    param_names = ["depth"]

    def setup(self, depth):
        self.net = sawtooth(depth)
        count_pieces(sawtooth(2), (0.0, 1.0))

    def time_count_sawtooth(self, depth):
        count_pieces(self.net, (0.0, 1.0))

    def time_count_sawtooth_tolerance(self, depth):
        count_pieces(self.net, (0.0, 1.0), method="tolerance")


class CountBatch:
    def setup(self):
        self.nets = [ReLUNet.random([32] * 8, seed=s) for s in range(64)]
        count_pieces_batch(self.nets[:2], (-3.0, 3.0))

    def time_count_batch(self):
        count_pieces_batch(self.nets, (-3.0, 3.0))


def peakmem_count_2_to_20_pieces():
    count_pieces(sawtooth(20), (0.0, 1.0))


# ---------------------------------------------------------------- speed: training


class GDStep:
    """Ten full-batch GD steps, width 16, depth 8, 256 samples, in each precision."""

    params = ["fp64", "fp32", "fp16", "bf16", "p11"]
    param_names = ["precision"]
    steps = 10
    width, depth, samples, n_nets, lr = 16, 8, 256, 1, 1e-3

    def kernels(self):
        return _train_cpu

    def setup(self, precision):
        self.kern = self.kernels()
        fmt = parse_precision(precision)
        dt = fmt.compute_dtype
        widths = [self.width] * self.depth
        self.sizes = np.array([1] + widths + [1], dtype=np.int64)
        self.thetas = np.stack([net_to_theta(ReLUNet.random(widths, seed=s)) for s in range(self.n_nets)]).astype(dt)
        self.x = np.linspace(0, 1, self.samples).astype(dt)
        self.y = (self.x * self.x).astype(dt)
        self.lrs = np.full(self.steps, self.lr, dt)
        self.bc = np.ones((self.steps, 2), dt)
        self.hp = np.array([0.9, 0.1, 0.999, 0.001, 1e-3], dt)
        self.rs = fmt.rounding
        self.opt = 0
        self.run()

    def run(self):
        th = self.thetas.copy()
        self.kern.run_steps_batch(th, th * 0, th * 0, self.sizes, self.x, self.y, self.lrs, self.bc, self.hp,
                                  self.opt, 0, self.steps, 0, np.arange(self.n_nets), np.ones(self.n_nets, bool),
                                  self.rs)

    def time_gd_steps(self, precision):
        self.run()


class GDStepWide(GDStep):
    """Ten full-batch GD steps, width 32, depth 8, 1024 samples: the size at which
    benchmarks/bench_train.py compares the emulated steps with the native ones."""

    params = ["fp64", "fp32", "fp16", "bf16", "p11"]
    width, samples = 32, 1024


class AdamStep(GDStep):
    params = ["fp32"]

    def setup(self, precision):
        super().setup(precision)
        self.opt = 2
        self.run()

    def time_adam_steps(self, precision):
        self.run()

    time_gd_steps = None


class TrainBatch:
    def setup(self):
        self.nets = [ReLUNet.random([16] * 4, seed=s) for s in range(16)]
        self.cfg = TrainConfig(optimizer="gd", lr=1e-3, steps=50, record_every=50, precision="fp32", n_samples=128)
        train_batch(self.nets[:1], "square", self.cfg)

    def time_train_batch(self):
        train_batch(self.nets, "square", self.cfg)


# ---------------------------------------------------------------- speed: GPU
# Skipped (NotImplementedError in setup, asv's convention) where no GPU is usable, e.g.
# on CI; on a GPU machine they track the CUDA twins across commits.


def _require_gpu():
    from pieces._jit.device import cuda_status, simulated

    ok, why = cuda_status()
    if not ok or simulated():
        raise NotImplementedError(f"no GPU: {why or 'the CUDA simulator is on'}")


class GpuGDStep(GDStep):
    """Ten full-batch GD steps of 1024 nets, width 32, depth 8, 1024 samples, on the GPU."""

    params = ["fp32", "fp64", "fp16"]
    width, depth, samples, n_nets, lr = 32, 8, 1024, 1024, 1e-4

    def kernels(self):
        _require_gpu()
        from pieces.train import _train_cuda

        return _train_cuda

    def time_gpu_gd_steps(self, precision):
        self.run()

    time_gd_steps = None


class GpuCountBatch:
    def setup(self):
        _require_gpu()
        self.nets = [ReLUNet.random([32] * 8, seed=s) for s in range(1024)]
        count_pieces_batch(self.nets[:2], (-3.0, 3.0), device="cuda", method="tolerance")

    def time_gpu_count_batch(self):
        # the tolerance counter, as this benchmark timed before "exact" became certified
        count_pieces_batch(self.nets, (-3.0, 3.0), device="cuda", method="tolerance")

    def time_gpu_count_batch_exact(self):
        count_pieces_batch(self.nets, (-3.0, 3.0), device="cuda")


class FitGrowth:
    def setup(self):
        from report.growth import fit_growth

        self.fit_growth = fit_growth
        rng = np.random.default_rng(0)
        self.L = np.repeat(np.arange(1, 13), 10)
        self.y = rng.poisson(1 + 8 * self.L)

    def time_fit_growth(self):
        self.fit_growth(self.L, self.y)


def peakmem_study_task():
    from pieces.study import default_settings, make_tasks, run_task

    task = make_tasks(default_settings("quick"), ["growth"])[-1]
    run_task(task)


_COMPILE = """
import time
t = time.perf_counter()
from pieces import ReLUNet, TrainConfig, count_pieces, train
count_pieces(ReLUNet.random([4, 4]), (0.0, 1.0))
train(ReLUNet.random([4, 4]), "square", TrainConfig(steps=2, record_every=2, precision="fp32"))
print(time.perf_counter() - t)
"""


def track_compile_seconds():
    """Import, compile and run the count and fp32 training kernels with an empty cache."""
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", _COMPILE], capture_output=True, text=True, check=True,
                             env={**__import__("os").environ, "NUMBA_CACHE_DIR": cache})
    return float(out.stdout.split()[-1])


track_compile_seconds.unit = "s"
track_compile_seconds.timeout = 600

# ---------------------------------------------------------------- the metric

# the growth fit (slope, rate, verdict) runs over depths 1-12 and 10 seeds, as the default
# study, which gives it the power for a verdict (depths 1-6 and 5 seeds left it
# inconclusive); the per-net tracks keep their original grid, so that their history
# goes on (asv starts a process per parameter combination)
GROWTH_DEPTHS = [1, 2, 3, 4, 5, 6]
GROWTH_SEEDS = [0, 1, 2, 3, 4]
FIT_DEPTHS = list(range(1, 13))
FIT_SEEDS = list(range(10))
BACKPROP_DEPTHS = [2, 4, 8]
BACKPROP_PRECISIONS = ["fp32", "fp16", "bf16"]


class Metrics:
    """A fixed small growth grid: He nets of width 8, trained with Adam in fp64."""

    timeout = 600

    def setup_cache(self):
        from pieces.perturb import backprop_error
        from report.growth import fit_growth

        cfg = TrainConfig(optimizer="adam", lr=0.003, steps=300, record_every=300, n_samples=128, adam_eps=1e-4)
        out = {"pieces": {}, "regions": {}, "backprop": {}}
        depths, pieces = [], []
        for L in FIT_DEPTHS:
            nets = [ReLUNet.random([8] * L, seed=s) for s in FIT_SEEDS]
            for s, res in zip(FIT_SEEDS, train_batch(nets, "square", cfg)):
                out["pieces"][(L, s)] = int(res.history["pieces"][-1])
                out["regions"][(L, s)] = int(res.history["regions"][-1])
                depths.append(L)
                pieces.append(out["pieces"][(L, s)])
        fit = fit_growth(depths, pieces)
        out["slope"], out["slope_ci"] = fit.slope, fit.slope_ci
        out["rate"], out["rate_ci"] = fit.rate, fit.rate_ci
        out["verdict"] = fit.verdict
        x = np.linspace(0, 1, 64)
        for L in BACKPROP_DEPTHS:
            net = ReLUNet.random([8] * L, seed=0)
            for p in BACKPROP_PRECISIONS:
                out["backprop"][(L, p)] = backprop_error(net, x, x**2, p).total
        return out

    def track_trained_pieces(self, data, depth, seed):
        return data["pieces"][(depth, seed)]

    track_trained_pieces.params = (GROWTH_DEPTHS, GROWTH_SEEDS)
    track_trained_pieces.param_names = ["depth", "seed"]
    track_trained_pieces.unit = "pieces"

    def track_trained_regions(self, data, depth, seed):
        return data["regions"][(depth, seed)]

    track_trained_regions.params = (GROWTH_DEPTHS, GROWTH_SEEDS)
    track_trained_regions.param_names = ["depth", "seed"]
    track_trained_regions.unit = "regions"

    def track_growth_slope(self, data, bound):
        return {"fit": data["slope"], "lo": data["slope_ci"][0], "hi": data["slope_ci"][1]}[bound]

    track_growth_slope.params = ["fit", "lo", "hi"]
    track_growth_slope.param_names = ["bound"]
    track_growth_slope.unit = "pieces per layer"

    def track_growth_rate(self, data, bound):
        return {"fit": data["rate"], "lo": data["rate_ci"][0], "hi": data["rate_ci"][1]}[bound]

    track_growth_rate.params = ["fit", "lo", "hi"]
    track_growth_rate.param_names = ["bound"]
    track_growth_rate.unit = "r"

    def track_growth_verdict(self, data):
        return {"linear": 1, "inconclusive": 0, "exponential": 2}[data["verdict"]]

    track_growth_verdict.unit = "verdict (1 linear, 2 exponential, 0 inconclusive)"

    def track_backprop_error(self, data, depth, precision):
        return data["backprop"][(depth, precision)]

    track_backprop_error.params = (BACKPROP_DEPTHS, BACKPROP_PRECISIONS)
    track_backprop_error.param_names = ["depth", "precision"]
    track_backprop_error.unit = "relative error"
