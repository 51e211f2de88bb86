"""The study end to end on a tiny grid, resume after a crash, bad input."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pieces.cli import main
from pieces.study import EXPERIMENTS, default_settings, make_tasks, run_study
from pieces.study.tasks import COLUMNS
from report.load import LoadError, load_run

TINY = {
    "seeds": 2, "depths": [1, 2, 3], "widths": [4], "targets": ["square"],
    "train": {"optimizer": "adam", "lr": 0.01, "steps": 20, "n_samples": 32, "record_every": 10},
    "construction_depths": [1, 2, 3], "construction_train": {"optimizer": "gd", "lr": 0.01, "steps": 10, "record_every": 5},
    "perturbation_depths": [2, 3], "perturbation_widths": [4], "etas": [0.1], "backprop_depths": [2, 3],
    "precisions": ["fp32", "bf16"], "precision_depths": [1, 2, 3], "precision_seeds": 2,
}


def tiny_settings(**extra):
    s = default_settings("quick")
    s.update(TINY)
    s.update(extra)
    return s


def rows_of(run_dir):
    with open(Path(run_dir) / "results.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], sorted(tuple(r) for r in rows[1:])


def test_study_end_to_end(tmp_path):
    info = run_study(tmp_path / "run", tiny_settings(), EXPERIMENTS, size="quick", progress=False)
    assert info["n_run"] == info["n_tasks"] == len(make_tasks(tiny_settings(), EXPERIMENTS))
    header, rows = rows_of(tmp_path / "run")
    assert tuple(header) == COLUMNS
    data = load_run(tmp_path / "run")
    assert set(data.results["experiment"]) == set(EXPERIMENTS)
    # the columns and rows of the experiments issue load as numbers
    df = data.results
    assert df["delta"].dtype.kind == "f" and (df["delta"].dropna() >= 0).all()
    for metric in ("lr", "lambda_max", "survived", "pieces_fraction", "bound_mean", "excess_se",
                   "mean_inv_bias_update", "max_input_derivative", "sup_error_square", "outcome", "sup_error_exact",
                   "absorbed_fraction", "absorbed_fraction_layer", "step_half_ulp", "control_pieces_mean",
                   "noise_to_range", "iter_pieces_mean", "iter_bound_mean"):
        assert metric in set(df["metric"]), metric
    assert (df[df["metric"] == "lr"]["value"] > 0).all()
    assert (tmp_path / "run" / "findings.json").exists() and (tmp_path / "run" / "timings.csv").exists()
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["finished"] and meta["versions"]["numba"] and meta["n_tasks"] == info["n_tasks"]
    html = (tmp_path / "run" / "report.html").read_text()
    assert 'id="verdicts"' in html and "<svg" in html and '<section id="summary">' in html and "<details" in html
    import re

    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing to fetch
    assert "https://" not in html and "@import" not in html
    assert "<script" not in html
    # same settings, another directory: the same rows (deterministic)
    run_study(tmp_path / "again", tiny_settings(), ["growth", "backprop"], progress=False, report=False)
    _, again = rows_of(tmp_path / "again")
    assert set(again) <= set(rows)
    # re-running a finished study runs nothing
    assert run_study(tmp_path / "run", tiny_settings(), EXPERIMENTS, progress=False, report=False)["n_run"] == 0


def test_parallel_jobs_give_the_same_rows(tmp_path):
    run_study(tmp_path / "one", tiny_settings(), ["growth", "perturbation"], jobs=1, progress=False, report=False)
    run_study(tmp_path / "two", tiny_settings(), ["growth", "perturbation"], jobs=2, progress=False, report=False)
    assert rows_of(tmp_path / "one") == rows_of(tmp_path / "two")


def test_resume_after_kill(tmp_path):
    """kill -9 in the middle of a run, then the same command: nothing lost, nothing
    doubled, and the result equals an uninterrupted run."""
    cfg = tmp_path / "cfg.toml"
    # tasks long enough (about a second each) that the kill lands mid-run even with a warm cache
    cfg.write_text('seeds = 2\ndepths = [1, 2, 3, 4, 5, 6]\nwidths = [16]\ntargets = ["square"]\n'
                   '[train]\noptimizer = "adam"\nlr = 0.01\nsteps = 4000\nn_samples = 256\nrecord_every = 1000\n')
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "pieces.cli", "study", "--experiments", "growth", "--config", str(cfg),
           "--out", str(out), "--jobs", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = out / "done.txt"
    deadline = time.time() + 120
    while time.time() < deadline and (not done.exists() or len(done.read_text().split()) < 2):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(done.read_text().split())
    assert 2 <= n_before < 6
    # simulate a crash inside the append of a task: a partial row of an unfinished task
    with open(out / "results.csv", "a") as fh:
        fh.write("deadbeefdeadbeef,growth,init,he,square,4,9,0,fp64,adam,,,,pie")
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert f"{6 - n_before} tasks run, {n_before} already done" in r.stdout
    ref = tmp_path / "ref"
    r = subprocess.run(cmd[:-5] + ["--out", str(ref), "--jobs", "1", "--no-progress"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert rows_of(out) == rows_of(ref)


def test_bad_input(tmp_path, capsys):
    assert main(["study", "--experiments", "growth,nope", "--out", str(tmp_path / "x")]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "results.csv").write_text("a,b,c\n1,2,3\n")
    before = (foreign / "results.csv").read_text()
    cfg = tmp_path / "c.toml"
    cfg.write_text("seeds = 1\ndepths = [1]\n")
    assert main(["study", "--experiments", "growth", "--config", str(cfg), "--out", str(foreign), "--no-progress"]) == 2
    assert "another schema" in capsys.readouterr().err
    assert (foreign / "results.csv").read_text() == before
    assert main(["report", str(foreign)]) == 2
    assert "another schema" in capsys.readouterr().err
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not os.access(ro, os.W_OK):  # root can write anywhere
            assert main(["study", "--experiments", "growth", "--config", str(cfg), "--out", str(ro / "run")]) == 2
            assert "cannot create" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)
    assert main(["study", "--experiments", "growth", "--config", str(cfg), "--out", "/proc/nope/run"]) == 2
    assert "cannot create output directory" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text("seeds = [\n")
    assert main(["study", "--config", str(bad), "--out", str(tmp_path / "y")]) == 2
    assert "invalid TOML" in capsys.readouterr().err
    bad.write_text("sedes = 3\n")
    assert main(["study", "--config", str(bad), "--out", str(tmp_path / "y")]) == 2
    assert "sedes" in capsys.readouterr().err


def test_truncated_results_are_refused(tmp_path, capsys):
    run_study(tmp_path / "run", tiny_settings(), ["backprop"], progress=False)
    path = tmp_path / "run" / "results.csv"
    text = path.read_text()
    path.write_text(text[: len(text) // 2].rsplit(",", 1)[0] + "\n")
    with pytest.raises(LoadError, match="truncated"):
        load_run(tmp_path / "run")
    report = tmp_path / "run" / "report.html"
    old = report.read_text()
    assert main(["report", str(tmp_path / "run")]) == 2
    assert "truncated" in capsys.readouterr().err
    assert report.read_text() == old


def test_plan_prints_costs_and_runs_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["study", "--full", "--plan", "36000", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("plan: ") and "CPU-s" in text and "single-threaded workers" in text
    assert "growth" in text and "precision" in text
    assert not out.exists()
    from pieces.study.cost import calibrate, estimate

    # the calibration reads a run's timings back: a constant per kind of task
    run_study(tmp_path / "cal", tiny_settings(), ["growth", "backprop"], progress=False, report=False)
    consts = calibrate(tmp_path / "cal")
    assert set(consts) == {"growth/he/native", "backprop/he/emulated", "backprop/construction/emulated"}
    est = estimate(make_tasks(tiny_settings(), ["growth"]), {"constants": consts})
    assert est["cpu_s"] > 0 and est["per_experiment"]["growth"][0] == len(make_tasks(tiny_settings(), ["growth"]))
