"""Nothing lost: a store path that is not a gpuhedge store is never written to, whatever the
flags; partial stores say so; an interrupted sweep says how to resume, and resumes."""

import hashlib
import importlib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import gpuhedge as gh
from gpuhedge import store
from gpuhedge.cli import main
from gpuhedge.sweep import sweep

sweep_module = importlib.import_module("gpuhedge.sweep")  # the module (gh.sweep: the function)

pytestmark = pytest.mark.filterwarnings("error")

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.0)
BOOK = gh.Book.short(gh.EuropeanCall(100.0, 0.25), 1.0)
HEDGES = {"daily": gh.DeltaHedge(vol=0.2, every=1)}
KW = dict(n_paths=400, n_steps=5, seed=1, chunk_paths=100)
CONFIG = """\
[run]
n_paths = 200
n_steps = 5
[market]
model = "BlackScholes"
spot = 100.0
vol = 0.2
rate = 0.0
[[book]]
option = "call"
strike = 100.0
maturity = 0.25
quantity = -1.0
[hedges.daily]
rule = "DeltaHedge"
vol = 0.2
every = 1
"""


def snapshot(folder):
    """Every entry under ``folder`` (files and folders), relative path -> content hash."""
    root = Path(folder)
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            if f.is_file() else "dir" for f in sorted(root.rglob("*"))}


def user_folder(tmp_path):
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "prices.csv").write_text("date,close\n2020-01-02,3257.85\n")
    (folder / "sub" / "notes.txt").write_text("keep me")
    return folder


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_of_user_files_is_refused_and_left_intact(tmp_path, overwrite):
    folder = user_folder(tmp_path)
    before = snapshot(folder)
    with pytest.raises(ValueError, match=r"sweep: 'store' must be a new or empty folder or a "
                                         r"gpuhedge store; got .*mine', a folder holding 2 "
                                         r"entries not written by gpuhedge \(e.g. 'prices.csv'"
                                         r"\)\. Nothing was changed"):
        sweep(MARKET, BOOK, HEDGES, store=folder, overwrite=overwrite, **KW)
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary left


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_plain_xarray_zarr_store_is_refused_and_left_intact(tmp_path, overwrite):
    path = tmp_path / "plain.zarr"
    xr.Dataset({"a": ("x", np.arange(5.0))}).to_zarr(path, zarr_format=3, consolidated=False)
    before = snapshot(path)
    with pytest.raises(ValueError, match=r"a Zarr store not written by gpuhedge"):
        sweep(MARKET, BOOK, HEDGES, store=path, overwrite=overwrite, **KW)
    assert snapshot(path) == before
    np.testing.assert_array_equal(xr.open_zarr(path, consolidated=False).a, np.arange(5.0))


def test_the_current_directory_is_refused_by_the_api_and_the_cli(tmp_path, monkeypatch,
                                                                  capsys):
    folder = user_folder(tmp_path)
    (folder / "config.toml").write_text(CONFIG)
    before = snapshot(folder)
    monkeypatch.chdir(folder)
    with pytest.raises(ValueError, match=r"got '\.', a folder holding 3 entries"):
        sweep(MARKET, BOOK, HEDGES, store=".", overwrite=True, **KW)
    assert main(["sweep", "config.toml", "--store", ".", "--overwrite"]) == 2
    assert "gpuhedge sweep: error: sweep: 'store' must be a new or empty folder" in \
        capsys.readouterr().err
    assert snapshot(folder) == before


def test_a_regular_file_gets_a_clear_error(tmp_path):
    path = tmp_path / "results.zarr"
    path.write_text("not a folder")
    with pytest.raises(ValueError, match=r"'store' must be a folder path \(new, empty or a "
                                         r"gpuhedge store\); got .*results.zarr', which is a "
                                         r"file"):
        sweep(MARKET, BOOK, HEDGES, store=path, overwrite=True, **KW)
    assert path.read_text() == "not a folder"


def test_an_empty_folder_is_used_and_a_gpuhedge_store_replaced(tmp_path):
    path = tmp_path / "empty"
    path.mkdir()
    first = sweep(MARKET, BOOK, HEDGES, store=path, **KW)
    assert store.classify(path) == "store" and first.attrs["complete"] == 1
    first = first.pnl.values
    again = sweep(MARKET, BOOK, HEDGES, store=path, overwrite=True, **{**KW, "seed": 2})
    assert again.attrs["seed"] == 2
    assert not np.array_equal(again.pnl.values, first)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no temporary left


def test_experiment_stores_follow_the_same_rules(tmp_path):
    ds = xr.Dataset({"pnl": ("path", np.arange(3.0))})
    folder = user_folder(tmp_path)
    before = snapshot(folder)
    with pytest.raises(ValueError, match=r"e99: 'store' must be a new or empty folder"):
        store.save(folder, ds, owner="e99")
    assert snapshot(folder) == before
    path = tmp_path / "e99.zarr"
    store.save(path, {"a": ds, "b": 2 * ds})
    store.save(path, ds)  # a store the package wrote: replaced
    opened = xr.open_zarr(path)  # consolidated: the plain call opens it without a warning
    np.testing.assert_array_equal(opened.pnl, np.arange(3.0))
    assert not (path / "a").exists() and opened.attrs["gpuhedge_store"] == 1


class Stop(KeyboardInterrupt):
    """Ctrl-C, raised by the third task."""


def test_interrupted_sweep_says_it_is_partial_and_resumes(tmp_path, monkeypatch, capsys):
    path = tmp_path / "s.zarr"
    run_block = sweep_module.run_block
    calls = []

    def interrupted(job, s, b):
        calls.append(b)
        if len(calls) == 3:
            raise Stop
        return run_block(job, s, b)

    monkeypatch.setattr(sweep_module, "run_block", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep(MARKET, BOOK, HEDGES, store=path, scheduler="synchronous", **KW)
    err = capsys.readouterr().err
    assert f"sweep: interrupted; {path} holds 2 of 4 blocks and is resumable: run the same " \
           f"sweep (same arguments and store) again" in err
    # the attributes a plain xarray user sees say the store is partial
    attrs = xr.open_zarr(path).attrs
    assert (attrs["complete"], attrs["blocks_done"], attrs["blocks_total"]) == (0, 2, 4)
    with pytest.warns(store.PartialStoreWarning, match=r"is partial: 2 of 4 blocks of paths"):
        partial = store.open_store(path)
    assert int(np.isfinite(partial.pnl).sum()) == 200

    monkeypatch.setattr(sweep_module, "run_block", run_block)
    ds = sweep(MARKET, BOOK, HEDGES, store=path, scheduler="synchronous", **KW)
    assert f"sweep: resuming {path}: 2 of 4 blocks already done" in capsys.readouterr().err
    assert ds.attrs["complete"] == 1 and ds.attrs["blocks_done"] == 4
    assert xr.open_zarr(path).attrs["complete"] == 1
    whole = gh.simulate(MARKET, BOOK, HEDGES, n_paths=400, n_steps=5, seed=1)
    np.testing.assert_array_equal(ds.pnl.values, whole.pnl.values.astype(np.float32))


def test_cli_interrupt_exits_130(tmp_path, monkeypatch, capsys):
    (tmp_path / "config.toml").write_text(CONFIG)

    def stop(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(sweep_module, "run_block", stop)
    assert main(["sweep", str(tmp_path / "config.toml"), "--store",
                 str(tmp_path / "s.zarr")]) == 130
    err = capsys.readouterr().err
    assert "is resumable" in err and "gpuhedge sweep: interrupted" in err
