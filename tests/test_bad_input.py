"""Malformed input at every door: the CLI gives exit 2 and one line naming the culprit,
writes no partial file, and leaves existing output as it was.

Each case prepares files in a temp dir, runs ``pieces ...`` in process, and checks:
exit code 2, stderr one line that contains the expected words, the outputs it names
either absent or byte for byte what they were.
"""

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pieces import ReLUNet
from pieces.cli import main

# ------------------------------------------------------------------ file makers


def good_net(d):
    ReLUNet.random([4, 4], seed=0).save(d / "net.npz")


def npz(d, name="net.npz", **arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (d / name).write_bytes(buf.getvalue())


def text(d, name, content, binary=False):
    (d / name).write_bytes(content if binary else content.encode())


def toml(content):
    return lambda d: text(d, "c.toml", content)


STUDY = ["study", "--experiments", "growth", "--no-progress", "--config", "{d}/c.toml", "--out", "{d}/run"]
TRAIN = ["train", "--widths", "4x2", "--steps", "5", "-o", "{d}/out.npz", "--history", "{d}/h.csv"]


def run_dir(d, rows=None, done=None, meta=None, raw=None):
    """A small finished run dir (made once per session by the fixture), then damaged."""
    import shutil

    shutil.copytree(_RUN, d / "r")
    r = d / "r"
    if raw is not None:
        (r / "results.csv").write_bytes(raw(r))
    if done is not None:
        (r / "done.txt").write_text(done(r))
    if meta is not None:
        (r / "meta.json").write_text(meta(r))


_RUN = None

# (id, argv, setup, expected words in the error line, outputs that must not change)
CASES = [
    # count: the network file and the interval
    ("count-missing", ["count", "{d}/none.npz"], None, "none.npz", []),
    ("count-dir", ["count", "{d}"], None, "Is a directory", []),
    ("count-text", ["count", "{d}/net.npz"], lambda d: text(d, "net.npz", "hello"), "not a zip", []),
    ("count-empty", ["count", "{d}/net.npz"], lambda d: text(d, "net.npz", ""), "not a zip", []),
    ("count-pickle", ["count", "{d}/net.npz"],
     lambda d: npz(d, W0=np.array([object()], dtype=object), b0=np.zeros(1)), "pickle", []),
    ("count-nan", ["count", "{d}/net.npz"],
     lambda d: npz(d, W0=np.array([[np.nan]]), b0=np.zeros(1), W1=np.ones((1, 1)), b1=np.zeros(1)), "finite", []),
    ("count-shapes", ["count", "{d}/net.npz"],
     lambda d: npz(d, W0=np.ones((3, 1)), b0=np.zeros(2), W1=np.ones((1, 3)), b1=np.zeros(1)), "shape", []),
    ("count-keys", ["count", "{d}/net.npz"], lambda d: npz(d, weights=np.ones(3)), "not a relu-pieces", []),
    ("count-strings", ["count", "{d}/net.npz"],
     lambda d: npz(d, W0=np.array([["a"]]), b0=np.array(["b"]), W1=np.array([["c"]]), b1=np.array(["d"])),
     "non-numeric", []),
    ("count-zipjunk", ["count", "{d}/net.npz"],
     lambda d: text(d, "net.npz", b"PK\x03\x04" + b"\0" * 40, binary=True), "not a valid .npz", []),
    ("count-reversed", ["count", "{d}/net.npz", "--interval", "1", "0"], good_net, "reversed", []),
    ("count-empty-interval", ["count", "{d}/net.npz", "--interval", "1", "1"], good_net, "empty", []),
    ("count-nan-interval", ["count", "{d}/net.npz", "--interval", "nan", "1"], good_net, "NaN", []),
    ("count-word-interval", ["count", "{d}/net.npz", "--interval", "a", "1"], good_net, "not a number", []),
    ("count-method", ["count", "{d}/net.npz", "--method", "walk"], good_net, "invalid choice", []),
    ("count-grid-n", ["count", "{d}/net.npz", "--method", "grid", "--n", "2"], good_net, "n >= 3", []),
    ("count-grid-inf", ["count", "{d}/net.npz", "--method", "grid", "--interval", "-inf", "inf"], good_net,
     "finite interval", []),
    # train: every option
    ("train-steps0", TRAIN[:4] + ["0"] + TRAIN[5:], None, "steps", ["out.npz", "h.csv"]),
    ("train-steps-neg", TRAIN[:4] + ["-5"] + TRAIN[5:], None, "steps", ["out.npz", "h.csv"]),
    ("train-lr-neg", TRAIN + ["--lr", "-1"], None, "lr", ["out.npz", "h.csv"]),
    ("train-lr-word", TRAIN + ["--lr", "fast"], None, "auto", ["out.npz", "h.csv"]),
    ("train-lr-auto-adam", TRAIN + ["--lr", "auto", "--optimizer", "adam"], None, "Adam", ["out.npz", "h.csv"]),
    ("train-precision", TRAIN + ["--precision", "fp8"], None, "fp8", ["out.npz", "h.csv"]),
    ("train-pK", TRAIN + ["--precision", "p30"], None, "p30", ["out.npz", "h.csv"]),
    ("train-optimizer", TRAIN + ["--optimizer", "lbfgs"], None, "lbfgs", ["out.npz", "h.csv"]),
    ("train-target", TRAIN + ["--target", "cube"], None, "cube", ["out.npz", "h.csv"]),
    ("train-target-param", TRAIN + ["--target", "sine:x"], None, "sine:x", ["out.npz", "h.csv"]),
    ("train-widths0", ["train", "--widths", "0x3", "-o", "{d}/out.npz"], None, "positive", ["out.npz"]),
    ("train-widths-word", ["train", "--widths", "abc", "-o", "{d}/out.npz"], None, "widths", ["out.npz"]),
    ("train-samples", TRAIN + ["--n-samples", "1"], None, "n_samples", ["out.npz", "h.csv"]),
    ("train-batch0", TRAIN + ["--optimizer", "sgd", "--batch-size", "0"], None, "batch_size", ["out.npz", "h.csv"]),
    ("train-construction-depth", ["train", "--init", "sawtooth", "-o", "{d}/out.npz"], None, "depth", ["out.npz"]),
    ("train-schedule", TRAIN + ["--schedule", "step"], None, "step", ["out.npz", "h.csv"]),
    ("train-lr-final", TRAIN + ["--lr-final", "2"], None, "lr_final", ["out.npz", "h.csv"]),
    ("train-interval", TRAIN + ["--interval", "1", "0"], None, "reversed", ["out.npz", "h.csv"]),
    ("train-out-dir", ["train", "--widths", "4x2", "--steps", "5", "-o", "/proc/nope/out.npz"], None, "/proc/nope",
     []),
    ("train-keeps-output", TRAIN[:4] + ["0"] + TRAIN[5:],
     lambda d: (text(d, "out.npz", "old net"), text(d, "h.csv", "old history")), "steps", ["out.npz", "h.csv"]),
    ("train-bad-net", ["train", "--net", "{d}/net.npz", "-o", "{d}/out.npz"], lambda d: text(d, "net.npz", "x"),
     "not a zip", ["out.npz"]),
    # study: settings from TOML and flags, checked before the run dir exists
    ("study-seeds-neg", STUDY, toml("seeds = -3\n"), "seeds", ["run"]),
    ("study-seeds-str", STUDY, toml('seeds = "3"\n'), "seeds", ["run"]),
    ("study-seeds-bool", STUDY, toml("seeds = true\n"), "seeds", ["run"]),
    ("study-depth-word", STUDY, toml('depths = ["a"]\n'), "depths[0]", ["run"]),
    ("study-depth-empty", STUDY, toml("depths = []\n"), "depths", ["run"]),
    ("study-depth-huge", STUDY, toml("depths = [1000]\n"), "depths[0]", ["run"]),
    ("study-width0", STUDY, toml("widths = [0]\n"), "widths[0]", ["run"]),
    ("study-eta-neg", STUDY, toml("etas = [-0.1]\n"), "etas[0]", ["run"]),
    ("study-eta-nan", STUDY, toml("etas = [nan]\n"), "etas[0]", ["run"]),
    ("study-precision", STUDY, toml('precisions = ["fp8"]\n'), "precisions[0]", ["run"]),
    ("study-target", STUDY, toml('targets = ["cube"]\n'), "targets[0]", ["run"]),
    ("study-targets-empty", STUDY, toml("targets = []\n"), "targets", ["run"]),
    ("study-lr-word", STUDY, toml('[train]\nlr = "fast"\n'), "train.lr", ["run"]),
    ("study-lr-neg", STUDY, toml("[train]\nlr = -0.1\n"), "train.lr", ["run"]),
    ("study-auto-adam", STUDY, toml('[construction_train]\noptimizer = "adam"\n'), "construction_train", ["run"]),
    ("study-train-key", STUDY, toml("[train]\nmomentum = 0.9\n"), "train.momentum", ["run"]),
    ("study-steps0", STUDY, toml("[train]\nsteps = 0\n"), "train.steps", ["run"]),
    ("study-unknown", STUDY, toml("sedes = 3\n"), "sedes", ["run"]),
    ("study-draws", STUDY, toml("noise_draws = 1\n"), "noise_draws", ["run"]),
    ("study-stage", STUDY, toml("perturbation_stages = [2.0]\n"), "perturbation_stages[0]", ["run"]),
    ("study-delta", STUDY, toml('construction_deltas = ["tiny"]\n'), "construction_deltas[0]", ["run"]),
    ("study-title", STUDY, toml("title = 5\n"), "title", ["run"]),
    ("study-toml-syntax", STUDY, toml("seeds = [\n"), "invalid TOML", ["run"]),
    ("study-toml-utf8", STUDY, lambda d: text(d, "c.toml", b"seeds = 3 # \xff\n", binary=True), "UTF-8", ["run"]),
    ("study-toml-missing", STUDY, None, "config file not found", ["run"]),
    ("study-seeds-flag", STUDY + ["--seeds", "0"], toml(""), "seeds", ["run"]),
    ("study-jobs", STUDY + ["--jobs", "0"], toml(""), "--jobs", ["run"]),
    ("study-experiment", ["study", "--experiments", "growth,nope", "--out", "{d}/run"], None, "nope", ["run"]),
    # report: damaged run dirs (CSV, done.txt, JSON)
    ("report-missing", ["report", "{d}/none"], None, "not a run directory", []),
    ("report-schema", ["report", "{d}/r"], lambda d: run_dir(d, raw=lambda r: b"a,b,c\n1,2,3\n"),
     "another schema", ["r/report.html"]),
    ("report-too-many", ["report", "{d}/r"],
     lambda d: run_dir(d, raw=lambda r: _edit_row(r, lambda row: row + ",extra")), "fields", ["r/report.html"]),
    ("report-too-few", ["report", "{d}/r"],
     lambda d: run_dir(d, raw=lambda r: _edit_row(r, lambda row: row.rsplit(",", 2)[0])), "fields", ["r/report.html"]),
    ("report-truncated-tail", ["report", "{d}/r"],
     lambda d: run_dir(d, raw=lambda r: (r / "results.csv").read_bytes()[:-7]), "truncated", ["r/report.html"]),
    ("report-done-no-rows", ["report", "{d}/r"],
     lambda d: run_dir(d, done=lambda r: (r / "done.txt").read_text() + "0123456789abcdef\n"), "no rows",
     ["r/report.html"]),
    ("report-done-garbage", ["report", "{d}/r"], lambda d: run_dir(d, done=lambda r: "not an id\n"), "not a task id",
     ["r/report.html"]),
    ("report-not-utf8", ["report", "{d}/r"],
     lambda d: run_dir(d, raw=lambda r: (r / "results.csv").read_bytes() + b"\xff\xfe\n"), "UTF-8",
     ["r/report.html"]),
    ("report-value", ["report", "{d}/r"],
     lambda d: run_dir(d, raw=lambda r: _edit_row(r, lambda row: row.rsplit(",", 1)[0] + ",many")), "non-numeric",
     ["r/report.html"]),
    ("report-meta", ["report", "{d}/r"], lambda d: run_dir(d, meta=lambda r: "{not json"), "meta.json",
     ["r/report.html"]),
    ("report-out-dir", ["report", "{d}/r", "-o", "/proc/nope/r.html"], lambda d: run_dir(d), "/proc/nope",
     ["r/report.html"]),
    # study: resuming a damaged or foreign run dir touches nothing
    ("resume-other-settings", STUDY[:-1] + ["{d}/r"], lambda d: (run_dir(d), text(d, "c.toml", "seeds = 2\n")),
     "other settings", ["r/results.csv", "r/done.txt", "r/meta.json"]),
    ("resume-bad-row", STUDY[:-1] + ["{d}/r"],
     lambda d: (run_dir(d, raw=lambda r: _edit_row(r, lambda row: row + ",x")), same_toml(d)), "fields",
     ["r/results.csv", "r/done.txt"]),
    ("resume-bad-done", STUDY[:-1] + ["{d}/r"],
     lambda d: (run_dir(d, done=lambda r: "zzz\n"), same_toml(d)), "not a task id",
     ["r/results.csv", "r/done.txt"]),
    ("resume-bad-meta", STUDY[:-1] + ["{d}/r"], lambda d: (run_dir(d, meta=lambda r: "[1, 2"), same_toml(d)),
     "meta.json", ["r/results.csv", "r/done.txt", "r/meta.json"]),
    ("resume-done-no-rows", STUDY[:-1] + ["{d}/r"],
     lambda d: (run_dir(d, done=lambda r: (r / "done.txt").read_text() + "0123456789abcdef\n"), same_toml(d)),
     "no rows", ["r/results.csv", "r/done.txt", "r/meta.json"]),
    # gate: asv and JSON files
    ("gate-factor", ["gate", "{d}/a.json", "{d}/a.json", "--factor", "0.9"], lambda d: _asv(d, "a.json"), "factor",
     []),
    ("gate-tol", ["gate", "{d}/a.json", "{d}/a.json", "--metric-tol", "-1"], lambda d: _asv(d, "a.json"),
     "metric-tol", []),
    ("gate-missing", ["gate", "{d}/a.json", "nosuchref", "--results-dir", "{d}/none"], lambda d: _asv(d, "a.json"),
     "no asv results", []),
    ("gate-not-json", ["gate", "{d}/a.json", "{d}/b.json"], lambda d: (_asv(d, "a.json"), text(d, "b.json", "{x")),
     "b.json", []),
    ("gate-not-asv", ["gate", "{d}/a.json", "{d}/b.json"], lambda d: (_asv(d, "a.json"), text(d, "b.json", "{}")),
     "not an asv result file", []),
    ("gate-junit-dir", ["gate", "{d}/a.json", "{d}/a.json", "--junit", "/proc/nope/g.xml"],
     lambda d: _asv(d, "a.json"), "/proc/nope", []),
]


def same_toml(d):
    """A --config that gives the small run's own settings (a valid resume but for the damage)."""
    from pieces.study.schema import to_toml

    text(d, "c.toml", to_toml(json.loads((_RUN / "meta.json").read_text())["settings"]))


def _edit_row(r, f):
    lines = (r / "results.csv").read_text().splitlines()
    lines[3] = f(lines[3])
    return ("\n".join(lines) + "\n").encode()


def _asv(d, name):
    cols = ["result", "params", "version", "started_at", "duration", "samples"]
    (d / name).write_text(json.dumps({"commit_hash": "0" * 40, "params": {"machine": "m"}, "result_columns": cols,
                                      "results": {"s.Metrics.track_trained_pieces": [[5, 7], [["1", "2"]], "v", 0, 1.0,
                                                                                     None]}, "version": 2}))


@pytest.fixture(scope="module", autouse=True)
def small_run(tmp_path_factory):
    global _RUN
    from pieces.study import default_settings, run_study

    s = default_settings("quick")
    s.update(seeds=1, depths=[1, 2], train={**s["train"], "steps": 10, "record_every": 5})
    _RUN = tmp_path_factory.mktemp("bad") / "run"
    run_study(_RUN, s, ["growth"], progress=False)
    return _RUN


def _snapshot(d, names):
    out = {}
    for n in names:
        p = d / n
        out[n] = p.read_bytes() if p.is_file() else ("dir" if p.is_dir() else None)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path, capsys):
    name, argv, setup, words, outputs = case
    if setup is not None:
        setup(tmp_path)
    before = _snapshot(tmp_path, outputs)
    code = main([a.replace("{d}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, (name, code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert words in lines[0], lines[0]
    assert _snapshot(tmp_path, outputs) == before
    assert not list(tmp_path.rglob("*.tmp*")) and not list(tmp_path.rglob(".*.tmp*"))  # no temp file left


def test_at_least_fifty_cases():
    assert len(CASES) >= 50


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["seeds", "depths", "widths", "etas", "noise_draws", "precisions", "targets",
                            "construction_seeds", "perturbation_stages"]),
       value=st.one_of(st.integers(-5, 0), st.floats(allow_nan=True), st.text(max_size=5),
                       st.lists(st.integers(-3, 0), min_size=0, max_size=2), st.booleans()))
def test_generated_bad_settings_never_start_a_run(tmp_path_factory, capsys, key, value):
    """Hypothesis writes bad TOML values: each is refused with one line naming the key,
    and no run dir appears. The CLI runs in this process (``main``, as test_bad_input
    does; the script's own exit codes are tested in subprocesses in test_cli.py)."""
    import tomllib

    d = tmp_path_factory.mktemp("gen")

    def lit(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            # a TOML basic string: control characters (DEL too), quotes and backslashes
            # escaped; everything else, astral characters included, as it is
            return '"' + "".join(f"\\u{ord(ch):04x}" if ord(ch) < 32 or ch in '"\\\x7f' else ch for ch in v) + '"'
        if isinstance(v, float) and v != v:
            return "nan"
        if isinstance(v, float) and v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        if isinstance(v, list):
            return "[" + ", ".join(lit(x) for x in v) + "]"
        return repr(v)

    (d / "c.toml").write_text(f"{key} = {lit(value)}\n")
    tomllib.loads((d / "c.toml").read_text())
    from pieces.study import default_settings
    from pieces.study.schema import SettingsError, validate_settings

    try:
        validate_settings({**default_settings("quick"), key: value})
        return  # a value that happens to be valid (e.g. a non-empty list of good names)
    except SettingsError:
        pass
    capsys.readouterr()
    code = main(["study", "--config", str(d / "c.toml"), "--out", str(d / "run"), "--no-progress", "--experiments",
                 "growth"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and key in err and "Traceback" not in err, err
    assert not (d / "run").exists()


def test_second_writer_is_refused_and_a_killed_one_does_not_block(tmp_path, capsys):
    """One writer per run dir: a live holder is named; a SIGKILLed one leaves no lock."""
    from pieces.study import default_settings

    s = default_settings("quick")
    s.update(seeds=1, depths=[1], train={**s["train"], "steps": 5, "record_every": 5})
    (tmp_path / "run").mkdir()
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time; from pieces.study.rundir import RunLock; "
                               f"l = RunLock({str(tmp_path / 'run')!r}).__enter__(); print('locked', flush=True); "
                               "time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        cfg = tmp_path / "c.toml"
        cfg.write_text("seeds = 1\ndepths = [1]\n")
        argv = ["study", "--experiments", "growth", "--config", str(cfg), "--out", str(tmp_path / "run"),
                "--no-progress", "--quick"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"pid {holder.pid}" in err and "in use" in err
        assert not (tmp_path / "run" / "results.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    assert main(argv) == 0  # the kernel dropped the killed holder's lock


def test_report_reads_a_consistent_snapshot_while_a_study_writes(tmp_path):
    """A run dir held by a writer, mid-append: the report takes the finished tasks' rows
    and skips the partial row and the rows of the task not yet in done.txt."""
    import shutil

    from report.load import load_run

    r = tmp_path / "r"
    shutil.copytree(_RUN, r)
    full = load_run(r).results
    lines = (r / "results.csv").read_text().splitlines(keepends=True)
    (r / "results.csv").write_text("".join(lines) + lines[1].replace(lines[1][:16], "fedcba9876543210") + lines[2][:9])
    holder = subprocess.Popen([sys.executable, "-c",
                               "import time; from pieces.study.rundir import RunLock; "
                               f"l = RunLock({str(r)!r}).__enter__(); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        snap = load_run(r).results
        assert len(snap) == len(full) and set(snap["task"]) == set(full["task"])
    finally:
        holder.kill()
        holder.wait()
    # once the writer is gone, the partial row is damage: diagnosed, not used
    from report.load import LoadError

    with pytest.raises(LoadError, match="truncated"):
        load_run(r)
