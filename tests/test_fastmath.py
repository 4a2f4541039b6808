"""Accuracy of the kernels' branch-free maths (``gpuhedge.kernels._fastmath``) against libm and
scipy, compiled (with fused multiply-adds) and as the plain Python the CUDA simulator runs."""

import math

import numba
import numpy as np
import pytest
from scipy.special import ndtr

from gpuhedge.kernels import _fastmath as fm


@numba.njit
def _map(f, x):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = f(x[i])
    return out


@numba.njit
def _map3(a, b, c):
    out = np.empty_like(a)
    for i in range(a.size):
        out[i] = fm.fma(a[i], b[i], c[i])
    return out


_EXP = numba.njit(lambda x: fm.fexp(x))
_LOG = numba.njit(lambda x: fm.flog(x))
_NCDF = numba.njit(lambda x: fm.norm_cdf(x))
_ncdf_inline = fm.inlined(fm.norm_cdf)
_NCDF_INLINE = numba.njit(lambda x: _ncdf_inline(x))
_CBRT = numba.njit(lambda x: fm.cbrt(x))
_EXPM1 = numba.njit(lambda x: fm.fexpm1(x))


@numba.njit
def _pow(f, x, y):
    out = np.empty_like(x)
    for i in range(x.size):
        out[i] = f(x[i], y[i])
    return out


_POW = numba.njit(lambda x, y: fm.fpow(x, y))
_fpow_inline = fm.inlined(fm.fpow)
_POW_INLINE = numba.njit(lambda x, y: _fpow_inline(x, y))


@numba.njit
def _sincos(u):
    c = np.empty_like(u)
    s = np.empty_like(u)
    for i in range(u.size):
        c[i], s[i] = fm.sincos_2pi(u[i])
    return c, s


RNG = np.random.default_rng(11)


def _ulps(a, b):
    return np.max(np.abs(a - b) / np.spacing(np.abs(b)))


def test_exp_within_2_ulp_of_libm():
    x = np.concatenate([RNG.uniform(-700.0, 700.0, 100_000), RNG.uniform(-1.0, 1.0, 10_000),
                        [0.0, 1.0, -1.0, 709.0, -700.0]])
    assert _ulps(_map(_EXP, x), np.exp(x)) <= 2.0
    assert _EXP(-1000.0) == 0.0 and _EXP(1000.0) == math.inf


def test_log_within_2_ulp_of_libm():
    x = np.concatenate([np.exp(RNG.uniform(-700.0, 700.0, 100_000)),
                        1.0 + RNG.uniform(-0.3, 0.3, 100_000), [1.0, 2.0, 0.5, 1e-300, 1e300]])
    got, want = _map(_LOG, x), np.log(x)
    assert np.all(np.abs(got - want) <= 2.0 * np.spacing(np.abs(want)) + 1e-300)
    assert _LOG(1.0) == 0.0


def test_cbrt_within_5e_14_relative():
    """exp(ln(x) / 3): the error of ln x (absolute, up to ulp(690) / 3) becomes relative."""
    x = np.concatenate([np.exp(RNG.uniform(-690.0, 690.0, 100_000)),
                        RNG.uniform(0.0, 10.0, 100_000), [1.0, 8.0, 27.0, 1e-6]])
    np.testing.assert_allclose(_map(_CBRT, x), np.cbrt(x), rtol=5e-14, atol=0)
    assert _CBRT(0.0) == 0.0 and _CBRT(-1.0) == 0.0 and _CBRT(1e-301) == 0.0
    assert [fm.cbrt(v) for v in x[:300]] == _map(_CBRT, x[:300]).tolist()


def test_expm1_within_2_ulp_of_libm():
    x = np.concatenate([RNG.uniform(-1e-8, 1e-8, 10_000), RNG.uniform(-0.35, 0.35, 100_000),
                        RNG.uniform(-5.0, 5.0, 100_000), RNG.uniform(-40.0, 709.0, 100_000),
                        [1e-300, 5e-324, -1e-300, 0.5, -0.5, 1.0, -1.0, 40.0, 709.0]])
    assert _ulps(_map(_EXPM1, x), np.expm1(x)) <= 2.0
    special = np.array([0.0, -40.0, -41.0, -1e4, 709.78, 710.0, 1e4])
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(_map(_EXPM1, special), np.expm1(special))


