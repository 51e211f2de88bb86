"""Dask's overhead on one machine: the same study grid (200 tasks) on the local process
pool and on a dask LocalCluster of the same number of workers, timed back to back.

    python benchmarks/bench_dask.py [--jobs 2]

Prints both wall times (cluster start-up included) and dask's overhead as a fraction
of the wall time; the goal is at most 10%.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from pieces.study import default_settings, make_tasks, run_study
from pieces.study.schema import validate_settings


def grid():
    s = default_settings("quick")
    s.update(seeds=2, depths=list(range(1, 21)), widths=[4, 8, 12, 16, 20], targets=["square", "sine:2"],
             train={**s["train"], "steps": 1000, "n_samples": 128, "record_every": 1000})
    return validate_settings(s)


def timed(out, settings, jobs, executor):
    t = time.perf_counter()
    run_study(out, settings, ["growth"], jobs=jobs, progress=False, report=False, executor=executor)
    return time.perf_counter() - t


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args()
    s = grid()
    n = len(make_tasks(s, ["growth"]))
    root = Path(tempfile.mkdtemp())
    try:
        timed(root / "warm", {**s, "depths": [1, 2]}, 1, "local")  # Numba's cache, once
        local = timed(root / "local", s, args.jobs, "local")
        dask = timed(root / "dask", s, args.jobs, "dask")
        cpu = {k: sum(float(line.split(",")[2]) for line in (root / k / "timings.csv").read_text().splitlines()[1:])
               for k in ("local", "dask")}
        same = sorted((root / "local" / "results.csv").read_text().splitlines()) == \
            sorted((root / "dask" / "results.csv").read_text().splitlines())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    overhead = (dask - local) / dask
    print(f"{n} tasks on {args.jobs} workers: local pool {local:.1f} s, dask LocalCluster {dask:.1f} s "
          f"(ratio {dask / local:.3f}); dask's overhead {100 * overhead:.1f}% of its wall time "
          f"({'PASS' if overhead <= 0.10 else 'MISS'} against 10%); same rows: {same}; "
          f"seconds inside the tasks: local {cpu['local']:.1f}, dask {cpu['dask']:.1f}")


if __name__ == "__main__":
    main()
