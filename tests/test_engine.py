"""Exact properties of the engine: conventions, common random numbers, invariances."""

import json

import numba
import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge.pricing import bs_price

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05, dividend=0.01)
BOOK = gh.Book([gh.Position(gh.EuropeanCall(100.0, 0.5), -1.0),
                gh.Position(gh.EuropeanPut(95.0, 0.25), 2.0)])
HEDGES = {"daily": gh.DeltaHedge(vol=0.2, every=1), "weekly": gh.DeltaHedge(vol=0.25, every=5),
          "none": gh.NoHedge(), "static": gh.StaticHedge(vol=0.2)}
COSTS = {"free": gh.Costs(), "5bp+$1": gh.Costs(proportional=5e-4, fixed=1.0),
         "50bp": gh.Costs(proportional=5e-3)}
KW = dict(n_paths=3000, n_steps=40, seed=11, device="cpu")
VARS = ("pnl", "cost_paid", "trades", "terminal_spot")


@pytest.fixture(scope="module")
def base():
    return gh.simulate(MARKET, BOOK, HEDGES, COSTS, **KW)


def test_dataset_shape_units_and_provenance(base):
    assert base.pnl.dims == ("strategy", "cost", "path")
    assert base.pnl.shape == (4, 3, 3000)
    assert list(base.strategy.values) == list(HEDGES)
    for v in ("pnl", "cost_paid", "trades", "terminal_spot", "premium"):
        assert "units" in base[v].attrs and "long_name" in base[v].attrs
    config = json.loads(base.attrs["config"])
    assert config["hedges"]["weekly"] == {"type": "DeltaHedge", "vol": 0.25, "every": 5,
                                         "hedge_vol": "constant", "initial_shares": 0.0}
    assert base.attrs["seed"] == 11 and base.attrs["precision"] == "float64"
    assert base.attrs["gpuhedge_version"] == gh.__version__
    np.testing.assert_allclose(base.premium.sel(strategy="daily"),
                               -bs_price(100.0, 100.0, 0.5, 0.2, 0.05, 0.01, True)
                               + 2 * bs_price(100.0, 95.0, 0.25, 0.2, 0.05, 0.01, False))


def test_costs_enter_as_present_value_and_never_raise_pnl(base):
    free = base.pnl.sel(cost="free")
    for c in ("5bp+$1", "50bp"):
        np.testing.assert_allclose(base.pnl.sel(cost=c), free - base.cost_paid.sel(cost=c),
                                   rtol=0, atol=1e-11)
        assert (base.pnl.sel(cost=c) <= free).all()
    assert (base.cost_paid.sel(cost="free") == 0).all()
    # time schedules trade the same way whatever the cost level
    assert (base.trades == base.trades.sel(cost="free")).all()


def test_trade_counts(base):
    trades = base.trades.sel(cost="free")
    assert (trades.sel(strategy="none") == 0).all()
    assert (trades.sel(strategy="static") == 2).all()  # hedge at t=0, unwind at T
    assert trades.sel(strategy="daily").max() == 40 + 1  # 40 rebalances + unwind
    assert trades.sel(strategy="weekly").max() == 8 + 1


def test_fixed_fee_is_fee_times_trades_without_discounting():
    market = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.0)
    ds = gh.simulate(market, BOOK, HEDGES, gh.Costs(fixed=2.5), **KW)
    np.testing.assert_array_equal(ds.cost_paid.values, 2.5 * ds.trades.values)


def test_more_hedgers_do_not_change_any_hedger(base):
    alone = gh.simulate(MARKET, BOOK, {"weekly": HEDGES["weekly"]}, COSTS, **KW)
    for v in ("pnl", "cost_paid", "trades"):
        np.testing.assert_array_equal(alone[v].sel(strategy="weekly"),
                                      base[v].sel(strategy="weekly"))
    np.testing.assert_array_equal(alone.terminal_spot, base.terminal_spot)


def test_chunking_and_threads_do_not_change_results(base):
    chunked = gh.simulate(MARKET, BOOK, HEDGES, COSTS, chunk_paths=777, **KW)
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = gh.simulate(MARKET, BOOK, HEDGES, COSTS, **KW)
    finally:
        numba.set_num_threads(previous)
    for other in (chunked, single):
        for v in VARS:
            np.testing.assert_array_equal(other[v], base[v])


def test_paths_are_prefix_stable(base):
    """Path p depends only on (seed, stream, p): a smaller run is a prefix of a larger one."""
    small = gh.simulate(MARKET, BOOK, HEDGES, COSTS, **{**KW, "n_paths": 100})
    np.testing.assert_array_equal(small.pnl, base.pnl[..., :100])
    other_stream = gh.simulate(MARKET, BOOK, HEDGES, COSTS, stream=1, **{**KW, "n_paths": 100})
    assert not np.array_equal(other_stream.terminal_spot, small.terminal_spot)


def test_zero_vol_world_without_costs_has_zero_error():
    """Deterministic spot; hedge vols must be > 0, and at 1e-8 the deltas are the 0/1 limit."""
    market = gh.BlackScholes(spot=100.0, vol=0.0, rate=0.05, dividend=0.02)
    hedges = {"daily": gh.DeltaHedge(vol=1e-8, every=1), "every 3": gh.DeltaHedge(vol=1e-8, every=3)}
    ds = gh.simulate(market, BOOK, hedges, n_paths=16, n_steps=30, seed=1, device="cpu")
    np.testing.assert_allclose(ds.pnl, 0.0, atol=1e-12)


