"""CPU == CUDA: the CUDA kernels against the CPU kernels, per path, to rounding.

* ``cudasim`` tests run the CUDA kernels in numba's simulator; they need NUMBA_ENABLE_CUDASIM=1
  before numba is imported, so ``test_cuda_simulator_suite`` runs them in a child pytest.
* ``test_kernels_compile_to_ptx`` compiles every kernel with the real CUDA compiler (NVRTC from
  the ``gpu`` extra), which rejects code the simulator accepts; no GPU is needed.
* ``gpu`` tests run the same parity checks on a real GPU when there is one.
"""

import dataclasses
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge.models import DYNAMICS

MARKET = gh.BlackScholes(spot=100.0, vol=0.25, rate=0.03, dividend=0.01)
BOOK = gh.Book([gh.Position(gh.EuropeanCall(100.0, 0.5), -3.0),
                gh.Position(gh.EuropeanPut(90.0, 0.25), 1.0)])
HEDGES = {"every step": gh.DeltaHedge(vol=0.25, every=1),
          "every 3": gh.DeltaHedge(vol=0.2, every=3, initial_shares=-0.5),
          "static": gh.StaticHedge(vol=0.3), "none": gh.NoHedge(),
          "at": gh.HedgeAt(vol=0.25, times=(0.125, 0.25)),
          "band": gh.DeltaBand(vol=0.25, band=0.02), "edge": gh.DeltaBand(vol=0.25, band=0.02,
                                                                          to="edge"),
          "sched band": gh.ScheduleBand(vol=0.25, every=3, band=0.02),
          "sched edge": gh.ScheduleBand(vol=0.25, every=2, band=0.02, to="edge", initial="edge"),
          "spot": gh.SpotMove(vol=0.25, pct=0.01),
          "ww": gh.WhalleyWilmott(vol=0.25, risk_aversion=0.1), "leland": gh.Leland(vol=0.25),
          "ww target": gh.WhalleyWilmott(vol=0.25, risk_aversion=0.1, initial="target",
                                         initial_shares=1.0),
          "zak": gh.Zakamouline(vol=0.25, risk_aversion=0.1, initial_shares=0.8),
          "dg": gh.DeltaGammaHedge(vol=0.25, option=gh.EuropeanCall(105.0, 0.75), every=2),
          "dv roll": gh.DeltaVegaHedge(vol=0.25, option=gh.EuropeanPut(95.0, 0.125), roll=True),
          "put": gh.SyntheticPut(vol=0.25, floor=0.85), "cppi": gh.CPPI(multiplier=5.0)}
COSTS = {"free": gh.Costs(), "costly": gh.Costs(proportional=1e-3, fixed=0.05),
         "middle": gh.Costs(proportional=2e-3, ends=False),
         "market": gh.Costs(proportional=1e-3, impact=0.3, adv=50.0, impact_vol=0.015,
                            borrow_rate=0.05, lend_rate=0.01, option_proportional=0.01,
                            impact_law="linear"),
         "lagged": gh.Costs(proportional=1e-3, impact=0.2, adv=80.0, impact_vol=0.02, lag=2)}
VARS = ("pnl", "cost_paid", "cost_spread", "cost_fee", "cost_impact", "cost_funding", "trades",
        "turnover", "terminal_spot")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", gh.FellerWarning)
    SV = dict(spot=100.0, rate=0.03, v0=0.05, kappa=1.5, theta=0.04, xi=0.6, rho=-0.6)
    MODELS = [gh.Merton(spot=100.0, vol=0.2, rate=0.03, lam=3.0, mu_j=-0.1, sigma_j=0.2),
              gh.Kou(spot=100.0, vol=0.2, rate=0.03, lam=3.0, p=0.4, eta1=8.0, eta2=6.0),
              gh.Heston(**SV), gh.Heston(**SV, scheme="euler"),
              gh.Bates(**SV, lam=3.0, mu_j=-0.1, sigma_j=0.2)]
