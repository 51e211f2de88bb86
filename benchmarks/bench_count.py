"""Speed and memory of the exact counter, as ratios measured in one run.

Run: ``.venv/bin/python benchmarks/bench_count.py`` (``make bench``), or with ``scale``
for the counts past memory alone, ``mnist`` for the MNIST-sized MLP along segments. Prints one line per goal of the counting issues with
the measured figure and whether it is met.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the numpy baselines use one core

import subprocess
import sys
import time

import numba
import numpy as np
from numba import njit
from numba.typed import List

from pieces import ReLUNet, count_pieces, count_pieces_batch, sawtooth


def best_of(fn, repeat=5, number=1):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


# -- a straightforward list-based Numba counter: the baseline the issue names ----------
@njit
def _list_count(ws, bs, a, b):
    segs_lo = List([a])
    segs_hi = List([b])
    As = List([np.ones(1)])
    Bs = List([np.zeros(1)])
    for layer in range(len(ws) - 1):
        W = ws[layer]
        bias = bs[layer]
        n_lo, n_hi, nA, nB = List([0.0]), List([0.0]), List([np.ones(1)]), List([np.ones(1)])
        n_lo.pop()
        n_hi.pop()
        nA.pop()
        nB.pop()
        for k in range(len(segs_lo)):
            s = W @ As[k]
            t = W @ Bs[k] + bias
            cuts = [segs_lo[k]]
            for j in range(s.size):
                if s[j] != 0.0:
                    c = -t[j] / s[j]
                    if segs_lo[k] < c < segs_hi[k]:
                        cuts.append(c)
            cuts.append(segs_hi[k])
            cuts.sort()
            for q in range(len(cuts) - 1):
                if cuts[q + 1] - cuts[q] <= 1e-12:
                    continue
                m = 0.5 * (cuts[q] + cuts[q + 1])
                on = (s * m + t) > 0
                n_lo.append(cuts[q])
                n_hi.append(cuts[q + 1])
                nA.append(np.where(on, s, 0.0))
                nB.append(np.where(on, t, 0.0))
        segs_lo, segs_hi, As, Bs = n_lo, n_hi, nA, nB
    v = ws[len(ws) - 1][0]
    pieces = 1
    prev = np.dot(v, As[0])
    for k in range(1, len(As)):
        cur = np.dot(v, As[k])
        if abs(cur - prev) > 1e-9 * max(abs(cur), abs(prev)):
            pieces += 1
        prev = cur
    return pieces


def list_count(net, a, b):
    return _list_count(List(net.weights), List(net.biases), a, b)


def grid_count(net, a, b, n=1_000_000):
    """What a sampling tool does: evaluate on n points, count slope changes.

    A kink inside a cell changes the slope at both of the cell's ends, so runs of
    neighbouring changes count once.
    """
    x = np.linspace(a, b, n)
    y = net(x)
    slope = np.diff(y) / np.diff(x)
    d = np.abs(np.diff(slope)) > 1e-6 * np.abs(slope).max()
    return 1 + int(np.count_nonzero(d[1:] & ~d[:-1]) + d[0])


def segments_per_layer(net, interval):
    """Segments entering each affine layer (the counter's work per layer)."""
    segs = [1]
    for layer in range(1, net.depth + 1):
        ws = list(net.weights[:layer]) + [np.zeros((1, net.widths[layer - 1]))]
        bs = list(net.biases[:layer]) + [np.zeros(1)]
        segs.append(count_pieces(ReLUNet(ws, bs), interval).regions)
    return segs


def peak_dgemm_gflops():
    a = np.random.default_rng(0).random((1500, 1500))
    a @ a
    return 2 * 1500**3 / best_of(lambda: a @ a, repeat=3) / 1e9


def report(name, value, goal, ok):
    print(f"{'PASS' if ok else 'MISS'}  {name:58} {value:>22}   goal {goal}")


def bench_sawtooth():
    net = sawtooth(20)
    numba.set_num_threads(1)
    count_pieces(sawtooth(3), (0.0, 1.0))
    t = best_of(lambda: count_pieces(net, (0.0, 1.0)), repeat=5)
    assert count_pieces(net, (0.0, 1.0)).pieces == 2**20
    report("sawtooth(20), 1,048,576 pieces, exact, 1 core", f"{t:.3f} s", "< 0.25 s", t < 0.25)
    list_count(sawtooth(3), 0.0, 1.0)
    t_list = best_of(lambda: list_count(net, 0.0, 1.0), repeat=1)
    report("  vs straightforward list-based Numba counter", f"{t_list:.2f} s = {t_list / t:.1f}x", "faster", t_list > t)


def bench_vs_grid():
    net = ReLUNet.random([32] * 16, init="he", seed=0)
    iv = (-3.0, 3.0)
    exact = count_pieces(net, iv)
    t_exact = best_of(lambda: count_pieces(net, iv), repeat=20)
    t_grid = best_of(lambda: grid_count(net, *iv), repeat=3)
    g = grid_count(net, *iv)
    g4 = grid_count(net, *iv, n=10_000)
    r = count_pieces(net, iv, method="rational").pieces if os.environ.get("BENCH_RATIONAL") else None
    report("He w=32 L=16 on [-3,3]: exact count vs numpy 1e6-point grid",
           f"{t_exact * 1e3:.2f} ms vs {t_grid * 1e3:.0f} ms = {t_grid / t_exact:.0f}x", ">= 100x",
           t_grid / t_exact >= 100)
    print(f"      exact pieces {exact.pieces}, regions {exact.regions}; grid finds {g} pieces"
          + (f"; rational oracle {r}" if r is not None else "")
          + f" (with 1e4 points {g4})" + f"; narrowest piece {np.diff(np.r_[iv[0], exact.breakpoints, iv[1]]).min():.2e}"
          + f" vs grid cell {(iv[1] - iv[0]) / 1e6:.0e}")


def bench_throughput():
    numba.set_num_threads(1)
    peak = peak_dgemm_gflops()
    print(f"      one-core float64 peak, measured as numpy DGEMM: {peak:.1f} GFLOP/s")
    for w, L in [(16, 16), (32, 16), (64, 8), (64, 16)]:
        net = ReLUNet.random([w] * L, seed=0)
        iv = (-np.inf, np.inf)
        t = best_of(lambda: count_pieces(net, iv), repeat=10, number=3)
        segs = segments_per_layer(net, iv)
        sizes = [1] + [w] * L + [1]
        flops = sum(s * 4 * a * b for s, a, b in zip(segs, sizes[:-1], sizes[1:]))
        gf = flops / t / 1e9
        ok = gf >= 0.25 * peak if w == 64 else True
        report(f"throughput w={w} L={L} ({count_pieces(net, iv).pieces} pieces on R)",
               f"{sum(segs) / t / 1e6:.2f} M piece-layers/s", "", True)
        report(f"  at the 4 w^2 flop bound", f"{gf:.1f} GFLOP/s = {100 * gf / peak:.0f}% peak",
               ">= 25% at w=64" if w == 64 else "(info)", ok)


def bench_batch_scaling():
    nets = [ReLUNet.random([32] * 12, seed=s) for s in range(64)]
    iv = (-np.inf, np.inf)
    count_pieces_batch(nets[:2], iv)
    res = {}
    for th in (1, 2):
        numba.set_num_threads(th)
        res[th] = best_of(lambda: count_pieces_batch(nets, iv), repeat=15)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    sp = res[1] / res[2]
    report("count_pieces_batch, 64 nets w=32 L=12: 2 threads vs 1",
           f"{res[1] * 1e3:.1f} / {res[2] * 1e3:.1f} ms = {sp:.2f}x", ">= 1.7x", sp >= 1.7)


_MEM_CHILD = """
import numba
numba.set_num_threads(1)
from pieces import count_pieces, sawtooth
def hwm():  # peak RSS of this process image in KiB (ru_maxrss survives execve)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
count_pieces(sawtooth(3), (0.0, 1.0))
before = hwm()
c = count_pieces(sawtooth(20), (0.0, 1.0))
after = hwm()
assert c.pieces == 2**20
print(before, after)
"""


def bench_memory():
    out = subprocess.run([sys.executable, "-c", _MEM_CHILD], capture_output=True, text=True, check=True)
    before, after = (int(v) / 1024 for v in out.stdout.split())
    report("peak RSS counting 2^20 pieces (whole process)", f"{after:.0f} MiB (+{after - before:.0f})",
           "< 1024 MiB", after < 1024)


def bench_exact_vs_tolerance():
    """Issue 16: the exact (certified) counter beside the float64 counter with
    tolerances it replaced, in one run, and how often a net needs the fallbacks."""
    from pieces.count import _certified_cpu, _count_cpu

    numba.set_num_threads(1)

    def fallbacks(net, iv):
        """``(status, segments, slopes)``: the float64 stage's status (1: undecided, then
        double-double; 2: only slope pairs open, decided alone) and how many segments'
        input maps and output slopes it recomputed in double-double on the way."""
        wt, bf, sizes, *_ = _count_cpu.pack([net])
        out = _certified_cpu.count_in(wt, bf, sizes, *iv, _certified_cpu.new_workspace(64, sizes.max()))
        return int(out[3]), int(out[4][25][0]), int(out[4][25][1])

    count_pieces(sawtooth(3), (0.0, 1.0), method="tolerance")
    count_pieces(sawtooth(3), (0.0, 1.0))
    cases = [("sawtooth(20) on [0,1]", sawtooth(20), (0.0, 1.0), 5),
             ("He w=32 L=16 on [-3,3]", ReLUNet.random([32] * 16, init="he", seed=0), (-3.0, 3.0), 20),
             ("w=64 L=8 on R", ReLUNet.random([64] * 8, seed=0), (-np.inf, np.inf), 10),
             ("w=16 L=16 on R", ReLUNet.random([16] * 16, seed=0), (-np.inf, np.inf), 20)]
    for name, net, iv, r in cases:
        # the two counters alternate call by call, so that both see the machine alike (its
        # speed drifts by 10% and more over seconds); the goal is judged on the median of
        # the paired ratios, the best times are shown beside it
        ex, tol = [], []
        for _ in range(4 * r):
            tol.append(best_of(lambda: count_pieces(net, iv, method="tolerance"), repeat=1))
            ex.append(best_of(lambda: count_pieces(net, iv), repeat=1))
        ratio = float(np.median(np.array(ex) / np.array(tol)))
        st, segs, slopes = fallbacks(net, iv)
        report(f"exact vs tolerance counter: {name}", f"{min(ex) * 1e3:.1f} / {min(tol) * 1e3:.1f} ms, "
               f"{ratio:.2f}x", "<= 1.3x", ratio <= 1.3)
        print(f"      status {st}; recomputed in double-double: {segs} segments, {slopes} output slopes")
    for w, L, iv in [(32, 16, (-3.0, 3.0)), (64, 8, (-np.inf, np.inf)), (16, 16, (-np.inf, np.inf)),
                     (64, 16, (-3.0, 3.0))]:
        fb = [fallbacks(ReLUNet.random([w] * L, init="he", seed=s), iv) for s in range(20)]
        st = [f[0] for f in fb]
        print(f"      He w={w} L={L} on {iv}: {sum(f[1] > 0 or f[2] > 0 for f in fb)} of 20 nets recompute "
              f"segments locally in double-double ({sum(f[1] for f in fb)} segments, {sum(f[2] for f in fb)} "
              f"output slopes in all); {st.count(1)} left undecided in float64 (then a whole double-double "
              f"sweep), {st.count(2)} with only slope pairs open (decided alone)")
    print(f"      sawtooth(20): status {fallbacks(sawtooth(20), (0.0, 1.0))[0]} (dyadic: decided exactly)")
    t_tol = t_ex = 0.0
    for seed in range(5):
        net = ReLUNet.random([64] * 16, init="he", seed=seed)
        iv = (-3.0, 3.0)
        t_tol += best_of(lambda: count_pieces(net, iv, method="tolerance"), repeat=3)
        t_ex += best_of(lambda: count_pieces(net, iv), repeat=3)
    print(f"      He w=64 L=16 on [-3,3], 5 nets, whose float64 bounds reach ~1e-3: exact "
          f"{t_ex * 1e3:.0f} vs tolerance {t_tol * 1e3:.0f} ms = {t_ex / t_tol:.1f}x")


_SCALE_CHILD = """
import resource, sys, time
import numba
numba.set_num_threads(int(sys.argv[3]))
from pieces import CountLimitError, count_pieces, sawtooth, yarotsky_square
count_pieces(sawtooth(18), (0.0, 1.0), breakpoints=False, max_memory=2**22)  # compile, chunked path too
net = {"sawtooth": sawtooth, "yarotsky": yarotsky_square}[sys.argv[1]](int(sys.argv[2]))
t0 = time.perf_counter()
try:
    c = count_pieces(net, (0.0, 1.0), breakpoints=False, max_seconds=600)
    p, r = c.pieces, c.regions
except CountLimitError as e:  # the early word: -1 pieces, then the estimate
    p, r = -1, int(e.estimated_pieces)
    print("estimate", e.estimated_seconds, file=sys.stderr)
t = time.perf_counter() - t0
print(p, r, t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def scale_run(kind, depth, threads):
    """``(pieces, regions, seconds, peak RSS in bytes)`` of one count in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _SCALE_CHILD, kind, str(depth), str(threads)],
                         capture_output=True, text=True, check=True)
    p, r, t, kib = out.stdout.split()
    if int(p) < 0:  # stopped early: (-estimated pieces, estimated seconds, seconds to say so, RSS)
        return -int(r), float(out.stderr.split()[-1]), float(t), int(kib) * 1024
    return int(p), int(r), float(t), int(kib) * 1024


