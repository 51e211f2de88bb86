"""Running a study into a run directory: parallel, resumable, never half-written.

Layout of a run directory:

- ``results.csv``: tidy, one row per measurement (columns ``tasks.COLUMNS``);
- ``done.txt``: the ids of finished tasks, one a line;
- ``meta.json``: settings, versions, machine, git commit, wall time;
- ``timings.csv``: seconds per finished task (the calibration of ``pieces study --plan``);
- ``report.html``: the report (``pieces report`` re-renders it).

A finished task's rows are appended with one ``write`` and ``fsync``, then its id is
appended to ``done.txt``. A re-run first drops rows of tasks that are not in
``done.txt`` (a crash between the two writes, or inside the first), then runs only the
tasks not yet done. So Ctrl-C or kill -9 loses nothing that had finished.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import io
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

from .._io import atomic_write
from .grid import make_tasks
from .tasks import COLUMNS, run_task

__all__ = ["run_study", "StudyError", "atomic_write_text", "read_done"]


class StudyError(ValueError):
    """Bad input to a study (bad directory, foreign results.csv, unknown experiment)."""


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temp file and a rename."""
    atomic_write(path, text)


def _short(task_id):
    return hashlib.sha1(task_id.encode()).hexdigest()[:16]


def read_done(run_dir):
    p = Path(run_dir) / "done.txt"
    if not p.exists():
        return set()
    return {line.strip() for line in p.read_text().splitlines() if line.strip()}


def _rows_text(rows, header=False):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n", extrasaction="raise")
    if header:
        w.writeheader()
    for r in rows:
        w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def _append(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _prepare(run_dir):
    """Check (or create) the run directory; drop rows of unfinished tasks."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"cannot create output directory {run_dir}: {exc.strerror}") from None
    if not os.access(run_dir, os.W_OK):
        raise StudyError(f"output directory {run_dir} is not writable")
    results = run_dir / "results.csv"
    done = read_done(run_dir)
    if not results.exists():
        atomic_write_text(results, _rows_text([], header=True))
        return done
    text = results.read_text()
    if text and not text.endswith("\n"):
        # a crash inside the append of an unfinished task: drop its partial last line
        text = text[: text.rfind("\n") + 1]
        dropped_tail = 1
    else:
        dropped_tail = 0
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise StudyError(f"{results} has another schema (header {header}); use another --out")
    kept, dropped = [], dropped_tail
    for line in reader:
        if len(line) != len(COLUMNS):
            raise StudyError(f"{results} is truncated or corrupt at line {reader.line_num}")
        if line[0] in done:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(kept)
        atomic_write_text(results, buf.getvalue())
    return done


def _versions():
    import numba
    import numpy
    import scipy
    import statsmodels

    from .. import __version__

    return {"pieces": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
            "numba": numba.__version__, "scipy": scipy.__version__, "statsmodels": statsmodels.__version__}


def _git_commit():
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _init_worker():
    import numba

    numba.set_num_threads(1)  # processes give the parallelism


def run_study(out, settings, experiments, size="default", jobs=1, progress=True, report=True, device="cpu"):
    """Run (or resume) a study in ``out``.

    ``device="cuda"`` trains on the GPU, one task after another in this process (the
    GPU trains a task's seeds at once); a run directory keeps the device it started on.

    Returns
    -------
    dict
        ``n_tasks``, ``n_done`` (before this call), ``n_run`` and ``wall_s``.
    """
    from .._device import gpu_description, resolve_device

    device = resolve_device(device, "the study")  # "auto" becomes what runs
    tasks = make_tasks(settings, experiments)
    run_dir = Path(out)
    done = _prepare(run_dir)
    meta_path = run_dir / "meta.json"
    previous_wall = 0.0
    if meta_path.exists():
        try:
            old = json.loads(meta_path.read_text())
            previous_wall = float(old.get("wall_s_total", 0.0))
        except (ValueError, TypeError, AttributeError):
            old, previous_wall = {}, 0.0
        started_on = old.get("device", "cpu") if isinstance(old, dict) else "cpu"
        if done and started_on != device:
            # native fp32/fp64 differ in the last bits between devices: one run, one device
            raise StudyError(f"{run_dir} was started with --device {started_on}; resume it with that "
                             "device or use another --out")
    if device == "cuda":
        jobs = 1
    todo = [t for t in tasks if _short(t["id"]) not in done]
    meta = {
        "settings": settings, "experiments": list(experiments), "size": size, "jobs": jobs, "device": device,
        "versions": _versions(), "git_commit": _git_commit(),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    **(gpu_description() if device == "cuda" else {})},
        "n_tasks": len(tasks), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    atomic_write_text(meta_path, json.dumps({**meta, "finished": None, "wall_s_total": previous_wall}, indent=2))
    t0 = time.perf_counter()
    bar = _progress(len(tasks), len(tasks) - len(todo), progress)
    results_path = run_dir / "results.csv"
    done_path = run_dir / "done.txt"

    timings_path = run_dir / "timings.csv"
    if not timings_path.exists():
        _append(timings_path, "task,experiment,seconds\n")

    def finish(task, result):
        rows, seconds = result
        sid = _short(task["id"])
        for r in rows:
            r["task"] = sid
        _append(results_path, _rows_text(rows))
        _append(done_path, sid + "\n")
        _append(timings_path, f"{sid},{task['experiment']},{seconds:.4f}\n")
        bar.update(1)

    try:
        if jobs <= 1:
            for t in todo:
                finish(t, _run_quietly(t, device))
        else:
            ctx = multiprocessing.get_context("spawn")
            # workers inherit the environment when they start (at the first submits):
            # one BLAS thread each, since the processes are the parallelism
            saved = os.environ.get("OPENBLAS_NUM_THREADS")
            os.environ["OPENBLAS_NUM_THREADS"] = "1"
            try:
                with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker) as pool:
                    _run_pool(pool, todo, finish)
            finally:
                if saved is None:
                    os.environ.pop("OPENBLAS_NUM_THREADS", None)
                else:
                    os.environ["OPENBLAS_NUM_THREADS"] = saved
    finally:
        bar.close()
        wall = time.perf_counter() - t0
        finished = len(read_done(run_dir) & {_short(t["id"]) for t in tasks}) == len(tasks)
        atomic_write_text(meta_path, json.dumps(
            {**meta, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z") if finished else None,
             "wall_s_total": previous_wall + wall, "wall_s_last": wall}, indent=2))
    if report:
        from report.render import write_report

        write_report(run_dir)
    return {"n_tasks": len(tasks), "n_done": len(tasks) - len(todo), "n_run": len(todo), "wall_s": wall}


def _timed_task(task, device="cpu"):
    """``(rows, seconds)`` of ``run_task``."""
    t0 = time.perf_counter()
    rows = run_task(task, device)
    return rows, time.perf_counter() - t0


def _run_quietly(task, device):
    """``_timed_task``; on the GPU without a warning per net that the CPU counted instead
    (a net past the GPU's segment buffers, e.g. a deep construction: the counts are
    the same, and a study would print one per recording)."""
    if device != "cuda":
        return _timed_task(task, device)
    from .._count_cuda import GPUFallbackWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GPUFallbackWarning)
        return _timed_task(task, device)


def _run_pool(pool, todo, finish):
    futures = {pool.submit(_timed_task, t): t for t in todo}
    try:
        for fut in cf.as_completed(futures):
            finish(futures[fut], fut.result())
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _progress(total, initial, enabled):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="task", desc="study", file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5)
