"""GPU check: agreement with the CPU, then throughput against the CPU, the GPU's peaks
and PyTorch, all measured in one run on one machine.

Run on a machine with an NVIDIA GPU::

    python benchmarks/gpu_check.py              # the issue's sizes (width 32, depth 8, 1024 samples)
    python benchmarks/gpu_check.py --study 600  # also time `pieces study --full --device cuda`

``--tiny`` shrinks every size so that the script's own code paths can be exercised in
numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``): its figures then mean nothing.

Sections:

1. the device, its fp32 peak (SMs x 128 lanes x 2 flop x clock, for Hopper-class SMs)
   and its memory bandwidth (from the driver's clock and bus width);
2. agreement on a sample: exact counts equal; emulated training (fp16, bf16, p12;
   GD, SGD, Adam) bit-identical; native fp32/fp64 within a stated tolerance;
3. training throughput in net-steps/s of full-batch GD (the kernel alone), per
   precision, against the CPU kernel on 2 threads (the CI machine), as achieved
   GFLOP/s (6 flop per weight per sample per step) and % of the fp32 peak, and as
   device-memory traffic (a model: activations and deltas written once, read twice)
   and % of the bandwidth;
4. counting throughput in pieces/s against the CPU kernel on 2 threads;
5. PyTorch batched training of the same nets with ``torch.baddbmm`` (fp32, TF32 off),
   side by side, when torch with CUDA is importable;
6. optionally the full study on the GPU, with a time limit.

Lines start with PASS or MISS against the issue's goals, or INFO.
"""

from __future__ import annotations

import os

# the CPU reference is "the 2-core CPU path": two Numba threads, one BLAS thread each
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from pieces import ReLUNet, TrainConfig, count_pieces_batch, train_batch  # noqa: E402
from pieces.count import _count_cpu
from pieces.train import _train_cpu
from pieces._jit.device import cuda_status, simulated
from pieces.precision import parse_precision  # noqa: E402
from pieces.train import net_to_theta  # noqa: E402

LINES = []


def line(status, what, value, goal=""):
    text = f"{status:4}  {what:58} {value:>34}" + (f"   goal {goal}" if goal else "")
    LINES.append(text)
    print(text, flush=True)


def device_info():
    from numba import cuda

    dev = cuda.get_current_device()
    if simulated():
        return {"name": "CUDA simulator", "sms": 1, "fp32_peak": float("nan"), "bandwidth": float("nan")}
    attrs = dev
    sms = attrs.MULTIPROCESSOR_COUNT
    clock_hz = attrs.CLOCK_RATE * 1e3  # kHz
    mem_hz = attrs.MEMORY_CLOCK_RATE * 1e3
    bus_bits = attrs.GLOBAL_MEMORY_BUS_WIDTH
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    return {
        "name": name, "cc": dev.compute_capability, "sms": sms,
        "fp32_peak": sms * 128 * 2 * clock_hz,  # FMA = 2 flop; 128 fp32 lanes per SM (sm_80+/sm_90)
        "bandwidth": 2 * mem_hz * bus_bits / 8,  # double data rate
    }


# ------------------------------------------------------------------ agreement