def bench_scale(sizes=(24, 28, 32)):
    """Issue 30: counts past memory, each in its own process, its peak RSS from the OS."""
    threads = numba.config.NUMBA_NUM_THREADS
    p20, _, t20, _ = scale_run("sawtooth", 20, threads)
    per20 = t20 / p20
    print(f"  sawtooth(20): {p20} pieces in {t20:.2f} s = {per20 * 1e9:.0f} ns/piece on {threads} threads "
          "(the per-piece reference)")
    for kind, depth in [("sawtooth", L) for L in sizes] + [("yarotsky", 24)]:
        p, r, t, rss = scale_run(kind, depth, threads)
        if p < 0:
            report(f"{kind}({depth}): stopped after {t:.0f} s (limit 10 min)",
                   f"estimated {-p:.3g} pieces in {r / 60:.0f} min; peak RSS {rss / 2**30:.2f} GiB",
                   "exact, <= 1.3x per piece", False)
            continue
        per = t / p
        report(f"{kind}({depth}): {p} pieces in {t:.1f} s, {p / t / 1e6:.1f} M pieces/s",
               f"peak RSS {rss / 2**30:.2f} GiB; {per * 1e9:.0f} ns/piece = {per / per20:.2f}x sawtooth(20)'s",
               "<= 1.5 GiB, <= 1.3x", rss <= 1.5 * 2**30 and per <= 1.3 * per20)
        if depth == 32:
            report("  sawtooth(32) exact", f"{t / 60:.1f} min", "<= 10 min", t <= 600)
    t1 = min(scale_run("sawtooth", 24, 1)[2] for _ in range(2))
    t2 = min(scale_run("sawtooth", 24, 2)[2] for _ in range(2))
    report("sawtooth(24): 2 threads vs 1", f"{t1:.2f} / {t2:.2f} s = {t1 / t2:.2f}x", ">= 1.8x", t1 / t2 >= 1.8)