@pytest.mark.parametrize("f", [_POW, _POW_INLINE], ids=["called", "inlined"])
def test_pow_within_2_ulp_of_libm(f):
    """The double-double ln x keeps y ln x exact enough that only exp's error is left."""
    n = 100_000
    x = np.concatenate([np.exp(RNG.uniform(-700.0, 700.0, n)), np.exp(RNG.uniform(-5, 5, n)),
                        RNG.uniform(0.0, 1e-310, 1000), [1.0, 2.0, 4.0, 1e-3, 0.5]])
    y = np.concatenate([RNG.uniform(-1.0, 1.0, n), RNG.uniform(-100.0, 100.0, n),
                        RNG.uniform(0.01, 0.3, 1000), [0.78, 10.0, 0.5, -0.02, 3.0]])
    want = np.power(x, y)
    assert _ulps(_pow(f, x, y), want) <= 2.0
    np.testing.assert_array_equal(_pow(f, np.array([1.0, 2.0, 4.0]), np.array([7.0, 10.0, 0.5])),
                                  [1.0, 1024.0, 2.0])
    zero = np.zeros(3)
    np.testing.assert_array_equal(_pow(f, zero, np.array([0.5, 0.0, -1.0])), [0.0, 1.0, np.inf])


def test_sincos_2pi_within_1e_15():
    u = np.concatenate([RNG.uniform(0.0, 1.0, 100_000), np.arange(9) / 8.0])
    c, s = _sincos(u)
    np.testing.assert_allclose(c, np.cos(2.0 * np.pi * u), rtol=0, atol=1e-15)
    np.testing.assert_allclose(s, np.sin(2.0 * np.pi * u), rtol=0, atol=1e-15)
    np.testing.assert_allclose(c * c + s * s, 1.0, rtol=0, atol=4e-16)


