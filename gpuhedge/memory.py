"""Memory guards: what a run will hold, what it may take, and one refusal before it starts.

``simulate`` and ``hedge_paths`` keep every path's results on the host until they return, and
a sweep task keeps one block of paths; the bytes are known from the sizes before anything is
allocated. ``np.zeros`` maps its pages lazily, so without a check an allocation larger than
the machine succeeds and the operating system kills the process (or a neighbour) midway, when
the kernel writes the pages. A run is refused instead, with ``MemoryBudgetError``, when its
estimate passes ``FRACTION`` of what is available:

* host memory: the available memory of the machine (psutil; on Linux ``MemAvailable``) and,
  in a container, the cgroup's limit minus its usage; this bounds the bytes a run *writes*
  (pages of ``np.zeros`` never written are never resident);
* host address space: ``RLIMIT_AS`` minus the process's mapped size (``VmSize``) and
  ``RLIMIT_DATA`` minus ``VmData``, where such limits are set; this bounds every byte a run
  *maps*, written or not (numba's threads and LLVM map a lot of it before any run);
* device memory: CuPy's free memory plus the free blocks of CuPy's pool;
* a sweep task: the memory limit of a Dask worker, or the machine's share per worker.

The environment variable ``GPUHEDGE_MAX_MEMORY`` overrides the guard: a size (``"48GB"``,
``"512MiB"``, a number of bytes) is the budget of host and device memory in place of the
measured memory (a ``ulimit -v`` still applies), and ``"off"`` turns every check off.
"""

import math
import os
import re
import sys
from dataclasses import dataclass

import numpy as np

from . import backend, launches
from .kernels import _math

FRACTION = 0.8   # share of the available memory a run may take
ENV = "GPUHEDGE_MAX_MEMORY"
# Default host scratch of one CPU launch with keep="stats": a share of the available memory,
# bounded (a larger launch gains nothing once the cores are busy; a smaller one adds launches).
# A GPU's launches are planned by ``launches.plan``.
SCRATCH_SHARE = 0.25
SCRATCH_MIN, SCRATCH_MAX = 64 * 2**20, 2**30
# Cost fields of the result the kernel writes only at the levels that charge them.
COST_FIELDS = (_math.OUT_COST, _math.OUT_SPREAD, _math.OUT_FEE, _math.OUT_IMPACT,
                _math.OUT_FUNDING)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class MemoryBudgetError(ValueError, MemoryError):
    """A run refused before it starts: it would hold more memory than is available.

    A ``ValueError`` (the request does not fit this machine, like any other bad argument)
    and a ``MemoryError``."""


@dataclass(frozen=True)
class Footprint:
    """Bytes a run holds at its peak.

    Attributes
    ----------
    host : int
        Host bytes written (resident), temporaries alive at the peak included.
    mapped : int
        Host address space mapped: ``host`` plus the zero pages never written.
    device : int
        Bytes on the CUDA device (0 on the CPU; under numba's simulator "device" arrays are
        host arrays and counted in ``host``).
    held : int
        Part of ``host`` and ``mapped`` already allocated when the check runs (the validated
        copy of supplied prices).
    """
    host: int
    mapped: int
    device: int = 0
    held: int = 0


def written_fields(costs_table, n_strategies):
    """Result fields x (strategy, cost) cells the kernel writes: P&L, trades and turnover
    everywhere, each cost field only at the levels that charge it (``_math.charges``)."""
    per_strategy = sum(3 + sum(bool(_math.charges(costs_table, c, f)) for f in COST_FIELDS)
                       for c in range(costs_table.shape[0]))
    return n_strategies * per_strategy


def cell_path_bytes(keep):
    """Host bytes a sweep task holds per strategy-cost cell and path of one block: a block's
    float64 results and their storage copies (``keep="paths"``), or one launch's float64
    outputs and the reduction's temporaries (``keep="stats"``, on a CPU)."""
    from . import reductions  # imports the engine's modules, which import this one

    return 32 if keep == "paths" else 8 * _math.N_OUT + reductions.work_bytes(1, 1)


