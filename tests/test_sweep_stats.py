"""sweep(..., keep="stats"): per scenario, the statistics of all its paths and nothing per path."""

import dataclasses
import importlib
import json

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge import backend, memory, store
from gpuhedge.cli import main
from gpuhedge.sweep import sweep
from store_helpers import tree

pytestmark = pytest.mark.filterwarnings("error")
sweep_module = importlib.import_module("gpuhedge.sweep")  # the module, not the function

BOOK = gh.Book.short(gh.EuropeanCall(100.0, 0.5), 10.0)
HEDGES = {"every 2": gh.DeltaHedge(vol=0.2, every=2), "none": gh.NoHedge()}
COSTS = {"free": gh.Costs(), "10bp+$1": gh.Costs(proportional=1e-3, fixed=1.0)}
VOLS = [0.15, 0.3]
# three launches per scenario (1024, 1024, 952 paths): the two-pass reduction across launches
KW = dict(n_paths=3000, n_steps=10, seed=5, chunk_paths=1024, grid={"market.vol": VOLS},
          device="cpu")


def market(vol):
    return gh.BlackScholes(spot=100.0, vol=vol, rate=0.03)


def assert_same_statistics(actual, expected):
    """Every statistic of ``expected`` in ``actual``: the order statistics exactly, the others
    to rounding."""
    for name in expected.data_vars:
        if name.startswith(("q_", "var_", "se_q_")) or name in ("min", "max"):
            np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)
        else:
            np.testing.assert_allclose(actual[name], expected[name], rtol=1e-12, atol=1e-12,
                                       err_msg=name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("stats") / "stats.zarr"
    return path, sweep(market(0.2), BOOK, HEDGES, COSTS, store=path, keep="stats", **KW).load()


@pytest.fixture(scope="module")
def per_scenario():
    """simulate(..., keep="stats") of each scenario on its own (its default launches)."""
    return {vol: gh.simulate(market(vol), BOOK, HEDGES, COSTS, n_paths=3000, n_steps=10,
                             seed=5, keep="stats", device="cpu") for vol in VOLS}


def test_each_scenario_equals_simulate_stats(reference, per_scenario):
    _, ds = reference
    assert "path" not in ds.dims and ds["mean"].dims == ("market.vol", "strategy", "cost")
    for vol, one in per_scenario.items():
        cell = ds.sel({"market.vol": vol})
        assert set(cell.data_vars) == set(one.data_vars) | {"horizon"}
        assert float(cell["horizon"]) == one.attrs["horizon"]
        assert_same_statistics(cell, one)
    # two markets, two different results: not one scenario's statistics written twice
    assert (ds["std"].sel({"market.vol": 0.3}) > ds["std"].sel({"market.vol": 0.15})).all()


def test_equals_summary_of_the_per_path_sweep(reference, tmp_path):
    _, ds = reference
    paths = sweep(market(0.2), BOOK, HEDGES, COSTS, store=tmp_path / "paths.zarr",
                  storage="float64", **KW)
    expected = gh.summary(paths)
    assert set(expected.data_vars) <= set(ds.data_vars)
    assert_same_statistics(ds, expected)
    np.testing.assert_array_equal(ds["min"], paths.pnl.min("path"))
    np.testing.assert_array_equal(ds["max"], paths.pnl.max("path"))
    np.testing.assert_array_equal(ds["premium"], paths["premium"])
    np.testing.assert_array_equal(ds["horizon"], paths["horizon"])


def test_attributes_say_what_was_kept_and_which_device_and_why(reference):
    _, ds = reference
    assert ds.attrs["keep"] == "stats" and store.config_of(ds.attrs)["keep"] == "stats"
    assert ds.attrs["n_paths"] == 3000 and ds.attrs["complete"] == 1
    assert ds.attrs["blocks_done"] == ds.attrs["blocks_total"] == 2  # one per scenario
    device, reason = backend.choose("cpu", "sweep")
    assert ds.attrs["device"] == backend.device_name(device)
    assert ds.attrs["device_reason"] == reason == "device='cpu' requested"
    for name in ("mean", "q_05", "premium"):
        assert {"units", "long_name"} <= set(ds[name].attrs)
    assert ds["mean"].dtype == np.float64


def counting_simulate(monkeypatch):
    """Record the markets' vols of the sweep's tasks (each a simulate call)."""
    calls = []
    real = sweep_module.simulate

    def counting(market, *args, **kw):
        calls.append((market.vol, kw["n_paths"], kw.get("keep")))
        return real(market, *args, **kw)

    monkeypatch.setattr(sweep_module, "simulate", counting)
    return calls


def test_interrupted_sweep_resumes_with_the_missing_scenarios_only(reference, tmp_path,
                                                                   monkeypatch, capsys):
    path, _ = reference
    target = tmp_path / "interrupted.zarr"
    real = sweep_module.run_block
    ran = []

    def interrupted_after_one(job, s, b):
        if ran:
            raise KeyboardInterrupt
        ran.append(s)
        return real(job, s, b)

    monkeypatch.setattr(sweep_module, "run_block", interrupted_after_one)
    with pytest.raises(KeyboardInterrupt):
        sweep(market(0.2), BOOK, HEDGES, COSTS, store=target, keep="stats",
              scheduler="synchronous", **KW)
    assert "holds 1 of 2 blocks and is resumable" in capsys.readouterr().err
    marks = store.done(target).ravel()
    assert sorted(marks.tolist()) == [0, 1]
    done, missing = VOLS[int(np.argmax(marks))], VOLS[int(np.argmin(marks))]
    with pytest.warns(store.PartialStoreWarning, match="1 of 2 blocks"):
        partial = store.open_store(target).load()
    for name in ("mean", "q_05", "premium"):
        assert np.isnan(partial[name].sel({"market.vol": missing})).all()
        assert np.isfinite(partial[name].sel({"market.vol": done})).all()
    monkeypatch.setattr(sweep_module, "run_block", real)

    calls = counting_simulate(monkeypatch)
    ds = sweep(market(0.2), BOOK, HEDGES, COSTS, store=target, keep="stats", **KW)
    assert calls == [(missing, 3000, "stats")]  # no probe, and only the missing scenario
    assert ds.attrs["complete"] == 1
    assert tree(target) == tree(path)
    calls.clear()
    again = sweep(market(0.2), BOOK, HEDGES, COSTS, store=target, keep="stats", **KW)
    assert calls == []  # reopened: nothing computed, the same values
    assert again.load().identical(ds.load())


def test_another_keep_is_refused_on_resume(reference, tmp_path):
    path = tmp_path / "s.zarr"
    sweep(market(0.2), BOOK, HEDGES, COSTS, store=path, keep="stats", **KW)
    with pytest.raises(ValueError, match=r"another configuration \(keep: stored 'stats', "
                                         r"given 'paths'\); pass overwrite=True"):
        sweep(market(0.2), BOOK, HEDGES, COSTS, store=path, **KW)
    paths = tmp_path / "p.zarr"
    sweep(market(0.2), BOOK, HEDGES, COSTS, store=paths, **{**KW, "n_paths": 100})
    with pytest.raises(ValueError, match=r"keep: stored 'paths', given 'stats'"):
        sweep(market(0.2), BOOK, HEDGES, COSTS, store=paths, keep="stats",
              **{**KW, "n_paths": 100})


def test_a_store_made_before_keep_resumes_as_paths(tmp_path):
    path = tmp_path / "old.zarr"
    kw = {**KW, "n_paths": 100}
    sweep(market(0.2), BOOK, HEDGES, COSTS, store=path, **kw)
    attrs = store.read_attrs(path)
    config = store.config_of(attrs)
    del config["keep"]
    store.set_attrs(path, {"config": json.dumps(config, sort_keys=True)})
    sweep(market(0.2), BOOK, HEDGES, COSTS, store=path, **kw)  # resumed, not refused
    with pytest.raises(ValueError, match="keep: stored 'paths', given 'stats'"):
        sweep(market(0.2), BOOK, HEDGES, COSTS, store=path, keep="stats", **kw)


def test_bad_keep_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"sweep: 'keep' must be one of 'paths', 'stats'; "
                                         r"got 'summary'"):
        sweep(market(0.2), BOOK, HEDGES, COSTS, store=tmp_path / "s.zarr", keep="summary",
              **KW)
    assert not (tmp_path / "s.zarr").exists()


