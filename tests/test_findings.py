"""Findings come from the data: change the data and the sentence changes; injected data
that contradict the theory fill the 'disagree' list."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from report.findings import findings, fmt, fmt_ci, log_slope
from report.load import RunData


def _growth_rows(pieces_of, stages=("init", "trained"), depths=range(1, 13), seeds=range(10)):
    rows = []
    for stage in stages:
        for L in depths:
            for s in seeds:
                rows.append(dict(experiment="growth", stage=stage, init="he", target="square", width=8, depth=L,
                                 seed=s, precision="fp64", delta=np.nan, eta=np.nan, layer=np.nan,
                                 metric="pieces", value=float(pieces_of(stage, L, s))))
    return rows


def _data(rows):
    return RunData(pd.DataFrame(rows), {}, ".")


def _linear(stage, L, s):
    return 1 + 8 * L + (s % 3)


def test_sentence_changes_with_the_data():
    a = findings(_data(_growth_rows(_linear)))["questions"]["growth"]["text"]
    b = findings(_data(_growth_rows(lambda st, L, s: 1 + 4 * L + (s % 3))))["questions"]["growth"]["text"]
    assert "linear" in a and a != b
    assert "b = 8" in a and "b = 4" in b


def test_disagree_lists_trained_exponential_growth():
    clean = findings(_data(_growth_rows(_linear)))
    assert clean["disagree"] == []
    bad = findings(_data(_growth_rows(lambda st, L, s: _linear(st, L, s) if st == "init" else 2 ** L + s)))
    assert any("grow exponentially" in d for d in bad["disagree"])


def test_disagree_lists_an_exceeded_bound():
    rows = []
    for s in range(3):
        for metric, v in (("pieces_mean", 5), ("pieces_se", 0.1), ("regions_mean", 30 if s == 0 else 5),
                          ("regions_se", 0.1), ("bound_mean", 10), ("excess_mean", 20 if s == 0 else -5),
                          ("excess_se", 0.5), ("draws", 20)):
            for eta in (0.0, 0.1):
                rows.append(dict(experiment="perturbation", stage="0%", init="he", target="square", width=8,
                                 depth=4, seed=s, precision="fp64", delta=np.nan, eta=eta, layer=np.nan,
                                 metric=metric, value=float(v)))
        for metric, v in (("pieces_before", 5), ("regions_before", 5), ("lr", 0.1)):
            rows.append(dict(experiment="perturbation", stage="0%", init="he", target="square", width=8, depth=4,
                             seed=s, precision="fp64", delta=np.nan, eta=np.nan, layer=np.nan, metric=metric,
                             value=float(v)))
    found = findings(_data(rows))
    assert found["questions"]["perturbation"]["bound_violations"] == 2  # seed 0 at both etas
    assert sum("Crossing bound exceeded" in d for d in found["disagree"]) == 2


def test_findings_json_written_with_the_report(tmp_path):
    from pieces.study import run_study
    from test_study import tiny_settings

    run_study(tmp_path / "r", tiny_settings(), ["growth", "constructions"], progress=False)
    f = json.loads((tmp_path / "r" / "findings.json").read_text())
    assert set(f) == {"summary", "questions", "disagree"} and "survival" in f["questions"]
    html = (tmp_path / "r" / "report.html").read_text()
    # the findings come first, and their numbers are the JSON's
    assert html.index('id="findings"') < html.index('id="verdicts"')
    for q in f["questions"].values():
        assert q["text"].split(" (")[0].replace("'", "&#39;") in html.replace("&#34;", '"')


def test_number_formats():
    assert fmt(3) == "3" and fmt(2.5) == "2.5" and fmt(1e-7) == "1.00e-07" and fmt(float("nan")) == "–"
    assert fmt_ci(1.5, 1.0, 2.0) == "1.5 [1, 2]"
    b, lo, hi, n = log_slope([1, 10, 100, 1000], [3, 0.3, 0.03, 0.003])
    assert b == pytest.approx(-1) and n == 4


def test_growth_states_its_control_from_the_constructions():
    """The growth paragraph runs the same test on the exact constructions: their 2^L
    must read as exponential, and a construction that did not double would say so."""
    def construction(pieces_of):
        return [dict(experiment="constructions", stage="init", init="sawtooth", target="sawtooth", width=2,
                     depth=L, seed=0, precision="fp64", delta=0.0, eta=np.nan, layer=np.nan, metric="pieces",
                     value=float(pieces_of(L))) for L in range(1, 13)]

    good = findings(_data(_growth_rows(_linear) + construction(lambda L: 2**L)))["questions"]["growth"]["text"]
    assert "Control: the same test on the exact sawtooth at init (depths 1–12, n = 12) says exponential, r = 2" in good
    flat = findings(_data(_growth_rows(_linear) + construction(lambda L: 1 + 2 * L)))["questions"]["growth"]["text"]
    assert "exact sawtooth at init (depths 1–12, n = 12) says linear." in flat
    assert "Control" not in findings(_data(_growth_rows(_linear)))["questions"]["growth"]["text"]


def test_backprop_of_one_deterministic_net_claims_no_ci():
    rows = []
    for init, noisy in (("he", True), ("sawtooth", False)):
        for L in range(2, 9, 2):
            for s in range(5):
                err = 2.0 ** (0.1 * L - 10) * ((1 + 0.1 * ((s * L) % 3)) if noisy else 1.0)
                rows.append(dict(experiment="backprop", stage="init", init=init, target="square", width=8, depth=L,
                                 seed=s, precision="fp16", delta=np.nan, eta=np.nan, layer=np.nan,
                                 metric="backprop_error", value=err))
    text = findings(_data(rows))["questions"]["backprop"]["text"]
    assert "sawtooth, fp16: relative gradient error ×2^0.1 per layer" in text
    assert "(one net: its 5 seeds give identical errors, so no CI)" in text
    assert "he, fp16: relative gradient error ×2^" in text and "(n = 20)" in text
    assert text.count("no CI") == 1


def test_rows_load_in_task_order_whatever_order_tasks_finished(tmp_path):
    # workers finish tasks in any order; sums and fits over the table must not see it
    from pieces.study import run_study
    from report.load import load_run
    from test_study import tiny_settings

    run = tmp_path / "r"
    run_study(run, tiny_settings(), ["growth"], progress=False, report=False)
    lines = (run / "results.csv").read_text().splitlines(keepends=True)
    blocks = {}
    for line in lines[1:]:
        blocks.setdefault(line.split(",", 1)[0], []).append(line)
    assert len(blocks) > 2
    shuffled = tmp_path / "s"
    shutil.copytree(run, shuffled)
    (shuffled / "results.csv").write_text(lines[0] + "".join(sum(reversed(list(blocks.values())), [])))
    a, b = load_run(run).results, load_run(shuffled).results
    pd.testing.assert_frame_equal(a, b)
    assert json.dumps(findings(load_run(run)), default=str) == json.dumps(findings(load_run(shuffled)), default=str)


def _outcome_rows(outcome_of, depths=range(2, 7), seeds=range(4)):
    """Trained construction runs (constructions, fp64, adam, δ = 1e-3) whose outcome
    index is ``outcome_of(L, seed)``."""
    rows = []
    for L in depths:
        for s in seeds:
            o = outcome_of(L, s)
            base = dict(experiment="constructions", init="sawtooth", target=f"sawtooth:{2 ** (L - 1)}", width=2,
                        depth=L, seed=s, precision="fp64", optimizer="adam", delta=1e-3, eta=np.nan, layer=np.nan,
                        step=np.nan)
            for stage, metric, v in (("trained", "outcome", o), ("trained", "tau", 1 / 16),
                                     ("trained", "loss_ratio", 0.01), ("trained", "absorbed_fraction", 0.0),
                                     ("trained", "lr", 1e-4), ("trained", "lambda_max", np.nan),
                                     ("trained", "steps_done", 100), ("trained", "pieces_fraction", 1.0),
                                     ("trained", "lr_underflow", 0), ("trained", "diverged", 0),
                                     ("init", "sup_error_exact", 0.3), ("trained", "sup_error_exact", 0.01),
                                     ("init", "step_half_ulp", 1e12), ("trained", "survived", int(o <= 1))):
                rows.append({**base, "stage": stage, "metric": metric, "value": float(v)})
    return rows


def test_summary_changes_when_the_data_change():
    repaired = findings(_data(_outcome_rows(lambda L, s: 1)))
    frozen = findings(_data(_outcome_rows(lambda L, s: 1 if L < 4 else 2)))
    assert repaired["summary"] != frozen["summary"] and 1 <= len(frozen["summary"]) <= 8
    assert any("20 repaired" in s for s in repaired["summary"])
    assert any("frozen" in s and "12 frozen" in s for s in frozen["summary"])
    assert any("Mostly frozen" in d and "4, 5, 6" in d for d in frozen["disagree"])
    assert repaired["questions"]["outcomes"]["positive_control"]["passed"]


def test_a_failed_positive_control_is_a_disagreement():
    broken = findings(_data(_outcome_rows(lambda L, s: 3)))
    assert not broken["questions"]["outcomes"]["positive_control"]["passed"]
    assert any("positive control failed" in d for d in broken["disagree"])
    assert any(d.startswith("Broken:") for d in broken["disagree"])
