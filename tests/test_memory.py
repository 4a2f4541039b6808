"""Memory guards: the estimate against measured peaks, refusals under a capped address space,
on a small device and under a Dask worker's limit, the override, bounded sweeps."""

import gc
import json
import os
import re
import subprocess
import sys
import textwrap
import tracemalloc
import types
from pathlib import Path

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge import backend, engine, launches, memory, reductions

MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05)
BOOK = gh.Book([gh.Position(gh.EuropeanCall(strike=100.0, maturity=1 / 12), quantity=-1.0)])
HEDGES = {f"every {k}": gh.DeltaHedge(vol=0.2, every=k) for k in (1, 2, 5, 10)}
COSTS = {"free": gh.Costs(), "5bp+$1": gh.Costs(proportional=5e-4, fixed=1.0)}
ROOT = str(Path(__file__).resolve().parents[1])


@pytest.fixture
def footprints(monkeypatch):
    """The footprints the engine ("run") and the sweep ("task") compute, in call order."""
    seen = {"run": [], "task": []}
    run, tasks = memory.run_footprint, memory.sweep_footprints

    def spy_run(**kw):
        seen["run"].append(run(**kw))
        return seen["run"][-1]

    def spy_tasks(*args):
        out = tasks(*args)
        seen["task"].append(max(out.values(), key=lambda f: f.mapped))
        return out

    monkeypatch.setattr(memory, "run_footprint", spy_run)
    monkeypatch.setattr(memory, "sweep_footprints", spy_tasks)
    return seen


def traced_peak(fn):
    """Peak bytes allocated through Python and NumPy while ``fn`` runs (tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def warm():
    """Compile (or load) the kernels before any peak is measured."""
    gh.simulate(MARKET, BOOK, HEDGES, COSTS, n_paths=256, n_steps=21)
    prices, times = paths(256)
    for record in (False, True):  # the per-date record is a kernel of its own
        gh.hedge_paths(prices, times, BOOK, HEDGES, COSTS, rate=0.05, record=record)


def paths(n):
    rng = np.random.default_rng(3)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (n, 22)), axis=1))
    prices[:, 0] = 100.0
    return prices, np.arange(22) / 21 / 12


@pytest.mark.parametrize("n_paths, chunk_paths", [(20_000, None), (100_000, None),
                                                  (200_000, None), (100_000, 30_000)])
def test_simulate_estimate_within_25_percent_of_the_traced_peak(warm, footprints, n_paths,
                                                                chunk_paths):
    peak = traced_peak(lambda: gh.simulate(MARKET, BOOK, HEDGES, COSTS, n_paths=n_paths,
                                           n_steps=21, chunk_paths=chunk_paths))
    # tracemalloc counts every allocated byte, written or not: the mapped estimate
    assert footprints["run"][-1].mapped == pytest.approx(peak, rel=0.25)
    assert footprints["run"][-1].mapped > 8 * 8 * 8 * n_paths  # the result alone


@pytest.mark.parametrize("n_paths, chunk_paths", [(200_000, 50_000), (100_000, None)])
def test_statistics_estimate_within_25_percent_of_the_traced_peak(warm, footprints, n_paths,
                                                                  chunk_paths):
    peak = traced_peak(lambda: gh.simulate(MARKET, BOOK, HEDGES, COSTS, n_paths=n_paths,
                                           n_steps=21, chunk_paths=chunk_paths, keep="stats"))
    assert footprints["run"][-1].mapped == pytest.approx(peak, rel=0.25)


@pytest.mark.parametrize("n_paths, record", [(30_000, False), (120_000, False), (5_000, True)])
def test_hedge_paths_estimate_within_25_percent_of_the_traced_peak(warm, footprints, n_paths,
                                                                   record):
    prices, times = paths(n_paths)
    peak = traced_peak(lambda: gh.hedge_paths(prices, times, BOOK, HEDGES, COSTS, rate=0.05,
                                              record=record))
    assert footprints["run"][-1].mapped == pytest.approx(peak, rel=0.25)
    assert footprints["run"][-1].held == prices.nbytes  # the validated copy, made before the check


def status(field):
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+)", text, re.MULTILINE).group(1)) * 1024


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_written_estimate_within_25_percent_of_the_resident_peak(warm, footprints):
    """Without costs at a level the kernel leaves its cost pages unwritten: the resident
    peak is the written estimate, well under the mapped one."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, the resident peak
    before = status("VmRSS")
    ds = gh.simulate(MARKET, BOOK, HEDGES, COSTS, n_paths=1_000_000, n_steps=21)
    grown = status("VmHWM") - before
    del ds
    assert footprints["run"][-1].host == pytest.approx(grown, rel=0.25)
    assert footprints["run"][-1].host < 0.75 * footprints["run"][-1].mapped


