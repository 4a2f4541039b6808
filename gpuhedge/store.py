"""Zarr (format 3) stores of sweeps: schema, metadata first, whole-chunk region writes, lazy open.

Layout
------
A sweep's store holds one xarray Dataset with dims ``(*scenario dims, strategy, cost, path)``:

* per-path variables (``pnl``, ``cost_paid``, ``trades``, ``terminal_spot`` and whatever else
  the engine returns per path, e.g. a cost breakdown), chunked ``(1, ..., 1, chunk_paths)``:
  one chunk holds one scenario x strategy x cost cell and one block of paths;
* small per-scenario variables (``premium``, ``horizon``), written with the metadata;
* ``chunk_done`` over ``(*scenario dims, path_chunk)``: a uint8 completion record, one Zarr
  chunk per task (see *Safety* below); ``open_store`` hides it.

Precision
---------
The kernels accumulate every P&L and cost in float64. By default (``storage="float32"``) the
per-path floating point results are rounded to float32 when stored: the relative rounding
error, 2^-24 ~ 6e-8 of each value, is far below any Monte Carlo error, and it halves the bytes.
``metrics.summary`` converts back to float64 before it sums anything. Integer results
(``trades``) are stored exactly. ``storage="float64"`` keeps the kernel's values bit for bit.

Compression (measured on 2^20 paths x 8 hedgers on this project's 2-core CPU machine)
-----------------------------------------------------------------------------------
``"lz4"`` (default): Blosc LZ4, clevel 5, bit shuffle. P&L in float32 is mostly noise in its
low mantissa bits, so nothing compresses it much: about 0.87 of its raw size; ``cost_paid``
about 0.67, ``trades`` (small integers, one per rebalance) about 0.02, at 700-900 MB/s per
core. ``"zstd"`` (Blosc Zstd, clevel 3, bit shuffle) saves about 1 % more at a third of the
speed; ``"none"`` stores raw bytes. The sweep benchmark's store (``gpuhedge.bench_sweep``, 8
rules, 1 cost level) holds 52.3 bytes per scenario and path against 100 raw (6.5 bytes per
cell and path for pnl, cost_paid and trades, plus the terminal spot); ``bytes_per_path``
reports it for any store.

Safety
------
Each task writes whole chunks (its region is a whole number of chunks along every dim, so no
two tasks touch one chunk), and only after all its variables are written does it set its
``chunk_done`` entry. A task killed part-way leaves its entry 0 and is redone on resume.
Zarr's local store writes every chunk file through a temporary file and a rename, so a file
is either the old or the new version; a killed write can leave a temporary ``*.partial`` file
next to a chunk, which a resumed sweep deletes. (Not covered: a crash of the machine itself,
which can lose data that the OS had not flushed; nothing is fsynced.) The metadata is written
first and the root attribute ``ready`` set last, so a store whose creation was interrupted is
seen as absent and created again.
"""

import functools
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from . import __version__

DONE = "chunk_done"
PATH_CHUNK = "path_chunk"
READY = "ready"
STORAGE = ("float32", "float64")
COMPRESSION = ("lz4", "zstd", "none")
ZARR = {"zarr_format": 3, "consolidated": False}


