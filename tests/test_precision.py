"""Rounding emulation, bit for bit against numpy float16 and ml_dtypes bfloat16."""

import ml_dtypes
import numpy as np
import pytest
from numba import njit

from pieces.train import _train_cpu
from pieces.precision import (
    FastRounding, HAVE_F16C, div, float32_rounding, kernel_rounding, mul, parse_precision,
    round_array,
)
from pieces.precision._arithmetic import _round_array


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


# --- the dedicated roundings of the CPU kernels (F16C for fp16, bit arithmetic for bf16)

FAST = ["bf16", "p2", "p5", "p7"] + (["fp16"] if HAVE_F16C else [])


def test_kernel_rounding_picks_the_dedicated_roundings():
    assert kernel_rounding(parse_precision("bf16").rounding).kind == "bf16"
    assert kernel_rounding(parse_precision("p8").rounding).kind == "bf16"  # the same format
    assert kernel_rounding(parse_precision("p3").rounding).kind == "p3"
    fp16 = kernel_rounding(parse_precision("fp16").rounding)
    assert isinstance(fp16, FastRounding) == HAVE_F16C
    for name in ("fp64", "fp32", "p9", "p11", "p24"):  # wider pK computes in float64: generic
        rs = parse_precision(name).rounding
        assert kernel_rounding(rs) is rs
    assert [parse_precision(f"p{k}").compute_dtype.itemsize for k in (2, 8, 9, 24)] == [4, 4, 8, 8]


def float32_cases(name):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 2**32, 4_000_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    if name == "fp16":
        v = np.arange(2**16, dtype=np.uint16).view(np.float16).astype(np.float32)
    else:  # bf16's values, rounded to pK's
        v = np.arange(2**16, dtype=np.uint16).view(ml_dtypes.bfloat16).astype(np.float32)
        v = round_array(v[np.isfinite(v)], name).astype(np.float32)
    v = np.unique(v[np.isfinite(v)])
    mids = ((v[1:].astype(np.float64) + v[:-1]) / 2).astype(np.float32)  # exact in fp32
    big = np.float32(np.finfo(np.float32).max)
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, big, -big, 1e-45, -1e-45], np.float32)
    nans = np.array([0x7F800001, 0xFF800001, 0x7FFFFFFF, 0xFFFFFFFF, 0x7F808000, 0x7FC00000], np.uint32)
    return np.concatenate([x, v, mids, np.nextafter(mids, np.float32(np.inf)),
                           np.nextafter(mids, np.float32(-np.inf)), edges, nans.view(np.float32)])


@pytest.mark.parametrize("name", FAST)
def test_dedicated_rounding_equals_the_generic_one(name):
    x = float32_cases(name)
    rs = parse_precision(name).rounding
    fast = _round_array(x, kernel_rounding(rs))
    generic = _round_array(x, rs)
    if name != "fp16":  # bit for bit, nan payloads included
        assert np.array_equal(fast.view(np.uint32), generic.view(np.uint32))
    else:  # F16C drops a nan's low payload bits: nan stays nan
        assert same_bits(fast, generic).all()
    if name in ("fp16", "bf16"):
        ref = x.astype(np.float16 if name == "fp16" else ml_dtypes.bfloat16).astype(np.float32)
    else:  # the float64 path, an exact cast
        ref = round_array(x.astype(np.float64), name).astype(np.float32)
    assert same_bits(fast, ref).all()


@pytest.mark.parametrize("name", FAST)
def test_finite_input_rounding_equals_the_full_one_on_what_kernels_hold(name):
    # everything but nans with a payload: finite values, infinities, default nans
    x = float32_cases(name)
    default_nans = np.array([0x7FC00000, 0xFFC00000], np.uint32).view(np.float32)
    x = np.concatenate([x[~np.isnan(x)], default_nans])
    rs = parse_precision(name).rounding
    full = _round_array(x, kernel_rounding(rs))
    lean = _round_array(x, kernel_rounding(rs, finite_inputs=True))
    assert np.array_equal(full.view(np.uint32), lean.view(np.uint32))
    if name == "bf16":  # the control: a payload the lean rounding does not keep
        odd = np.array([0x7F800001], np.uint32).view(np.float32)
        assert not np.isnan(_round_array(odd, kernel_rounding(rs, finite_inputs=True))[0])


