"""Sweeps: a grid of scenarios x strategies x costs, run as Dask tasks into one Zarr store.

A *scenario* is one market, book and time grid: the model (or one of a dict of models), a
named scenario (a dict of field overrides) and a point of the grid of swept fields. A *task*
is one scenario and one block of ``chunk_paths`` paths: one kernel pass runs every strategy
and cost level on those paths (common random numbers), and the task writes its own whole
chunks into the store (see ``gpuhedge.store``). With ``keep="stats"`` a task is one whole
scenario: ``simulate(..., keep="stats")`` on all its paths, in launches of ``chunk_paths``,
and the store holds its statistics only. Order statistics do not merge from per-block
summaries, so a scenario's paths are never split between tasks; each statistic is exact
over all of them (``gpuhedge.reductions``). Every scenario uses the same ``seed`` and
``stream``, so path p draws the same random numbers in every cell of the grid (common random
numbers across markets too); the numbers depend only on (seed, stream, p), so a task computes
the same bytes whichever worker runs it, in whatever order, and before or after an
interruption.

Swept fields are dotted paths into ``{"market": .., "book": .., "hedges": {name: ..},
"costs": {name: ..}, "n_steps": ..}``:

* ``"market.vol"``, ``"market.rho"``: a field of the market model (for ``Heston`` and
  ``Bates``, ``"market.vol"`` sets v0 = theta = vol^2: a flat vol to sweep like the others);
* ``"book.maturity"``, ``"book.strike"``, ``"book.quantity"``: that field of every position
  (``"book.positions.0.option.strike"`` reaches one position);
* ``"hedges.daily.vol"`` or ``"hedges.*.vol"`` (every strategy with a ``vol``),
  ``"costs.*.proportional"``;
* ``"n_steps"``.

Objects are rebuilt with ``dataclasses.replace``, so every value is validated by its class.
"""

import contextlib
import dataclasses
import importlib.util
import json
import math
import numbers
import os
import re
import sys
import threading
from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import _validation as check
from . import backend, memory, reductions
from . import store as zstore
from ._version import __version__
from .costs import Costs
from .engine import as_book, describe, named_items, simulate
from .instruments import Book, Position
from .models import Heston, Market
from .rules import Strategy

OWNER = "sweep"
RESERVED = ("strategy", "cost", "path", zstore.PATH_CHUNK)
CPU_CHUNK = 2**20      # paths per chunk on a CPU: 4 MiB per float32 cell chunk
GPU_CHUNK = 2**22      # a GPU wants more paths per launch
TASK_BYTES = 512 * 2**20  # host memory of one task's results, float64 and storage copies
_KERNEL_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Scenario:
    index: tuple     # positions along the scenario dims
    label: str       # "market.vol=0.2, book.maturity=1" (for messages)
    market: Market
    book: Book
    hedges: dict
    costs: dict
    n_steps: int


@dataclass(frozen=True)
class _Job:
    """Everything a task needs (pickled once per worker by Dask)."""
    path: str
    scenarios: tuple
    scenario_dims: tuple
    variables: tuple         # (name, storage dtype) of what a task writes
    n_paths: int
    chunk_paths: int
    seed: int
    stream: int
    antithetic: bool
    device: str
    dtype: str
    keep: str                # "paths": a task is a block of paths; "stats": a scenario
    numba_threads: int | None


# ----------------------------------------------------------------------------- scenarios
def _fail(name, allowed, value):
    check.fail(OWNER, name, allowed, value)


def _fields(obj):
    return [f.name for f in dataclasses.fields(obj)]


def _replace(node, rest, value, key):
    """``node`` with the field at dotted path ``rest`` set to ``value`` (``key``: the whole
    dotted key, for messages). A ``*`` matches every entry of a dict or list; entries without
    the field are skipped, but at least one must have it."""
    if rest == "":
        return value
    if isinstance(node, dict):
        if rest == "*" or rest.startswith("*."):
            sub = rest[2:]
            out, hit = {}, False
            for name, item in node.items():
                try:
                    out[name] = _replace(item, sub, value, key)
                    hit = True
                except _NoField:
                    out[name] = item
            if not hit:
                raise ValueError(f"{OWNER}: swept key {key!r} matches no entry: none of "
                                 f"{list(node)} has the field {sub!r}")
            return out
        matches = [k for k in node if rest == k or rest.startswith(k + ".")]
        if not matches:
            raise ValueError(f"{OWNER}: swept key {key!r} must name an entry; got {rest!r}, "
                             f"expected one of {list(node)} or '*'")
        name = max(matches, key=len)
        return {**node, name: _replace(node[name], rest[len(name) + 1:], value, key)}
    head, _, tail = rest.partition(".")
    if isinstance(node, (tuple, list)):
        if head == "*":
            return type(node)(_replace(item, tail, value, key) for item in node)
        try:
            i = int(head)
            item = node[i]
        except (ValueError, IndexError):
            raise ValueError(f"{OWNER}: swept key {key!r} must index a list of {len(node)} "
                             f"with 0..{len(node) - 1} or '*'; got {head!r}") from None
        return type(node)((*node[:i], _replace(item, tail, value, key), *node[i + 1:]))
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        if head in _fields(node):
            new = _replace(getattr(node, head), tail, value, key)
            return dataclasses.replace(node, **{head: new})
        if isinstance(node, Heston) and head == "vol" and not tail:
            # a Heston-type market at a flat vol: v0 = theta = vol^2
            vol = check.real(type(node).__name__, "vol", value, 0.0, 10.0)
            return dataclasses.replace(node, v0=vol * vol, theta=vol * vol)
        if isinstance(node, Book) and head in ("strike", "maturity", "quantity"):
            # book.strike etc.: that field of every position
            path = f"positions.*.{'option.' if head != 'quantity' else ''}{head}"
            return _replace(node, path + (f".{tail}" if tail else ""), value, key)
        if isinstance(node, Position) and head in _fields(node.option):
            return _replace(node, f"option.{rest}", value, key)
        raise _NoField(f"{OWNER}: swept key {key!r}: {head!r} is not a field of "
                       f"{type(node).__name__} (fields: {', '.join(_fields(node))})")
    raise _NoField(f"{OWNER}: swept key {key!r}: {type(node).__name__} {node!r} has no "
                   f"field {head!r}")


