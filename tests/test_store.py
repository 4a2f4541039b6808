"""The Zarr store: schema, encoding, completion record, opening; no warnings anywhere."""

import json

import numpy as np
import pytest
import xarray as xr
import zarr

import gpuhedge as gh
from gpuhedge import store
from gpuhedge.sweep import sweep

pytestmark = pytest.mark.filterwarnings("error")

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.03)
BOOK = gh.Book.short(gh.EuropeanCall(100.0, 0.25), 1.0)
HEDGES = {"daily": gh.DeltaHedge(vol=0.2, every=1), "none": gh.NoHedge()}
COSTS = {"free": gh.Costs(), "5bp": gh.Costs(proportional=5e-4)}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "s.zarr"
    sweep({"low": MARKET, "high": gh.BlackScholes(spot=100.0, vol=0.4, rate=0.03)}, BOOK,
          HEDGES, COSTS, n_paths=2500, n_steps=12, seed=2, store=path, chunk_paths=1000)
    return path


def test_layout_encoding_and_attributes(made):
    ds = store.open_store(made)
    assert ds.pnl.dims == ("market", "strategy", "cost", "path")
    assert list(ds.market.values) == ["low", "high"]
    assert ds.strategy.dtype.kind == "T"  # variable-length strings (no fixed-width dtype)
    assert store.DONE not in ds and store.PATH_CHUNK not in ds.dims
    assert ds.pnl.encoding["chunks"] == (1, 1, 1, 1000)
    assert ds.pnl.encoding["dtype"] == np.float32 and ds.trades.dtype == np.int32
    (codec,) = ds.pnl.encoding["compressors"]
    assert (codec.cname.value, codec.shuffle.value) == ("lz4", "bitshuffle")
    assert ds.pnl.attrs["units"] == "currency" and "long_name" in ds.pnl.attrs
    assert json.loads(ds.attrs["scenario_dims"]) == ["market"]
    assert store.config_of(ds.attrs)["markets"]["high"]["vol"] == 0.4
    assert "ready" not in ds.attrs
    meta = zarr.open_group(str(made), mode="r")
    assert meta.metadata.zarr_format == 3
    # consolidated, so that the plain ``xarray.open_zarr(path)`` opens it without a warning
    assert (made / "zarr.json").read_text().count("consolidated_metadata\": {") == 1
    plain = xr.open_zarr(made)
    assert plain.attrs["complete"] == 1 and plain.attrs["blocks_done"] == 6 \
        and plain.attrs["blocks_total"] == 6 and plain.attrs["gpuhedge_store"] == 1


def test_every_block_is_marked_and_a_block_is_whole_chunks(made):
    marks = store.done(made)
    assert marks.shape == (2, 3) and marks.all()
    # one file per cell and block: 2 markets x 2 strategies x 2 costs x 3 blocks
    chunks = [f for f in (made / "pnl").rglob("*") if f.is_file() and f.name != "zarr.json"]
    assert len(chunks) == 24


def test_unwritten_blocks_read_as_nan(tmp_path):
    path = tmp_path / "p.zarr"
    sweep(MARKET, BOOK, HEDGES, COSTS, n_paths=2000, n_steps=12, seed=2, store=path,
          chunk_paths=1000)
    z = zarr.open_array(str(path), path="pnl", mode="r+")
    z[..., 1000:] = np.nan  # as if never written
    pnl = store.open_store(path).pnl
    assert np.isnan(pnl[..., 1000:]).all() and np.isfinite(pnl[..., :1000]).all()


def test_bytes_per_path_and_compression(made, tmp_path):
    raw = store.bytes_per_path(made)
    # 2 markets x 2 x 2 cells x (pnl, cost_paid, cost_spread, trades, turnover) x 4 bytes
    # + 2 terminal spots x 4
    assert raw["raw"] == 2 * 2 * 2 * 5 * 4 + 2 * 4
    assert raw["stored"] < 0.75 * raw["raw"]
    other = tmp_path / "none.zarr"
    sweep(MARKET, BOOK, HEDGES, COSTS, n_paths=2500, n_steps=12, seed=2, store=other,
          chunk_paths=1000, compression="none")
    sizes = store.bytes_per_path(other)
    # uncompressed: the all-zero chunks (no cost, no hedge) are left out and the last block is
    # a whole chunk of 1000 paths (Zarr stores edge chunks in full)
    assert 0.7 * sizes["raw"] < sizes["stored"] <= sizes["raw"] * 3000 / 2500


def test_open_refuses_what_is_not_a_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="open_store: 'path' must be a gpuhedge "
                                                "store"):
        store.open_store(tmp_path / "nothing.zarr")
    xr.Dataset({"a": ("x", [1.0])}).to_zarr(tmp_path / "plain.zarr", **store.ZARR)
    with pytest.raises(FileNotFoundError, match="no gpuhedge store there"):
        store.open_store(tmp_path / "plain.zarr")


def test_partial_files_are_removed(made, tmp_path):
    assert store.remove_partial_files(tmp_path / "absent") == 0
    stray = made / "pnl" / "c" / "0" / "0" / "0" / "0.1234.partial"
    stray.write_bytes(b"half a chunk")
    assert store.remove_partial_files(made) == 1 and not stray.exists()


def test_compressor_names():
    assert store.compressors("none") == []
    assert store.compressors("zstd")[0].cname.value == "zstd"
    with pytest.raises(ValueError, match="store: 'compression' must be one of 'lz4', 'zstd', "
                                         "'none'; got 'gzip'"):
        store.compressors("gzip")