def check_agreement(tiny):
    ok_all = True
    n_nets, w, L = (3, 3, 2) if tiny else (64, 16, 6)
    nets = [ReLUNet.random([w] * L, seed=s) for s in range(n_nets)]
    for interval in ((0.0, 1.0), (-3.0, 3.0)):
        for method in ("exact", "tolerance"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g = count_pieces_batch(nets, interval, device="cuda", method=method)
            c = count_pieces_batch(nets, interval, device="cpu", method=method)
            same = np.array_equal(g[0], c[0]) and np.array_equal(g[1], c[1])
            ok_all &= same
            line("PASS" if same else "MISS", f"{method} counts of {n_nets} He nets w={w} L={L} on {interval}",
                 f"{int(np.sum(g[0] == c[0]))}/{n_nets} equal", "all equal")
    w, L, N = (3, 2, 8) if tiny else (8, 3, 64)
    nets = [ReLUNet.random([w] * L, seed=s) for s in range(4)]
    for precision in ("fp16", "bf16", "p12", "fp32", "fp64"):
        for optimizer in ("gd", "sgd", "adam"):
            cfg = TrainConfig(optimizer=optimizer, lr=0.01, steps=5, n_samples=N, precision=precision,
                              record_every=5, batch_size=None if optimizer == "gd" else max(2, N // 4),
                              adam_eps=1e-3)
            gpu = train_batch(nets, "sine", TrainConfig(**{**cfg.__dict__, "device": "cuda"}), seeds=range(4))
            cpu = train_batch(nets, "sine", cfg, seeds=range(4))
            a = np.stack([net_to_theta(r.net) for r in gpu])
            b = np.stack([net_to_theta(r.net) for r in cpu])
            if parse_precision(precision).native:
                rtol = 1e-12 if precision == "fp64" else 1e-4
                err = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
                ok = err <= rtol
                line("PASS" if ok else "MISS", f"train {precision} {optimizer}: GPU vs CPU weights",
                     f"max rel. diff {err:.1e}", f"<= {rtol:g}")
            else:
                ok = np.array_equal(a, b)
                line("PASS" if ok else "MISS", f"train {precision} {optimizer}: GPU vs CPU weights",
                     "bit-identical" if ok else f"{int(np.sum(a != b))} of {a.size} differ", "bit-identical")
            ok_all &= ok
    # native half arithmetic (config.CUDA_NATIVE_HALF): equal unless the GPU fuses
    # products and sums; reported, not required
    from pieces import config

    config.CUDA_NATIVE_HALF = True
    try:
        for optimizer in ("gd", "adam"):
            cfg = TrainConfig(optimizer=optimizer, lr=0.01, steps=5, n_samples=N, precision="fp16",
                              record_every=5, adam_eps=1e-3)
            gpu = train_batch(nets, "sine", TrainConfig(**{**cfg.__dict__, "device": "cuda"}), seeds=range(4))
            cpu = train_batch(nets, "sine", cfg, seeds=range(4))
            a = np.stack([net_to_theta(r.net) for r in gpu])
            b = np.stack([net_to_theta(r.net) for r in cpu])
            err = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))
            line("INFO", f"train fp16 {optimizer} in native half vs the CPU's emulation",
                 f"{int(np.sum(a == b))}/{a.size} equal, max rel. diff {err:.1e}")
    finally:
        config.CUDA_NATIVE_HALF = False
    return ok_all


# ------------------------------------------------------------------ training speed


def _gd_inputs(n_nets, w, L, N, precision, steps):
    fmt = parse_precision(precision)
    dt = fmt.compute_dtype
    sizes = np.array([1] + [w] * L + [1], dtype=np.int64)
    thetas = np.stack([net_to_theta(ReLUNet.random([w] * L, seed=s)) for s in range(n_nets)]).astype(dt)
    x = np.linspace(0, 1, N)
    return dict(
        thetas=thetas, sizes=sizes, X=x.astype(dt), Y=(x * x).astype(dt), lr=np.full(steps, 1e-4, dt),
        bc=np.ones((steps, 2), dt), hp=np.array([0.9, 0.1, 0.999, 0.001, 1e-3], dt), rounding=fmt.rounding,
    )


def gd_seconds(kernels, n_nets, w, L, N, precision, steps):
    """Seconds of ``steps`` full-batch GD steps of ``n_nets`` nets (after a warm-up)."""
    a = _gd_inputs(n_nets, w, L, N, precision, steps)

    def run(k):
        th = a["thetas"].copy()
        t0 = time.perf_counter()
        done, _, div = kernels.run_steps_batch(
            th, th * 0, th * 0, a["sizes"], a["X"], a["Y"], a["lr"], a["bc"], a["hp"], 0, 0, k, 0,
            np.arange(n_nets, dtype=np.int64), np.ones(n_nets, np.bool_), a["rounding"])
        dt = time.perf_counter() - t0
        assert np.all(done == k) and not div.any(), "the benchmark run diverged"
        return dt

    run(1)  # compile
    return min(run(steps) for _ in range(2))


