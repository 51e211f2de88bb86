"""Counting beyond memory (issue 30): chunked counts equal unchunked ones bit for bit,
seams join exactly, budgets hold or refuse, and a count too big to finish says so early."""

import math
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from pieces import CountLimitError, CountMemoryError, ReLUNet, config, count_pieces, sawtooth, yarotsky_square
from pieces.cli import main
from pieces.count import _chunked, _count_cpu
from pieces.count._breakpoint_sink import BreakpointSink
from strategies import intervals, nets


def chunked(net, a, b, limit, threads=2):
    """The chunked count with a segment limit of ``limit`` per layer: far below the
    budget's floor, so every layer of every net here splits into many chunks."""
    packed = _count_cpu.pack([net])[:3]
    sink = BreakpointSink(True, a, 1 << 30)
    clock = _chunked._Clock(a, b, None)
    return _chunked._count_chunks(net, packed, a, b, limit, limit, threads, sink, clock, None)


def same(c, u):
    return (c.pieces, c.regions) == (u.pieces, u.regions) and np.array_equal(c.breakpoints, u.breakpoints)


def split_at(net, a, b, c):
    """Count ``[a, c]`` and ``[c, b]`` apart and join them at ``c``, as the chunked
    count does: ``(pieces, regions, breakpoints)``."""
    packed = _count_cpu.pack([net])[:3]
    left = _chunked._count_one(net, packed, a, c, 0)
    right = _chunked._count_one(net, packed, c, b, 0)
    jp, jr, w, near = _chunked._join(net, packed, c, c - a, 0, threading.Event())
    sink = BreakpointSink(True, a, 1 << 30)
    sink.add(c, b, right[2], (w, near))
    sink.add(a, c, left[2], None)
    got = sink.result(left[0] + right[0] - jp, left[1] + right[1] - jr)
    return got.pieces, got.regions, got.breakpoints


def float64_decides(net, interval):
    return _chunked._certified_float64(*_count_cpu.pack([net])[:3], *interval, 0)[3] == 0


