import zipfile

import numpy as np
import pytest

from pieces import ReLUNet


def test_shapes_and_properties():
    net = ReLUNet.random([3, 5, 2], seed=0)
    assert net.widths == (3, 5, 2)
    assert net.depth == 3
    assert net.n_neurons == 10
    assert [w.shape for w in net.weights] == [(3, 1), (5, 3), (2, 5), (1, 2)]


def test_evaluation_matches_hand_computation():
    net = ReLUNet([[[1.0], [-1.0]], [[2.0, 3.0]]], [[0.0, 0.5], [1.0]])
    x = np.array([-1.0, 0.0, 0.25, 2.0])
    expected = 2 * np.maximum(x, 0) + 3 * np.maximum(-x + 0.5, 0) + 1
    np.testing.assert_array_equal(net(x), expected)
    assert net(0.25) == expected[2]


@pytest.mark.parametrize("init", ["he", "glorot", "uniform"])
def test_random_is_deterministic_per_seed(init):
    a = ReLUNet.random([8, 8], init=init, seed=7)
    assert a == ReLUNet.random([8, 8], init=init, seed=7)
    assert a != ReLUNet.random([8, 8], init=init, seed=8)


def test_he_scale():
    net = ReLUNet.random([400], seed=0)
    w = net.weights[1]
    assert abs(w.var() - 2 / 400) < 0.2 * 2 / 400


@pytest.mark.parametrize(
    "weights, biases, match",
    [
        ([[[1.0], [1.0]], [[1.0, 1.0, 1.0]]], [[0, 0], [0]], "layer 1 .*takes 3 inputs"),
        ([np.zeros((2, 0)), [[1.0, 1.0]]], [[0, 0], [0]], "layer 0: .*one input"),
        ([[[1.0]], np.zeros((0, 1))], [[0], np.zeros(0)], r"layer 1 \(output\): .*one neuron"),
        ([[[np.nan]], [[1.0]]], [[0], [0]], "layer 0: .*finite"),
        ([[[1.0]], [[1.0]]], [[0], [np.inf]], r"layer 1 \(output\): .*finite"),
        ([[[1.0]], [[1.0]]], [[0, 1], [0]], "layer 0: bias shape"),
        ([[[1.0]]], [], "1 weight matrices but 0 bias"),
        ([[1.0, 2.0]], [[0.0]], "layer 0 .*must be 2-D"),
        ([[["a"]], [[1.0]]], [[0], [0]], "numeric"),
    ],
)
def test_validation(weights, biases, match):
    with pytest.raises(ValueError, match=match):
        ReLUNet(weights, biases)


def test_bad_random_arguments():
    with pytest.raises(ValueError, match="unknown init"):
        ReLUNet.random([2], init="xavier")
    with pytest.raises(ValueError, match="positive"):
        ReLUNet.random([2, 0])


def test_save_load_round_trip(tmp_path):
    net = ReLUNet.random([4, 7, 3], seed=3)
    net.save(tmp_path / "n.npz")
    back = ReLUNet.load(tmp_path / "n.npz")
    assert back == net
    assert [p.name for p in tmp_path.iterdir()] == ["n.npz"]  # no temp file left


def test_load_refuses_pickles(tmp_path):
    evil = tmp_path / "evil.npz"
    payload = np.array([{"x": 1}], dtype=object)
    np.savez(evil, W0=payload, b0=payload)
    with pytest.raises(ValueError, match="pickle"):
        ReLUNet.load(evil)


def test_load_rejects_garbage(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not a valid"):
        ReLUNet.load(bad)
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as z:
        z.writestr("other.npy", b"junk")
    with pytest.raises(ValueError):
        ReLUNet.load(tmp_path / "z.npz")
    np.savez(tmp_path / "nokeys.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a relu-pieces network"):
        ReLUNet.load(tmp_path / "nokeys.npz")
    np.savez(tmp_path / "shape.npz", W0=np.zeros((2, 2)), b0=np.zeros(3))
    with pytest.raises(ValueError, match="layer 0"):
        ReLUNet.load(tmp_path / "shape.npz")
    with pytest.raises(FileNotFoundError):
        ReLUNet.load(tmp_path / "missing.npz")
