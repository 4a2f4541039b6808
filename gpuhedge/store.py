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

A store of statistics (``sweep(..., keep="stats")``) has no ``path`` dim: each statistic
(``gpuhedge.summary``'s variables, the P&L's ``min`` and ``max``, ``premium``) is a float64
variable over ``(*scenario dims, strategy, cost)``, chunked one scenario per chunk, and
``path_chunk`` has length 1: a task, and a block, is a whole scenario.

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
speed; ``"none"`` stores raw bytes. The sweep benchmark's store (``benchmarks/bench_sweep.py``, 8
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
which can lose data that the OS had not flushed; nothing is fsynced.)

A store is made whole in a hidden folder beside its path and then renamed into place, so the
path holds either nothing of it or a finished store's metadata. The package writes only where
``classify`` finds nothing, an empty folder or a store it wrote itself (root attribute
``gpuhedge_store``): a regular file, a folder holding anything else or a Zarr store written
by other code is refused, whatever the flags, and nothing in it is touched.

Completeness
------------
Blocks of paths not written yet read as NaN, which xarray's reductions skip, so a partial
store must say that it is one. The root attributes ``complete`` (0 or 1), ``blocks_done`` and
``blocks_total`` are set when the store is made and whenever a sweep stops (finished,
failed or interrupted); ``chunk_done`` is the live record. ``open_store`` reads it and warns
(``PartialStoreWarning``) on a partial store. The metadata is consolidated (Zarr's
consolidated metadata, refreshed with every attribute change), so ``xarray.open_zarr(path)``
opens a store without a warning.
"""

import contextlib
import datetime
import functools
import json
import math
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec

from ._version import __version__

DONE = "chunk_done"
PATH_CHUNK = "path_chunk"
READY = "ready"
MARKER = "gpuhedge_store"  # root attribute of every store this package writes (schema version)
COMPLETE, BLOCKS_DONE, BLOCKS_TOTAL = "complete", "blocks_done", "blocks_total"
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


class PartialStoreWarning(UserWarning):
    """A store opened before every block of paths was written: reductions over ``path`` see
    only the finished blocks."""


def _ours(attrs):
    """Whether root attributes are those of a store this package wrote (stores made before the
    ``gpuhedge_store`` marker carry ``ready``, ``config`` and ``gpuhedge_version``)."""
    return bool(attrs.get(MARKER)) or (
        bool(attrs.get(READY)) and "config" in attrs and "gpuhedge_version" in attrs)


def _root_attrs(path):
    """The root attributes of a Zarr v3 group at ``path`` (read from its ``zarr.json`` without
    opening the store), or None when there is none."""
    meta = Path(path) / "zarr.json"
    try:
        node = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(node, dict) or node.get("node_type") != "group":
        return None
    attrs = node.get("attributes")
    return attrs if isinstance(attrs, dict) else {}


def classify(path):
    """What is at ``path``, for deciding whether the package may write there.

    Returns
    -------
    str
        ``"absent"`` (nothing), ``"empty"`` (an empty folder), ``"store"`` (a store this
        package wrote), ``"file"`` (not a folder) or ``"foreign"`` (a folder holding anything
        else, e.g. a user's files or a Zarr store written by other code).
    """
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        return "absent"
    if not p.is_dir():
        return "file"
    if not any(p.iterdir()):
        return "empty"
    attrs = _root_attrs(p)
    return "store" if attrs is not None and _ours(attrs) else "foreign"


def refuse_foreign(owner, path):
    """Raise a clear error unless the package may write a store at ``path`` (see
    ``classify``); nothing at ``path`` is touched either way."""
    kind = classify(path)
    if kind == "file":
        raise ValueError(f"{owner}: 'store' must be a folder path (new, empty or a gpuhedge "
                         f"store); got {str(path)!r}, which is a file. Nothing was changed; "
                         f"choose another path")
    if kind == "foreign":
        entries = sorted(e.name for e in Path(path).iterdir())
        what = ("a Zarr store not written by gpuhedge" if (Path(path) / "zarr.json").exists()
                else f"a folder holding {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
                     f" not written by gpuhedge (e.g. {entries[0]!r})")
        raise ValueError(f"{owner}: 'store' must be a new or empty folder or a gpuhedge store; "
                         f"got {str(path)!r}, {what}. Nothing was changed; choose another "
                         f"path (overwrite=True replaces only gpuhedge stores)")
    return kind


def read_attrs(path):
    """The root attributes of the gpuhedge store at ``path``, or None when there is none."""
    attrs = _root_attrs(path)
    return dict(attrs) if attrs is not None and _ours(attrs) and attrs.get(READY) else None


@contextlib.contextmanager
def _quiet_consolidation():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata is currently not part",
                                category=UserWarning)
        yield


def set_attrs(path, values):
    """Update root attributes of the store at ``path`` and refresh its consolidated metadata."""
    group = zarr.open_group(str(path), mode="r+", zarr_format=3, use_consolidated=False)
    group.attrs.update(values)
    with _quiet_consolidation():
        zarr.consolidate_metadata(str(path), zarr_format=3)


def create(path, template, encoding, *, chunk_paths):
    """Make a new store at ``path`` from ``template`` (its metadata and small variables), with
    its completion record, replacing a store this package wrote there before.

    The store is written in a hidden folder beside ``path`` and renamed into place, so an
    interruption leaves ``path`` as it was; a path that holds anything but a gpuhedge store is
    refused (``refuse_foreign``) before anything is written.

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
        Paths per chunk; ``chunk_done`` gets one entry per scenario and block of paths (one
        per scenario when ``template`` has no ``path`` dim).
    """
    target = Path(os.path.abspath(os.fspath(path)))
    kind = refuse_foreign("store", target)
    scenario_dims = [d for d in template.dims if d not in ("strategy", "cost", "path")]
    n_chunks = math.ceil(template.sizes["path"] / chunk_paths) if "path" in template.dims \
        else 1  # a store of statistics: one task per scenario
    done_shape = tuple(template.sizes[d] for d in scenario_dims) + (n_chunks,)
    import dask.array as da

    ds = template.assign({DONE: ((*scenario_dims, PATH_CHUNK),
                                 da.zeros(done_shape, dtype=np.uint8, chunks=-1),
                                 {"long_name": "1 once the block of paths is fully written",
                                  "units": "1"})})
    encoding = {**encoding, DONE: {"chunks": (1,) * len(done_shape), "fill_value": 0,
                                   "compressors": []}}
    ds.attrs.update({MARKER: 1, COMPLETE: 0, BLOCKS_DONE: 0,
                     BLOCKS_TOTAL: int(np.prod(done_shape)),
                     "created": _now()})
    ds.attrs.pop(READY, None)

    def write(new):
        ds.to_zarr(str(new), mode="w", compute=False, encoding=encoding, **ZARR)
        set_attrs(new, {READY: 1})

    _publish(target, kind, write)


def _publish(target, kind, write):
    """Run ``write(folder)`` on a new hidden folder beside ``target``, then rename the folder
    to ``target``: onto nothing, onto an empty folder, or in place of a gpuhedge store
    (``kind`` from ``classify``), which is deleted only once the new one is in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".gpuhedge-new",
                                dir=target.parent))
    try:
        write(new)
        if kind == "store":
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".gpuhedge-old",
                                        dir=target.parent))
            os.replace(target, old)  # onto the empty folder just made
            os.replace(new, target)
            shutil.rmtree(old)
        else:  # nothing there, or an empty folder (replaced)
            os.replace(new, target)
    finally:
        if new.exists():
            shutil.rmtree(new)