SV_HEDGES = {**HEDGES, **{r: gh.DeltaHedge(vol=0.2, every=2, hedge_vol=r) for r in (
    "instantaneous", "expected-average", "min-variance")}}


RECORD_VARS = VARS + ("shares", "hedge_options", "cash", "book_value", "value", "pnl_to_date",
                      "cost_to_date", "trades_to_date")


def _assert_same(a, b, rtol):
    assert a.keys() == b.keys()
    for v in a:
        np.testing.assert_allclose(a[v], b[v], rtol=rtol, atol=rtol * 1e-3, err_msg=v)


def _cases(n_paths):
    """{name: run(device) -> {variable: per-path values}} of every parity case."""
    cases = {}

    def add(name, run, variables=VARS):
        # (the cost kinds that no level of a case charges are not in its dataset)
        cases[name] = lambda device: {v: np.asarray(ds[v].values) for ds in [run(device)]
                                      for v in variables if v in ds}

    for dtype in ("float64", "float32"):
        for antithetic in (False, True):
            kw = dict(n_paths=n_paths, n_steps=20, seed=5, dtype=dtype, antithetic=antithetic)
            add(f"black-scholes {dtype} antithetic={antithetic}",
                lambda device, kw=kw: gh.simulate(MARKET, BOOK, HEDGES, COSTS, device=device,
                                                  chunk_paths=16 if device == "cuda" else None,
                                                  **kw))
    for i, market in enumerate([MARKET] + MODELS):
        hedges = SV_HEDGES if isinstance(market, gh.Heston) else HEDGES
        if isinstance(market, (gh.BlackScholes, gh.Merton)):
            hedges = {**HEDGES, "model": gh.DeltaHedge(every=3, hedge_vol="model")}
        add(f"market {i} {type(market).__name__}",
            lambda device, market=market, hedges=hedges: gh.simulate(
                market, BOOK, hedges, COSTS, device=device, n_paths=n_paths, n_steps=20, seed=5))
    # each rule on its own: kernels specialised on the code paths of one rule (``Features``)
    for name, hedge in HEDGES.items():
        add(f"alone: {name}", lambda device, hedge=hedge: gh.simulate(
            NO_DIVIDEND, BOOK, {"rule": hedge}, {"costly": COSTS["costly"]}, device=device,
            n_paths=4, n_steps=20, seed=7))
    for cost in ("market", "lagged"):
        add(f"alone: band, {cost}", lambda device, cost=cost: gh.simulate(
            NO_DIVIDEND, BOOK, {"band": HEDGES["band"]}, {cost: COSTS[cost]}, device=device,
            n_paths=4, n_steps=20, seed=7))
    # a book of one option: the Whalley-Wilmott band from d1 (not from the gamma)
    one_option = gh.Book([gh.Position(gh.EuropeanCall(100.0, 0.5), -3.0)])
    add("one-option book", lambda device: gh.simulate(
        MARKET, one_option, {k: HEDGES[k] for k in ("every step", "ww", "zak")}, COSTS,
        device=device, n_paths=n_paths, n_steps=20, seed=5))
    rng = np.random.default_rng(0)
    steps = rng.normal(0, 0.02, (n_paths, 21))
    steps[:, 0] = 0.0  # one first price for all paths: the insurers' units are set at t=0
    prices = 100.0 * np.exp(np.cumsum(steps, axis=1))
    times = np.linspace(0.0, 0.5, 21)
    add("replay", lambda device: gh.hedge_paths(prices, times, BOOK, HEDGES_WITH_VOL, COSTS,
                                                device=device, rate=0.03, dividend=0.01))
    # the per-date record, on fewer paths and chunks of 4 (the record is copied back per chunk)
    add("replay record", lambda device: gh.hedge_paths(
        prices[:6], times, BOOK, HEDGES_WITH_VOL, COSTS, device=device, rate=0.03,
        dividend=0.01, record=True, chunk_paths=4 if device == "cuda" else None), RECORD_VARS)
    return cases


