"""Sweeps: scenarios, equality with ``simulate``, chunking, schedulers, resume after SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge import store
from gpuhedge.sweep import expand, sweep
from store_helpers import tree

pytestmark = pytest.mark.filterwarnings("error")

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.03)
BOOK = gh.Book.short(gh.EuropeanCall(100.0, 0.5), 10.0)
HEDGES = {"every 1": gh.DeltaHedge(vol=0.2, every=1), "every 5": gh.DeltaHedge(vol=0.2, every=5),
          "none": gh.NoHedge()}
COSTS = {"free": gh.Costs(), "10bp+$1": gh.Costs(proportional=1e-3, fixed=1.0)}
GRID = {"market.vol": [0.15, 0.3], "book.maturity": [0.25, 0.5]}
KW = dict(n_paths=3000, n_steps=10, seed=5, chunk_paths=1024, grid=GRID)
PER_PATH = ("pnl", "cost_paid", "trades", "terminal_spot")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("sweep") / "reference.zarr"
    ds = sweep(MARKET, BOOK, HEDGES, COSTS, store=path, **KW)
    return path, ds


def test_each_scenario_equals_simulate(reference):
    _, ds = reference
    assert ds.pnl.dims == ("market.vol", "book.maturity", "strategy", "cost", "path")
    assert ds.pnl.dtype == np.float32 and ds.trades.dtype == np.int32
    for vol in GRID["market.vol"]:
        for maturity in GRID["book.maturity"]:
            one = gh.simulate(gh.BlackScholes(spot=100.0, vol=vol, rate=0.03),
                              gh.Book.short(gh.EuropeanCall(100.0, maturity), 10.0), HEDGES,
                              COSTS, n_paths=3000, n_steps=10, seed=5)
            cell = ds.sel({"market.vol": vol, "book.maturity": maturity})
            for v in PER_PATH:
                np.testing.assert_array_equal(cell[v].values, one[v].values.astype(cell[v].dtype))
            np.testing.assert_array_equal(cell.premium.values, one.premium.values)
            assert float(cell.horizon) == maturity


def test_float64_storage_keeps_the_kernel_bits(tmp_path):
    ds = sweep(MARKET, BOOK, HEDGES, COSTS, store=tmp_path / "f64.zarr", n_paths=500,
               n_steps=10, seed=5, storage="float64", chunk_paths=256)
    one = gh.simulate(MARKET, BOOK, HEDGES, COSTS, n_paths=500, n_steps=10, seed=5)
    for v in PER_PATH:
        np.testing.assert_array_equal(ds[v].values, one[v].values)
    assert ds.pnl.dims == ("strategy", "cost", "path")


def test_attributes_record_the_run(reference):
    _, ds = reference
    config = store.config_of(ds.attrs)
    assert config["grid"] == {"market.vol": [0.15, 0.3], "book.maturity": [0.25, 0.5]}
    assert config["hedges"]["every 5"]["type"] == "DeltaHedge"
    assert config["hedges"]["every 5"]["every"] == 5
    assert config["n_paths"] == 3000 and config["chunk_paths"] == 1024
    for key in ("gpuhedge_version", "seed", "device", "precision", "n_steps", "storage"):
        assert key in ds.attrs
    assert ds.attrs["seed"] == 5 and ds.attrs["storage"] == "float32"
    for v in PER_PATH + ("premium", "horizon"):
        assert {"units", "long_name"} <= set(ds[v].attrs)


def test_chunking_does_not_change_values(reference, tmp_path):
    _, ds = reference
    other = sweep(MARKET, BOOK, HEDGES, COSTS, store=tmp_path / "c.zarr",
                  **{**KW, "chunk_paths": 700})
    assert other.pnl.chunks[-1][0] == 700
    for v in PER_PATH:
        np.testing.assert_array_equal(other[v].values, ds[v].values)


def test_threads_and_synchronous_give_the_same_bytes(reference, tmp_path):
    path, _ = reference
    sweep(MARKET, BOOK, HEDGES, COSTS, store=tmp_path / "sync.zarr", scheduler="synchronous",
          **KW)
    sweep(MARKET, BOOK, HEDGES, COSTS, store=tmp_path / "t3.zarr", workers=3, **KW)
    assert tree(tmp_path / "sync.zarr") == tree(path)
    assert tree(tmp_path / "t3.zarr") == tree(path)


def test_local_cluster_gives_the_same_bytes(reference, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    path, _ = reference
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        # by address (the sweep makes its own client), then through a client
        ds = sweep(MARKET, BOOK, HEDGES, COSTS, store=tmp_path / "address.zarr",
                   scheduler=cluster.scheduler_address, progress=False, **KW)
        with distributed.Client(cluster) as client:
            with distributed.get_task_stream(client) as stream:
                sweep(MARKET, BOOK, HEDGES, COSTS, store=tmp_path / "client.zarr",
                      scheduler=client, progress=True, **KW)
            workers = set(client.run(os.getpid).values())
    # task keys name the scenario and the block: 4 scenarios x 3 blocks
    blocks = {t["key"].rsplit("-", 1)[0] for t in stream.data
              if t["key"].startswith("gpuhedge-block-")}
    assert blocks == {f"gpuhedge-block-{s}-{b}" for s in range(4) for b in range(3)}
    assert len(workers) == 2 and os.getpid() not in workers
    assert ds.sizes["path"] == 3000
    assert tree(tmp_path / "address.zarr") == tree(path)
    assert tree(tmp_path / "client.zarr") == tree(path)
    assert "sweep: Dask dashboard: http" in capsys.readouterr().err


def test_progress_bar_of_the_threaded_scheduler(tmp_path, capsys):
    sweep(MARKET, BOOK, HEDGES, COSTS, store=tmp_path / "p.zarr", progress=True, **KW)
    assert "100% Completed" in capsys.readouterr().err


def test_benchmark_runs_at_small_size(tmp_path):
    import json

    from benchmarks import bench_sweep

    assert bench_sweep.main(["--paths", "3000", "--out", str(tmp_path)]) == 0
    (report,) = tmp_path.glob("sweep-*.json")
    r = json.loads(report.read_text())
    assert r["settings"]["scenarios"] == 8 and r["settings"]["rules"] == 8
    assert r["kernel_s"] > 0 and r["sweep_s"] > 0 and 0 < r["compression_ratio"] < 1
    # 8 scenarios x (8 cells x (pnl, cost_paid, cost_spread, cost_fee, trades, turnover) x 4
    # bytes + the terminal spot)
    assert r["raw_bytes_per_path"] == 8 * (8 * 6 * 4 + 4)
    assert (tmp_path / report.name.replace(".json", ".md")).read_text().count("|") > 10


def test_resume_recomputes_only_missing_blocks(reference, tmp_path):
    path, _ = reference
    copy = tmp_path / "partial.zarr"
    sweep(MARKET, BOOK, HEDGES, COSTS, store=copy, **KW)
    # forget two blocks and spoil one of them: only those are written again
    import zarr

    done = zarr.open_array(str(copy), path=store.DONE, mode="r+")
    done[0, 1, 2] = 0
    done[1, 0, 0] = 0
    pnl = zarr.open_array(str(copy), path="pnl", mode="r+")
    pnl[0, 1, :, :, 2048:] = 0.0
    untouched = (copy / "pnl" / "c" / "1" / "1" / "0" / "0" / "1").stat().st_mtime_ns
    sweep(MARKET, BOOK, HEDGES, COSTS, store=copy, **KW)
    assert (copy / "pnl" / "c" / "1" / "1" / "0" / "0" / "1").stat().st_mtime_ns == untouched
    assert tree(copy) == tree(path)


def test_another_configuration_is_refused_and_overwrite_replaces(reference, tmp_path):
    path = tmp_path / "s.zarr"
    sweep(MARKET, BOOK, HEDGES, COSTS, store=path, **KW)
    with pytest.raises(ValueError, match=r"another configuration.*seed: stored 5, given 6"):
        sweep(MARKET, BOOK, HEDGES, COSTS, store=path, **{**KW, "seed": 6})
    with pytest.raises(ValueError, match=r"market\.vol"):
        sweep(MARKET, BOOK, HEDGES, COSTS, store=path,
              **{**KW, "grid": {"market.vol": [0.15, 0.31], "book.maturity": [0.25, 0.5]}})
    with pytest.raises(ValueError, match="chunk_paths: stored 1024, given 512"):
        sweep(MARKET, BOOK, HEDGES, COSTS, store=path, **{**KW, "chunk_paths": 512})
    # same configuration, chunk_paths left out: the store's own is used and nothing is redone
    sweep(MARKET, BOOK, HEDGES, COSTS, store=path, **{**KW, "chunk_paths": None})
    ds = sweep(MARKET, BOOK, HEDGES, COSTS, store=path, overwrite=True,
               **{**KW, "n_paths": 1000, "grid": {"market.vol": [0.15]}})
    assert ds.pnl.shape == (1, 3, 2, 1000)
    assert not (path / "pnl" / "c" / "1").exists()  # nothing left of the old store


def test_interrupted_creation_is_started_again(tmp_path, reference):
    path, _ = reference
    target = tmp_path / "again.zarr"
    sweep(MARKET, BOOK, HEDGES, COSTS, store=target, **{**KW, "seed": 99})
    import zarr

    del zarr.open_group(str(target), mode="r+").attrs[store.READY]  # as if killed while made
    assert store.read_attrs(target) is None
    sweep(MARKET, BOOK, HEDGES, COSTS, store=target, **KW)  # no refusal: not a finished store
    assert tree(target) == tree(path)


KILLED = textwrap.dedent("""
    import importlib, sys, time
    from gpuhedge import store
    sweep_module = importlib.import_module("gpuhedge.sweep")  # the module, not the function
    # the revision this test process recorded (others may commit while the suite runs)
    store.git_revision = lambda: {revision!r}
    sys.path.insert(0, {tests!r})
    from test_sweep import MARKET, BOOK, HEDGES, COSTS, KW

    write = store.write_block

    def slow_write(path, block, region):
        # one variable at a time, slowly, so that the kill lands inside a block
        for name in block.data_vars:
            write(path, block[[name]], region)
            time.sleep(0.05)

    sweep_module.zstore.write_block = slow_write
    sweep_module.sweep(MARKET, BOOK, HEDGES, COSTS, store={path!r}, scheduler="synchronous",
                       **KW)