@njit(error_model="numpy")
def _arithmetic_nans(v):
    # vectorised loops, as in the kernels: inf - inf, 0 * inf, 0 / 0, sqrt(-1)
    out = np.empty(4 * v.size, np.float32)
    n = v.size
    for i in range(n):
        out[i] = v[i] * np.float32(1e38) * np.float32(1e38) - v[i] * np.float32(1e38) * np.float32(1e38)
    for i in range(n):
        out[n + i] = (v[i] - v[i]) * (v[i] * np.float32(1e38) * np.float32(1e38))
    for i in range(n):
        out[2 * n + i] = (v[i] - v[i]) / (v[i] - v[i])
    for i in range(n):
        out[3 * n + i] = np.sqrt(-v[i])
    return out


def test_arithmetic_makes_only_nans_without_payload():
    # the premise of finite_inputs=True: finite inputs give nans of mantissa 0x400000
    nans = _arithmetic_nans(np.linspace(1, 2, 37).astype(np.float32))
    assert np.isnan(nans).all()
    assert ((nans.view(np.uint32) & 0x7FFFFFFF) == 0x7FC00000).all()


def emulated_run(name, opt, rounding, lr=0.05, steps=30, dtype=None):
    fmt = parse_precision(name)
    dt = np.dtype(dtype or fmt.compute_dtype)
    sizes = np.array([1, 9, 13, 8, 1], np.int64)
    n_params = _train_cpu.param_layout(sizes)[2]
    thetas = round_array(np.random.default_rng(3).standard_normal((3, n_params)) * 0.7, fmt).astype(dt)
    # net 1: deep activations and their gradients in the format's subnormal range
    thetas[1] *= dt.type(2.0**-5 if name == "fp16" else 2.0**-32)
    thetas[2] *= dt.type(2.0**-5 if name == "fp16" else 2.0**-24)
    x = round_array(np.linspace(-1, 1, 37), fmt).astype(dt)
    y = round_array(np.sin(3 * x.astype(np.float64)), fmt).astype(dt)
    lr_arr = round_array(np.full(steps, lr), fmt).astype(dt)
    bc = round_array(np.stack([1 - 0.9 ** np.arange(1, steps + 1), 1 - 0.999 ** np.arange(1, steps + 1)], 1),
                     fmt).astype(dt)
    hp = round_array(np.array([0.9, 0.1, 0.999, 0.001, 1e-3]), fmt).astype(dt)
    ms, vs = np.zeros_like(thetas), np.zeros_like(thetas)
    # net by net through the serial kernel that the batch kernel runs per thread: it
    # compiles in a third of the time
    runs = [_train_cpu._run(thetas[i], ms[i], vs[i], sizes, x, y, lr_arr, bc, hp, _train_cpu.OPTIMIZERS[opt], 0,
                            steps, 8, i + 1, rounding, np.zeros((2, thetas.shape[1]), np.int64)) for i in range(3)]
    out = tuple(np.array(col) for col in zip(*runs))  # (steps done, last loss, diverged)
    return thetas, ms, vs, out


@pytest.mark.parametrize("name", [n for n in FAST if n in ("fp16", "bf16", "p5")])  # each compiles a kernel
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_training_with_the_dedicated_rounding_is_bit_identical(name, opt):
    rs = parse_precision(name).rounding
    for lr in (0.05, 1e4):  # the second diverges (SGD): both must stop at the same step
        fast = emulated_run(name, opt, kernel_rounding(rs, finite_inputs=True), lr)  # as training runs
        generic = emulated_run(name, opt, rs, lr)
        for a, b in zip(fast[:3], generic[:3]):
            assert a.tobytes() == b.tobytes()
        for a, b in zip(fast[3], generic[3]):
            assert a.tobytes() == b.tobytes()
        steps_done, _, diverged = fast[3]
        if lr == 0.05:
            assert not diverged.any() and (steps_done == 30).all()
        elif opt == "sgd":
            assert diverged.all()


