"""`pieces study --executor dask` against real `dask scheduler` / `dask worker`
processes on loopback: the same rows as the local executor, a worker killed mid-sweep,
the scheduler stopped mid-run, a task that raises, and a LocalCluster."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed", reason="the dask extra (CI installs it)")

from pieces.study import default_settings  # noqa: E402
from pieces.study.schema import to_toml, validate_settings  # noqa: E402
from test_study import rows_of  # noqa: E402

BIN = Path(sys.executable).parent
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def settings(steps=20, depths=(1, 2, 3), width=4, **extra):
    s = default_settings("quick")
    s.update(seeds=2, depths=list(depths), widths=[width],
             train={**s["train"], "steps": steps, "n_samples": 256, "record_every": steps}, backprop_depths=[2, 3])
    s.update(extra)
    return validate_settings(s)


def study(tmp_path, name, cfg, *extra, check=True, experiments="growth,backprop"):
    (tmp_path / f"{name}.toml").write_text(to_toml(cfg))
    cmd = [str(BIN / "pieces"), "study", "--experiments", experiments, "--config", str(tmp_path / f"{name}.toml"),
           "--out", str(tmp_path / name), "--no-progress", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=600)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


class Cluster:
    """A `dask scheduler` and `dask worker` processes (no nanny: a SIGKILL is real)."""

    def __init__(self, tmp_path, n_workers=2):
        self.file = tmp_path / "scheduler.json"
        self.sched = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                       "--no-dashboard", "--scheduler-file", str(self.file)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        deadline = time.time() + 60
        while not self.file.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert self.file.exists(), "the scheduler did not start"
        self.workers = [self.add_worker() for _ in range(n_workers)]
        with distributed.Client(scheduler_file=str(self.file), timeout="20s") as c:
            c.wait_for_workers(n_workers, timeout=60)

    def add_worker(self):
        return subprocess.Popen([str(BIN / "dask"), "worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                                 "--no-nanny", "--no-dashboard", "--host", "127.0.0.1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)

    def close(self):
        for p in self.workers + [self.sched]:
            if p.poll() is None:
                p.kill()
            p.wait()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


def _lines(path):
    return Path(path).read_text().splitlines()


def test_same_rows_as_the_local_executor(cluster, tmp_path):
    cfg = settings()
    study(tmp_path, "local", cfg, "--jobs", "1")
    study(tmp_path, "dask", cfg, "--executor", "dask", "--scheduler-file", str(cluster.file))
    assert rows_of(tmp_path / "dask") == rows_of(tmp_path / "local")
    import json

    meta = json.loads((tmp_path / "dask" / "meta.json").read_text())
    assert meta["executor"]["name"] == "dask" and meta["executor"]["workers"] == 2
    assert meta["executor"]["scheduler"].startswith("tcp://127.0.0.1:")
    # finished tasks are never resubmitted: a rerun runs nothing
    r = study(tmp_path, "dask", cfg, "--executor", "dask", "--scheduler-file", str(cluster.file))
    assert "0 tasks run" in r.stdout


def test_a_worker_killed_mid_sweep_loses_nothing(cluster, tmp_path):
    cfg = settings(steps=4000, depths=(1, 2, 3, 4, 5, 6), width=16)  # tasks of about a second
    cmd = [str(BIN / "pieces"), "study", "--experiments", "growth", "--config", str(tmp_path / "k.toml"),
           "--out", str(tmp_path / "k"), "--no-progress", "--executor", "dask", "--scheduler-file", str(cluster.file)]
    (tmp_path / "k.toml").write_text(to_toml(cfg))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    done = tmp_path / "k" / "done.txt"
    deadline = time.time() + 300
    while time.time() < deadline and (not done.exists() or len(_lines(done)) < 1):
        time.sleep(0.05)
    cluster.workers[0].send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert len(_lines(done)) == len(set(_lines(done))) == 6
    study(tmp_path, "ref", cfg, "--jobs", "1", experiments="growth")
    header, rows = rows_of(tmp_path / "k")
    assert len(rows) == len(set(rows)) and (header, rows) == rows_of(tmp_path / "ref")


def test_scheduler_stopped_mid_run_then_resume(cluster, tmp_path):
    cfg = settings(steps=4000, depths=(1, 2, 3, 4, 5, 6), width=16)
    (tmp_path / "s.toml").write_text(to_toml(cfg))
    cmd = [str(BIN / "pieces"), "study", "--experiments", "growth", "--config", str(tmp_path / "s.toml"),
           "--out", str(tmp_path / "s"), "--no-progress", "--executor", "dask", "--scheduler-file", str(cluster.file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    done = tmp_path / "s" / "done.txt"
    deadline = time.time() + 300
    while time.time() < deadline and (not done.exists() or len(_lines(done)) < 1):
        time.sleep(0.05)
    cluster.sched.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, (out, err[-3000:])
    assert err.strip().count("\n") == 0 and "scheduler" in err, err
    kept = len(_lines(done))
    assert kept >= 1
    # resume (here on the local executor): the finished tasks are kept, the rest run
    r = subprocess.run(cmd[:-4] + ["--jobs", "1"], capture_output=True, text=True, env=ENV, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{kept} already done" in r.stdout
    study(tmp_path, "ref", cfg, "--jobs", "1", experiments="growth")
    assert rows_of(tmp_path / "s") == rows_of(tmp_path / "ref")


def test_a_task_that_raises_is_named_and_the_others_are_kept(cluster, tmp_path):
    # an lr that underflows to 0 in fp16: valid settings, a task that raises
    cfg = settings(precisions=["fp64", "fp16"], precision_depths=[1, 2],
                   precision_train={**default_settings("quick")["precision_train"], "lr": 1e-9, "steps": 10,
                                    "record_every": 10})
    r = study(tmp_path, "f", cfg, "--executor", "dask", "--scheduler-file", str(cluster.file), check=False,
              experiments="precision")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "lr underflows to 0 in fp16" in r.stderr and "ValueError" in r.stderr and "task " in r.stderr
    done = _lines(tmp_path / "f" / "done.txt")
    assert len(done) >= 2  # the fp64 tasks and the fp16 constructions finished


def test_local_cluster(tmp_path):
    cfg = settings()
    study(tmp_path, "local", cfg, "--jobs", "1")
    study(tmp_path, "lc", cfg, "--executor", "dask", "--jobs", "2")
    assert rows_of(tmp_path / "lc") == rows_of(tmp_path / "local")


def test_bad_scheduler_is_one_line(tmp_path):
    r = study(tmp_path, "x", settings(), "--executor", "dask", "--scheduler-file", str(tmp_path / "none.json"),
              check=False)
    assert r.returncode == 2 and "scheduler file not found" in r.stderr and r.stderr.count("\n") == 1
    r = study(tmp_path, "y", settings(), "--scheduler", "tcp://127.0.0.1:9", check=False)
    assert r.returncode == 2 and "--executor dask" in r.stderr