def run_footprint(*, n_paths, chunk_paths, n_strategies, costs_table, n_hedgers, n_rows,
                  dtype, device, n_times, n_options, supplied=False, keep="paths",
                  storage="float64", record=False):
    """The footprint of one ``simulate`` / ``hedge_paths`` call (``gpuhedge.engine``).

    Host: the result, fields x strategy x cost x path (zeroed, written where the kernel writes):
    float64 from one CPU launch, with the Dataset's int32 trades and ``storage`` copies; in
    ``storage`` precision and int32 trades when launches are copied in; the finiteness mask
    of the P&L; the terminal spot and the path coordinate; the per-step
    tables; a launch's outputs copied back from the device; supplied prices in ``dtype``
    (and their validated float64 copy, ``held``); with ``record``, the per-date record
    (``_math.N_REC`` float64 fields per date and cell, and the Dataset's int32 trades).
    Device: a launch's state, outputs, record, spot, supplied prices and per-step tables.

    With ``keep="stats"`` nothing per path of the whole run: one launch's outputs and the
    reduction's temporaries where the paths are (host on the CPU), and on the host what the
    reduction holds across launches (``reductions.held_bytes``).
    """
    from . import reductions  # imports the engine's modules, which import this one

    n, chunk = int(n_paths), int(min(chunk_paths, n_paths))
    itemsize = np.dtype(dtype).itemsize
    cells = n_strategies * costs_table.shape[0]
    fields = _math.N_OUT * cells
    simulator = device == "cuda" and backend._simulator()
    chunked = device == "cuda" or chunk < n
    tables = 8 * n_times * (3 + 2 * n_options)       # grid and the book's sqrt(tau), e^{-q tau}
    per_date = _math.N_REC * cells * n_times if record else 0
    fields += per_date  # the record is written and copied back like the outputs
    prices = itemsize * n * n_times if supplied else 0
    held = 8 * n * n_times if supplied else 0
    outputs = (8 * fields + itemsize) * chunk        # one launch's outputs and spot
    if keep == "stats":
        n_launches = -(-n // chunk) if chunk else 0
        work = outputs + reductions.work_bytes(cells, chunk)
        result = written = dataset = launch = 0
        held_stats = reductions.held_bytes(n, cells, n_launches) if n else 0
        on_host = device != "cuda"
    else:
        floats = written_fields(costs_table, n_strategies) - cells  # all but the trades
        storage = np.dtype(storage).itemsize
        if chunked:  # downloaded by field: floats in storage precision, int32 trades
            result = (storage * (_math.N_OUT - 1) + 4) * cells * n + 8 * per_date * n
            written = (storage * floats + 4 * cells) * n
            dataset = cells * n + (itemsize + 8) * n     # P&L mask; spot, path index
        else:  # the kernel's float64 result (and record), cast for the Dataset
            result = 8 * fields * n
            written = 8 * (floats + cells) * n
            dataset = ((4 * floats if storage == 4 else 0) + 5 * cells) * n \
                + (itemsize + 8) * n                      # casts, int32 trades, mask; spot, path
        written += 8 * per_date * n
        dataset += 4 * (per_date // _math.N_REC) * n      # the record's int32 trades to date
        launch = outputs if chunked else 0
        work = held_stats = 0
        on_host = False
    host = written + dataset + tables + prices + held + held_stats + (work if on_host else 0)
    mapped = result + dataset + tables + prices + held + held_stats + (work if on_host else 0)
    scratch = 0
    if device == "cuda":
        per_path, fixed = launches.device_bytes(
            n_hedgers=n_hedgers, n_rows=n_rows, cells=cells, n_times=n_times,
            n_options=n_options, itemsize=itemsize, record=record, supplied=supplied,
            temporaries=reductions.work_bytes(cells, 1) if keep == "stats" else 0)
        scratch = per_path * chunk + fixed
    if simulator:  # the "device" arrays are host NumPy arrays, the outputs not copied back
        host, mapped = host + scratch, mapped + scratch
        scratch = 0
    else:
        host, mapped = host + launch, mapped + launch
    return Footprint(int(host), int(mapped), int(scratch), int(held))


# ----------------------------------------------------------------------------- available
def override(owner):
    """The budget set by ``GPUHEDGE_MAX_MEMORY``: bytes, ``math.inf`` for "off", or None."""
    text = os.environ.get(ENV)
    if text is None or not text.strip():
        return None
    value = text.strip().lower()
    if value == "off":
        return math.inf
    match = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgt]i?b|b)?", value)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"{owner}: the environment variable {ENV} must be a size such as "
                         f"'48GB', '512MiB' or a number of bytes, or 'off'; got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2) or ""]


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _status_bytes(field):
    """A ``kB`` field of ``/proc/self/status`` in bytes (None where there is none)."""
    text = _read("/proc/self/status") or ""
    match = re.search(rf"^{field}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def host_memory():
    """[(bytes, where it comes from)]: host memory a run may write to, the machine's (psutil;
    on Linux ``MemAvailable``) and, in a container, its cgroup's limit less its usage."""
    import psutil

    out = [(psutil.virtual_memory().available, "the machine's available memory")]
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read(limit_file), _read(usage_file)
        if limit and usage and limit.strip().isdigit() and usage.strip().isdigit():
            # cgroup v1 writes "no limit" as a huge number: min() leaves it out
            out.append((max(0, int(limit) - int(usage)), "the cgroup's memory limit"))
    return out


def address_space():
    """[(bytes, where it comes from)]: address space left under ``RLIMIT_AS`` and
    ``RLIMIT_DATA`` (empty where neither is set)."""
    if sys.platform == "win32":
        return []
    import resource

    out = []
    for name, field in (("RLIMIT_AS", "VmSize"), ("RLIMIT_DATA", "VmData")):
        soft = resource.getrlimit(getattr(resource, name))[0]
        used = _status_bytes(field)
        if soft != resource.RLIM_INFINITY and used is not None:
            out.append((max(0, soft - used), f"{name} less the {field} already mapped"))
    return out


def scratch_bytes():
    """Bytes of one CPU launch with ``keep="stats"`` when the caller gives no ``chunk_paths``:
    a share of the machine's available memory, within [64 MiB, 1 GiB]."""
    return int(min(SCRATCH_MAX, max(SCRATCH_MIN, SCRATCH_SHARE * host_memory()[0][0])))


# ----------------------------------------------------------------------------- checks
def size(n):
    """Bytes for people: '41.0 GB', '512.0 MB', '3.2 kB' (powers of 1000)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def _needs(footprint):
    """Bytes a footprint still needs of each memory when the check runs."""
    return {"host memory": footprint.host - footprint.held,
            "host address space": footprint.mapped - footprint.held,
            "device memory": footprint.device}


def _over(footprint, budget, memories):
    """The limit a footprint passes by the largest factor, as (what, bytes needed, bytes
    allowed, where the limit comes from), or None when it fits them all. ``memories``:
    {"host memory": [...], "host address space": [...], "device memory": [...]} of (bytes,
    source); ``budget`` (the override), when set, replaces the measured host and device
    memory (an address-space limit is the operating system's and stays)."""
    needs = _needs(footprint)
    limits = []
    for what, available in memories.items():
        if budget is not None and what != "host address space":
            available = [(budget, None)]
        for have, source in available:
            text = (f"{FRACTION:.0%} of the {size(have)} of {source}" if source else
                    f"the budget {size(have)} set by {ENV}")
            limits.append(((have if source is None else FRACTION * have), what, text))
    worst = None
    for allowed, what, text in limits:
        need = needs[what]
        if need > allowed and (worst is None or allowed / need < worst[2] / worst[1]):
            worst = (what, need, allowed, text)
    return worst


def _refused(owner, subject, over, advice):
    what, need, _, text = over
    return MemoryBudgetError(
        f"{owner}: {subject} would hold about {size(need)} of {what}, more than {text}; "
        f"{advice}; or, if you know it fits, set the environment variable {ENV} to a larger "
        f"budget (e.g. '64GB') or to 'off'")


def check_run(owner, *, device, n_paths, chunk_paths, n_strategies, costs_table, hedgers,
              dtype, n_times, n_options, supplied=False, keep="paths", storage="float64",
              record=False):
    """Refuse a ``simulate`` / ``hedge_paths`` call that would not fit, before it allocates,
    with ``MemoryBudgetError``; the arguments are the engine's tables and sizes
    (``run_footprint``). The advice names the paths (or, on the device, the paths per
    launch) that fit: the footprint is affine in them."""
    budget = override(owner)
    if budget == math.inf:
        return
    kw = dict(n_strategies=n_strategies, costs_table=costs_table, n_hedgers=hedgers.shape[0],
              n_rows=_math.N_STATE + int(hedgers[:, _math.HEDGER_LAG].max()), dtype=dtype,
              device=device, n_times=n_times, n_options=n_options, supplied=supplied,
              keep=keep, storage=storage, record=record)
    memories = {"host memory": host_memory(), "host address space": address_space()}
    if device == "cuda" and not backend._simulator():
        memories["device memory"] = [(backend.device_free_memory(), "free device memory")]
    over = _over(run_footprint(n_paths=n_paths, chunk_paths=chunk_paths, **kw), budget,
                 memories)
    if over is None:
        return
    what, need, allowed, _ = over
    fixed = _needs(run_footprint(n_paths=0, chunk_paths=0, **kw))[what]
    if keep == "stats":  # bounded by the launch's size, not the run's (nearly)
        chunk = min(chunk_paths, n_paths)
        subject = f"{n_paths:,} paths in launches of {chunk:,}"
        advice = "pass a smaller chunk_paths"
    elif what == "device memory":
        chunk = min(chunk_paths, n_paths)
        fit = max(1, int(chunk * (allowed - fixed) / (need - fixed)))
        subject = f"one launch of {chunk:,} paths"
        advice = f"pass chunk_paths={fit:,} or less"
    else:
        fit = max(0, int(n_paths * (allowed - fixed) / (need - fixed)))
        subject = f"{n_paths:,} paths"
        advice = f"run at most about {fit:,} paths per call"
        if owner == "simulate":
            advice += (", or simulate(..., keep='stats'), which keeps no per-path result, or "
                       "gpuhedge.sweep(..., store=...), which streams the paths through "
                       "chunks of bounded memory into a Zarr store")
    raise _refused(owner, subject, over, advice)


# ----------------------------------------------------------------------------- sweeps
def sweep_footprints(job):
    """{scenario label: footprint of one task of ``job`` (``gpuhedge.sweep._Job``)}: the
    engine's run on ``chunk_paths`` paths, the storage copies of its per-path variables
    (``terminal_spot`` one value per path, the others one per strategy and cost level; the
    engine's floats are float64) and the write's buffers. On a GPU a launch's outputs come
    back in pieces no larger than the task's: counted as the task's, an upper bound. With
    ``keep="stats"`` a task is ``simulate(..., keep="stats")`` on all ``n_paths`` paths in
    launches of ``chunk_paths`` (``run_footprint``), and its write a few values per cell."""
    from .engine import as_book, cost_table, kernel_rows  # the engine imports this module

    stats = job.keep == "stats"
    out, n = {}, job.n_paths if stats else min(job.chunk_paths, job.n_paths)
    for sc in job.scenarios:
        costs_table = cost_table(sc.costs, sc.market.rate, sc.market.reference_vol)
        run = run_footprint(
            n_paths=n, chunk_paths=min(job.chunk_paths, n), n_strategies=len(sc.hedges),
            costs_table=costs_table, n_hedgers=kernel_rows(sc.hedges, sc.costs),
            n_rows=_math.N_STATE + max(c.lag for c in sc.costs.values()), dtype=job.dtype,
            device=job.device, n_times=sc.n_steps + 1,
            n_options=len(as_book("sweep", sc.book).positions), keep=job.keep)
        cells = len(sc.hedges) * len(sc.costs)
        if stats:  # the statistics and their write: two copies of each, float64 per cell
            extra = 2 * 8 * cells * len(job.variables)
            out[sc.label] = Footprint(run.host + extra, run.mapped + extra, run.device)
            continue
        stored = {name: np.dtype(storage).itemsize * (1 if name == "terminal_spot" else cells)
                  * n for name, storage in job.variables}
        copies = sum(stored[name] for name, storage in job.variables
                     if np.dtype(storage).kind == "f" and np.dtype(storage) != np.float64)
        # the region write (xarray's encoding, Zarr's buffers) holds about two copies of one
        # variable at a time (measured with tracemalloc)
        extra = copies + 2 * max(stored.values())
        out[sc.label] = Footprint(run.host + extra, run.mapped + extra, run.device)
    return out


def worker_memory(scheduler, gpus, cores):
    """{"host memory": [...], "host address space": [...]} of (bytes, source): what one
    sweep task may take where it runs.

    The threaded and synchronous schedulers run tasks in this process (``host_memory``,
    ``address_space``); a local cluster has one worker process per core (``cores``), or per
    GPU, on this machine, each with Dask's automatic ``memory_limit`` (the
    machine's limit over the workers) and a share of what is available; a cluster's
    workers report their ``memory_limit`` (0 where none is set).
    """
    if gpus is None and (scheduler is None or scheduler in ("threads", "synchronous")):
        return {"host memory": host_memory(), "host address space": address_space()}
    if gpus is not None or scheduler == "local":
        from distributed.system import MEMORY_LIMIT

        n_workers = cores if gpus is None else (
            len(gpus) if gpus != "all" else max(1, backend.device_count()))
        share = [(have / n_workers, f"{source} shared by {n_workers} workers")
                 for have, source in host_memory()]
        return {"host memory": [(MEMORY_LIMIT / n_workers,
                                 "Dask's memory_limit of a local worker"), *share]}
    from distributed import Client

    if isinstance(scheduler, Client):
        limits = _limits(scheduler)
    else:
        with Client(scheduler) as client:
            limits = _limits(client)
    return {"host memory": [(min(limits), "Dask's memory_limit of a worker")] if limits
            else []}


def _limits(client):
    workers = client.scheduler_info().get("workers", {}).values()
    return [w["memory_limit"] for w in workers if w.get("memory_limit")]


def check_sweep(owner, job, *, scheduler, gpus, cores):
    """Refuse a sweep whose largest task would not fit where it runs (``MemoryBudgetError``,
    naming the ``chunk_paths`` to use), before any task is submitted. A task's device memory
    is checked by ``simulate`` on its worker, whose free memory only the worker knows."""
    budget = override(owner)
    if budget == math.inf:
        return
    footprints = sweep_footprints(job)
    label, largest = max(footprints.items(), key=lambda item: item[1].host)
    over = _over(largest, budget, worker_memory(scheduler, gpus, cores))
    if over is None:
        return
    _, need, allowed, _ = over
    chunk = job.chunk_paths
    if job.keep == "stats":  # bounded by the launch's size, not the scenario's (nearly)
        raise _refused(owner, f"one task ({job.n_paths:,} paths of scenario {label} in "
                       f"launches of {min(chunk, job.n_paths):,})", over,
                       "pass a smaller chunk_paths (a store made with another chunk_paths is "
                       "resumed only with overwrite=True, which starts it again)")
    if need > chunk * allowed:  # not even one path per task fits
        advice = "even one path per task is too much; sweep fewer strategies or cost levels"
    else:
        fit = 2 ** int(math.log2(chunk * allowed / need))
        advice = (f"pass chunk_paths={fit:,} or less (a store made with another chunk_paths "
                  f"is resumed only with overwrite=True, which starts it again)")
    raise _refused(owner, f"one task ({chunk:,} paths of scenario {label})", over, advice)
