"""Rounding emulation, bit for bit against numpy float16 and ml_dtypes bfloat16."""

import ml_dtypes
import numpy as np
import pytest

from pieces.precision import _round_array, parse_precision, round_array


def bits64(a):
    return np.asarray(a, dtype=np.float64).view(np.int64)


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    nan = np.isnan(a) & np.isnan(b)
    return (a.view(f"i{a.itemsize}") == b.view(f"i{b.itemsize}")) | nan


def all_f16_values():
    v = np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float64)
    return np.unique(v[np.isfinite(v)])


def test_fp16_random_values_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(2_000_000) * np.exp(rng.uniform(-30, 15, 2_000_000))
    ours = round_array(x, "fp16").astype(np.float64)
    ref = x.astype(np.float16).astype(np.float64)
    assert same_bits(ours, ref).all()


def test_fp16_ties_and_edges_match_numpy():
    v = all_f16_values()
    mids = (v[1:] + v[:-1]) / 2  # exact ties in float64: round half to even
    nudged = np.concatenate([np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf)])
    edges = np.array([65504.0, 65519.99, 65520.0, 65536.0, 1e6, 2.0**-24, 2.0**-25, 2.0**-25 * 1.0001,
                      2.0**-26, 2.0**-14, 2.0**-14 - 2.0**-25, 0.0, -0.0, -1e-30, np.inf, -np.inf, np.nan])
    x = np.concatenate([v, mids, nudged, edges, -edges])
    ours = round_array(x, "fp16").astype(np.float64)
    ref = x.astype(np.float16).astype(np.float64)
    assert same_bits(ours, ref).all()
    assert round_array(np.array([65520.0]), "fp16")[0] == np.inf  # the tie above max
    assert np.signbit(round_array(np.array([-1e-30]), "fp16")[0])  # underflow keeps the sign


def test_bf16_from_float32_matches_ml_dtypes():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2**32, 3_000_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    v = np.arange(2**16, dtype=np.uint16).view(ml_dtypes.bfloat16).astype(np.float32)
    v = np.unique(v[np.isfinite(v)])
    mids = ((v[1:].astype(np.float64) + v[:-1]) / 2).astype(np.float32)  # exact in fp32
    x = np.concatenate([x, v, mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf))])
    ref = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    fmt = parse_precision("bf16")
    in_fp32 = _round_array(x, fmt.rounding)  # the float32 kernel path
    via_fp64 = round_array(x.astype(np.float64), "bf16").astype(np.float32)  # the float64 path (exact cast)
    assert same_bits(in_fp32, ref).all()
    assert same_bits(via_fp64, ref).all()


def test_fp16_float32_path_equals_float64_path():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2**32, 2_000_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    fmt = parse_precision("fp16")
    assert same_bits(_round_array(x, fmt.rounding), x.astype(np.float16).astype(np.float32)).all()


def test_p24_is_fp32_and_p8_is_bf16():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(1_000_000) * np.exp(rng.uniform(-95, 95, 1_000_000))
    assert same_bits(round_array(x, "p24"), x.astype(np.float32).astype(np.float64)).all()
    assert same_bits(round_array(x, "p8"), round_array(x, "bf16")).all()
    assert round_array(x, "fp16").dtype == np.float64 and round_array(x, "fp32").dtype == np.float32


@pytest.mark.parametrize("k", [2, 3, 5, 12, 17])
def test_pk_keeps_k_bits(k):
    rng = np.random.default_rng(k)
    x = rng.uniform(1, 2, 100_000)
    r = round_array(x, f"p{k}")
    q = 2.0 ** (1 - k)
    assert np.all(np.abs(r - x) <= q / 2)
    assert np.all(np.mod(r, q) == 0)


@pytest.mark.parametrize("name", ["p1", "p25", "p0", "fp8", "float16", "", None, 16])
def test_bad_precision(name):
    with pytest.raises(ValueError):
        parse_precision(name)
