"""The drift gate: A/A calibration, injected slowdowns and count changes, exit codes."""

import json

import numpy as np
import pytest

from pieces.cli import main
from report.drift import Side, gate, holm

# The gate's calibration runs on seeded synthetic samples from stated noise models, so
# that it holds on a busy machine; benchmarks/gate_aa.py measures real timings.

SUITE = {"bench.time_a": 0.002, "bench.time_b": 0.004, "bench.time_c": 0.001}
COUNTS = {f"bench.track_trained_pieces({L}, {s})": float(3 * L + s) for L in range(1, 7) for s in range(5)}
N_SAMPLES = 20


def noisy(rng, base, n=N_SAMPLES, burst=None):
    """``n`` timings of a benchmark of true time ``base``: lognormal jitter (5%), heavy
    tails (5% of samples slowed by 1 + Pareto(2)/2), and an optional load burst
    ``(start, length, factor)`` that slows samples start..start+length."""
    t = base * rng.lognormal(0.0, 0.05, n)
    spikes = rng.random(n) < 0.05
    t[spikes] *= 1 + rng.pareto(2.0, spikes.sum()) / 2
    if burst is not None:
        start, length, factor = burst
        t[start:start + length] *= factor
    return t.tolist()


def side(rng, slow=None, bursts=None):
    """A side whose samples were taken in interleaved rounds beside the other side's:
    ``bursts`` (one per benchmark) hit both sides at the same sample indices."""
    samples = {}
    for name, base in SUITE.items():
        f = 1.5 if name == slow else 1.0
        samples[name] = noisy(rng, base * f, burst=(bursts or {}).get(name))
    return Side("x", "machine-1", dict(COUNTS), samples, {"bench.verdict": "linear"},
                {"slope": (2.5, 3.5), "rate": (1.2, 1.3)})


def pair(seed, slow=None):
    """Baseline and candidate of one gate run, with load bursts that hit both."""
    rng = np.random.default_rng(seed)
    bursts = {name: (int(rng.integers(0, N_SAMPLES - 6)), 6, float(rng.uniform(1.5, 3.0)))
              for name in SUITE if rng.random() < 0.7}
    return side(rng, bursts=bursts), side(rng, slow=slow, bursts=bursts)


def test_a_a_passes_at_least_95_percent():
    passes = sum(not gate(*pair(seed), paired=True).drifted for seed in range(200))
    assert passes >= 190, passes


def test_injected_slowdown_is_caught_every_time():
    for seed in range(200):
        r = gate(*pair(seed, slow="bench.time_b"), paired=True)
        assert r.drifted
        status = {row["name"]: row["status"] for row in r.rows if row["kind"] == "speed"}
        assert status["bench.time_b"] == "SLOWER", (seed, [row for row in r.rows if row["kind"] == "speed"])


def test_a_burst_on_one_side_fools_an_unpaired_rule_not_the_paired_one():
    """Why --paired: a burst on the candidate alone is a false alarm unpaired; taken in
    interleaved rounds, the burst hits the baseline's samples beside it too."""
    rng = np.random.default_rng(7)
    base = side(rng)
    cand = side(rng, bursts={name: (0, N_SAMPLES, 2.0) for name in SUITE})
    assert gate(base, cand).drifted
    base_b = side(np.random.default_rng(7), bursts={name: (0, N_SAMPLES, 2.0) for name in SUITE})
    assert not gate(base_b, cand, paired=True).drifted


def test_one_piece_changed_is_caught_every_time():
    rng = np.random.default_rng(0)
    for seed in range(20):
        base, cand = pair(seed)
        key = list(COUNTS)[rng.integers(len(COUNTS))]
        cand.metrics[key] += 1
        r = gate(base, cand, paired=True)
        assert r.drifted
        assert [row["name"] for row in r.rows if row["status"] == "DRIFT"] == [key]