def test_sweep_task_estimate_within_25_percent_of_the_traced_peak(warm, footprints, tmp_path):
    def run(store, chunk):
        gh.sweep(MARKET, BOOK, HEDGES, COSTS, n_paths=4 * chunk, n_steps=21, store=store,
                 chunk_paths=chunk, scheduler="synchronous")

    run(tmp_path / "warm.zarr", 1024)  # imports and first writes
    for chunk in (2**15, 2**17):
        peak = traced_peak(lambda: run(tmp_path / f"{chunk}.zarr", chunk))
        assert footprints["task"][-1].mapped == pytest.approx(peak, rel=0.25)


CAPPED = textwrap.dedent("""
    import json, re, resource, sys
    sys.path.insert(0, {root!r})
    import gpuhedge as gh

    market = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05)
    book = gh.Book.short(gh.EuropeanCall(100.0, 1 / 12), 1.0)
    hedges = [gh.DeltaHedge(vol=0.2, every=k) for k in (1, 2, 5, 10)]
    run = lambda n: gh.simulate(market, book, hedges, n_paths=n, n_steps=21)
    run(1000)  # kernels loaded and threads started before the cap
    size = int(re.search(r"VmSize:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
    cap = size * 1024 + 1_500_000_000
    resource.setrlimit(resource.RLIMIT_AS, (cap, resource.getrlimit(resource.RLIMIT_AS)[1]))
    out = {{"small": float(run(200_000).pnl.mean())}}
    try:
        run(8_000_000)  # about 2.3 GB mapped, more than the 1.5 GB left under the cap
        out["large"] = "ran"
    except gh.MemoryBudgetError as e:
        out["large"] = ["MemoryBudgetError", str(e)]
    except MemoryError as e:
        out["large"] = ["MemoryError", str(e)]
    print(json.dumps(out))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
@pytest.mark.parametrize("guard", ["on", "off"])
def test_a_capped_address_space_gets_the_package_error(guard):
    """Under ``RLIMIT_AS`` a run larger than the cap is refused by the package; with the guard
    off the same run dies with NumPy's bare MemoryError (what the guard replaces)."""
    env = {**os.environ, memory.ENV: "off" if guard == "off" else ""}
    proc = subprocess.run([sys.executable, "-c", CAPPED.format(root=ROOT)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert np.isfinite(out["small"])  # a run that fits still runs under the cap
    kind, message = out["large"]
    if guard == "off":
        assert kind == "MemoryError"
        return
    assert kind == "MemoryBudgetError"
    assert message.startswith("simulate: 8,000,000 paths would hold about 2.")
    assert "of host address space" in message and "RLIMIT_AS" in message
    assert "gpuhedge.sweep(" in message and memory.ENV in message
    fit = int(re.search(r"at most about ([\d,]+) paths", message).group(1).replace(",", ""))
    assert 1_000_000 < fit < 8_000_000


def test_refusal_names_estimate_available_memory_and_ways_out(monkeypatch):
    monkeypatch.setattr(memory, "host_memory", lambda: [(10**9, "the machine's available "
                                                                "memory")])
    monkeypatch.setattr(memory, "address_space", lambda: [])
    with pytest.raises(gh.MemoryBudgetError) as info:
        gh.simulate(MARKET, BOOK, HEDGES, COSTS, n_paths=4_000_000, n_steps=21)
    message = str(info.value)
    assert message.startswith("simulate: 4,000,000 paths would hold about 1.")
    assert "of host memory, more than 80% of the 1.0 GB of the machine's available memory" \
        in message
    assert "run at most about" in message and "gpuhedge.sweep(..., store=...)" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, MemoryError)
    fit = int(re.search(r"at most about ([\d,]+) paths", message).group(1).replace(",", ""))
    assert 1_000_000 < fit < 4_000_000


def test_hedge_paths_is_guarded_too(monkeypatch):
    prices, times = paths(1000)
    monkeypatch.setenv(memory.ENV, "100kB")
    with pytest.raises(gh.MemoryBudgetError, match=r"^hedge_paths: 1,000 paths would hold "
                       r"about .* more than the budget 100\.0 kB set by GPUHEDGE_MAX_MEMORY; "
                       r"run at most about \d+ paths per call; or"):
        gh.hedge_paths(prices, times, BOOK, HEDGES, COSTS, rate=0.05)


@pytest.mark.parametrize("text, value", [("48GB", 48e9), ("512MiB", 512 * 2**20),
                                         ("1e9", 1e9), ("2 gib", 2 * 2**30), ("off", np.inf),
                                         ("", None)])
def test_override_values(monkeypatch, text, value):
    monkeypatch.setenv(memory.ENV, text)
    assert memory.override("simulate") == value


@pytest.mark.parametrize("text", ["lots", "-1GB", "0", "1 GX"])
def test_bad_override_is_refused(monkeypatch, text):
    monkeypatch.setenv(memory.ENV, text)
    with pytest.raises(ValueError, match=rf"^simulate: the environment variable "
                       rf"GPUHEDGE_MAX_MEMORY must be a size such as '48GB', '512MiB' or a "
                       rf"number of bytes, or 'off'; got '{text}'$"):
        gh.simulate(MARKET, BOOK, HEDGES, n_paths=10, n_steps=21)


def test_override_replaces_the_measured_memory(monkeypatch):
    monkeypatch.setattr(memory, "host_memory", lambda: [(10**6, "the machine's available "
                                                                "memory")])
    with pytest.raises(gh.MemoryBudgetError, match="80% of the 1.0 MB of the machine's"):
        gh.simulate(MARKET, BOOK, HEDGES, COSTS, n_paths=10_000, n_steps=21)
    monkeypatch.setenv(memory.ENV, "1GB")  # the user knows better
    assert gh.simulate(MARKET, BOOK, HEDGES, COSTS, n_paths=10_000, n_steps=21).sizes[
        "path"] == 10_000
    monkeypatch.setenv(memory.ENV, "off")
    gh.simulate(MARKET, BOOK, HEDGES, COSTS, n_paths=10_000, n_steps=21)


def test_a_containers_cgroup_limit_bounds_host_memory(monkeypatch):
    files = {"/sys/fs/cgroup/memory.max": "1000000000\n",
             "/sys/fs/cgroup/memory.current": "400000000\n"}
    monkeypatch.setattr(memory, "_read", files.get)
    assert (600_000_000, "the cgroup's memory limit") in memory.host_memory()
    files["/sys/fs/cgroup/memory.max"] = "max\n"  # no limit
    assert [source for _, source in memory.host_memory()] == [
        "the machine's available memory"]


# ----------------------------------------------------------------------------- device
def stub_cupy(monkeypatch, free, pooled=0):
    runtime = types.SimpleNamespace(memGetInfo=lambda: (free, 80 * 2**30))
    pool = types.SimpleNamespace(free_bytes=lambda: pooled)
    cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime),
                                 get_default_memory_pool=lambda: pool)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setattr(backend, "_simulator", lambda: False)