@pytest.mark.parametrize("f", [_NCDF, _NCDF_INLINE], ids=["called", "inlined"])
def test_norm_cdf_matches_scipy(f):
    x = np.concatenate([RNG.uniform(-37.0, 37.0, 200_000), RNG.uniform(-3.0, 3.0, 100_000)])
    got, want = _map(f, x), ndtr(x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    # relative, in the tails: scipy's ndtr is itself off by up to ~3e-13 below -30
    near = x > -10.0
    np.testing.assert_allclose(got[near], want[near], rtol=2e-14)
    np.testing.assert_allclose(got, want, rtol=5e-13)
    special = np.array([0.0, 40.0, -40.0, 50.0, -50.0, np.inf, -np.inf])
    np.testing.assert_array_equal(_map(f, special), [0.5, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    assert math.isnan(f(math.nan))


def test_norm_cdf_symmetry():
    x = RNG.uniform(0.0, 8.0, 10_000)
    np.testing.assert_allclose(_map(_NCDF, x) + _map(_NCDF, -x), 1.0, rtol=0, atol=2.3e-16)


_DIV_EXACT = numba.njit(lambda a, b: fm.div_exact(a, b))
_SQRT_EXACT = numba.njit(lambda x: fm.sqrt_exact(x))


def hard_cases(n, dtype, bits):
    """Floats whose significands are within 64 of 1 or of 2 (all ones), where division and
    square root round hardest, scaled by powers of two."""
    k = RNG.integers(0, 64, n)
    significand = np.where(RNG.random(n) < 0.5, (1 << (bits + 1)) - 1 - k, (1 << bits) + k)
    return (significand * 2.0 ** (RNG.integers(-20, 20, n) - bits)).astype(dtype)


def test_gpu_division_and_sqrt_are_ieee():
    """``div_exact`` and ``sqrt_exact``, the GPU's ``fdiv`` and ``fsqrt`` (Newton's iteration,
    a correction against the residual and the exact rounding test), give IEEE division's and
    square root's results on every one of a million random and a million hard cases each, so
    the CPU, which divides by its instruction, and the GPU agree bit for bit."""
    n = 1_000_000
    b = np.exp(RNG.uniform(-300.0, 300.0, n)) * RNG.choice([-1.0, 1.0], n)
    a = RNG.normal(size=n) * np.exp(RNG.uniform(-300.0, 300.0, n))
    for num, den in ((a, b), (hard_cases(n, np.float64, 52), hard_cases(n, np.float64, 52))):
        np.testing.assert_array_equal(_pow(_DIV_EXACT, num, den), num / den)
    x = np.concatenate([np.exp(RNG.uniform(-690.0, 700.0, n)),
                        np.abs(hard_cases(n, np.float64, 52)), [0.0, 1.0, 4.0, 2.0]])
    np.testing.assert_array_equal(_map(_SQRT_EXACT, x), np.sqrt(x))
    assert _DIV_EXACT(0.0, 3.0) == 0.0 and _DIV_EXACT(-1.0, 4.0) == -0.25
    assert [fm.div_exact(u, v) for u, v in zip(a[:300], b[:300])] == (a[:300] / b[:300]).tolist()
    assert [fm.sqrt_exact(v) for v in x[:300]] == np.sqrt(x[:300]).tolist()


_div32 = fm.as_float32(fm.div_exact)
_sqrt32 = fm.as_float32(fm.sqrt_exact)
_DIV32 = numba.njit(lambda a, b: _div32(a, b))
_SQRT32 = numba.njit(lambda x: _sqrt32(x))


def test_gpu_division_and_sqrt_are_ieee_in_float32():
    """The float32 copies (the GPU's float32 ``fdiv`` and ``fsqrt``) give float32 IEEE results
    on every random and hard case; as Python (the CUDA simulator) too."""
    n = 500_000
    f32 = np.float32
    b = (np.exp(RNG.uniform(-40.0, 40.0, n)) * RNG.choice([-1.0, 1.0], n)).astype(f32)
    a = (RNG.normal(size=n) * np.exp(RNG.uniform(-40.0, 40.0, n))).astype(f32)
    for num, den in ((a, b), (hard_cases(n, f32, 23), hard_cases(n, f32, 23))):
        np.testing.assert_array_equal(_pow(_DIV32, num, den), num / den)
    x = np.concatenate([np.exp(RNG.uniform(-80.0, 80.0, n)), np.abs(hard_cases(n, f32, 23)),
                        [0.0, 1.0, 4.0, 2.0]]).astype(f32)
    np.testing.assert_array_equal(_map(_SQRT32, x), np.sqrt(x))
    assert [_div32(u, v) for u, v in zip(a[:200], b[:200])] == (a[:200] / b[:200]).tolist()
    assert [_sqrt32(v) for v in x[:200]] == np.sqrt(x[:200]).tolist()


def test_python_versions_agree_with_compiled():
    """The plain Python (CUDA simulator) gives the compiled results bit for bit."""
    x = np.concatenate([RNG.uniform(-700.0, 700.0, 300), [-700.0, -3.3, 0.0, 0.7, 42.0]])
    assert [fm.fexp(v) for v in x] == _map(_EXP, x).tolist()
    x = np.exp(RNG.uniform(-690.0, 690.0, 300))
    assert [fm.flog(v) for v in x] == _map(_LOG, x).tolist()
    x = np.concatenate([RNG.uniform(-38.0, 38.0, 300), [-30.0, -5.0, -0.1, 0.0, 2.0, 9.0]])
    assert [fm.norm_cdf(v) for v in x] == _map(_NCDF, x).tolist()
    x = np.concatenate([RNG.uniform(-40.0, 40.0, 300), [-1e-9, 0.0, 0.3, 700.0]])
    assert [fm.fexpm1(v) for v in x] == _map(_EXPM1, x).tolist()
    x, y = np.exp(RNG.uniform(-50.0, 50.0, 300)), RNG.uniform(-3.0, 3.0, 300)
    assert [fm.fpow(u, v) for u, v in zip(x, y)] == _pow(_POW, x, y).tolist()
    a, b, c = RNG.normal(size=(3, 1000))
    assert [fm.fma(*v) for v in zip(a, b, c)] == _map3(a, b, c).tolist()
    for u in (0.0, 0.1, 0.37, 0.5, 0.93):
        c, s = fm.sincos_2pi(u)
        assert c == pytest.approx(math.cos(2 * math.pi * u), abs=1e-15)
        assert s == pytest.approx(math.sin(2 * math.pi * u), abs=1e-15)
    assert fm.bits_from_f64(1.0) == 0x3FF0000000000000
    assert fm.f64_from_bits(0x4000000000000000) == 2.0