def test_verdict_and_interval_drift_and_machines():
    a, b = pair(1)
    b.verdicts["bench.verdict"] = "exponential"
    assert gate(a, b, paired=True).drifted
    a, b = pair(2)
    b.intervals["slope"] = (3.6, 4.0)
    assert gate(a, b, paired=True).drifted
    a, b = pair(3, slow="bench.time_a")
    b.machine = "machine-2"
    r = gate(a, b, paired=True)
    assert not r.drifted and not r.speed_gated
    assert any(row["status"] == "SLOWER (not gated)" for row in r.rows)


def test_holm_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.array([0.01, 0.04, 0.03, 0.2, 0.001])
    np.testing.assert_allclose(holm(p), multipletests(p, method="holm")[1])


def _asv_file(path, machine, counts, times):
    cols = ["result", "params", "version", "started_at", "duration", "stats_ci_99_a", "stats_ci_99_b",
            "stats_q_25", "stats_q_75", "stats_number", "stats_repeat", "samples", "profile"]
    results = {"s.Metrics.track_trained_pieces": [counts, [["1", "2"]], "v", 0, 1.0, None, None, None, None, None,
                                                   None, None, None],
               "s.time_x": [[float(np.median(times))], [], "v", 0, 1.0, None, None, None, None, 1, 10, [times], None]}
    path.write_text(json.dumps({"commit_hash": "0" * 40, "params": {"machine": machine}, "result_columns": cols,
                                "results": results, "version": 2}))


def test_cli_exit_codes(tmp_path, capsys):
    t = list(np.full(10, 0.01) * (1 + 0.01 * np.arange(10)))
    _asv_file(tmp_path / "a.json", "m", [5, 7], t)
    _asv_file(tmp_path / "b.json", "m", [5, 7], t)
    _asv_file(tmp_path / "c.json", "m", [5, 8], t)
    _asv_file(tmp_path / "d.json", "m", [5, 7], [v * 1.5 for v in t])
    a, b, c, d = (str(tmp_path / f"{k}.json") for k in "abcd")
    junit, js, html = tmp_path / "g.xml", tmp_path / "g.json", tmp_path / "g.html"
    assert main(["gate", a, b, "--junit", str(junit), "--json", str(js), "--html", str(html)]) == 0
    assert "no drift" in capsys.readouterr().out
    assert 'failures="0"' in junit.read_text() and json.loads(js.read_text())["drifted"] is False
    assert main(["gate", a, c]) == 1
    assert "DRIFT" in capsys.readouterr().out
    assert main(["gate", a, d, "--junit", str(junit)]) == 1
    assert "SLOWER" in capsys.readouterr().out and 'failures="1"' in junit.read_text()
    assert main(["gate", a, str(tmp_path / "missing.json"), "--results-dir", str(tmp_path / "none")]) == 2
    assert main(["gate", a, b, "--factor", "0.9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2


def test_report_over_asv_history(tmp_path, capsys):
    t = list(np.full(10, 0.01) * (1 + 0.01 * np.arange(10)))
    d = tmp_path / "results" / "m"
    d.mkdir(parents=True)
    for i, (counts, scale) in enumerate([([5, 7], 1.0), ([5, 7], 1.0), ([5, 8], 1.6)]):
        _asv_file(d / f"{i:08x}-env.json", "m", counts, [v * scale for v in t])
        data = json.loads((d / f"{i:08x}-env.json").read_text())
        data.update(commit_hash=f"{i:08x}" + "0" * 32, date=1000 + i)
        (d / f"{i:08x}-env.json").write_text(json.dumps(data))
    out = tmp_path / "h.html"
    assert main(["report", "--asv", str(tmp_path / "results"), "-o", str(out)]) == 0
    html = out.read_text()
    assert "00000002" in html and "<svg" in html and "<script" not in html
    assert "s.time_x" in html and "1.60" in html  # the regression is listed
    assert "track_trained_pieces(2)" in html  # the metric change is listed
    assert main(["report", "--asv", str(tmp_path / "nothing")]) == 2