def compressors(name):
    """The Zarr v3 compressor list of a compression name (see the module docstring)."""
    if name == "lz4":
        return [BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")]
    if name == "zstd":
        return [BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")]
    if name == "none":
        return []
    raise ValueError(f"store: 'compression' must be one of {', '.join(map(repr, COMPRESSION))}; "
                     f"got {name!r}")


@functools.cache
def git_revision():
    """``git rev-parse HEAD`` of the package's checkout, with ``-dirty`` when tracked files
    differ from it; None outside a git checkout or without git."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("-dirty" if dirty else "") if rev else None


def provenance():
    """Attributes that say which code wrote a store (not part of its configuration)."""
    rev = git_revision()
    return {"gpuhedge_version": __version__, **({"git_revision": rev} if rev else {})}


def read_attrs(path):
    """The root attributes of the store at ``path``, or None when there is no finished store
    there (nothing, or a creation that was interrupted before ``ready`` was set)."""
    try:
        group = zarr.open_group(str(path), mode="r", zarr_format=3)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError):
        return None
    attrs = dict(group.attrs)
    return attrs if attrs.get(READY) else None


def create(path, template, encoding, *, chunk_paths):
    """Write the metadata (and the small variables) of ``template`` to a new store at ``path``,
    replacing whatever is there, and add the completion record.

    Parameters
    ----------
    path : str or path-like
        Where the store goes.
    template : xarray.Dataset
        Per-path variables as (lazy, never computed) dask arrays with the final dims, dtypes and
        attributes; small variables as NumPy arrays (written now).
    encoding : dict
        Per-variable Zarr encoding (``chunks``, ``compressors``, ``fill_value``).
    chunk_paths : int
        Paths per chunk; ``chunk_done`` gets one entry per scenario and block of paths.
    """
    scenario_dims = [d for d in template.dims if d not in ("strategy", "cost", "path")]
    n_chunks = math.ceil(template.sizes["path"] / chunk_paths)
    done_shape = tuple(template.sizes[d] for d in scenario_dims) + (n_chunks,)
    import dask.array as da

    ds = template.assign({DONE: ((*scenario_dims, PATH_CHUNK),
                                 da.zeros(done_shape, dtype=np.uint8, chunks=-1),
                                 {"long_name": "1 once the block of paths is fully written",
                                  "units": "1"})})
    encoding = {**encoding, DONE: {"chunks": (1,) * len(done_shape), "fill_value": 0,
                                   "compressors": []}}
    ds.attrs.pop(READY, None)
    ds.to_zarr(str(path), mode="w", compute=False, encoding=encoding, **ZARR)
    group = zarr.open_group(str(path), mode="r+", zarr_format=3)
    group.attrs[READY] = 1


def write_block(path, block, region):
    """Write the per-path variables of ``block`` into ``region`` (whole chunks only)."""
    block.to_zarr(str(path), mode="r+", region=region, **ZARR)


def mark_done(path, scenario_dims, index, path_chunk):
    """Record that block ``path_chunk`` of the scenario at ``index`` (positions along
    ``scenario_dims``) is fully written; call it only after ``write_block`` returned."""
    dims = (*scenario_dims, PATH_CHUNK)
    region = {d: slice(i, i + 1) for d, i in zip(scenario_dims, index)}
    region[PATH_CHUNK] = slice(path_chunk, path_chunk + 1)
    one = np.ones((1,) * len(dims), dtype=np.uint8)
    xr.Dataset({DONE: (dims, one)}).to_zarr(str(path), mode="r+", region=region, **ZARR)


def remove_partial_files(path):
    """Delete the temporary files (``*.partial``) that Zarr's local store leaves behind when a
    write is killed before its rename; they are never read, but a resumed store should hold
    exactly the files of an uninterrupted one. Only for a store that nobody else writes to.
    Returns how many were removed."""
    root = Path(str(path))
    if not root.is_dir():
        return 0
    stale = [f for f in root.rglob("*.partial") if f.is_file()]
    for f in stale:
        f.unlink(missing_ok=True)
    return len(stale)


def done(path):
    """The completion record: uint8 array over (*scenario dims, path_chunk), 1 = written."""
    return zarr.open_array(str(path), path=DONE, mode="r", zarr_format=3)[...]


def open_store(path, chunks=None):
    """Open a sweep's store lazily (dask arrays chunked as stored) as an xarray Dataset.

    Parameters
    ----------
    path : str or path-like
        The store.
    chunks : dict, optional
        Dask chunks to use instead of the stored ones (``xarray.open_zarr``'s argument).

    Returns
    -------
    xarray.Dataset
        The results; the completion record is left out (see ``done``). Blocks of paths not
        written yet read as NaN (floats) or 0 (integers).
    """
    if read_attrs(path) is None:
        raise FileNotFoundError(f"open_store: 'path' must be a finished gpuhedge store; got "
                                f"{str(path)!r} (no store there, or its creation was "
                                f"interrupted)")
    ds = xr.open_zarr(str(path), chunks={} if chunks is None else chunks,
                      drop_variables=[DONE], **ZARR)
    ds.attrs.pop(READY, None)
    return ds


def bytes_per_path(path):
    """Stored bytes per path: (bytes of the per-path variables' chunk files) / n_paths, and the
    same for the raw (uncompressed) arrays, as a dict ``{"stored": .., "raw": ..}``."""
    root = Path(str(path))
    ds = open_store(path)
    stored = raw = 0
    for name, var in ds.data_vars.items():
        if "path" not in var.dims:
            continue
        raw += var.size * var.dtype.itemsize
        stored += sum(f.stat().st_size for f in (root / name).rglob("*")
                      if f.is_file() and f.name != "zarr.json")
    n = ds.sizes["path"]
    return {"stored": stored / n, "raw": raw / n}


def config_of(attrs):
    """The configuration recorded in a store's attributes (a dict)."""
    return json.loads(attrs["config"])