@pytest.mark.parametrize("k", [2, 5, 8])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_narrow_pk_in_float32_equals_pk_in_float64(k, opt):
    # pK with K <= 8 computes in float32 (see the module doc's proof); before, in
    # float64. Whole training runs, nets with subnormal activations and gradients
    # among them, must agree bit for bit.
    fmt = parse_precision(f"p{k}")
    rs64 = (fmt.bits, fmt.emin, fmt.emax, np.float64(fmt.max))
    for lr in (0.05, 1e4):
        new = emulated_run(fmt.name, opt, kernel_rounding(fmt.rounding, finite_inputs=True), lr)
        old = emulated_run(fmt.name, opt, rs64, lr, dtype=np.float64)
        for a, b in zip(new[:3], old[:3]):
            assert a.dtype == np.float32 and b.dtype == np.float64
            assert same_bits(a.astype(np.float64), b).all()
        assert np.array_equal(new[3][0], old[3][0]) and np.array_equal(new[3][2], old[3][2])
        assert same_bits(new[3][1], old[3][1]).all()


def product_mismatches(k):
    """Products of two pK numbers whose exact value lies in fp32's subnormal range:
    how many round differently through fp32 (the float32 kernels) than directly."""
    sig = np.arange(1, 2**k, dtype=np.float64)
    A, B = (m.ravel() for m in np.meshgrid(sig, sig))
    bad = 0
    for s in range(-162, -139):  # the product's last bit at 2**s
        a = (A * 2.0**-70).astype(np.float32)  # exact: k-bit significands, normal in fp32
        b = (B * 2.0 ** (s + 70)).astype(np.float32)
        through_fp32 = round_array((a * b).astype(np.float64), f"p{k}")
        direct = round_array(A * B * 2.0**s, f"p{k}")  # exact in float64
        bad += int((~same_bits(through_fp32, direct)).sum())
    return bad


def test_fp32_products_round_like_exact_ones_exactly_up_to_8_bits():
    # the subnormal case of the module doc's proof, exhaustively, and the bound is tight
    assert [product_mismatches(k) for k in range(2, 9)] == [0] * 7
    assert product_mismatches(9) > 0


@njit(error_model="numpy")
def _mul_div(a, b, rs):
    products = np.empty_like(a)
    quotients = np.empty_like(a)
    for i in range(a.size):
        products[i] = mul(a[i], b[i], rs)
        quotients[i] = div(a[i], b[i], rs)
    return products, quotients


def _mul_all(a, b, rs):
    return _mul_div(a, b, rs)[0]


def _div_all(a, b, rs):
    return _mul_div(a, b, rs)[1]


