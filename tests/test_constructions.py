import numpy as np
import pytest

from pieces import count_pieces, count_pieces_batch, sawtooth, yarotsky_square


@pytest.mark.parametrize("L", list(range(1, 21)))
def test_sawtooth_has_2_to_the_L_pieces(L):
    c = count_pieces(sawtooth(L), (0.0, 1.0))
    assert (c.pieces, c.regions) == (2**L, 2**L)
    if L <= 12:
        np.testing.assert_array_equal(c.breakpoints, np.arange(1, 2**L) / 2**L)


@pytest.mark.parametrize("L", [1, 2, 5, 7])
def test_sawtooth_against_oracle_and_shape(L):
    net = sawtooth(L)
    r = count_pieces(net, (0.0, 1.0), method="rational")
    assert r.pieces == 2**L
    x = np.arange(0, 2**L + 1) / 2**L
    np.testing.assert_array_equal(net(x), (np.arange(2**L + 1) % 2).astype(float))
    assert net.widths == (2,) * L


@pytest.mark.parametrize("m", list(range(1, 16)))
def test_yarotsky_square(m):
    net = yarotsky_square(m)
    c = count_pieces(net, (0.0, 1.0))
    assert c.pieces == 2**m
    x = np.linspace(0.0, 1.0, 2**(m + 3) * 8 + 1)
    err = np.abs(net(x) - x**2).max()
    bound = 2.0 ** (-2 * m - 2)
    assert err <= bound * (1 + 1e-9)
    assert err >= 0.99 * bound  # the bound is attained at the cell midpoints
    nodes = np.arange(2**m + 1) / 2**m
    np.testing.assert_allclose(net(nodes), nodes**2, atol=1e-15)


def test_yarotsky_against_oracle():
    for m in (1, 3, 5):
        assert count_pieces(yarotsky_square(m), (0.0, 1.0), method="rational").pieces == 2**m


def test_batch_of_constructions():
    p, r = count_pieces_batch([sawtooth(L) for L in range(1, 15)], (0.0, 1.0))
    assert p.tolist() == [2**L for L in range(1, 15)]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_depth(bad):
    with pytest.raises(ValueError, match="positive integer"):
        sawtooth(bad)
    with pytest.raises(ValueError, match="positive integer"):
        yarotsky_square(bad)
