import json
import subprocess
import sys

import numpy as np
import pytest

from pieces import ReLUNet, sawtooth
from pieces.cli import main


@pytest.fixture
def saw(tmp_path):
    p = tmp_path / "saw.npz"
    sawtooth(6).save(p)
    return p


def test_count_text(saw, capsys):
    assert main(["count", str(saw), "--interval", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert "pieces       64" in out and "regions      64" in out


def test_count_json_with_breakpoints(saw, capsys):
    assert main(["count", str(saw), "--interval", "0", "1", "--json", "--breakpoints"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["pieces"] == 64 and d["method"] == "exact"
    assert d["breakpoints"] == [k / 64 for k in range(1, 64)]


def test_count_whole_line_and_methods(tmp_path, capsys):
    p = tmp_path / "r.npz"
    ReLUNet.random([6, 6], seed=1).save(p)
    assert main(["count", str(p), "--interval", "-inf", "inf", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["interval"] == ["-inf", "inf"]
    assert main(["count", str(p), "--interval", "-3", "3", "--method", "rational", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert main(["count", str(p), "--interval", "-3", "3", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert (r["pieces"], r["regions"]) == (e["pieces"], e["regions"])


@pytest.mark.parametrize(
    "args, text",
    [
        (["count", "{saw}", "--interval", "1", "0"], "reversed"),
        (["count", "{saw}", "--interval", "1", "1"], "empty"),
        (["count", "{saw}", "--interval", "a", "1"], "not a number"),
        (["count", "{saw}", "--method", "walk"], "invalid choice"),
        (["count", "{missing}"], "No such file"),
        (["count", "{bad}"], "not a valid"),
        (["count", "{saw}", "--method", "grid", "--n", "1"], "n >= 3"),
        (["frobnicate"], "invalid choice"),
        ([], "missing command"),
    ],
)
def test_bad_input_is_one_line_exit_2(saw, tmp_path, capsys, args, text):
    bad = tmp_path / "bad.npz"
    bad.write_text("garbage")
    args = [a.format(saw=saw, missing=tmp_path / "nope.npz", bad=bad) for a in args]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert text in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_console_script_version_and_nan_net(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pieces.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("pieces ")
    p = tmp_path / "nan.npz"
    np.savez(p, W0=np.array([[np.nan]]), b0=np.zeros(1), W1=np.ones((1, 1)), b1=np.zeros(1))
    out = subprocess.run([sys.executable, "-m", "pieces.cli", "count", str(p)], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "finite" in out.stderr


def test_train_writes_net_and_history(tmp_path, capsys):
    out, hist = tmp_path / "t.npz", tmp_path / "h.csv"
    args = ["train", "--init", "he", "--widths", "8x2", "--target", "sine:2", "--optimizer", "adam",
            "--lr", "0.01", "--steps", "60", "--record-every", "20", "--precision", "bf16",
            "-o", str(out), "--history", str(hist)]
    assert main(args) == 0
    assert "ok: 60 steps" in capsys.readouterr().out
    lines = hist.read_text().splitlines()
    assert lines[0] == "step,loss,pieces,regions" and len(lines) == 5
    net = ReLUNet.load(out)
    assert net.widths == (8, 8)
    assert main(["train", "--net", str(out), "--steps", "5", "--record-every", "5", "-o", str(out),
                 "--history", str(hist)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.csv", "t.npz"]


@pytest.mark.parametrize(
    "extra, text",
    [
        (["--optimizer", "lbfgs"], "unknown optimizer"),
        (["--precision", "p40"], "K must be in 2..24"),
        (["--target", "cube"], "unknown target"),
        (["--lr", "0"], "lr must be"),
        (["--steps", "-3"], "steps must be"),
        (["--n-samples", "1"], "n_samples"),
        (["--widths", "8xq"], "widths must look like"),
        (["--init", "sawtooth"], "needs depth"),
        (["-o", "/nonexistent-dir/x.npz"], "cannot write"),
    ],
)
def test_train_bad_input(tmp_path, capsys, extra, text):
    args = ["train", "--steps", "2", "-o", str(tmp_path / "a.npz"), "--history", str(tmp_path / "a.csv")] + extra
    assert main(args) == 2
    err = capsys.readouterr().err
    assert text in err and err.count("\n") == 1
    assert not (tmp_path / "a.npz").exists()
