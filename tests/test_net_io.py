"""Nets in and out (issue 27): safetensors written with numpy only, PyTorch state-dict
names, PyTorch modules both ways, and every refusal; the CLI along segments."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from pieces import ReLUNet, count_pieces
from pieces.cli import main


def torch_names(net, prefix=""):
    """The state dict of nn.Sequential(Linear, ReLU, ..., Linear) holding ``net``."""
    d = {}
    for i, (w, b) in enumerate(zip(net.weights, net.biases)):
        d[f"{prefix}{2 * i}.weight"] = np.array(w, dtype=np.float32)
        d[f"{prefix}{2 * i}.bias"] = np.array(b, dtype=np.float32)
    return d


def test_safetensors_round_trip(tmp_path):
    net = ReLUNet.random([5, 4], seed=1, in_dim=3, out_dim=2)
    p = tmp_path / "n.safetensors"
    net.save(p)
    assert ReLUNet.load(p) == net
    assert [q.name for q in tmp_path.iterdir()] == ["n.safetensors"]


def test_npz_of_a_d_dimensional_net_round_trips(tmp_path):
    net = ReLUNet.random([5], seed=1, in_dim=4, out_dim=3)
    net.save(tmp_path / "n.npz")
    assert ReLUNet.load(tmp_path / "n.npz") == net


@pytest.mark.parametrize("prefix", ["", "model."])
def test_pytorch_state_dict_names(tmp_path, prefix):
    net = ReLUNet.random([6, 6], seed=2, in_dim=4)
    p = tmp_path / "sd.safetensors"
    save_file(torch_names(net, prefix), p)
    got = ReLUNet.load(p)
    ref = ReLUNet([w.astype(np.float32) for w in net.weights], [b.astype(np.float32) for b in net.biases])
    assert got == ref  # float32 tensors widen exactly


def test_a_linear_without_bias_is_a_zero_bias(tmp_path):
    d = {"0.weight": np.ones((3, 2)), "2.weight": np.ones((1, 3)), "2.bias": np.zeros(1)}
    save_file(d, tmp_path / "nb.safetensors")
    net = ReLUNet.load(tmp_path / "nb.safetensors")
    assert net.biases[0].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("tensors,text", [
    ({"0.weight": np.ones((3, 2)), "0.running_mean": np.ones(3)}, "unknown tensor 0.running_mean"),
    ({"conv.weight": np.ones((3, 2))}, "unknown tensor conv.weight"),
    ({"0.weight": np.ones((3, 2, 2, 2))}, "0.weight has shape (3, 2, 2, 2)"),
    ({"0.weight": np.ones((3, 2)), "2.weight": np.ones((1, 4))}, "2.weight has shape (1, 4)"),
    ({"0.weight": np.ones((3, 2)), "1.weight": np.ones((1, 3))}, "nothing between"),
    ({"0.weight": np.ones((3, 2)), "4.weight": np.ones((1, 3))}, "modules without parameters"),
    ({"0.weight": np.full((3, 2), np.nan)}, "0.weight holds NaN"),
    ({"0.weight": np.ones((3, 2)), "0.bias": np.ones(2)}, "0.bias has shape (2,)"),
    ({"a.0.weight": np.ones((3, 2)), "b.2.weight": np.ones((1, 3))}, "several modules"),
    ({"W0": np.ones((3, 1))}, "b0 is missing"),
    ({"W0": np.ones((1, 1)), "b0": np.zeros(1), "extra": np.zeros(1)}, "unknown tensor extra"),
])
def test_refused_tensors_name_the_tensor(tmp_path, capsys, tensors, text):
    p = tmp_path / "bad.safetensors"
    save_file(tensors, p)
    with pytest.raises(ValueError, match=text.replace("(", r"\(").replace(")", r"\)")):
        ReLUNet.load(p)
    assert main(["count", str(p), "--segment", "0,0", "1,1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("pieces: error:")


def test_damaged_and_foreign_files(tmp_path):
    p = tmp_path / "x.safetensors"
    p.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    with pytest.raises(ValueError, match="not a readable .safetensors"):
        ReLUNet.load(p)
    q = tmp_path / "x.bin"
    q.write_bytes(b"hello world, no net here")
    with pytest.raises(ValueError, match="not a valid .npz network file"):
        ReLUNet.load(q)


def test_pt_files_need_torch_or_load_weights_only(tmp_path):
    p = tmp_path / "m.pt"
    try:
        import torch
    except ImportError:
        p.write_bytes(b"PK\x03\x04")
        with pytest.raises(ValueError, match="needs PyTorch"):
            ReLUNet.load(p)
        return
    net = ReLUNet.random([4], seed=0, in_dim=2)
    torch.save(net.to_torch().state_dict(), p)
    assert ReLUNet.load(p) == net
    torch.save(net.to_torch(), p)  # a whole module: pickled code, refused by weights_only
    with pytest.raises(ValueError, match="weights_only"):
        ReLUNet.load(p)


def test_from_and_to_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is an optional extra (pip install '.[torch]')")
    nn = torch.nn
    m = nn.Sequential(nn.Flatten(), nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 8, bias=False), nn.ReLU(),
                      nn.Linear(8, 2)).double()
    net = ReLUNet.from_torch(m)
    assert (net.in_dim, net.widths, net.out_dim) == (3, (8, 8), 2) and not net.biases[1].any()
    x = np.random.default_rng(0).normal(size=(7, 3))
    np.testing.assert_allclose(net(x), m(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)
    assert ReLUNet.from_torch(net.to_torch()) == net
    for bad, text in [(nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 1)), "Sigmoid"),
                      (nn.Sequential(nn.Conv2d(1, 1, 3)), "Conv2d"),
                      (nn.Sequential(nn.Linear(2, 3), nn.ReLU()), "ReLU"),
                      (nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)), "expected ReLU")]:
        with pytest.raises(ValueError, match=text):
            ReLUNet.from_torch(bad)


def test_cli_segment_and_lines(tmp_path, capsys):
    net = ReLUNet.random([8, 8], seed=0, in_dim=3, out_dim=2)
    p = tmp_path / "n.safetensors"
    net.save(p)
    x0, x1 = np.array([0.0, -1.0, 0.5]), np.array([1.0, 1.0, 2.0])
    np.save(tmp_path / "a.npy", x0)
    assert main(["count", str(p), "--segment", str(tmp_path / "a.npy"), "1,1,2", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    c = count_pieces(net, segment=(x0, x1))
    assert (d["pieces"], d["regions"], d["per_output"]) == (c.pieces, c.regions, list(c.per_output))
    X = np.random.default_rng(1).normal(size=(30, 3))
    np.save(tmp_path / "X.npy", X)
    csv = tmp_path / "l.csv"
    assert main(["count", str(p), "--lines", "12", "--data", str(tmp_path / "X.npy"), "--seed", "3",
                 "--csv", str(csv), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    rows = [r.split(",") for r in csv.read_text().splitlines()[1:]]
    assert len(rows) == 12
    a, b, pieces = int(rows[0][1]), int(rows[0][2]), int(rows[0][4])
    assert a != b and pieces == count_pieces(net, segment=(X[a], X[b])).pieces
    lo, hi = d["pieces"]["ci95"]
    assert lo <= d["pieces"]["mean"] <= hi and d["pieces"]["mean"] == np.mean([int(r[4]) for r in rows])


@pytest.mark.parametrize("extra,text", [
    ([], "--segment A B or --lines"),
    (["--segment", "0,0", "1,1"], "has 2 coordinates; the net takes 3"),
    (["--segment", "0,0,x", "1,1,1"], "comma-separated"),
    (["--segment", "0,0,nan", "1,1,1"], "NaN"),
    (["--lines", "3"], "needs --data"),
    (["--lines", "0", "--data", "X.npy"], "positive"),
    (["--lines", "3", "--data", "missing.npy"], "no such file"),
    (["--segment", "0,0,0", "1,1,1", "--lines", "2"], "give one"),
    (["--segment", "0,0,0", "1,1,1", "--interval", "0", "2"], "--interval"),
    (["--segment", "0,0,0", "1,1,1", "--method", "tolerance"], "one output"),
])
def test_cli_refusals(tmp_path, capsys, monkeypatch, extra, text):
    monkeypatch.chdir(tmp_path)
    ReLUNet.random([4], seed=0, in_dim=3, out_dim=2).save("n.npz")
    np.save("X.npy", np.zeros((4, 2)))
    assert main(["count", "n.npz", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and text in err