def test_scaling_spot_and_strikes_scales_pnl():
    c = 3.7
    book_c = gh.Book([gh.Position(gh.EuropeanCall(100.0 * c, 0.5), -1.0),
                      gh.Position(gh.EuropeanPut(95.0 * c, 0.25), 2.0)])
    market_c = gh.BlackScholes(spot=100.0 * c, vol=0.2, rate=0.05, dividend=0.01)
    costs = gh.Costs(proportional=1e-3, fixed=0.5)
    a = gh.simulate(MARKET, BOOK, HEDGES, costs, **KW)
    b = gh.simulate(market_c, book_c, HEDGES, gh.Costs(proportional=1e-3, fixed=0.5 * c), **KW)
    np.testing.assert_allclose(b.pnl, c * a.pnl, rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(b.trades, a.trades)


def test_book_is_netted_linearly_and_options_settle_inside_the_path():
    """Without costs the P&L of a book is the sum of the P&Ls of its positions hedged alone.

    The put matures at half the horizon; hedged alone on the same grid (n_steps halved) it sees
    the same first half of each path, so the sums agree path by path.
    """
    hedges = {"daily": gh.DeltaHedge(vol=0.2, every=1), "every 4": gh.DeltaHedge(vol=0.3, every=4)}
    kw = dict(n_paths=500, seed=2, device="cpu")
    both = gh.simulate(MARKET, BOOK, hedges, n_steps=40, **kw)
    call = gh.simulate(MARKET, gh.Book([BOOK.positions[0]]), hedges, n_steps=40, **kw)
    put = gh.simulate(MARKET, gh.Book([BOOK.positions[1]]), hedges, n_steps=20, **kw)
    np.testing.assert_allclose(both.pnl, call.pnl + put.pnl, rtol=1e-10, atol=1e-10)


def test_antithetic_pairs_mirror_the_normals():
    market = gh.BlackScholes(spot=100.0, vol=0.3, rate=0.02)
    ds = gh.simulate(market, BOOK, gh.NoHedge(), n_paths=64, n_steps=10, seed=4,
                     antithetic=True, device="cpu")
    x = np.log(ds.terminal_spot.values / 100.0) - (0.02 - 0.045) * 0.5
    np.testing.assert_allclose(x[0::2], -x[1::2], atol=1e-12)
    plain = gh.simulate(market, BOOK, gh.NoHedge(), n_paths=64, n_steps=10, seed=4, device="cpu")
    np.testing.assert_array_equal(ds.terminal_spot[0::2], plain.terminal_spot[:32])


def test_float32_is_close_to_float64(base):
    f32 = gh.simulate(MARKET, BOOK, HEDGES, COSTS, dtype="float32", **KW)
    assert f32.terminal_spot.dtype == np.float32 and f32.pnl.dtype == np.float64
    np.testing.assert_allclose(f32.terminal_spot, base.terminal_spot, rtol=1e-5)
    tolerance = 2e-3 * float(base.pnl.std())
    same = (f32.trades == base.trades).values
    assert same.mean() > 0.999
    np.testing.assert_allclose(f32.pnl.values[same], base.pnl.values[same], atol=tolerance)
    # Deep in the money float32's delta is exactly 1 where float64's is 1 - 1e-9: float64
    # trades dust and pays the $1 fixed fee for it (docs/precision.md). Those paths differ by
    # the fees of the trades they do not share, and by no more.
    gap = np.abs(f32.pnl - base.pnl) - np.abs(f32.trades - base.trades) * 1.0
    assert (gap.values[~same] < tolerance).all()


def test_single_objects_get_default_names():
    ds = gh.simulate(MARKET, gh.Position(gh.EuropeanCall(100.0, 0.5), -1.0),
                     gh.DeltaHedge(vol=0.2, every=2), gh.Costs(proportional=1e-3),
                     n_paths=10, n_steps=4, device="cpu")
    assert list(ds.strategy.values) == ["DeltaHedge(vol=0.2, every=2, hedge_vol='constant')"]
    assert list(ds.cost.values) == ["Costs(proportional=0.001, fixed=0.0, ends=True)"]
    listed = gh.simulate(MARKET, BOOK, [gh.NoHedge(), gh.StaticHedge(vol=0.3)],
                         n_paths=10, n_steps=4, device="cpu")
    assert listed.sizes["strategy"] == 2


def test_summary_matches_numpy(base):
    s = gh.summary(base)
    x = base.pnl.sel(strategy="weekly", cost="50bp").values
    row = s.sel(strategy="weekly", cost="50bp")
    assert float(row["mean"]) == pytest.approx(x.mean(), rel=1e-12)
    assert float(row["std"]) == pytest.approx(x.std(ddof=1), rel=1e-12)
    q01 = np.quantile(x, 0.01)
    assert float(row.var_99) == pytest.approx(-q01, rel=1e-12)
    assert float(row.cvar_99) == pytest.approx(-x[x <= q01].mean(), rel=1e-12)
    assert float(row.mean_trades) == pytest.approx(
        base.trades.sel(strategy="weekly", cost="50bp").values.mean())


def test_first_path_runs_a_slice_of_a_larger_run(base):
    part = gh.simulate(MARKET, BOOK, HEDGES, COSTS, first_path=1000,
                       **{**KW, "n_paths": 500})
    np.testing.assert_array_equal(part.path, np.arange(1000, 1500))
    for v in VARS:
        np.testing.assert_array_equal(part[v], base[v].isel(path=slice(1000, 1500)))