""")


def test_sigkill_then_resume_ends_byte_identical(reference, tmp_path):
    path, ref = reference
    target = tmp_path / "killed.zarr"
    script = KILLED.format(tests=str(Path(__file__).parent), path=str(target),
                           revision=store.git_revision())
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if store.read_attrs(target) is not None and store.done(target).sum() >= 3:
                time.sleep(0.12)  # into the next block
                break
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()[1].decode()[-3000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # reap it and close the pipe
    assert proc.returncode == -signal.SIGKILL
    marks = store.done(target)
    assert 3 <= marks.sum() < marks.size
    # every block marked done holds exactly the uninterrupted values
    with pytest.warns(store.PartialStoreWarning, match=r"is partial: \d+ of 12 blocks"):
        partial = store.open_store(target)
    for index in zip(*np.nonzero(marks)):
        *scenario, b = index
        sl = slice(b * 1024, (b + 1) * 1024)
        for v in PER_PATH:
            np.testing.assert_array_equal(partial[v][tuple(scenario)][..., sl].values,
                                          ref[v][tuple(scenario)][..., sl].values)
    sweep(MARKET, BOOK, HEDGES, COSTS, store=target, **KW)
    assert store.done(target).all()
    assert tree(target) == tree(path)


def test_markets_scenarios_and_wildcards():
    markets = {"bs": MARKET, "merton": gh.Merton(spot=100.0, vol=0.2, rate=0.03, lam=0.5,
                                                  mu_j=-0.1, sigma_j=0.1)}
    dims, items = expand(markets, BOOK, HEDGES, COSTS, 10,
                         grid={"hedges.*.vol": [0.1, 0.3], "book.strike": [90.0, 110.0]},
                         scenarios={"calm": {"market.vol": 0.1}, "long": {"n_steps": 20}})
    assert list(dims) == ["market", "scenario", "hedges.*.vol", "book.strike"]
    assert len(items) == 2 * 2 * 2 * 2
    last = items[-1]
    assert last.index == (1, 1, 1, 1) and last.n_steps == 20
    assert isinstance(last.market, gh.Merton)
    assert last.hedges["every 5"].vol == 0.3 and last.hedges["none"].vol == 0.3
    assert last.book.positions[0].option.strike == 110.0
    assert items[0].market.vol == 0.1 and items[0].n_steps == 10
    # a named entry, and a dotted name
    costs = {"0.5 bp": gh.Costs(proportional=5e-5)}
    _, items = expand(MARKET, BOOK, HEDGES, costs, 10,
                      grid={"hedges.every 5.every": [2, 10], "costs.0.5 bp.fixed": [1.0]})
    assert items[1].hedges["every 5"].every == 10 and items[1].costs["0.5 bp"].fixed == 1.0


@pytest.mark.parametrize("grid, message", [
    ({"market.volatility": [0.1]}, r"'volatility' is not a field of BlackScholes \(fields: "
                                   r"spot, vol"),
    ({"market.vol": [-0.1]}, r"market.vol = -0.1 is refused: BlackScholes: 'vol' must be a "
                             r"finite number in \[0, 10\]; got -0.1"),
    ({"hedges.weekly.vol": [0.1]}, r"must name an entry; got 'weekly.vol', expected one of"),
    ({"portfolio.vol": [0.1]}, r"must start with one of 'market', 'book'"),
    ({"market.vol": []}, r"'grid\['market.vol'\]' must be a non-empty list of values"),
    ({"market.vol": [0.1, 0.1]}, r"must be a list of distinct values"),
    ({"strategy": [1]}, r"'grid' must be keys other than"),
    ({"hedges.*.every": [0]}, r"DeltaHedge: 'every' must be an integer >= 1; got 0"),
])
def test_bad_grids_are_refused(grid, message):
    with pytest.raises(ValueError, match=message):
        expand(MARKET, BOOK, HEDGES, COSTS, 10, grid=grid)


def test_bad_arguments_name_the_parameter(tmp_path):
    kw = dict(n_paths=100, n_steps=10, store=tmp_path / "x.zarr")
    with pytest.raises(ValueError, match="sweep: 'storage' must be one of 'float32', 'float64'"):
        sweep(MARKET, BOOK, HEDGES, COSTS, storage="float16", **kw)
    with pytest.raises(ValueError, match="sweep: 'scheduler' must be None, 'threads'"):
        sweep(MARKET, BOOK, HEDGES, COSTS, scheduler="mpi", **kw)
    with pytest.raises(ValueError, match="sweep: 'market' must be a market model or a non-empty"):
        sweep("BlackScholes", BOOK, HEDGES, COSTS, **kw)
    book = gh.Book([gh.Position(gh.EuropeanCall(100.0, 0.5), -1.0),
                    gh.Position(gh.EuropeanPut(90.0, 0.25), 1.0)])
    with pytest.raises(ValueError, match=r"sweep: scenario book.positions.1.option.maturity=0.33"
                                         r": simulate: .*'n_steps'"):
        sweep(MARKET, book, HEDGES, COSTS,
              grid={"book.positions.1.option.maturity": [0.25, 0.33]}, **kw)
    assert not (tmp_path / "x.zarr").exists()  # refused before anything was written


def test_gpus_need_dask_cuda(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dask_cuda(name, *args, **kwargs):
        if name.startswith("dask_cuda"):
            raise ImportError("No module named 'dask_cuda'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask_cuda)
    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "0")
    with pytest.raises(ImportError, match=r"'gpus' needs the dask-cuda package"):
        sweep(MARKET, BOOK, HEDGES, COSTS, n_paths=10, n_steps=10, store=tmp_path / "g.zarr",
              gpus="all")


def test_stores_describe_their_scenarios_and_swept_labels(tmp_path, monkeypatch):
    heston = gh.Heston(spot=100.0, rate=0.03, v0=0.04, kappa=2.0, theta=0.04, xi=0.3, rho=-0.7)
    kw = dict(n_paths=200, n_steps=10, seed=5, store=tmp_path / "d.zarr",
              grid={"costs.*.proportional": [0.0, 1e-3]},
              scenarios={"calm": {"market.vol": 0.15},
                         "wild": {"market.theta": 0.09, "market.xi": 0.5}})
    costs = [gh.Costs(fixed=1.0)]
    ds = sweep(heston, BOOK, HEDGES, costs, **kw)
    # overrides as coordinates beside the scenario names: own values or inherited ones
    np.testing.assert_allclose(ds["market.theta"].values, [0.0225, 0.09])
    np.testing.assert_allclose(ds["market.xi"].values, [0.3, 0.5])
    assert ds["market.vol"].values[0] == 0.15 and np.isnan(ds["market.vol"].values[1])
    assert ds["market.theta"].attrs == {"long_name": "market.theta in each scenario",
                                        "units": "1/year"}
    assert ds["costs.*.proportional"].attrs["long_name"] == "costs.*.proportional (swept)"
    assert ds["strategy"].attrs["long_name"] == "hedging strategy"
    # the cost level named by its repr shows the swept field as '*', not a stale 0.0
    (label,) = ds.cost.values
    assert label == "Costs(proportional=*, fixed=1.0, ends=True)"
    # the spread is charged at 1e-3 only: stored for every cell, zero where not charged
    assert (ds.cost_spread.sel({"costs.*.proportional": 0.0}) == 0).all()
    assert (ds.cost_spread.sel({"costs.*.proportional": 1e-3, "strategy": "every 1"}) > 0).all()
    assert time.strptime(ds.attrs["created"][:19], "%Y-%m-%dT%H:%M:%S")
    # a Heston-type market at a flat vol: v0 = theta = vol^2
    calm = expand(heston, BOOK, HEDGES, costs, 10, scenarios=kw["scenarios"])[1][0].market
    assert (calm.v0, calm.theta) == pytest.approx((0.0225, 0.0225))
    # a finished store is opened again without simulating anything
    sweep_module = sys.modules["gpuhedge.sweep"]

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated")

    monkeypatch.setattr(sweep_module, "simulate", no_simulation)
    again = sweep(heston, BOOK, HEDGES, costs, **kw)
    np.testing.assert_array_equal(again.pnl.values, ds.pnl.values)
