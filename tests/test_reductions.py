"""simulate(..., keep="stats"): summary's statistics without per-path results on the host."""

import numpy as np
import pytest
import xarray as xr

import gpuhedge as gh
from gpuhedge import engine, memory, metrics, reductions
from gpuhedge.kernels import _math

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05, dividend=0.01)
BOOK = gh.Book([gh.Position(gh.EuropeanCall(100.0, 0.5), -1.0),
                gh.Position(gh.EuropeanPut(95.0, 0.25), 2.0)])
HEDGES = {"daily": gh.DeltaHedge(vol=0.2, every=1), "none": gh.NoHedge(),
          "weekly": gh.DeltaHedge(vol=0.25, every=5), "static": gh.StaticHedge(vol=0.2)}
COSTS = {"free": gh.Costs(), "5bp+$1": gh.Costs(proportional=5e-4, fixed=1.0),
         "50bp": gh.Costs(proportional=5e-3)}
KW = dict(n_paths=3001, n_steps=40, seed=11, device="cpu")


@pytest.fixture(scope="module")
def paths():
    return gh.simulate(MARKET, BOOK, HEDGES, COSTS, **KW)


@pytest.fixture(scope="module")
def expected(paths):
    return gh.summary(paths)


def assert_same(stats, expected, paths):
    assert set(expected.data_vars) <= set(stats.data_vars)
    for name in expected.data_vars:
        np.testing.assert_allclose(stats[name], expected[name], rtol=1e-12, atol=1e-14,
                                   err_msg=name)
    for name in (n for n in expected.data_vars if n.startswith(("q_", "var_", "se_q_"))):
        # order statistics and their interpolation: the same numbers, not just close ones
        np.testing.assert_array_equal(stats[name], expected[name], err_msg=name)
    np.testing.assert_array_equal(stats["min"], paths.pnl.min("path"))
    np.testing.assert_array_equal(stats["max"], paths.pnl.max("path"))
    np.testing.assert_array_equal(stats["premium"], paths["premium"])
    assert stats.attrs["n_paths"] == KW["n_paths"] and stats.attrs["keep"] == "stats"
    assert stats.attrs["unhedged"] == "none" and stats.attrs["seed"] == KW["seed"]
    assert "path" not in stats.dims


@pytest.mark.parametrize("chunk_paths", [None, 3001, 1000, 777])
def test_statistics_equal_summary_of_the_paths(paths, expected, chunk_paths):
    stats = gh.simulate(MARKET, BOOK, HEDGES, COSTS, keep="stats", chunk_paths=chunk_paths,
                        **KW)
    assert_same(stats, expected, paths)


def test_several_launches_simulate_the_paths_twice_one_launch_once(monkeypatch, paths,
                                                                   expected):
    launches = []
    real = engine._launcher

    def counting(*args, **kw):
        run = real(*args, **kw)

        def counted(start, n, out=None):
            launches.append((start, n))
            return run(start, n, out)
        return counted

    monkeypatch.setattr(engine, "_launcher", counting)
    gh.simulate(MARKET, BOOK, HEDGES, COSTS, keep="stats", chunk_paths=1500, **KW)
    assert launches == [(0, 1500), (1500, 1500), (3000, 1)] * 2
    launches.clear()
    gh.simulate(MARKET, BOOK, HEDGES, COSTS, keep="stats", **KW)
    assert launches == [(0, 3001)]


def test_a_missed_bracket_is_widened_and_stays_exact(monkeypatch, paths, expected):
    real = metrics._brackets

    def missing(*args):
        (lo, hi), safe = real(*args)
        centre = (lo + hi) / 2
        return (centre, centre), safe  # an empty tight bracket misses every order statistic

    monkeypatch.setattr(metrics, "_brackets", missing)
    stats = gh.simulate(MARKET, BOOK, HEDGES, COSTS, keep="stats", chunk_paths=1000, **KW)
    assert_same(stats, expected, paths)


def test_bad_keep_is_refused():
    with pytest.raises(ValueError, match=r"simulate: 'keep' must be one of 'paths', 'stats'; "
                                         r"got 'summary'"):
        gh.simulate(MARKET, BOOK, HEDGES, COSTS, keep="summary", **KW)


def test_a_nan_pnl_names_the_scenario_with_stats_too(monkeypatch):
    real = engine._launcher

    def poisoned(*args, **kw):
        run = real(*args, **kw)

        def launch(start, n, out=None):
            out = run(start, n, out)
            out[0][_math.OUT_PNL, 1, 2, -1] = np.nan  # strategy 'none', cost '50bp'
            return out
        return launch

    monkeypatch.setattr(engine, "_launcher", poisoned)
    with pytest.raises(FloatingPointError, match=r"simulate: NaN or inf in the P&L of "
                                                 r"strategy 'none', cost '50bp'"):
        gh.simulate(MARKET, BOOK, HEDGES, COSTS, keep="stats", chunk_paths=1000, **KW)