def test_memory_check_counts_a_launch_not_the_scenario(tmp_path, monkeypatch):
    jobs = []
    check = memory.check_sweep
    monkeypatch.setattr(memory, "check_sweep", lambda owner, job, **kw: (
        jobs.append(job), check(owner, job, **kw)))
    sweep(market(0.2), BOOK, HEDGES, COSTS, store=tmp_path / "s.zarr", keep="stats",
          **{**KW, "n_paths": 100})
    (job,) = jobs
    assert job.keep == "stats" and "pnl" not in dict(job.variables)
    # 10^8 paths of a scenario in launches of 2^12: a launch's outputs and temporaries and
    # what the reduction holds across launches (reductions.held_bytes: about 90 MB for 4
    # cells), never the scenario's paths (8 bytes x 4 cells x 10^8 = 3.2 GB per variable)
    big = dataclasses.replace(job, n_paths=10**8, chunk_paths=2**12)
    host = max(f.host for f in memory.sweep_footprints(big).values())
    assert 4 * 2**12 * 8 * 8 < host < 150e6
    monkeypatch.setenv("GPUHEDGE_MAX_MEMORY", "200MB")
    memory.check_sweep("sweep", big, scheduler=None, gpus=None, cores=1)  # fits
    huge = dataclasses.replace(job, n_paths=10**8, chunk_paths=2**24)
    with pytest.raises(gh.MemoryBudgetError, match=r"launches of 16,777,216.*smaller "
                                                   r"chunk_paths"):
        memory.check_sweep("sweep", huge, scheduler=None, gpus=None, cores=1)