def _check_parity(n_paths, rtol, reference=None):
    """CUDA against CPU on every case; the CPU results come from ``reference`` (a folder of
    .npz files, one per case) when given."""
    for i, (name, run) in enumerate(_cases(n_paths).items()):
        if reference is None:
            cpu = run("cpu")
        else:
            with np.load(os.path.join(reference, f"case{i}.npz")) as saved:
                cpu = dict(saved)
        try:
            _assert_same(run("cuda"), cpu, rtol)
        except AssertionError as error:
            raise AssertionError(f"case {name!r}: {error}") from None


HEDGES_WITH_VOL = {**HEDGES, "none": gh.NoHedge(vol=0.25)}
NO_DIVIDEND = gh.BlackScholes(spot=100.0, vol=0.25, rate=0.03)
SIM_PATHS = 16  # enough for every rule and cost; the simulator runs the maths as Python


@pytest.mark.cudasim
def test_simulator_matches_cpu():
    _check_parity(SIM_PATHS, 1e-12, os.environ.get("GPUHEDGE_CPU_REFERENCE"))


@pytest.mark.cudasim
def test_simulator_is_used_for_cuda_device():
    ds = gh.simulate(MARKET, BOOK, HEDGES, n_paths=4, n_steps=4, device="cuda")
    assert ds.attrs["device"] == "cuda simulator (numba)"


@pytest.mark.cudasim
def test_kernels_are_specialised_on_their_run(monkeypatch):
    """The engine builds each CUDA kernel for the code paths its run needs (``Features.of`` its
    tables): a delta hedger with proportional costs needs none of the optional ones; the rule
    zoo with every cost kind and a dividend yield needs all but the hedge-vol rules."""
    from gpuhedge.kernels import _math
    from gpuhedge.kernels import cuda as target

    launched = []

    def spy(dynamics, dtype, record, features, rows, n, *args, **options):
        launched.append(features)
        launch(dynamics, dtype, record, features, rows, n, *args, **options)

    def features_of(*args):
        launched.clear()
        gh.simulate(*args, n_paths=2, n_steps=4, device="cuda")
        (features,) = set(launched)
        return features

    launch = target.launch
    monkeypatch.setattr(target, "launch", spy)
    plain = features_of(NO_DIVIDEND, BOOK, {"d": HEDGES["every step"]}, COSTS["costly"])
    assert plain == _math.Features(**{f: False for f in _math.Features.__dataclass_fields__})
    lagged = features_of(NO_DIVIDEND, BOOK, {"b": HEDGES["band"]}, COSTS["lagged"])
    assert lagged == dataclasses.replace(plain, lag=True, impact=True)
    zoo = features_of(MARKET, BOOK, HEDGES, COSTS)  # no hedge-vol rule but the constant
    assert zoo == dataclasses.replace(_math.GENERIC, hedge_vol_rules=False)


@pytest.mark.cudasim
def test_simulator_statistics_and_narrow_downloads():
    """keep="stats" reduces the CUDA launches' outputs (the GPU's code path, on the simulator's
    NumPy arrays) to summary's statistics of the same launches' per-path results; a float32
    download is the float64 result rounded once."""
    hedges = {k: HEDGES[k] for k in ("every step", "none", "band")}
    kw = dict(n_paths=SIM_PATHS, n_steps=20, seed=5, device="cuda", chunk_paths=10)
    paths = gh.simulate(MARKET, BOOK, hedges, COSTS, **kw)
    expected = gh.summary(paths)
    stats = gh.simulate(MARKET, BOOK, hedges, COSTS, keep="stats", **kw)
    for name in expected.data_vars:
        np.testing.assert_allclose(stats[name], expected[name], rtol=1e-12, atol=1e-14,
                                   err_msg=name)
    narrow = gh.simulate(MARKET, BOOK, hedges, COSTS, storage="float32", **kw)
    for name in ("pnl", "cost_paid", "cost_fee", "cost_impact", "turnover"):
        np.testing.assert_array_equal(narrow[name], paths[name].astype(np.float32))
    np.testing.assert_array_equal(narrow["trades"], paths["trades"])