def test_the_guard_refuses_paths_but_not_stats_of_the_same_run(monkeypatch):
    monkeypatch.setenv(memory.ENV, "20MB")
    kw = dict(n_paths=200_000, n_steps=2, seed=1, device="cpu")
    hedges = {"delta": gh.DeltaHedge(vol=0.2, every=1), "none": gh.NoHedge()}
    costs = {"free": gh.Costs(), "5bp": gh.Costs(proportional=5e-4)}
    with pytest.raises(gh.MemoryBudgetError, match="keep='stats'"):
        gh.simulate(MARKET, BOOK, hedges, costs, **kw)
    stats = gh.simulate(MARKET, BOOK, hedges, costs, keep="stats", chunk_paths=16_384, **kw)
    assert stats.attrs["n_paths"] == 200_000
    assert np.isfinite(stats["std"]).all() and (stats["std"] > 0).all()
    # a launch too large for the budget is refused, with advice on the launch's size
    with pytest.raises(gh.MemoryBudgetError, match="pass a smaller chunk_paths"):
        gh.simulate(MARKET, BOOK, hedges, costs, keep="stats", chunk_paths=200_000, **kw)


def test_footprint_of_1e8_paths_and_64_cells():
    costs_table = np.zeros((8, 10))
    kw = dict(n_paths=10**8, chunk_paths=2**20, n_strategies=8, costs_table=costs_table,
              n_hedgers=8, n_rows=30, dtype=np.dtype("float32"), n_times=253, n_options=1)
    for device in ("cpu", "cuda"):
        paths = memory.run_footprint(device=device, **kw)
        stats = memory.run_footprint(device=device, keep="stats", **kw)
        assert paths.host > 1e11  # pnl, trades, turnover of 64 cells x 10^8 paths
        # on the host: the brackets' values (~250 MB), and on the CPU one launch's outputs
        # and the passes' temporaries (8 + 7 floats x 64 cells x 2^20 paths, ~8.1 GB)
        assert stats.host < (8.6e9 if device == "cpu" else 0.5e9)
    held = reductions.held_bytes(10**8, 64, 100)
    assert 0.1e9 < held < 0.5e9
    assert memory.run_footprint(device="cuda", keep="stats", **kw).device > 7e9


def test_statistics_of_a_like_array_without_paths():
    # reduce() needs only the dims and coordinates of its template, not its values
    rng = np.random.default_rng(0)
    pnl = rng.standard_normal((2, 1, 5000)) * [[[1.0]], [[3.0]]]
    out = np.zeros((_math.N_OUT,) + pnl.shape)
    out[_math.OUT_PNL] = pnl
    like = xr.DataArray(np.empty((2, 1, 0)), dims=("strategy", "cost", "path"),
                        coords={"strategy": ["a", "b"], "cost": ["c"]})
    stats = reductions.reduce(lambda: iter([out[..., :2000], out[..., 2000:]]), [2000, 3000],
                              like, "b")
    ds = xr.Dataset({"pnl": (("strategy", "cost", "path"), pnl)},
                    coords={"strategy": ["a", "b"], "cost": ["c"]})
    expected = metrics.summary(ds, unhedged="b")
    for name in expected.data_vars:
        np.testing.assert_allclose(stats[name], expected[name], rtol=1e-12, atol=1e-14,
                                   err_msg=name)
    np.testing.assert_allclose(stats["hedge_effectiveness"].sel(strategy="a"), 1 - 1 / 9,
                               atol=0.05)


@pytest.mark.parametrize("chunk_paths", [None, 1000])
def test_per_path_results_in_the_storage_precision(paths, chunk_paths):
    narrow = gh.simulate(MARKET, BOOK, HEDGES, COSTS, storage="float32", chunk_paths=chunk_paths,
                         **KW)
    for name in paths.data_vars:
        if name in ("terminal_spot", "premium"):
            np.testing.assert_array_equal(narrow[name], paths[name])
        elif name == "trades":
            assert narrow[name].dtype == np.int32
            np.testing.assert_array_equal(narrow[name], paths[name])
        else:  # rounded once from the kernel's float64
            assert narrow[name].dtype == np.float32, name
            np.testing.assert_array_equal(narrow[name], paths[name].astype(np.float32))


def test_launches_copied_in_field_by_field_equal_one_launch(paths):
    chunked = gh.simulate(MARKET, BOOK, HEDGES, COSTS, chunk_paths=1000, **KW)
    xr.testing.assert_identical(chunked, paths)
    # the levels that charge no fee were never copied: zero
    assert (chunked["cost_fee"].sel(cost=["free", "50bp"]) == 0).all()


def test_bad_storage_is_refused():
    with pytest.raises(ValueError, match=r"simulate: 'storage' must be one of 'float64', "
                                         r"'float32'; got 'float16'"):
        gh.simulate(MARKET, BOOK, HEDGES, COSTS, storage="float16", **KW)