@pytest.mark.parametrize("k", [9, 10, 11])
def test_products_and_quotients_of_p9_to_p11_in_float32_round_once(k):
    # where rounding fp32's product again is wrong (product_mismatches), ``mul`` is not:
    # every product of two k-bit significands whose last bit lies in fp32's subnormal
    # range, and across the normal boundary, against the exact product rounded once
    fmt = parse_precision(f"p{k}")
    rs = float32_rounding(fmt.rounding)
    assert rs.kind == f"p{k}"
    sig = np.arange(2 ** (k - 1), 2**k, dtype=np.float64)  # normal significands; subnormal factors below
    A, B = (m.ravel() for m in np.meshgrid(sig, sig[:: max(1, sig.size // 256)]))
    for s in range(-165, -120):
        a = (A * 2.0**-70).astype(np.float32)
        b = (B * 2.0 ** (s + 70)).astype(np.float32)
        for sa, sb in ((1, 1), (-1, 1)):
            got = _mul_all(sa * a, sb * b, rs)
            want = round_array(sa * sb * A * B * 2.0**s, fmt)  # exact in float64, rounded once
            assert same_bits(got.astype(np.float64), want).all(), s
    # a subnormal factor, zeros and infinities
    tiny = round_array(np.array([2.0**-130, 3 * 2.0**-134, -(2.0**-125 - 2.0**-134), 0.0, -0.0]), fmt)
    other = round_array(np.array([0.75, 1.5, 3.0, 1e30, -2.0]), fmt)
    x, y = (m.ravel() for m in np.meshgrid(tiny, other))
    x = np.concatenate([x, [np.inf, 0.0]])
    y = np.concatenate([y, [0.0, np.inf]])
    with np.errstate(invalid="ignore", over="ignore"):
        want = round_array(x * y, fmt)
        assert same_bits(_mul_all(x.astype(np.float32), y.astype(np.float32), rs).astype(np.float64), want).all()
        q = (A[:4000] * 2.0**-60).astype(np.float32), (B[:4000] * 2.0**75).astype(np.float32)
        want_q = round_array(q[0].astype(np.float64) / q[1].astype(np.float64), fmt)
        assert same_bits(_div_all(*q, rs).astype(np.float64), want_q).all()


@pytest.mark.parametrize("k", [9, 11])
def test_p9_to_p11_training_in_float32_equals_float64(k):
    # run_steps_batch and evaluate_batch run p9..p11 in float32: the same bits as the
    # float64 kernels, nets with subnormal activations and gradients among them, Adam
    # (products, quotients, square roots) and SGD, converging and diverging
    fmt = parse_precision(f"p{k}")
    sizes = np.array([1, 9, 13, 8, 1], np.int64)
    n_params = _train_cpu.param_layout(sizes)[2]
    base = round_array(np.random.default_rng(3).standard_normal((3, n_params)) * 0.7, fmt)
    base[1] *= 2.0**-32
    base[2] *= 2.0**-24
    x = round_array(np.linspace(-1, 1, 37), fmt)
    y = round_array(np.sin(3 * x), fmt)
    steps = 30
    for opt, lr in (("adam", 0.05), ("sgd", 0.05), ("sgd", 1e4)):
        lr_arr = round_array(np.full(steps, lr), fmt)
        bc = round_array(np.stack([1 - 0.9 ** np.arange(1, steps + 1), 1 - 0.999 ** np.arange(1, steps + 1)], 1), fmt)
        hp = round_array(np.array([0.9, 0.1, 0.999, 0.001, 1e-3]), fmt)
        runs = []
        for narrow in (True, False):
            th, ms, vs = base.copy(), np.zeros_like(base), np.zeros_like(base)
            args = (sizes, x, y, lr_arr, bc, hp, _train_cpu.OPTIMIZERS[opt], 0, steps, 8, np.arange(3), np.ones(3, bool))
            if narrow:
                out = _train_cpu.run_steps_batch(th, ms, vs, *args, fmt.rounding)
            else:  # the float64 kernels, as before
                out = _train_cpu._run_batch(th, ms, vs, *args, fmt.rounding, np.zeros((3, 2, th.shape[1]), np.int64))
            runs.append((th, ms, vs, *out))
        for a, b in zip(*runs):
            assert a.tobytes() == b.tobytes()
    losses, outputs = _train_cpu.evaluate_batch(base, sizes, x, y, fmt.rounding)
    assert outputs.dtype == np.float64
    for i in range(3):
        H, r, *_ = _train_cpu._workspace(base[i], sizes, x.size)
        assert losses[i] == _train_cpu._forward(base[i], sizes, x, y, H, r, fmt.rounding)
        assert outputs[i].tobytes() == H[H.shape[0] - 1].tobytes()
