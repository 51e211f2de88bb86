"""The report: growth-fit calibration, escaping, and a check in headless Chromium."""

import os
import shutil
import subprocess
from collections import Counter

import numpy as np
import pytest

from report.growth import fit_growth, overdispersion_test
from report.render import write_report
from pieces.study import run_study
from test_study import tiny_settings

DEPTHS = np.repeat(np.arange(1, 13), 10)  # as the default study: 10 seeds, depths 1..12


def nb_counts(rng, mu, alpha):
    """Negative binomial counts, Var = mu + alpha mu**2 (overdispersed)."""
    return rng.poisson(rng.gamma(1 / alpha, alpha * mu))


@pytest.mark.parametrize(
    "kind, mean",
    [
        ("linear", lambda L: 1 + 8 * L),          # random nets: ~ one piece per neuron
        ("exponential", lambda L: 2 * 1.5**L),    # a construction that keeps most of its pieces
    ],
)
def test_verdict_calibration(kind, mean):
    """200 overdispersed synthetic datasets per model: right in >= 95%, wrong in <= 1%."""
    rng = np.random.default_rng(12345 if kind == "linear" else 54321)
    verdicts = Counter(fit_growth(DEPTHS, nb_counts(rng, mean(DEPTHS), 0.05)).verdict for _ in range(200))
    wrong = "exponential" if kind == "linear" else "linear"
    assert verdicts[kind] >= 190, verdicts
    assert verdicts[wrong] <= 2, verdicts


def test_fit_recovers_parameters_and_detects_overdispersion():
    rng = np.random.default_rng(0)
    L = np.repeat(np.arange(1, 13), 30)
    f = fit_growth(L, nb_counts(rng, 5 + 10 * L, 0.1))
    assert f.family == "negbin" and f.slope_ci[0] < 10 < f.slope_ci[1]
    g = fit_growth(L, rng.poisson(3 * 1.4**L))
    assert g.family == "poisson" and abs(g.rate - 1.4) < 0.02 and g.rate_ci[0] < g.rate < g.rate_ci[1]
    alpha, p = overdispersion_test(rng.poisson(np.full(500, 20.0)), np.full(500, 20.0))
    assert p > 0.01


def test_flat_data_is_inconclusive():
    rng = np.random.default_rng(1)
    assert fit_growth(DEPTHS, rng.poisson(np.full(DEPTHS.size, 40.0))).verdict == "inconclusive"


def test_bad_fit_input():
    with pytest.raises(ValueError):
        fit_growth([1, 2], [3, 4])
    with pytest.raises(ValueError):
        fit_growth([1, 2, 3, 4], [1, -2, 3, 4])


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>&amp;'


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "run"
    run_study(out, tiny_settings(title=HOSTILE), ["growth", "constructions", "backprop", "assumptions"],
              progress=False)
    return out


def test_hostile_strings_are_escaped(hostile_run):
    html = (hostile_run / "report.html").read_text()
    assert "<script" not in html and "<img" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;" in html


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed; .ci/run installs it")
    pytest.skip("chromium is not installed (CI installs it)")


def test_report_in_headless_chromium(hostile_run, tmp_path):
    chromium = _chromium()
    page = (hostile_run / "report.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--enable-logging=stderr", "--v=0", "--dump-dom", page],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'id="verdicts"' in dom.stdout and "<svg" in dom.stdout
    console_errors = [l for l in dom.stderr.splitlines() if "CONSOLE" in l and "error" in l.lower()]
    assert not console_errors, console_errors
    shot = tmp_path / "shot.png"
    r = subprocess.run([chromium, *flags, f"--screenshot={shot}", "--window-size=1200,1600", page],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    import matplotlib.image

    img = matplotlib.image.imread(shot)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    assert img[..., :3].std() > 0.05  # not a blank page


def test_report_rerender_to_another_file(hostile_run, tmp_path):
    out = write_report(hostile_run, tmp_path / "r.html")
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_report_layout_nothing_overflows_at_1280(hostile_run, tmp_path):
    """The report in an iframe of 1280 px: a wrapper page writes the report's
    scrollWidth into its DOM; nothing may stick out to the right."""
    chromium = _chromium()
    report = (hostile_run / "report.html").resolve()
    wrapper = tmp_path / "wrap.html"
    wrapper.write_text(
        "<!DOCTYPE html><html><body style='margin:0'>"
        f"<iframe id='f' src='{report.as_uri()}' style='width:1280px;height:800px;border:0'></iframe>"
        "<pre id='out'>pending</pre><script>"
        "document.getElementById('f').onload = function () {"
        " var d = this.contentDocument.documentElement;"
        " var wide = Array.from(this.contentDocument.querySelectorAll('table, figure, pre, p'))"
        "   .filter(function (e) { return e.getBoundingClientRect().right > d.clientWidth + 1; }).length;"
        " var s = this.contentDocument.getElementById('summary');"
        " var n = s ? s.querySelectorAll('li').length : -1;"
        " document.getElementById('out').textContent = 'scrollWidth=' + d.scrollWidth + ' clientWidth=' + d.clientWidth"
        "   + ' wide=' + wide + ' summary=' + (s ? Math.ceil(s.getBoundingClientRect().bottom) : -1) + ' n=' + n; };"
        "</script></body></html>")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--allow-file-access-from-files", "--window-size=1300,900", "--virtual-time-budget=10000",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", wrapper.as_uri()], capture_output=True, text=True,
                         timeout=120)
    import re

    m = re.search(r"scrollWidth=(\d+) clientWidth=(\d+) wide=(\d+) summary=(-?\d+) n=(-?\d+)", dom.stdout)
    assert m, dom.stdout[-2000:] + dom.stderr[-2000:]
    scroll, client, wide, summary_bottom, n_sentences = map(int, m.groups())
    assert scroll <= client and wide == 0, m.group(0)
    # the answer on one screen: the summary ends above the fold of a 1280x800 window
    assert 2 <= n_sentences <= 8 and 0 < summary_bottom <= 800, m.group(0)


def test_report_layout_check_can_fail(tmp_path):
    """The same check on a page with a 3000-px table reports the overflow."""
    page = tmp_path / "run"
    page.mkdir()
    (page / "report.html").write_text("<!DOCTYPE html><html><body><table><tr><td style='min-width:3000px'>x"
                                      "</td></tr></table></body></html>")

    with pytest.raises(AssertionError):
        test_report_layout_nothing_overflows_at_1280(page, tmp_path)