def _grid_regions(net, x0, x1, n=10_000):
    """Regions along the segment as sampling tools count them: activation patterns at
    ``n`` points, one new region per change between neighbouring points."""
    t = np.linspace(0.0, 1.0, n)
    h = x0[None, :] + t[:, None] * (x1 - x0)[None, :]
    changes = np.zeros(n - 1, bool)
    for w, b in zip(net.weights[:-1], net.biases[:-1]):
        z = h @ w.T + b
        on = z > 0
        changes |= (on[1:] != on[:-1]).any(axis=1)
        h = np.where(on, z, 0.0)
    return 1 + int(changes.sum())


def bench_mnist(n_segments=1000, n_grid=100):
    """Issue 27: an MNIST-sized MLP (784-256-256-256-10, He) along segments between
    random points of [0, 1]^784 (pixel-like), exact beside a 10^4-point grid."""
    net = ReLUNet.random([256, 256, 256], init="he", seed=0, in_dim=784, out_dim=10)
    rng = np.random.default_rng(0)
    X = rng.random((2 * n_segments, 784))
    segs = [(X[2 * i], X[2 * i + 1]) for i in range(n_segments)]
    count_pieces(net, segment=segs[0])
    t0 = time.perf_counter()
    exact = [count_pieces(net, segment=s) for s in segs]
    t_exact = (time.perf_counter() - t0) / n_segments
    t0 = time.perf_counter()
    one = [count_pieces(net.output(0), segment=s) for s in segs[:n_grid]]
    t_one = (time.perf_counter() - t0) / n_grid
    assert all(o.pieces == e.per_output[0] for o, e in zip(one, exact))
    t0 = time.perf_counter()
    grid = [_grid_regions(net, *s) for s in segs[:n_grid]]
    t_grid = (time.perf_counter() - t0) / n_grid
    miss = np.array([e.regions for e in exact[:n_grid]]) - np.array(grid)
    regions = np.array([e.regions for e in exact])
    print(f"  MNIST-sized MLP 784-256-256-256-10 (He) along {n_segments} segments: regions per segment "
          f"mean {regions.mean():.1f} (min {regions.min()}, max {regions.max()}); map pieces mean "
          f"{np.mean([e.pieces for e in exact]):.1f}")
    report("exact, the 10-output map, vs a 10^4-point grid (numpy, float64)",
           f"{1 / t_exact:.1f} vs {1 / t_grid:.1f} segments/s = {t_grid / t_exact:.2f}x", "exact faster",
           t_exact < t_grid)
    report("exact, one output, vs the grid", f"{1 / t_one:.1f} vs {1 / t_grid:.1f} segments/s = "
           f"{t_grid / t_one:.2f}x", "(info)", True)
    report(f"regions the grid misses on {n_grid} segments",
           f"{int(miss[miss > 0].sum())} in all, on {int((miss != 0).sum())} segments "
           f"(max {int(np.abs(miss).max())} on one)", "(info: the grid is an estimate)", True)


def main():
    print(f"relu-pieces counting benchmarks; numba {numba.__version__}, "
          f"{numba.config.NUMBA_NUM_THREADS} threads available")
    if sys.argv[1:] == ["scale"]:  # only the counts past memory (about 6 minutes)
        bench_scale()
        return
    if sys.argv[1:] == ["mnist"]:  # only the MNIST-sized MLP along segments (about 2 minutes)
        bench_mnist()
        return
    bench_sawtooth()
    bench_vs_grid()
    bench_throughput()
    bench_batch_scaling()
    bench_memory()
    bench_exact_vs_tolerance()
    bench_mnist()
    bench_scale()


if __name__ == "__main__":
    main()
