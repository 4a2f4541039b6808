"""The float32 mode: the float32 copies of the kernels' maths (``_fastmath.as_float32``) compute
in float32, are accurate to float32, and run as Python (the CUDA simulator) bit for bit as they
run compiled; a float32 simulation stays within its documented error of float64 on the same
paths (``docs/precision.md``)."""

import functools
import math
import re
from fractions import Fraction

import numba
import numpy as np
import pytest
from scipy.special import ndtr

import gpuhedge as gh
from gpuhedge.kernels import _fastmath as fm
from gpuhedge.kernels import _math
from gpuhedge.models import MODELS

F32 = np.float32


@functools.cache
def _compiled(fn):
    """``fn``'s float32 copy compiled for float32 scalars, mapped over arrays."""
    copy = fm.as_float32(fn)

    @numba.njit
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = copy(x[i])
        return out
    return apply


def _ulps(got, exact):
    """|got - exact| in units of the float32 spacing at ``exact``."""
    return np.abs(got.astype(float) - exact) / np.spacing(np.abs(exact).astype(F32))


def _double_precision_lines(dispatcher):
    """LLVM IR lines that mention a double in the functions ``dispatcher`` compiled, besides
    the wrappers that box its result for Python."""
    ir = dispatcher.inspect_llvm(dispatcher.signatures[0])
    lines = []
    for function in re.split(r"\n(?=define )", ir):
        head = function.split("\n", 1)[0]
        if head.startswith("define") and "cpython" not in head and "@cfunc." not in head:
            lines += [line for line in function.splitlines() if "double" in line]
    return lines


RNG = np.random.default_rng(11)


def test_exp_log_pow_within_2_float32_ulp():
    x = RNG.uniform(-87.0, 88.0, 50_000).astype(F32)
    assert _ulps(_compiled(fm.fexp)(x), np.exp(x.astype(float))).max() <= 1.0
    x = np.exp(RNG.uniform(-87.0, 88.0, 50_000)).astype(F32)
    assert _ulps(_compiled(fm.flog)(x), np.log(x.astype(float))).max() <= 1.0
    copy = fm.as_float32(fm.fpow)
    power = numba.njit(lambda a, b: copy(a, b))
    x = np.exp(RNG.uniform(-20.0, 20.0, 2_000)).astype(F32)
    y = RNG.uniform(-2.0, 2.0, 2_000).astype(F32)
    got = np.array([power(a, b) for a, b in zip(x, y)])
    exact = np.power(x.astype(float), y.astype(float))
    assert _ulps(got, exact).max() <= 2.0


def test_norm_cdf_and_sincos_within_float32_precision():
    x = RNG.uniform(-14.0, 14.0, 50_000).astype(F32)
    got, exact = _compiled(fm.norm_cdf)(x), ndtr(x.astype(float))
    assert np.abs(got - exact).max() < 2e-7
    normal = exact > np.finfo(F32).tiny  # the relative error where float32 is not subnormal
    assert (np.abs(got - exact)[normal] / exact[normal]).max() < 5e-7
    copy = fm.as_float32(fm.sincos_2pi)
    u = RNG.uniform(0.0, 1.0, 2_000).astype(F32)
    sincos = numba.njit(lambda v: copy(v))
    c, s = np.array([sincos(v) for v in u]).T
    assert np.abs(c - np.cos(2.0 * np.pi * u.astype(float))).max() < 2e-7
    assert np.abs(s - np.sin(2.0 * np.pi * u.astype(float))).max() < 2e-7


def test_python_copies_agree_with_compiled_bit_for_bit():
    # the CUDA simulator runs the copies as Python on NumPy float32 scalars
    x = RNG.uniform(-20.0, 20.0, 200).astype(F32)
    for fn, args in ((fm.fexp, x), (fm.norm_cdf, x), (fm.flog, np.abs(x) + F32(1e-3)),
                     (fm.sqrt_exact, np.abs(x))):
        python = np.array([fm.as_float32(fn)(v) for v in args])
        assert python.dtype == F32
        np.testing.assert_array_equal(python, _compiled(fn)(args), err_msg=fn.__name__)


def _exact_float32(a, b, c):
    """a * b + c rounded to nearest float32 (ties to even), from exact rationals."""
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    guess = F32(float(exact))
    candidates = [np.nextafter(guess, F32(-np.inf)), guess, np.nextafter(guess, F32(np.inf))]
    return min(candidates, key=lambda v: (abs(Fraction(float(v)) - exact),
                                          int(fm.bits_from_f32(v)) & 1))