def bench_training(info, sizes, tiny):
    from pieces.train import _train_cuda
    from pieces import config

    res = {}
    for (w, L, N, n_nets) in sizes:
        flop = 6 * (w + (L - 1) * w * w + w) * N  # per net-step: forward 2, backward 4 per weight-sample
        cpu_nets = 2 if tiny else 4
        for precision in ("fp32", "fp64", "fp16", "fp16 native"):
            steps = 2 if tiny else 10
            config.CUDA_NATIVE_HALF = precision.endswith("native")
            try:
                g = n_nets * steps / gd_seconds(_train_cuda, n_nets, w, L, N, precision.split()[0], steps)
            finally:
                config.CUDA_NATIVE_HALF = False
            if precision.endswith("native"):
                line("INFO", f"train fp16 in native half w={w} L={L} N={N}, {n_nets} nets", f"{g:,.0f} net-steps/s")
                continue
            c = cpu_nets * 2 / gd_seconds(_train_cpu, cpu_nets, w, L, N, precision, 2)
            res[(w, L, N, n_nets, precision)] = g
            gflops = g * flop / 1e9
            peak = gflops * 1e9 / info["fp32_peak"] * 100
            # device-memory traffic model per net-step: activations written once and read
            # twice (deltas' ReLU masks, gradients), deltas written and read twice
            # (transposed copy, gradients), in the compute dtype
            itemsize = parse_precision(precision.split()[0]).compute_dtype.itemsize
            traffic = itemsize * N * (3 * (L * w + 2) + 3 * (L * w + 1))
            bw = g * traffic / info["bandwidth"] * 100
            line("PASS" if g >= 100 * c else "MISS",
                 f"train {precision} w={w} L={L} N={N}, {n_nets} nets: GPU vs 2-core CPU",
                 f"{g:,.0f} vs {c:,.1f} net-steps/s = {g / c:,.0f}x", ">= 100x")
            line("INFO", f"  achieved arithmetic ({precision})",
                 f"{gflops:,.0f} GFLOP/s = {peak:.1f}% of fp32 peak")
            line("INFO", f"  device memory, traffic model ({precision})",
                 f"{g * traffic / 1e9:,.0f} GB/s = {bw:.1f}% of bandwidth")
    return res