class _NoField(ValueError):
    """A dotted key that names no field (skipped under a ``*``)."""


def _apply(root, overrides, where):
    """``root`` (dict of market, book, hedges, costs, n_steps) with ``overrides`` applied."""
    for key, value in overrides.items():
        if not isinstance(key, str) or key.partition(".")[0] not in root:
            raise ValueError(f"{OWNER}: {where}: a swept key must start with one of "
                             f"{', '.join(map(repr, root))}; got {key!r}")
        head, _, rest = key.partition(".")
        try:
            root = {**root, head: _replace(root[head], rest, value, key)}
        except (TypeError, ValueError) as e:
            if isinstance(e, _NoField) or str(e).startswith(OWNER):
                raise ValueError(f"{e} ({where})") from None
            raise ValueError(f"{OWNER}: {where}: {key} = {value!r} is refused: {e}") from None
    return root


def _coordinate(dim, values):
    """A coordinate array for swept values: numbers as numbers, anything else as its repr."""
    values = list(values)
    if all(isinstance(v, bool) for v in values):
        coord = np.array(values, dtype=bool)
    elif all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        coord = np.array(values, dtype=np.int64)
    elif all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        coord = np.array(values, dtype=np.float64)
    else:
        coord = np.array([v if isinstance(v, str) else repr(v) for v in values], dtype=object)
    if len(set(coord.tolist())) != len(coord):
        _fail(f"grid[{dim!r}]", "a list of distinct values", values)
    return coord