def test_float32_fma_rounds_once():
    a, b, c = (RNG.normal(0.0, 1.0, 3_000).astype(F32) for _ in range(3))
    # products that nearly cancel c: where rounding twice would show
    c[::2] = -(a[::2].astype(float) * b[::2].astype(float)).astype(F32)
    fused = numba.njit(lambda x, y, z: fm.fma(x, y, z))
    for x, y, z in zip(a, b, c):
        python = fm.fma(x, y, z)
        assert isinstance(python, F32) and python == _exact_float32(x, y, z)
        assert fused(x, y, z) == python


_EXAMPLES = dict(spot=100.0, vol=0.2, rate=0.03, lam=1.0, mu_j=-0.1, sigma_j=0.1, p=0.4,
                 eta1=10.0, eta2=5.0, v0=0.04, kappa=2.0, theta=0.04, xi=0.3, rho=-0.7,
                 sigma=2.0, beta=0.5)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_float32_steps_compute_in_float32(model):
    """Each market's float32 step, compiled with float32 state and parameters, holds no
    double-precision operation: the path, the random numbers and the exp/log it takes are
    float32 end to end. Run as Python on float32 scalars (as the CUDA simulator runs it), it
    gives the compiled step's bits."""
    step = fm.as_float32(model.dynamics.step)

    def call(s, v, mp, paths, sign, draw):
        return step(s, v, mp, paths, np.uint64(1), np.uint64(2), 3, 0, 4, sign, draw)

    run = numba.njit(call)
    # the parameters of a real step of the model (one day), and one jump where it has jumps
    market = model(**{name: value for name, value in _EXAMPLES.items()
                      if name in model.__dataclass_fields__})
    mp = market.kernel_params(1.0 / 252.0).astype(F32)
    args = (F32(100.0), F32(0.04), mp, np.ones((1, 8), F32), F32(-1.0), F32(1.0))
    compiled = run(*args)
    assert np.isfinite(compiled).all() and compiled[0] > 0.0
    assert tuple(map(F32, compiled)) == call(*args)
    assert _double_precision_lines(run) == []


def test_float32_greeks_compute_in_float32():
    for fn, args in ((_math.delta_from, (F32(0.1), F32(0.5), F32(0.99), F32(0.2), F32(0.03),
                                         F32(0.01), True)),
                     (_math.gamma_from, (F32(100.0), F32(0.1), F32(0.5), F32(0.99),
                                         F32(0.2), F32(0.03), F32(0.01)))):
        copy = fm.as_float32(fn)
        run = numba.njit(lambda *a: copy(*a))
        assert isinstance(run(*args), float)
        assert _double_precision_lines(run) == [], fn.__name__


_HUGE = 1e300


def _uses_huge(x):
    return x * _HUGE


def _uses_pi(x):
    return x * math.pi


def test_as_float32_refuses_what_has_no_float32_value():
    with pytest.raises(ValueError, match=r"as_float32: the constant _HUGE = 1e\+300 has no "
                                         r"float32 value"):
        fm.as_float32(_uses_huge)
    with pytest.raises(ValueError, match=r"as_float32: _uses_pi uses math.pi"):
        fm.as_float32(_uses_pi)


def test_float32_pnl_within_its_documented_error_of_float64():
    """Same paths in both precisions (the float32 uniforms come from the same Philox words):
    the P&L's std within 1e-4 relative and its 1 %, 50 % and 99 % quantiles within 1e-3 std
    (``docs/precision.md``: measured 3e-7 and 2e-5 at 252 steps)."""
    market = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.03, dividend=0.01)
    book = gh.Position(gh.EuropeanCall(100.0, 0.5), -1.0)
    hedges = {"delta": gh.DeltaHedge(vol=0.2),
              "band": gh.DeltaBand(vol=0.2, band=0.05, to="edge")}
    kw = dict(n_paths=4_000, n_steps=100, seed=8, device="cpu")
    single = gh.simulate(market, book, hedges, gh.Costs(proportional=1e-3), dtype="float32",
                         **kw)
    double = gh.simulate(market, book, hedges, gh.Costs(proportional=1e-3), **kw)
    for name in hedges:
        a = single.pnl.sel(strategy=name).values.ravel()
        b = double.pnl.sel(strategy=name).values.ravel()
        std = b.std()
        assert abs(a.std() / std - 1.0) < 1e-4, name
        levels = [0.01, 0.5, 0.99]
        np.testing.assert_allclose(np.quantile(a, levels), np.quantile(b, levels),
                                   atol=1e-3 * std, rtol=0, err_msg=name)
    np.testing.assert_allclose(single.terminal_spot, double.terminal_spot, rtol=1e-5)