def save(path, data, owner="save"):
    """Write one Dataset, or several as named groups, as a new Zarr store at ``path``.

    For results kept whole in memory (the experiments' stores). The same rules as a sweep's
    store: ``path`` may hold nothing, an empty folder or a store this package wrote (which is
    replaced); anything else is refused and left untouched. The store is written beside
    ``path`` and renamed into place, and its metadata consolidated.

    Parameters
    ----------
    path : str or path-like
    data : xarray.Dataset or dict of str -> xarray.Dataset
        A dict writes each Dataset as the group of that name.
    owner : str
        Who is saving (for messages).
    """
    target = Path(os.path.abspath(os.fspath(path)))
    kind = refuse_foreign(owner, target)
    groups = data if isinstance(data, dict) else {None: data}

    def write(new):
        for group, ds in groups.items():
            ds.to_zarr(str(new), group=group, mode="w", **ZARR)
        zarr.open_group(str(new), mode="a", zarr_format=3)  # the root group of named groups
        set_attrs(new, {MARKER: 1, "created": _now()})

    _publish(target, kind, write)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


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


def variables_over(path, dims):
    """(name, dtype name) of the store's variables over every one of ``dims``: the per-path
    variables for ``("path",)``, the statistics of a store of statistics for ``("strategy",
    "cost")``."""
    group = zarr.open_group(str(path), mode="r", zarr_format=3, use_consolidated=False)
    return tuple(sorted((name, array.dtype.name) for name, array in group.arrays()
                        if set(dims) <= set(array.metadata.dimension_names or ())))


def record_progress(path):
    """Set the root attributes ``complete``, ``blocks_done`` and ``blocks_total`` from the
    completion record; returns (blocks done, blocks in all)."""
    marks = done(path)
    n_done, total = int(marks.sum()), int(marks.size)
    set_attrs(path, {COMPLETE: int(n_done == total), BLOCKS_DONE: n_done,
                     BLOCKS_TOTAL: total})
    return n_done, total


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
        The results; the completion record is left out (see ``done``), and the attributes
        ``complete``, ``blocks_done`` and ``blocks_total`` are read from it. Blocks of paths
        not written yet read as NaN (floats) or 0 (integers).

    Warns
    -----
    PartialStoreWarning
        When some blocks are not written yet (an interrupted or running sweep).
    """
    if read_attrs(path) is None:
        raise FileNotFoundError(f"open_store: 'path' must be a gpuhedge store; got "
                                f"{str(path)!r} (no gpuhedge store there)")
    ds = xr.open_zarr(str(path), chunks={} if chunks is None else chunks,
                      drop_variables=[DONE], **ZARR)
    # small coordinates (a scenario's overrides) in memory, like the dimension coordinates
    ds = ds.assign_coords({k: ds[k].load() for k in ds.coords if k not in ds.dims})
    for key in (READY, MARKER):
        ds.attrs.pop(key, None)
    marks = done(path)
    n_done, total = int(marks.sum()), int(marks.size)
    ds.attrs.update({COMPLETE: int(n_done == total), BLOCKS_DONE: n_done, BLOCKS_TOTAL: total})
    if n_done < total:
        warnings.warn(f"open_store: {str(path)!r} is partial: {n_done} of {total} blocks of "
                      f"paths are written; the others read as NaN and reductions skip them. "
                      f"Run the same sweep again to complete it", PartialStoreWarning,
                      stacklevel=2)
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
