"""The study's tasks on a dask.distributed cluster.

The client submits every unfinished task (its key is ``pieces-<task id>``, so a task is
one key however often the study is resumed) and collects the rows as tasks finish; it
alone writes the run directory (workers need no shared file system). dask reruns the
task of a worker that dies on another worker; a task that raises is reported by its id
and its exception once the others have finished; a scheduler that goes away ends the
study with one line, keeping every finished row, and a rerun resumes.

Needs the ``dask`` extra: ``pip install -e '.[dask]'``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import time

__all__ = ["run_on_dask", "DaskError"]

#: Seconds without a connection to the scheduler before the study gives up.
LOST_AFTER_S = 10.0

#: Environment of the workers of a LocalCluster: one BLAS thread each, as the local
#: process pool (the processes are the parallelism).
WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


#: dask settings of a LocalCluster: its periodic work (the profiler samples the running
#: task every 10 ms; ticks, system and memory monitors) shares the cores with the tasks
#: (benchmarks/bench_dask.py: 12-15% of the wall time with the defaults, 7.6% without).
QUIET_WORKERS = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                 "distributed.admin.system-monitor.interval": "5s",
                 "distributed.worker.memory.monitor-interval": "2s"}


class DaskError(RuntimeError):
    """The cluster could not be reached or was lost, or tasks failed: one line."""


def _task_on_worker(task):
    """``(rows, seconds)`` of one task, on a worker (one Numba thread: the workers are
    the parallelism)."""
    import numba

    from .tasks import timed_task

    numba.set_num_threads(1)
    return timed_task(task)


def _client(jobs, scheduler, scheduler_file):
    import logging

    # the study reports what went wrong in one line; distributed's own log of a lost
    # connection (tracebacks of its reconnect attempts) is noise on the user's terminal
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DaskError("--executor dask needs dask.distributed: pip install -e '.[dask]'") from None
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.startswith("distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        if scheduler or scheduler_file:
            client = Client(scheduler, scheduler_file=scheduler_file, timeout="10s")
            return client, None
        # the workers inherit this environment when they start: BLAS reads it at import,
        # before a Nanny's own env= would be applied
        saved = {k: os.environ.get(k) for k in WORKER_ENV}
        os.environ.update(WORKER_ENV)
        try:
            import dask

            # a Nanny hands the parent's dask config to its worker (the env var is not enough)
            with dask.config.set(QUIET_WORKERS):
                cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=40)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return Client(cluster), cluster
    except (OSError, TimeoutError, ValueError) as exc:
        where = scheduler or scheduler_file or "a LocalCluster"
        raise DaskError(f"cannot reach the dask scheduler at {where}: {str(exc).splitlines()[0][:120]}") from None


def run_on_dask(todo, finish, jobs, scheduler=None, scheduler_file=None, info=None):
    """Run the tasks ``todo`` on a cluster; ``finish(task, (rows, seconds))`` is called
    in this process as each finishes. ``info`` (a dict) receives the scheduler's address
    and the number of workers.

    Raises
    ------
    DaskError
        When the scheduler cannot be reached or is lost (finished tasks are kept), or
        when tasks raised (after every other task has finished).
    """
    from distributed import wait

    from .grid import short_id as _short

    if scheduler_file is not None and not os.path.isfile(scheduler_file):
        raise DaskError(f"scheduler file not found: {scheduler_file}")
    client, cluster = _client(jobs, scheduler, scheduler_file)
    try:
        if info is not None:
            info["scheduler"] = client.scheduler.address
            info["workers"] = len(client.scheduler_info().get("workers", {}))
        futures = {}
        for t in todo:
            fut = client.submit(_task_on_worker, t, key=f"pieces-{_short(t['id'])}", pure=False, retries=0)
            futures[fut] = t
        pending = set(futures)
        failed = []
        lost_since = None
        def lost():
            n_done = len(futures) - len(pending) - len(failed)
            return DaskError(f"lost the dask scheduler at {info.get('scheduler') if info else '?'}; the {n_done} "
                             "finished tasks are kept, rerun the same command to resume")

        while pending:
            try:
                done, pending = wait(pending, timeout=1.0, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            except (asyncio.CancelledError, concurrent.futures.CancelledError, OSError):
                # the client cancels every future when it loses the scheduler
                raise lost() from None
            for fut in done:
                task = futures[fut]
                if fut.status == "finished":
                    finish(task, fut.result())
                elif fut.status == "error":
                    exc = fut.exception()
                    failed.append((task, exc))
                elif client.status != "running":
                    raise lost()
                else:  # cancelled by someone else: submit it again
                    again = client.submit(_task_on_worker, task, key=fut.key, pure=False)
                    futures[again] = task
                    pending.add(again)
            if client.status != "running":
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since > LOST_AFTER_S:
                    raise lost()
            else:
                lost_since = None
        if failed:
            task, exc = failed[0]
            raise DaskError(f"task {_short(task['id'])} ({task['experiment']}, {task['init']}, depth "
                            f"{task['depth']}, {task.get('precision', 'fp64')}) raised {type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''}"
                            + (f" (and {len(failed) - 1} more tasks failed)" if len(failed) > 1 else "")
                            + "; the other tasks' rows are kept")
    finally:
        try:
            client.close(timeout=5)
        except Exception:  # noqa: BLE001 - the scheduler may be gone already
            pass
        if cluster is not None:
            cluster.close(timeout=10)
