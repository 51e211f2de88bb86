"""The drift gate's false-alarm rate with real timings on this machine (not a test:
timings depend on the load).

Times three Numba loops in interleaved rounds for two "sides" that run the same code,
gates them as ``pieces gate --paired`` would (and unpaired, for comparison), and prints
how often each rule raised a false alarm. Run it on an idle machine and while another
CPU-heavy job runs (e.g. a second ``make study``) to see what a shared runner does.

    python benchmarks/gate_aa.py [--runs 20]
"""

import argparse
import time

import numpy as np
from numba import njit

from report.drift import Side, gate

SUITE = {"bench.time_a": 200_000, "bench.time_b": 400_000, "bench.time_c": 100_000}


@njit(cache=True)
def _work(n):
    acc = 0.0
    for i in range(n):
        acc += np.sqrt(i + acc % 7.0)
    return acc


def _time(n):
    t = time.perf_counter()
    _work(n)
    return time.perf_counter() - t


def interleaved(k=15):
    """Two sides' samples, taken alternately (round i of both sides side by side)."""
    a = {name: [] for name in SUITE}
    b = {name: [] for name in SUITE}
    for _ in range(k):
        for name, n in SUITE.items():
            a[name].append(_time(n))
            b[name].append(_time(n))
    return (Side("a", "m", {}, a, {}, {}), Side("b", "m", {}, b, {}, {}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    _work(10)
    paired = unpaired = 0
    for _ in range(args.runs):
        a, b = interleaved()
        paired += gate(a, b, paired=True).drifted
        unpaired += gate(a, b).drifted
    print(f"A/A false alarms over {args.runs} runs: paired {paired} ({100 * paired / args.runs:.0f}%), "
          f"unpaired {unpaired} ({100 * unpaired / args.runs:.0f}%); nominal 5% or less")


if __name__ == "__main__":
    main()