@pytest.mark.gpu
def test_gpu_matches_cpu():
    _check_parity(4096, 1e-12)


def test_cuda_simulator_suite(tmp_path):
    """Run the ``cudasim`` tests in a child process with the simulator switched on. The CPU
    side of the parity cases runs here, where the CPU kernels are compiled anyway, and is
    handed to the child as files (compiling them again there would double the suite's time)."""
    for i, run in enumerate(_cases(SIM_PATHS).values()):
        np.savez(tmp_path / f"case{i}.npz", **run("cpu"))
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "GPUHEDGE_CPU_REFERENCE": str(tmp_path)}
    # -n 0: the child runs its few tests in one process (the suite's own workers are busy)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-m", "cudasim",
                             "-p", "no:cacheprovider", __file__], env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout


# libdevice functions that are exact or correctly rounded on the GPU as their libm and LLVM
# counterparts are on the CPU; any other (exp, log, pow, erf, ...) would differ by an ulp.
EXACT_LIBDEVICE = {"sqrt", "fabs", "floor", "ceil", "trunc", "rint", "round", "fmin", "fmax",
                   "copysign", "fma"}


@pytest.fixture
def compiler(monkeypatch):
    """The CUDA compiler without a GPU: the kernels' module, with the current device stubbed
    (compiling calls to device functions asks for its compute capability)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        pytest.skip("real compiler only")
    pytest.importorskip("numba_cuda", reason="the 'gpu' extra brings the CUDA compiler")
    import numba.cuda.dispatcher

    from gpuhedge.kernels import cuda as target

    class _Device:
        compute_capability = (9, 0)

    monkeypatch.setattr(numba.cuda.dispatcher, "get_current_device", lambda: _Device())
    return target


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
@pytest.mark.parametrize("family", DYNAMICS, ids=lambda family: family.step.__name__)
def test_kernels_compile_to_ptx(compiler, family, dtype_name):
    """Every kernel (the supplied prices and each model, both precisions) compiles for sm_90,
    as launches build it: every float64 multiply and add carries ``.rn``, which ptxas may not
    fuse either (plain ``mul.f64`` / ``add.f64`` it may). It divides and takes square roots
    by ``_fastmath.div_exact`` and ``sqrt_exact`` (what ``fdiv`` and ``fsqrt`` compile to on
    the GPU): ptxas compiles IEEE division, reciprocal and square root to calls of slow paths,
    which cost every thread registers."""
    ptx = compiler.ptx(family, dtype_name, cc=(9, 0))
    assert ".entry" in ptx
    assert "mul.rn.f64" in ptx
    assert not re.search(r"\b(mul|add|sub)\.f64", ptx)
    assert not re.findall(r"\b(?:div|rcp|sqrt)\.rn\.f(?:32|64)\b", ptx)
    # the tables, the same for every thread, come through the read-only data cache
    assert "ld.global.nc." in ptx and not re.search(r"\bld\.global\.(?!nc\.)", ptx)


def test_kernel_pointer_arguments_are_noalias_in_our_builds_only(compiler):
    """``restrict_arguments`` reaches NVVM: a kernel that reads one array and writes another
    loads through the read-only cache when built as the package's kernels are, and not
    otherwise (numba-cuda's other users are untouched)."""
    from numba import cuda, types

    def probe(a, out):
        out[0] = a[0] * a[1]

    sig = (types.float64[::1], types.float64[::1])
    plain, _ = cuda.compile_ptx(probe, sig, cc=(9, 0))
    with compiler.contraction(False):
        ours, _ = cuda.compile_ptx(probe, sig, cc=(9, 0))
    assert "ld.global.f64" in plain and "ld.global.nc" not in plain
    assert "ld.global.nc.f64" in ours and not re.search(r"\bld\.global\.(?!nc\.)", ours)
    ir = ('define void @"k"(i64 %"n", double* %"a", i8* %"b") {\n}\n'
          'define void @"f"(double* %"c") {\n}\n!0 = !{ void (i64)* @"k", !"kernel", i32 1 }\n')
    defines = [line for line in compiler.restrict_arguments(ir).splitlines()
               if line.startswith("define")]
    assert defines == ['define void @"k"(i64 %"n", double* noalias %"a", i8* noalias %"b") {',
                       'define void @"f"(double* %"c") {']


def test_loops_of_our_builds_are_not_unrolled_by_a_runtime_count(compiler):
    """``no_runtime_unrolling`` reaches NVVM: a loop over an array's length is unrolled by 4
    (four loads and a remainder's one) in numba-cuda's plain build, and kept one element per
    iteration in ours; loops of a constant count still unroll."""
    from numba import cuda, types

    def probe(a, out):
        total = 0.0
        for i in range(a.shape[0]):
            total += a[i] * a[i]
        for i in range(3):
            total += out[i]
        out[0] = total

    sig = (types.float64[::1], types.float64[::1])
    plain, _ = cuda.compile_ptx(probe, sig, cc=(9, 0))
    with compiler.contraction(False):
        ours, _ = cuda.compile_ptx(probe, sig, cc=(9, 0))
    loads = {name: len(re.findall(r"\bld\.global\.", ptx))
             for name, ptx in (("plain", plain), ("ours", ours))}
    assert loads == {"plain": 5 + 3, "ours": 1 + 3}
    ir = ('define void @"k"(i64 %"n") {\nentry:\n  br label %"B2"\nB2:\n  br i1 %"c", '
          'label %"B4", label %"B6"\nB4:\n  br label %"B2"\nB6:\n  br label %"B8"\nB8:\n'
          '  ret void\n}\n')
    marked = compiler.no_runtime_unrolling(ir)
    assert '  br label %"B2", !llvm.loop !' in marked  # the latch: a jump back up
    assert '  br label %"B8"\n' in marked  # a jump down: no loop
    assert marked.count("!llvm.loop") == 1 and "llvm.loop.unroll.runtime.disable" in marked


def test_kernels_call_no_libm_transcendental(compiler):
    """The kernels' code (before NVVM links libdevice) calls no transcendental of libdevice or
    LLVM: every one comes from ``_fastmath``, compiled alike for both targets."""
    from numba import types
    from numba.cuda.compiler import compile_cuda

    for family in DYNAMICS:
        cres = compile_cuda(compiler.kernel(family, "float64").py_func, types.void,
                            compiler.signature("float64"), cc=(9, 0))
        ir = cres.library.get_llvm_str()
        called = set(re.findall(r'@"?__nv_(\w+)', ir))
        assert called, "the scan sees libdevice calls"  # sqrt, floor, ... are there
        assert called <= EXACT_LIBDEVICE, (family.step.__name__, called - EXACT_LIBDEVICE)
        assert not re.search(r'@"?llvm\.(exp|exp2|log|log2|log10|pow|powi|sin|cos)\.', ir)


def test_parity_build_compiles_without_contraction(compiler):
    """The option reaches NVVM: ``a * b + c`` fuses by default and not in the parity build.
    In the GBM kernel the fused multiply-adds left are the explicit ones of ``_fastmath``."""
    from numba import cuda, types

    def probe(a, out):
        out[0] = a[0] * a[1] + a[2]

    sig = (types.float64[::1], types.float64[::1])
    fused = {}
    for contract in (True, False):
        with compiler.contraction(contract):
            ptx, _ = cuda.compile_ptx(probe, sig, cc=(9, 0))
        fused[contract] = ptx.count("fma.rn.f64")
    assert fused == {True: 1, False: 0}
    gbm = gh.BlackScholes.dynamics
    counts = {c: compiler.ptx(gbm, "float64", cc=(9, 0), contract=c).count("fma.rn.f64")
              for c in (True, False)}
    print(f"GBM kernel, float64, sm_90: fma.rn.f64 {counts[True]} (NVVM default) -> "
          f"{counts[False]} (parity build)")
    assert counts[False] < counts[True]