CONFIG = """
[run]
n_paths = 1500
n_steps = 10
seed = 5
keep = "stats"
chunk_paths = 1024
device = "cpu"

[market]
model = "BlackScholes"
spot = 100.0
vol = 0.2
rate = 0.03

[[book]]
option = "call"
strike = 100.0
maturity = 0.5
quantity = -10.0

[hedges.weekly]
rule = "DeltaHedge"
vol = 0.2
every = 2

[hedges.none]
rule = "NoHedge"

[costs.free]

[costs.costly]
proportional = 1e-3

[grid]
market.vol = [0.15, 0.3]
"""


def test_cli_sweep_and_report_of_statistics(tmp_path, capsys):
    config = tmp_path / "stats.toml"
    config.write_text(CONFIG)
    path = tmp_path / "stats.zarr"
    assert main(["sweep", str(config), "--store", str(path), "--no-progress"]) == 0
    assert "complete (market.vol: 2, strategy: 2, cost: 2)" in capsys.readouterr().out
    ds = store.open_store(path)
    assert ds.attrs["keep"] == "stats" and "pnl" not in ds
    # --keep overrides run.keep; the store is then another configuration
    assert main(["sweep", str(config), "--store", str(path), "--keep", "paths",
                 "--no-progress"]) == 2
    assert "keep: stored 'stats', given 'paths'" in capsys.readouterr().err
    assert main(["sweep", str(config), "--store", str(path), "--keep", "all"]) == 2
    assert "'--keep' must be one of 'paths', 'stats'; got 'all'" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.replace('keep = "stats"', 'keep = "some"'))
    assert main(["sweep", str(bad), "--store", str(tmp_path / "b.zarr")]) == 2
    assert "'run.keep' must be one of 'paths', 'stats'; got 'some'" in capsys.readouterr().err

    out = tmp_path / "report"
    assert main(["report", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "distributions are skipped: the store holds statistics only" in printed
    assert "statistics only (keep='stats')" in printed
    table = [line for line in printed.splitlines() if line.startswith("|")]
    assert table[0].startswith("| market.vol | strategy | cost | mean | std |")
    assert len(table) == 2 + 2 * 2 * 2
    row = ds.sel({"market.vol": 0.3, "strategy": "weekly", "cost": "costly"})
    assert f"| 0.3 | weekly | costly | {float(row['mean']):.4g} ± " in printed
    assert sorted(f.name for f in out.glob("*.png")) == [
        "frontier_market.vol=0.15.png", "frontier_market.vol=0.3.png"]
