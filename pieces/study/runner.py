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
from .grid import short_id as _short
from .rundir import RunDirError, RunLock, check_done_have_rows, read_done, read_results
from .schema import SettingsError, validate_settings
from .tasks import COLUMNS, timed_task as _timed_task

__all__ = ["run_study", "StudyError", "atomic_write_text", "read_done"]


class StudyError(ValueError):
    """Bad input to a study (bad directory, foreign results.csv, unknown experiment)."""


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temp file and a rename."""
    atomic_write(path, text)


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


def _make_dir(run_dir):
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StudyError(f"cannot create output directory {run_dir}: {exc.strerror}") from None
    if not os.access(run_dir, os.W_OK):
        raise StudyError(f"output directory {run_dir} is not writable")
    return run_dir


def _prepare(run_dir):
    """Check the run directory (this process holds its lock); drop rows of unfinished
    tasks and a partial last row (the documented repair); diagnose any other damage."""
    results = run_dir / "results.csv"
    try:
        done = read_done(run_dir)
    except RunDirError as exc:
        raise StudyError(str(exc)) from None
    if not results.exists():
        if done:
            raise StudyError(f"{run_dir / 'done.txt'} lists finished tasks but results.csv is missing; "
                             "a damaged run dir, use another --out")
        atomic_write_text(results, _rows_text([], header=True))
        return done
    try:
        rows, partial = read_results(run_dir, COLUMNS, writing=True)
        check_done_have_rows(run_dir, done, rows)
    except RunDirError as exc:
        raise StudyError(str(exc)) from None
    kept = [line for line in rows if line[0] in done]
    if partial or len(kept) != len(rows):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(kept)
        atomic_write_text(results, buf.getvalue())
    return done


def _check_meta(meta_path, settings, device, done):
    """The previous wall time of the run dir; a resumed run must have the same settings
    and device as the one that started it (one run dir, one grid)."""
    if not meta_path.exists():
        return 0.0
    try:
        old = json.loads(meta_path.read_bytes().decode("utf-8"))
        if not isinstance(old, dict):
            raise ValueError("not an object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise StudyError(f"{meta_path} is not valid JSON ({str(exc)[:60]}); a damaged run dir, use another --out") \
            from None
    if done:
        before = json.loads(json.dumps(old.get("settings", {})))
        now = json.loads(json.dumps(settings))
        for key in sorted(set(before) | set(now)):
            if before.get(key) != now.get(key):
                raise StudyError(f"{meta_path.parent} was started with other settings ({key}: "
                                 f"{json.dumps(before.get(key))[:60]} there, {json.dumps(now.get(key))[:60]} now); "
                                 "rerun with those settings or use another --out")
        started_on = old.get("device", "cpu")
        if started_on != device:
            # native fp32/fp64 differ in the last bits between devices: one run, one device
            raise StudyError(f"{meta_path.parent} was started with --device {started_on}; resume it with that "
                             "device or use another --out")
    try:
        return float(old.get("wall_s_total", 0.0))
    except (TypeError, ValueError):
        return 0.0


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


def run_study(out, settings, experiments, size="default", jobs=1, progress=True, report=True, device="cpu",
              announce=None, executor="local", scheduler=None, scheduler_file=None):
    """Run (or resume) a study in ``out``.

    ``device="cuda"`` trains on the GPU, one task after another in this process (the
    GPU trains a task's seeds at once); a run directory keeps the device it started on.

    Returns
    -------
    dict
        ``n_tasks``, ``n_done`` (before this call), ``n_run`` and ``wall_s``.
    """
    from .._jit.device import resolve_device

    try:
        settings = validate_settings(settings)
    except SettingsError as exc:
        raise StudyError(str(exc)) from None
    if executor not in ("local", "dask"):
        raise StudyError(f"unknown executor {executor!r}; expected local or dask")
    if executor != "dask" and (scheduler or scheduler_file):
        raise StudyError("--scheduler and --scheduler-file go with --executor dask")
    device = resolve_device(device, "the study")  # "auto" becomes what runs
    if executor == "dask" and device == "cuda":
        raise StudyError("--executor dask runs on CPU workers; use --device cpu (a GPU study runs in one process)")
    tasks = make_tasks(settings, experiments)
    run_dir = _make_dir(out)
    try:
        lock = RunLock(run_dir).__enter__()
    except RunDirError as exc:
        raise StudyError(str(exc)) from None
    try:
        return _run_locked(run_dir, settings, experiments, size, jobs, progress, report, device, tasks, announce,
                           executor, scheduler, scheduler_file)
    finally:
        lock.__exit__(None, None, None)


def _run_locked(run_dir, settings, experiments, size, jobs, progress, report, device, tasks, announce,
                executor="local", scheduler=None, scheduler_file=None):
    from .._jit.device import gpu_description

    meta_path = run_dir / "meta.json"
    try:
        # the settings first: a rerun with other settings touches nothing
        previous_wall = _check_meta(meta_path, settings, device, read_done(run_dir))
    except RunDirError as exc:
        raise StudyError(str(exc)) from None
    done = _prepare(run_dir)
    if device == "cuda":
        jobs = 1
    todo = [t for t in tasks if _short(t["id"]) not in done]
    if announce is not None:
        announce(todo)  # e.g. the estimated cost, once the run dir is known to be good
    meta = {
        "settings": settings, "experiments": list(experiments), "size": size, "jobs": jobs, "device": device,
        "versions": _versions(), "git_commit": _git_commit(),
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
                    **(gpu_description() if device == "cuda" else {})},
        "n_tasks": len(tasks), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "executor": {"name": executor},
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
        if executor == "dask":
            from ._dask import DaskError, run_on_dask

            try:
                run_on_dask(todo, finish, jobs, scheduler, scheduler_file, meta["executor"])
            except DaskError as exc:
                raise StudyError(str(exc)) from None
        elif jobs <= 1:
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


def _run_quietly(task, device):
    """``_timed_task``; on the GPU without a warning per net that the CPU counted instead
    (a net past the GPU's segment buffers, e.g. a deep construction: the counts are
    the same, and a study would print one per recording)."""
    if device != "cuda":
        return _timed_task(task, device)
    from ..count._count_cuda import GPUFallbackWarning

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