def test_device_free_memory_counts_cupys_pool(monkeypatch):
    stub_cupy(monkeypatch, free=3 * 2**30, pooled=2**30)
    assert backend.device_free_memory() == 4 * 2**30


@pytest.mark.parametrize("available, scratch", [(40 * 2**30, 2**30), (2**30, 2**28),
                                                (10 * 2**20, 64 * 2**20)])
def test_cpu_statistics_chunk_follows_available_memory(monkeypatch, available, scratch):
    monkeypatch.setattr(memory, "host_memory", lambda: [(available, "the machine's")])
    assert memory.scratch_bytes() == scratch
    costs_table = engine.cost_table(COSTS, 0.05, 0.2)
    per_path = 8 * 8 * 4 * 2 + 8 + reductions.work_bytes(8, 1)
    chunk, threads = engine._plan("test", "cpu", 10**9, None, n_strategies=4,
                                  costs_table=costs_table,
                                  hedgers=np.zeros((4, engine._math.N_HEDGER)),
                                  dtype=np.dtype("float64"), n_times=22, n_options=1,
                                  keep="stats")
    assert (chunk, threads) == (max(1024, scratch // per_path // 1024 * 1024), None)


@pytest.mark.parametrize("free", [40 * 2**30, 2**30, 10 * 2**20])
def test_gpu_chunk_follows_free_device_memory(monkeypatch, free):
    """Half the free memory, the 4 hedger rows' state (not 4 x 2 cells') counted: 8 x 4 x 26
    state, 8 x 8 x 8 outputs and the spot, 1,352 bytes a path."""
    stub_cupy(monkeypatch, free)
    monkeypatch.setattr(backend, "device_facts",
                        lambda: launches.DeviceFacts(free_bytes=backend.device_free_memory(),
                                                     sm_count=132))
    costs_table = engine.cost_table(COSTS, 0.05, 0.2)
    kw = dict(n_strategies=4, costs_table=costs_table,
              hedgers=np.zeros((4, engine._math.N_HEDGER)), dtype=np.dtype("float64"),
              n_times=22, n_options=1)
    chunk, threads = engine._plan("test", "cuda", 10**9, None, **kw)
    fixed = 8 * 22 * 5 + 22 * 4
    assert threads == 128 and chunk % 128 == 0
    most = int((free / 2 - fixed) // 1352) // 128 * 128
    assert chunk <= most and -(-10**9 // chunk) == -(-10**9 // most)  # balanced, fewest
    memory.check_run("simulate", device="cuda", n_paths=chunk, chunk_paths=chunk, **{
        k: v for k, v in kw.items() if k != "n_strategies"}, n_strategies=4)


def test_device_check_asks_for_a_smaller_chunk(monkeypatch):
    stub_cupy(monkeypatch, free=100 * 2**20)
    costs_table = engine.cost_table(COSTS, 0.05, 0.2)
    hedgers = np.zeros((8, engine._math.N_HEDGER))
    kw = dict(device="cuda", n_paths=10**6, n_strategies=4, costs_table=costs_table,
              hedgers=hedgers, dtype=np.dtype("float64"), n_times=22, n_options=1)
    # 8 rows x 26 state rows, 8 x 8 outputs and the spot: 2,184 bytes per path
    memory.check_run("simulate", chunk_paths=30_000, **kw)  # 65.5 MB: fits
    with pytest.raises(gh.MemoryBudgetError) as info:
        memory.check_run("simulate", chunk_paths=100_000, **kw)
    message = str(info.value)
    assert message.startswith("simulate: one launch of 100,000 paths would hold about 218.4 "
                              "MB of device memory, more than 80% of the 104.9 MB of free "
                              "device memory; pass chunk_paths=38,408 or less; or")
    memory.check_run("simulate", chunk_paths=38_408, **kw)


# ----------------------------------------------------------------------------- sweeps
def test_sweep_refuses_a_task_too_large_before_writing(monkeypatch, tmp_path):
    monkeypatch.setenv(memory.ENV, "20MB")
    kw = dict(n_paths=2**17, n_steps=21, scheduler="synchronous")
    store = tmp_path / "s.zarr"
    with pytest.raises(gh.MemoryBudgetError) as info:
        gh.sweep(MARKET, BOOK, HEDGES, COSTS, store=store, chunk_paths=2**16, **kw)
    message = str(info.value)
    assert message.startswith("sweep: one task (65,536 paths of scenario the only scenario) "
                              "would hold about ")
    assert not store.exists()  # refused before the store is made
    fit = int(re.search(r"pass chunk_paths=([\d,]+) or less", message).group(1)
              .replace(",", ""))
    assert fit & (fit - 1) == 0 and 2**13 <= fit < 2**16
    ds = gh.sweep(MARKET, BOOK, HEDGES, COSTS, store=store, chunk_paths=fit, **kw)
    assert ds.sizes["path"] == 2**17


def test_sweep_checks_the_dask_workers_memory_limit(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=1,
                                  memory_limit="40MB", dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        with pytest.raises(gh.MemoryBudgetError, match=r"more than 80% of the 40\.0 MB of "
                           r"Dask's memory_limit of a worker; pass chunk_paths="):
            gh.sweep(MARKET, BOOK, HEDGES, COSTS, n_paths=2**17, n_steps=21,
                     store=tmp_path / "s.zarr", chunk_paths=2**16, scheduler=client)
    assert not (tmp_path / "s.zarr").exists()


def test_local_cluster_memory_is_shared_by_its_workers():
    from distributed.system import MEMORY_LIMIT

    memories = memory.worker_memory("local", None, cores=4)["host memory"]
    assert memories[0] == (MEMORY_LIMIT / 4, "Dask's memory_limit of a local worker")
    assert memories[1][1] == "the machine's available memory shared by 4 workers"
    assert memory.worker_memory(None, [0, 1], cores=4)["host memory"][0][0] == MEMORY_LIMIT / 2


BOUNDED = textwrap.dedent("""
    import json, re, sys
    sys.path.insert(0, {root!r})
    import gpuhedge as gh
    from gpuhedge import memory

    def status(field):
        text = open("/proc/self/status").read()
        return int(re.search(field + r":\\s+(\\d+)", text).group(1)) * 1024

    market = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05)
    book = gh.Book.short(gh.EuropeanCall(100.0, 1 / 12), 1.0)
    hedges = {{f"every {{k}}": gh.DeltaHedge(vol=0.2, every=k) for k in (1, 2, 5, 10)}}
    costs = {{"free": gh.Costs(), "5bp+$1": gh.Costs(proportional=5e-4, fixed=1.0)}}
    seen = []
    tasks = memory.sweep_footprints
    memory.sweep_footprints = lambda *a: seen.append(tasks(*a)) or seen[-1]
    kw = dict(n_steps=21, chunk_paths={chunk}, scheduler="synchronous")
    gh.sweep(market, book, hedges, costs, n_paths={chunk}, store={warm!r}, **kw)
    open("/proc/self/clear_refs", "w").write("5")  # resets VmHWM, the resident peak
    before = status("VmRSS")
    ds = gh.sweep(market, book, hedges, costs, n_paths={n_paths}, store={store!r}, **kw)
    print(json.dumps({{"grown": status("VmHWM") - before, "paths": ds.sizes["path"],
                      "task": list(seen[-1].values())[0].host}}))
""")


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_a_sweep_far_larger_than_a_task_keeps_a_bounded_peak(tmp_path):
    """The sweep's per-path results (what ``simulate`` would hold for all paths) are 32 times
    one task's; the resident peak grows by about one task, not by the whole."""
    chunk, n_paths = 2**15, 2**20
    script = BOUNDED.format(root=ROOT, chunk=chunk, n_paths=n_paths,
                            warm=str(tmp_path / "warm.zarr"), store=str(tmp_path / "s.zarr"))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["paths"] == n_paths
    costs_table = engine.cost_table(COSTS, 0.05, 0.2)
    whole = memory.run_footprint(n_paths=n_paths, chunk_paths=n_paths, n_strategies=4,
                                 costs_table=costs_table, n_hedgers=8, n_rows=26,
                                 dtype="float64", device="cpu", n_times=22, n_options=1).host
    assert whole > 15 * out["task"]
    assert out["grown"] < 3 * out["task"]