@settings(max_examples=60, deadline=None)
@given(net=nets(max_depth=5, max_width=8), interval=intervals, limit=st.integers(3, 6))
def test_chunked_equals_unchunked_on_random_and_degenerate_nets(net, interval, limit):
    u = count_pieces(net, interval)
    c = chunked(net, *interval, limit)
    assert (c.pieces, c.regions) == (u.pieces, u.regions)
    if float64_decides(net, interval):
        assert np.array_equal(c.breakpoints, u.breakpoints)
    else:
        # decided beyond float64 (as a whole, or chunk by chunk): a breakpoint's last
        # bit depends on the arithmetic that located it, within its certified bound
        assert c.breakpoints.size == u.breakpoints.size and np.all(np.diff(c.breakpoints) > 0)
        np.testing.assert_allclose(c.breakpoints, u.breakpoints, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("make,depth", [(sawtooth, 8), (yarotsky_square, 8)])
@pytest.mark.parametrize("interval", [(0.0, 1.0), (-0.3, 1.7), (-math.inf, math.inf)])
def test_chunked_equals_unchunked_on_constructions(make, depth, interval):
    net = make(depth)
    u = count_pieces(net, interval)
    c = chunked(net, *interval, 8)
    assert same(c, u)


def spy_on_chunks(monkeypatch):
    """Record calls of the chunked count; drop this thread's kept workspace (a count
    reuses buffers it already holds, even past a smaller budget)."""
    _chunked._local.ws = None
    calls = []
    real = _chunked._count_chunks
    monkeypatch.setattr(_chunked, "_count_chunks", lambda *a: calls.append(1) or real(*a))
    return calls


def test_chunked_through_the_api_with_a_minimal_budget(monkeypatch):
    net = sawtooth(14)
    u = count_pieces(net, (0.0, 1.0))
    calls = spy_on_chunks(monkeypatch)
    wmax = max(net.widths)
    floor = 2 * 4 * (wmax + 2) * _chunked.segment_bytes(wmax)  # the counter's smallest budget
    c = count_pieces(net, (0.0, 1.0), max_memory=2 * max(floor, 8 * u.pieces))
    assert same(c, u) and c.pieces == 2**14 and calls
    with pytest.raises(CountMemoryError, match="too small"):
        count_pieces(net, (0.0, 1.0), max_memory=floor - 1, breakpoints=False)


def test_seam_on_a_breakpoint():
    net = sawtooth(3)  # breakpoints at k/8
    p, r, bps = split_at(net, 0.0, 1.0, 0.5)
    assert (p, r) == (8, 8) and bps.tolist() == [k / 8 for k in range(1, 8)]


def test_seam_on_a_coincidence_of_two_neurons():
    # two first-layer neurons cross at x = 0.25 together (a duplicate, scaled by 2),
    # where their sum's slope changes; and two cancelling neurons cross at 0.5: a change
    # of activation pattern where f stays affine (one piece, two regions)
    w1 = np.array([[1.0], [2.0], [1.0], [1.0]])
    b1 = np.array([-0.25, -0.5, -0.5, -0.5])
    w2 = np.array([[1.0, 1.0, 1.0, -1.0]])
    net = ReLUNet([w1, w2], [b1, np.zeros(1)])
    u = count_pieces(net, (-1.0, 1.0))
    for c in (0.25, 0.5):
        p, r, bps = split_at(net, -1.0, 1.0, c)
        assert (p, r) == (u.pieces, u.regions) and np.array_equal(bps, u.breakpoints)
    assert (u.pieces, u.regions) == (2, 3)


def test_seam_inside_a_constant_stretch():
    # relu(x - 0.8) - relu(0.2 - x): constant 0 on [0.2, 0.8], one region there
    w1 = np.array([[1.0], [-1.0]])
    b1 = np.array([-0.8, 0.2])
    net = ReLUNet([w1, np.array([[1.0, -1.0]])], [b1, np.zeros(1)])
    u = count_pieces(net, (0.0, 1.0))
    p, r, bps = split_at(net, 0.0, 1.0, 0.5)
    assert (p, r) == (u.pieces, u.regions) == (3, 3) and np.array_equal(bps, u.breakpoints)


def test_a_tiny_budget_needs_chunking(monkeypatch):
    net = sawtooth(16)
    budget = 2**21  # the unchunked sweep of 65,536 segments needs about 20 MB
    assert _chunked.segment_bytes(max(net.widths)) * 2**16 > budget
    calls = spy_on_chunks(monkeypatch)
    c = count_pieces(net, (0.0, 1.0), max_memory=budget, breakpoints=False)
    assert c.pieces == c.regions == 2**16 and calls
    with pytest.raises(CountMemoryError, match="tolerance"):
        count_pieces(net, (0.0, 1.0), method="tolerance", max_memory=budget)
    with pytest.raises(CountMemoryError, match="breakpoints"):
        count_pieces(net, (0.0, 1.0), max_memory=2**19)  # 65,535 kept breakpoints exceed half of it
    with pytest.raises(CountMemoryError, match="too small"):
        count_pieces(net, (0.0, 1.0), max_memory=1000)


def test_breakpoints_streamed_to_npy_equal_kept_ones(tmp_path):
    net = sawtooth(12)
    u = count_pieces(net, (0.0, 1.0))
    path = tmp_path / "bps.npy"
    c = count_pieces(net, (0.0, 1.0), max_memory=2**20, breakpoints=path)
    assert c.breakpoints is None and c.pieces == 4096
    assert np.array_equal(np.load(path), u.breakpoints)
    assert [p.name for p in tmp_path.iterdir()] == ["bps.npy"]  # no temp file left


def test_sawtooth_60_is_refused_early():
    with pytest.raises(CountLimitError) as e:
        count_pieces(sawtooth(60), (0.0, 1.0), breakpoints=False, max_seconds=20)
    assert e.value.estimated_pieces > 1e15 and e.value.estimated_seconds > 20
    assert "max_seconds" in str(e.value)


def test_cli_refusals_are_one_line_exit_2(tmp_path, capsys):
    p = tmp_path / "s60.npz"
    sawtooth(60).save(p)
    assert main(["count", str(p), "--interval", "0", "1", "--max-seconds", "20"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "estimated" in err and "--max-seconds" in err
    s = tmp_path / "s16.npz"
    sawtooth(16).save(s)
    assert main(["count", str(s), "--interval", "0", "1", "--method", "tolerance", "--max-memory", "0.001"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "max_memory" in err
    out = tmp_path / "none" / "b.npy"
    assert main(["count", str(s), "--breakpoints", str(out)]) == 2
    assert "\n" not in capsys.readouterr().err.strip() and not out.exists()


def test_cli_streams_breakpoints(tmp_path, capsys):
    s = tmp_path / "s14.npz"
    sawtooth(14).save(s)
    out = tmp_path / "b.npy"
    assert main(["count", str(s), "--interval", "0", "1", "--max-memory", "0.002", "--breakpoints", str(out)]) == 0
    assert "16384" in capsys.readouterr().out
    assert np.array_equal(np.load(out), np.arange(1, 2**14) / 2**14)


def test_train_on_a_deep_construction_counts_in_chunks(tmp_path, capsys, monkeypatch):
    # a budget small enough that recording sawtooth(16)'s 65,536 pieces must chunk
    monkeypatch.setattr(config, "COUNT_MAX_MEMORY", 2**21)
    calls = spy_on_chunks(monkeypatch)
    hist = tmp_path / "h.csv"
    rc = main(["train", "--init", "sawtooth", "--depth", "16", "--steps", "1", "--out", str(tmp_path / "n.npz"),
               "--history", str(hist)])
    assert rc == 0 and calls
    assert hist.read_text().splitlines()[1].split(",")[2] == str(2**16)


def test_a_net_beyond_float64_is_chunked_too(monkeypatch):
    # Yarotsky's square at m = 14 needs the rational stage (its sums outgrow 53 bits),
    # which holds every segment: within a small budget it runs chunk by chunk
    calls = spy_on_chunks(monkeypatch)
    c = count_pieces(yarotsky_square(14), (0.0, 1.0), breakpoints=False, max_memory=2**22)
    assert c.pieces == c.regions == 2**14 and calls


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_ends_cleanly_and_leaves_no_partial_file(tmp_path, sig):
    sawtooth(30).save(tmp_path / "s30.npz")
    p = subprocess.Popen([sys.executable, "-m", "pieces.cli", "count", "s30.npz", "--breakpoints", "b.npy"],
                         cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not any(f.name.endswith(".tmp") for f in tmp_path.iterdir()) and time.time() - t0 < 120:
        time.sleep(0.05)  # the count has started streaming
    time.sleep(0.5)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130 and err.strip().splitlines()[-1] == "pieces: interrupted", err[-400:]
    assert "Traceback" not in err and sorted(f.name for f in tmp_path.iterdir()) == ["s30.npz"]