def _jsonable(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return describe(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return repr(value)


def _lookup(node, rest):
    """The value at dotted path ``rest`` in ``node`` (the reading twin of ``_replace``); a
    ``*`` gives the common value of the entries that have the field, or their tuple when they
    differ. Raises ``_NoField`` when nothing has it."""
    if rest == "":
        return node
    head, _, tail = rest.partition(".")
    if isinstance(node, dict):
        if head == "*":
            return _common([node[k] for k in node], tail)
        name = max((k for k in node if rest == k or rest.startswith(k + ".")), key=len,
                   default=None)
        if name is None:
            raise _NoField(rest)
        return _lookup(node[name], rest[len(name) + 1:])
    if isinstance(node, (tuple, list)):
        return _common(node, tail) if head == "*" else _lookup(node[int(head)], tail)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        if head in _fields(node):
            return _lookup(getattr(node, head), tail)
        if isinstance(node, Heston) and head == "vol" and not tail:
            if node.v0 != node.theta:
                raise _NoField(rest)
            return math.sqrt(node.v0)
        if isinstance(node, Book) and head in ("strike", "maturity", "quantity"):
            path = f"positions.*.{'option.' if head != 'quantity' else ''}{head}"
            return _lookup(node, path + (f".{tail}" if tail else ""))
        if isinstance(node, Position) and head in _fields(node.option):
            return _lookup(node.option, rest)
    raise _NoField(rest)


def _common(items, rest):
    values = []
    for item in items:
        try:
            values.append(_lookup(item, rest))
        except _NoField:
            pass
    if not values:
        raise _NoField(rest)
    return values[0] if all(v == values[0] for v in values) else tuple(values)


def _swept_keys(grid, scenarios):
    keys = list(grid or {})
    for overrides in (scenarios or {}).values():
        keys += [k for k in overrides if k not in keys]
    return keys


def _labels(entries, head, keys):
    """``entries`` (hedges or costs) with the names that are their reprs (given as a list or
    one object) showing a swept field as ``*``: a label must not state a value the sweep
    changes, e.g. ``Costs(proportional=*, fixed=0.0, ends=True)``."""
    out = {}
    for name, obj in entries.items():
        if name == repr(obj):
            for key in keys:
                first, _, rest = key.partition(".")
                if first != head:
                    continue
                if rest.startswith("*."):
                    field = rest[2:].partition(".")[0]
                elif rest.startswith(name + "."):
                    field = rest[len(name) + 1:].partition(".")[0]
                else:
                    continue
                if field in _fields(obj):
                    shown = re.escape(f"{field}={getattr(obj, field)!r}")
                    name = re.sub(rf"(?<![\w.]){shown}", f"{field}=*", name, count=1)
        if name in out:
            _fail(head, "entries with distinct names once swept fields are shown as '*' "
                  "(name them with a dict)", list(entries))
        out[name] = obj
    return out


# units of the fields a sweep can vary, by field name (coordinates carry them)
UNITS = {"spot": "currency", "strike": "currency", "fixed": "currency", "capital": "currency",
         "maturity": "year", "vol": "1/sqrt(year)", "sigma_j": "1", "mu_j": "1",
         "rate": "1/year", "dividend": "1/year", "drift": "1/year", "borrow_rate": "1/year",
         "lend_rate": "1/year", "lam": "1/year", "kappa": "1/year", "theta": "1/year",
         "v0": "1/year", "xi": "1/year", "rho": "1", "eta1": "1", "eta2": "1", "p": "1",
         "proportional": "1", "option_proportional": "1", "impact": "1", "band": "1",
         "pct": "1", "quantity": "1", "risk_aversion": "1/currency", "every": "step",
         "lag": "step", "n_steps": "step", "floor": "1", "multiplier": "1"}


def _coordinate_attrs(key, long_name):
    units = UNITS.get(key.rpartition(".")[2])
    return {"long_name": long_name, **({"units": units} if units else {})}


def _scenario_coordinates(dims, items, keys):
    """The value of every overridden key in each named scenario (its own override, or what it
    inherits), as coordinates along ``scenario``: the overrides are visible beside the
    scenario names, not only inside the configuration."""
    if "scenario" not in dims:
        return {}
    axis = list(dims).index("scenario")
    first = {}
    for sc in items:
        first.setdefault(sc.index[axis], sc)
    coords = {}
    for key in keys:
        if key in dims:
            continue
        values = []
        for i in range(len(dims["scenario"])):
            sc = first[i]
            root = {"market": sc.market, "book": sc.book, "hedges": sc.hedges,
                    "costs": sc.costs, "n_steps": sc.n_steps}
            try:
                values.append(_lookup(root, key))
            except (_NoField, ValueError, IndexError):
                values.append(None)
        if all(isinstance(v, numbers.Real) and not isinstance(v, bool) or v is None
               for v in values):
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        else:
            array = np.array(["" if v is None else v if isinstance(v, str) else repr(v)
                              for v in values], dtype=object)
        coords[key] = ("scenario", array, _coordinate_attrs(key, f"{key} in each scenario"))
    return coords


def expand(market, book, hedges, costs, n_steps, grid=None, scenarios=None):
    """The scenarios of a sweep.

    Returns
    -------
    dims : dict
        Scenario dim -> coordinate array, in order: ``market`` (when ``market`` is a dict),
        ``scenario`` (when ``scenarios`` is given), then one dim per key of ``grid``.
    items : list of _Scenario
        One per point of the outer product of the dims (C order).
    """
    if isinstance(market, Market):
        markets = None
    elif isinstance(market, dict) and market:
        markets = market
        for name, m in markets.items():
            if not isinstance(name, str) or not isinstance(m, Market):
                _fail(f"market[{name!r}]", "a market model (BlackScholes, Merton, Kou, "
                      "Heston, Bates) under a string name", m)
    else:
        _fail("market", "a market model or a non-empty dict of name -> market model", market)
    if scenarios is not None and (not isinstance(scenarios, dict) or not scenarios or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in scenarios.items())):
        _fail("scenarios", "a non-empty dict of name -> dict of swept key -> value", scenarios)
    if grid is None:
        grid = {}
    if not isinstance(grid, dict):
        _fail("grid", "a dict of swept key -> list of values", grid)

    dims, axes = {}, []
    if markets is not None:
        dims["market"] = np.array(list(markets), dtype=object)
        axes.append([("market", name) for name in markets])
    if scenarios is not None:
        dims["scenario"] = np.array(list(scenarios), dtype=object)
        axes.append([("scenario", name) for name in scenarios])
    for key, values in grid.items():
        if not isinstance(key, str) or key in RESERVED or key in dims:
            _fail("grid", f"keys other than {', '.join(map(repr, (*RESERVED, *dims)))}", key)
        if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__") \
                or len(values) == 0:
            _fail(f"grid[{key!r}]", "a non-empty list of values", values)
        dims[key] = _coordinate(key, values)
        axes.append([(key, v) for v in values])

    base = {"market": None, "book": book, "hedges": hedges, "costs": costs,
            "n_steps": n_steps}
    items = []
    for index in np.ndindex(*(len(a) for a in axes)):
        chosen = [axes[i][j] for i, j in enumerate(index)]
        label = ", ".join(f"{d}={v!r}" if not isinstance(v, str) else f"{d}={v}"
                          for d, v in chosen) or "the only scenario"
        root = dict(base, market=market if markets is None else markets[dict(chosen)["market"]])
        overrides = dict(scenarios[dict(chosen)["scenario"]]) if scenarios is not None else {}
        overrides.update({d: v for d, v in chosen if d not in ("market", "scenario")})
        root = _apply(root, overrides, f"scenario {label}")
        items.append(_Scenario(tuple(index), label, root["market"], root["book"],
                               root["hedges"], root["costs"], root["n_steps"]))
    return dims, items


# ----------------------------------------------------------------------------- tasks
@contextlib.contextmanager
def _numba_threads(n):
    """Run with ``n`` numba threads in this thread (numba's setting is thread-local)."""
    if n is None:
        yield
        return
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _kernel_guard():
    """numba's ``workqueue`` threading layer must not be entered by two threads at once (it
    aborts); the first parallel launch of a process picks the layer. Serialise in those cases."""
    import numba

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel launch yet in this process
        layer = None
    return _KERNEL_LOCK if layer in (None, "workqueue") else contextlib.nullcontext()


def _simulate_block(job, s, b):
    """Run block ``b`` of scenario ``s``: the engine's Dataset for those paths; with
    ``keep="stats"`` (one block per scenario) the statistics of all the scenario's paths."""
    sc = job.scenarios[s]
    if job.keep == "stats":
        start, n = 0, job.n_paths
        how = {"keep": "stats", "chunk_paths": job.chunk_paths}
    else:
        start = b * job.chunk_paths
        n = min(job.chunk_paths, job.n_paths - start)
        how = {"first_path": start, "storage": dict(job.variables)["pnl"]}
    with _numba_threads(job.numba_threads), _kernel_guard():
        try:
            return simulate(sc.market, sc.book, sc.hedges, sc.costs, n_paths=n,
                            n_steps=sc.n_steps, seed=job.seed, stream=job.stream,
                            antithetic=job.antithetic, device=job.device, dtype=job.dtype,
                            **how)
        except FloatingPointError as e:
            raise FloatingPointError(f"{OWNER}: scenario {sc.label}, paths {start}.."
                                     f"{start + n - 1}: {e}") from None


def _block(job, ds):
    """The variables one task writes (per path, or the statistics), cast to their storage
    dtypes, with the scenario dims added (size 1) and no coordinates (a region write needs
    none)."""
    lead = (1,) * len(job.scenario_dims)
    out = {}
    for name, dtype in job.variables:
        # a cost kind this scenario does not charge: zero, as the engine's zeroed result
        var = ds[name] if name in ds else xr.zeros_like(ds["pnl"])
        values = np.asarray(var.values, dtype=dtype).reshape(lead + var.shape)
        out[name] = ((*job.scenario_dims, *var.dims), values)
    return xr.Dataset(out)


def run_block(job, s, b):
    """One task: simulate block ``b`` of scenario ``s``, write its chunks, then mark it done.

    Returns the number of paths simulated.
    """
    ds = _simulate_block(job, s, b)
    sc = job.scenarios[s]
    region = {d: slice(i, i + 1) for d, i in zip(job.scenario_dims, sc.index)}
    if job.keep == "stats":
        n = job.n_paths
    else:
        start, n = b * job.chunk_paths, ds.sizes["path"]
        region["path"] = slice(start, start + n)
    zstore.write_block(job.path, _block(job, ds), region)
    zstore.mark_done(job.path, job.scenario_dims, sc.index, b)
    return n


# ----------------------------------------------------------------------------- schema
def _default_chunk(n_paths, n_cells, device, keep="paths"):
    target = GPU_CHUNK if device == "cuda" else CPU_CHUNK
    per_path = memory.cell_path_bytes(keep) * max(n_cells, 1)
    by_memory = 2 ** int(math.log2(max(4096, TASK_BYTES // per_path)))
    return int(min(target, by_memory, n_paths))


DIM_NAMES = {"market": "market model", "scenario": "named scenario",
             "strategy": "hedging strategy", "cost": "cost level"}


def _template(job, dims, probes, attrs, compression, scenario_coords):
    """The store's Dataset before any task ran, and its Zarr encoding: the variables the tasks
    write chunked by task (a scenario x cell x block of paths, or a scenario's statistics),
    the other small per-scenario variables written with the metadata."""
    import dask.array as da

    first = probes[0]
    sdims = tuple(dims)
    ssizes = tuple(len(c) for c in dims.values())
    data, encoding = {}, {}
    codecs = zstore.compressors(compression)
    for name, dtype in job.variables:
        var = next(p[name] for p in probes if name in p)
        if job.keep == "stats":
            shape = ssizes + var.shape
            chunks = (1,) * len(ssizes) + var.shape
        else:
            shape = ssizes + var.shape[:-1] + (job.n_paths,)
            chunks = (1,) * (len(shape) - 1) + (job.chunk_paths,)
        vattrs = dict(var.attrs)
        data[name] = ((*sdims, *var.dims), da.empty(shape, dtype=dtype, chunks=-1), vattrs)
        fill = np.array(np.nan if np.dtype(dtype).kind == "f" else 0, dtype=dtype)[()]
        encoding[name] = {"chunks": chunks, "compressors": codecs, "fill_value": fill}
    written = dict(job.variables)
    for name, var in first.data_vars.items():
        if "path" in var.dims or name in written:
            continue
        values = np.stack([p[name].values for p in probes]).reshape(ssizes + var.shape)
        data[name] = ((*sdims, *var.dims), values, dict(var.attrs))
    horizon = np.array([p.attrs["horizon"] for p in probes]).reshape(ssizes)
    data["horizon"] = (sdims, horizon, {"long_name": "latest maturity of the book",
                                        "units": "year"})
    named = {**dims, "strategy": first["strategy"].values.astype(object),
             "cost": first["cost"].values.astype(object)}
    coords = {d: (d, values, _coordinate_attrs(d, DIM_NAMES.get(d, f"{d} (swept)")))
              for d, values in named.items()}
    return xr.Dataset(data, coords={**coords, **scenario_coords}, attrs=attrs), encoding


# ----------------------------------------------------------------------------- execution
def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _threads_plan(job, n_tasks, n_cells, workers):
    """(dask threads, numba threads per task) for the local threaded scheduler.

    numba releases the GIL while a ``parallel=True`` kernel runs (measured: another Python
    thread keeps running meanwhile), so tasks run their kernels side by side. Default: one
    thread per core, each kernel on cores // threads numba threads (numba's count is per
    calling thread), fewer threads when there are fewer tasks or when a task's results
    (``memory.cell_path_bytes``) would not fit in half the free memory. On a GPU, two
    threads: one task's copy and write overlap the other's kernel.
    """
    cores = _cores()
    if job.device == "cuda":
        return max(1, min(workers or 2, n_tasks)), None
    if workers is None:
        workers = cores
        free = _available_memory()
        if free:
            per_task = memory.cell_path_bytes(job.keep) * job.chunk_paths * n_cells
            workers = max(1, min(workers, int(0.5 * free // per_task)))
    workers = max(1, min(workers, n_tasks))
    return workers, max(1, cores // workers)


def _available_memory():
    return min(have for have, _ in memory.host_memory())


def _is_client(obj):
    try:
        from distributed import Client
    except ImportError:
        return False
    return isinstance(obj, Client)


def _dask_cuda(gpus):
    """``dask_cuda.LocalCUDACluster``, imported only when GPUs are asked for."""
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError:
        raise ImportError(f"{OWNER}: 'gpus' needs the dask-cuda package (pip install "
                          f"dask-cuda); got gpus={gpus!r}") from None
    return LocalCUDACluster


def _client_for(scheduler, gpus):
    """(client, what to close afterwards) for a distributed run, or (None, [])."""
    if gpus is not None:
        LocalCUDACluster = _dask_cuda(gpus)
        from distributed import Client

        devices = None if gpus == "all" else ",".join(str(int(g)) for g in gpus)
        cluster = LocalCUDACluster(CUDA_VISIBLE_DEVICES=devices)
        client = Client(cluster)
        return client, [client, cluster]
    if scheduler is None or scheduler in ("threads", "synchronous"):
        return None, []
    from distributed import Client, LocalCluster

    if isinstance(scheduler, Client):
        return scheduler, []  # the caller's: left open
    if scheduler == "local":
        cluster = LocalCluster(n_workers=_cores(), threads_per_worker=1, processes=True)
        client = Client(cluster)
        return client, [client, cluster]
    # An address (checked by ``sweep``). Closed afterwards: a client left open would stay
    # dask's default scheduler for every later computation in this process.
    client = Client(scheduler)
    return client, [client]


def _execute(job, todo, *, client, plan, progress):
    import dask

    job_ref = dask.delayed(job, pure=True)
    # keys a dashboard reads: the scenario and block, plus a token of the run (a client
    # reuses a finished key, so two sweeps must not share one)
    token = dask.base.tokenize(job)[:8]
    tasks = [dask.delayed(run_block, pure=False)(
        job_ref, s, b, dask_key_name=f"gpuhedge-block-{s}-{b}-{token}") for s, b in todo]
    if client is not None:
        if importlib.util.find_spec("bokeh") is None:
            print(f"{OWNER}: the Dask dashboard needs bokeh (pip install -e '.[dashboard]')",
                  file=sys.stderr)
        else:
            print(f"{OWNER}: Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        futures = client.compute(tasks)
        if progress:
            from distributed import progress as show

            show(futures)
        return sum(client.gather(futures))
    if plan == "synchronous":
        kwargs = {"scheduler": "synchronous"}
    else:
        n_threads, _ = plan
        kwargs = {"scheduler": "threads", "num_workers": n_threads}
    context = contextlib.nullcontext()
    if progress:
        from dask.diagnostics import ProgressBar

        context = ProgressBar(out=sys.stderr)
    with context:
        return sum(dask.compute(*tasks, **kwargs))


# ----------------------------------------------------------------------------- public
def _differences(old, new, prefix=""):
    """Dotted keys whose values differ between two JSON-like dicts."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, name + ".")
        elif a != b:
            out.append(f"{name}: stored {a!r}, given {b!r}")
    return out


def sweep(market, book, hedges, costs=None, *, n_paths, n_steps, seed=0, store, grid=None,
          scenarios=None, stream=0, antithetic=False, device=None, dtype="float64",
          storage="float32", chunk_paths=None, compression="lz4", scheduler=None,
          workers=None, gpus=None, overwrite=False, progress=None, keep="paths"):
    """Run a grid of scenarios x strategies x costs into a Zarr store; resume if interrupted.

    Each task simulates one scenario on one block of ``chunk_paths`` paths, every strategy and
    cost level in one kernel pass, and writes its own whole chunks (``gpuhedge.store``). Path
    p's random numbers depend only on (seed, stream, p), so the store's bytes do not depend on
    the chunking of the work, on the scheduler, on the number of workers or on interruptions.
    With ``keep="stats"`` each task reduces all the paths of one scenario
    (``simulate(..., keep="stats")``) and the store holds only their statistics.

    Parameters
    ----------
    market : market model or dict of name -> market model
        A dict adds a ``market`` dim.
    book, hedges, costs
        As for ``gpuhedge.simulate`` (strategies and costs named by a dict or their repr).
    n_paths, n_steps, seed, stream, antithetic, dtype
        As for ``gpuhedge.simulate``; ``n_steps`` can also be swept.
    store : str or path-like
        Where the results go (Zarr format 3): a new path, an empty folder or a store this
        package wrote. A store made with the same configuration is resumed: only blocks not
        yet marked done are computed. One made with another configuration is refused unless
        ``overwrite=True``, which replaces it. Anything else (a file, a folder holding other
        files, a Zarr store written by other code) is refused, even with ``overwrite=True``,
        and left untouched.
    grid : dict of str -> list, optional
        Swept fields: dotted key -> values, one dim per key (outer product), e.g.
        ``{"market.vol": [0.1, 0.2], "book.maturity": [0.5, 1.0]}``.
    scenarios : dict of str -> dict, optional
        Named scenarios, name -> {dotted key: value}; adds a ``scenario`` dim (crossed with
        ``grid``).
    device : {"auto", "cpu", "cuda"}, optional
        Where the kernels run (default as in ``simulate``; ``gpus`` implies "cuda").
    storage : {"float32", "float64"}
        Storage precision of the per-path floats (accumulation is always float64; the
        statistics of ``keep="stats"`` are stored in float64).
    chunk_paths : int, optional
        Paths per task and per chunk (default: 2^20 on a CPU, 2^22 on a GPU, less when a
        task's results would pass 512 MiB; a resumed store keeps its own). With
        ``keep="stats"``: paths per kernel launch of a scenario's task (the default bounds a
        launch's outputs and the reduction's temporaries, about 120 bytes per cell and path,
        by 512 MiB likewise).
    compression : {"lz4", "zstd", "none"}
        See ``gpuhedge.store``.
    scheduler : None, "threads", "synchronous", "local", address or Client
        None or "threads": dask's threaded scheduler in this process (``workers`` threads,
        sized to the machine); "synchronous": one task after another; "local": a
        ``distributed.LocalCluster`` with one single-threaded worker process per core (its
        workers are spawned: in a script, call ``sweep`` under ``if __name__ ==
        "__main__":``);
        "tcp://host:8786": an existing cluster; a ``distributed.Client``: that client. The
        store must be reachable by every worker.
    workers : int, optional
        Threads of the threaded scheduler. Default, sized to the machine: one per core, each
        task's kernel on cores // workers numba threads (numba releases the GIL in parallel
        kernels, so tasks compute side by side and one task's write overlaps the others'
        kernels); fewer when a task's results (about 32 bytes per cell and path, 120 per
        cell and path of a launch with ``keep="stats"``) would not fit in half the free
        memory.
    gpus : "all" or list of int, optional
        Start a ``dask_cuda.LocalCUDACluster`` with one worker per GPU (needs dask-cuda).
    overwrite : bool
        Replace a gpuhedge store made with another configuration (never anything else).
    progress : bool, optional
        Show a progress bar (default: when stderr is a terminal).
    keep : {"paths", "stats"}
        What the store holds: every path's results, or per scenario only the statistics of
        ``simulate(..., keep="stats")`` on all its paths (``gpuhedge.summary``'s variables
        with the P&L's ``min`` and ``max``, exact over the scenario's paths: the quantiles,
        VaR and CVaR are order statistics of all of them, not merged from blocks). A task is
        then one whole scenario, and a resumed sweep computes the scenarios not yet done.
        Recorded in the configuration: a store is resumed only with the same ``keep``.

    Returns
    -------
    xarray.Dataset
        The store opened lazily (``store.open_store``). With ``keep="paths"``: ``pnl``,
        ``cost_paid``, ``trades`` (and any other per-path output of the engine) over
        (*scenario dims, strategy, cost, path), ``terminal_spot`` over (*scenario dims,
        path), ``premium`` and ``horizon``. With ``keep="stats"``: the statistics and
        ``premium`` over (*scenario dims, strategy, cost), and ``horizon``; no ``path`` dim.
        Attributes: package version, git revision, seed, device and ``device_reason`` (why
        the run took it, as ``simulate`` says), precision, storage, keep, n_steps, n_paths,
        chunk_paths and the configuration as JSON (``config``).
    """
    path = store
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        _fail("store", "a path (str or path-like)", path)
    path = os.fspath(path)
    zstore.refuse_foreign(OWNER, path)  # before any work: a user's files are never touched
    n_paths = check.integer(OWNER, "n_paths", n_paths, low=1, high=2**32)
    n_steps = check.integer(OWNER, "n_steps", n_steps, low=1)
    seed = check.integer(OWNER, "seed", seed, low=0, high=2**32 - 1)
    stream = check.integer(OWNER, "stream", stream, low=0, high=2**32 - 1)
    storage = check.choice(OWNER, "storage", storage, zstore.STORAGE)
    compression = check.choice(OWNER, "compression", compression, zstore.COMPRESSION)
    keep = check.choice(OWNER, "keep", keep, reductions.KEEPS)
    if not isinstance(overwrite, bool):
        _fail("overwrite", "True or False", overwrite)
    if workers is not None:
        workers = check.integer(OWNER, "workers", workers, low=1)
    device, reason, distributed = _check_execution(scheduler, gpus, device)
    keys = _swept_keys(grid if isinstance(grid, dict) else None,
                       scenarios if isinstance(scenarios, dict) else None)
    hedges = _labels(named_items(OWNER, "hedges", hedges, Strategy), "hedges", keys)
    costs = _labels(named_items(OWNER, "costs", Costs() if costs is None else costs, Costs),
                    "costs", keys)
    try:
        dtype = np.dtype(dtype).name
    except TypeError:
        pass
    dtype = check.choice(OWNER, "dtype", dtype, ("float64", "float32"))

    dims, items = expand(market, book, hedges, costs, n_steps, grid, scenarios)
    attrs = zstore.read_attrs(path)
    resume = attrs is not None and not overwrite
    if resume and chunk_paths is None:
        chunk_paths = zstore.config_of(attrs).get("chunk_paths")  # resume with the store's
    n_cells = len(hedges) * len(costs)
    if chunk_paths is None:
        chunk_paths = _default_chunk(n_paths, n_cells, device, keep)
    chunk_paths = check.integer(OWNER, "chunk_paths", chunk_paths, low=1)
    config = json.loads(json.dumps({
        **({"markets": {k: describe(v) for k, v in market.items()}} if isinstance(market, dict)
           else {"market": describe(market)}),
        "book": describe(as_book(OWNER, book)),
        "hedges": {k: describe(v) for k, v in hedges.items()},
        "costs": {k: describe(v) for k, v in costs.items()},
        "grid": _jsonable(grid or {}), "scenarios": _jsonable(scenarios or {}),
        "n_paths": n_paths, "n_steps": n_steps, "seed": seed, "stream": stream,
        "antithetic": bool(antithetic), "device": device, "precision": dtype,
        "storage": storage, "chunk_paths": chunk_paths, "compression": compression,
        "keep": keep, "gpuhedge_version": __version__,
    }, sort_keys=True))
    # a task's variables: those over path, or the statistics (with the premium) over the cells
    over = ("strategy", "cost") if keep == "stats" else ("path",)

    if resume:
        # nothing is simulated to resume: the store knows its variables
        _check_same(path, zstore.config_of(attrs), config)
        variables = zstore.variables_over(path, over)
    else:
        probes = _probe(items, seed, stream, antithetic, dtype, keep)
        # every scenario's variables: a cost kind may be charged in some only
        variables = {}
        for probe in probes:
            variables.update({name: (storage if keep == "paths" else "float64")
                              if var.dtype.kind == "f" else var.dtype.name
                              for name, var in probe.data_vars.items()
                              if set(over) <= set(var.dims)})
        variables = tuple(variables.items())
    job = _Job(path, tuple(items), tuple(dims), variables, n_paths, chunk_paths, seed, stream,
               bool(antithetic), device, dtype, keep, None)
    memory.check_sweep(OWNER, job, scheduler=scheduler, gpus=gpus, cores=_cores())
    if not resume:
        device_name = "cuda" if device == "cuda" and distributed else backend.device_name(device)
        store_attrs = {**zstore.provenance(), "seed": seed, "stream": stream,
                       "device": device_name, "device_reason": reason, "keep": keep,
                       "precision": dtype, "storage": storage,
                       "n_steps": n_steps, "n_paths": n_paths, "antithetic": int(antithetic),
                       "chunk_paths": chunk_paths, "compression": compression,
                       "scenario_dims": json.dumps(list(dims)),
                       "config": json.dumps(config, sort_keys=True)}
        template, encoding = _template(job, dims, probes, store_attrs, compression,
                                       _scenario_coordinates(dims, items, keys))
        zstore.create(path, template, encoding, chunk_paths=chunk_paths)
    _run_missing(job, n_cells, scheduler=scheduler, gpus=gpus, workers=workers,
                 progress=progress)
    return zstore.open_store(path)


def _check_execution(scheduler, gpus, device):
    """(device, why it was chosen, whether the run is distributed), refusing bad combinations
    before any work."""
    if gpus is not None and gpus != "all" and not (
            isinstance(gpus, (list, tuple)) and gpus
            and all(isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in gpus)):
        _fail("gpus", "'all' or a non-empty list of GPU numbers", gpus)
    distributed = gpus is not None or scheduler not in (None, "threads", "synchronous")
    if distributed and gpus is None and scheduler != "local" and not (
            isinstance(scheduler, str) and "://" in scheduler) and not _is_client(scheduler):
        _fail("scheduler", "None, 'threads', 'synchronous', 'local', a scheduler address like "
              "'tcp://host:8786' or a dask.distributed.Client", scheduler)
    if gpus is not None:
        if device not in (None, "cuda"):
            _fail("device", "'cuda' (or None) with 'gpus'", device)
        _dask_cuda(gpus)  # refuse now, before anything is written
        return "cuda", f"gpus={gpus!r}: one dask-cuda worker per GPU", True
    if not distributed or device in (None, "auto"):
        return (*backend.choose(device, OWNER), distributed)
    # the workers, not this process, must see the device
    device = check.choice(OWNER, "device", device, ("cpu", "cuda"))
    return device, f"device={device!r} requested (the workers' devices)", True


def _probe(items, seed, stream, antithetic, dtype, keep):
    """One path of every scenario on the CPU: validates each before any work, and gives the
    schema (variables, premia, horizon) of the store."""
    probes = []
    for sc in items:
        try:
            probes.append(simulate(sc.market, sc.book, sc.hedges, sc.costs, n_paths=1,
                                   n_steps=sc.n_steps, seed=seed, stream=stream,
                                   antithetic=antithetic, device="cpu", dtype=dtype,
                                   keep=keep))
        except ValueError as e:
            raise ValueError(f"{OWNER}: scenario {sc.label}: {e}") from None
    return probes


def _check_same(path, stored, config):
    """Refuse to resume a store made with another configuration, saying what differs."""
    stored = {"keep": "paths", **stored}  # stores made before ``keep`` hold paths
    diff = _differences(stored, config)
    if diff:
        raise ValueError(
            f"{OWNER}: 'store' {path!r} holds a sweep with another configuration ("
            + "; ".join(diff[:6]) + ("; ..." if len(diff) > 6 else "")
            + "); pass overwrite=True to replace it, or choose another store")


def _run_missing(job, n_cells, *, scheduler, gpus, workers, progress):
    """Run the tasks whose blocks the store does not mark done; whatever ends the run, record
    in the store's attributes how many blocks it holds, and on an interruption say how to
    resume."""
    zstore.remove_partial_files(job.path)
    done = zstore.done(job.path)
    todo = [(s, b) for s, sc in enumerate(job.scenarios) for b in range(done.shape[-1])
            if not done[sc.index + (b,)]]
    if todo and len(todo) < done.size:
        print(f"{OWNER}: resuming {job.path}: {done.size - len(todo)} of {done.size} blocks "
              f"already done", file=sys.stderr)
    interrupted = False
    try:
        if todo:
            _run_tasks(job, todo, n_cells, scheduler=scheduler, gpus=gpus, workers=workers,
                       progress=progress)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        n_done, total = zstore.record_progress(job.path)
        if interrupted:
            print(f"{OWNER}: interrupted; {job.path} holds {n_done} of {total} blocks and is "
                  f"resumable: run the same sweep (same arguments and store) again to finish "
                  f"it", file=sys.stderr)


def _run_tasks(job, todo, n_cells, *, scheduler, gpus, workers, progress):
    client, owned = _client_for(scheduler, gpus)
    try:
        if client is not None:
            # our own workers have one thread each; leave an existing cluster's numba alone
            threads = 1 if (scheduler == "local" or gpus is not None) else None
            job = dataclasses.replace(job, numba_threads=threads)
            plan = None
        elif scheduler == "synchronous":
            plan = "synchronous"
        else:
            plan = _threads_plan(job, len(todo), n_cells, workers)
            job = dataclasses.replace(job, numba_threads=plan[1])
        if progress is None:
            progress = sys.stderr.isatty() and len(todo) > 1
        _execute(job, todo, client=client, plan=plan, progress=progress)
    finally:
        for resource in owned:
            resource.close()