def torch_net_steps(w, L, N, n_nets, steps):
    """net-steps/s of PyTorch batched GD with baddbmm, fp32, TF32 off."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    g = torch.Generator(device="cpu").manual_seed(0)
    sizes = [1] + [w] * L + [1]
    Ws = [(torch.randn(n_nets, b, a, generator=g) * (2 / a) ** 0.5).to(dev).requires_grad_() for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [(torch.randn(n_nets, b, 1, generator=g) * 0.1).to(dev).requires_grad_() for b in sizes[1:]]
    x = torch.linspace(0, 1, N, device=dev).expand(n_nets, 1, N).contiguous()
    y = x * x

    def step():
        h = x
        for i, (W, b) in enumerate(zip(Ws, bs)):
            h = torch.baddbmm(b, W, h)
            if i < L:
                h = torch.relu(h)
        loss = ((h - y) ** 2).mean(dim=(1, 2)).sum()  # each net's own MSE
        grads = torch.autograd.grad(loss, Ws + bs)
        with torch.no_grad():
            for p, gr in zip(Ws + bs, grads):
                p.sub_(1e-4 * gr)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return n_nets * steps / (time.perf_counter() - t0)


def bench_torch(ours, sizes, tiny):
    try:
        import torch

        if not torch.cuda.is_available():
            raise ImportError("torch has no CUDA here")
    except ImportError as exc:
        line("INFO", "PyTorch baseline", f"skipped: {exc}")
        return
    for (w, L, N, n_nets) in sizes:
        theirs = torch_net_steps(w, L, N, n_nets, 3 if tiny else 20)
        mine = ours[(w, L, N, n_nets, "fp32")]
        line("PASS" if mine >= theirs else "MISS", f"train fp32 w={w} L={L} N={N}, {n_nets} nets: ours vs torch",
             f"{mine:,.0f} vs {theirs:,.0f} net-steps/s = {mine / theirs:.2f}x", ">= 1x (baddbmm, TF32 off)")


# ------------------------------------------------------------------ counting speed


def bench_counting(tiny):
    from pieces.count import _count_cuda
    from pieces import config

    n_nets, w, L = (4, 4, 2) if tiny else (4096, 32, 8)
    nets = [ReLUNet.random([w] * L, seed=s) for s in range(n_nets)]
    packed = _count_cpu.pack(nets)
    args = (-3.0, 3.0, config.MERGE_RTOL, config.SLOPE_RTOL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _count_cuda.count_batch(*_count_cpu.pack(nets[:2]), *args, config.CUDA_COUNT_CAPACITY, 1)
        t0 = time.perf_counter()
        p, r = _count_cuda.count_batch(*packed, *args, config.CUDA_COUNT_CAPACITY, 1)
        tg = time.perf_counter() - t0
    m = min(n_nets, 2 if tiny else 256)
    sub = _count_cpu.pack(nets[:m])
    _count_cpu.count_batch(*_count_cpu.pack(nets[:2]), *args, config.COUNT_INITIAL_CAPACITY, 2)
    t0 = time.perf_counter()
    pc, rc = _count_cpu.count_batch(*sub, *args, config.COUNT_INITIAL_CAPACITY, 2)
    tc = time.perf_counter() - t0
    same = np.array_equal(pc, p[:m]) and np.array_equal(rc, r[:m])
    g, c = p.sum() / tg, pc.sum() / tc
    line("PASS" if same else "MISS", f"count {n_nets} He nets w={w} L={L} on [-3, 3]: GPU vs CPU",
         f"{g:,.0f} vs {c:,.0f} pieces/s = {g / c:.1f}x", "counts equal")
    line("INFO", "  regions per net (mean, max)", f"{r.mean():.0f}, {r.max()}")
    # the exact counter's float64 stage, GPU against CPU (undecided nets: status 1)
    from pieces.count import _certified_cpu, _certified_cuda

    _certified_cuda.count_batch(*_count_cpu.pack(nets[:2]), -3.0, 3.0, config.CUDA_COUNT_CAPACITY, 1)
    t0 = time.perf_counter()
    p, r, st = _certified_cuda.count_batch(*packed, -3.0, 3.0, config.CUDA_COUNT_CAPACITY, 1)
    tg = time.perf_counter() - t0
    _certified_cpu.count_batch(*_count_cpu.pack(nets[:2]), -3.0, 3.0, config.COUNT_INITIAL_CAPACITY, 2)
    t0 = time.perf_counter()
    pc, rc, sc = _certified_cpu.count_batch(*sub, -3.0, 3.0, config.COUNT_INITIAL_CAPACITY, 2)
    tc = time.perf_counter() - t0
    same = np.array_equal(sc, st[:m]) and np.array_equal(pc[sc == 0], p[:m][sc == 0])
    g, c = p.sum() / tg, pc.sum() / tc
    line("PASS" if same else "MISS", f"exact count {n_nets} He nets w={w} L={L}: GPU vs CPU float64 stage",
         f"{g:,.0f} vs {c:,.0f} pieces/s = {g / c:.1f}x", "same decisions")
    line("INFO", "  undecided on the GPU (decided on the CPU)", f"{int(st.sum())} of {n_nets}")


def run_study(seconds):
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        try:
            out = subprocess.run([sys.executable, "-m", "pieces.cli", "study", "--full", "--device", "cuda",
                                  "--out", f"{tmp}/full", "--no-progress"], capture_output=True, text=True,
                                 timeout=seconds)
            wall = time.perf_counter() - t0
            ok = out.returncode == 0
            line("PASS" if ok and wall <= 600 else "MISS", "pieces study --full --device cuda",
                 f"{wall:.0f} s (rc {out.returncode})", "<= 600 s")
            if not ok:
                print(out.stderr[-2000:])
        except subprocess.TimeoutExpired:
            line("MISS", "pieces study --full --device cuda", f"not done in {seconds} s", "<= 600 s")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny sizes (for the simulator)")
    p.add_argument("--nets", type=int, default=4096, help="nets trained at once (default 4096)")
    p.add_argument("--study", type=int, default=0, metavar="SECONDS",
                   help="also run the full study on the GPU, stopping after SECONDS")
    p.add_argument("--skip-agreement", action="store_true")
    args = p.parse_args(argv)
    ok, why = cuda_status()
    if not ok:
        print(f"gpu_check: {why}", file=sys.stderr)
        return 2
    info = device_info()
    line("INFO", f"device {info['name']} cc {info.get('cc')}, {info['sms']} SMs",
         f"fp32 peak {info['fp32_peak'] / 1e12:.1f} TFLOP/s, {info['bandwidth'] / 1e9:.0f} GB/s")
    t0 = time.perf_counter()
    agree = True if args.skip_agreement else check_agreement(args.tiny)
    sizes = [(3, 2, 8, 3)] if args.tiny else [(32, 8, 1024, args.nets), (16, 8, 256, args.nets)]
    ours = bench_training(info, sizes, args.tiny)
    bench_torch(ours, sizes, args.tiny)
    bench_counting(args.tiny)
    if args.study:
        run_study(args.study)
    print(f"gpu_check: {time.perf_counter() - t0:.0f} s; agreement {'ok' if agree else 'FAILED'}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
