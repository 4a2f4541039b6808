"""The GPU launch plan (``gpuhedge.launches``) on made-up devices: memory, waves, balance,
threads per block; the engine's use of it with the kernel's hedger rows."""

import dataclasses
import sys
import types

import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge import backend, engine, launches, memory

H100 = launches.DeviceFacts(free_bytes=80 * 10**9, sm_count=132)
SMALL = launches.DeviceFacts(free_bytes=4 * 2**30, sm_count=20)
STEPS = 253  # grid points of a year of daily steps


def sizes(n_hedgers, cells, **kw):
    return launches.device_bytes(n_hedgers=n_hedgers, n_rows=26, cells=cells, n_times=STEPS,
                                 n_options=1, **kw)


def parts(plan, n_paths):
    """Paths of each launch, as the engine cuts them."""
    return [n for _, n in engine._launches(n_paths, plan.paths)]


def cap(facts, per_path, fixed, threads=128):
    """Whole blocks of paths in the device share."""
    paths = int((launches.DEVICE_SHARE * facts.free_bytes - fixed) // per_path)
    return paths - paths % threads


def resident(facts, plan):
    return facts.sm_count * launches.blocks_per_sm(facts, plan.threads)


def test_occupancy_from_registers():
    # 255 registers: 8,192 per warp, 8 warps per multiprocessor
    assert [launches.blocks_per_sm(H100, t) for t in (64, 128, 256, 512)] == [4, 2, 1, 0]
    assert launches.threads_per_block(H100) == 128
    # 184 registers (ptxas, sm_90): 5,888 per warp, 11 warps: 5 blocks of 64, 2 of 128
    known = dataclasses.replace(H100, registers_per_thread=184)
    assert [launches.blocks_per_sm(known, t) for t in (64, 128, 256)] == [5, 2, 1]
    assert launches.threads_per_block(known) == 64
    # few registers: the threads per multiprocessor bound, 128 stays
    light = dataclasses.replace(H100, registers_per_thread=32)
    assert launches.blocks_per_sm(light, 128) == 16
    assert launches.threads_per_block(light) == 128


def test_device_bytes_count_hedger_rows_not_cells():
    per_path, fixed = sizes(16, 64)
    assert per_path == 8 * 16 * 26 + 8 * 8 * 64 + 8
    assert fixed == 8 * STEPS * 5 + STEPS * 16
    assert sizes(64, 64)[0] - per_path == 8 * 48 * 26
    # the record, supplied float32 prices and a reduction's temporaries, per path
    assert sizes(16, 64, record=True)[0] - per_path == 8 * 8 * STEPS * 64
    assert sizes(16, 64, supplied=True, itemsize=4)[0] == per_path - 8 + 4 * (1 + STEPS)
    assert sizes(16, 64, temporaries=100)[0] == per_path + 100


def test_one_launch_when_the_run_fits():
    for cells in (1, 64):
        plan = launches.plan(H100, 10**6, per_path=sizes(cells, cells)[0])
        assert (plan.paths, plan.launches, plan.threads) == (10**6, 1, 128)
        assert plan.blocks == 7813 and plan.waves == pytest.approx(7813 / 264)


def test_a_million_paths_of_one_cell_in_equal_launches():
    """A device with 400 MB free holds 714,285 paths of 280 bytes in its 200 MB share: two
    launches of 3,907 and 3,906 blocks, not 714,240 paths and a tail of 285,760."""
    per_path, fixed = sizes(1, 1)
    assert per_path == 280
    facts = dataclasses.replace(H100, free_bytes=400 * 10**6)
    plan = launches.plan(facts, 10**6, per_path=per_path, fixed=fixed)
    assert parts(plan, 10**6) == [500_096, 499_904]
    assert plan.launches == 2 and plan.paths % plan.threads == 0
    assert plan.device_bytes <= launches.DEVICE_SHARE * facts.free_bytes


@pytest.mark.parametrize("n_paths", [10**6, 999_999, 3 * 10**6 + 17, 2**20])
@pytest.mark.parametrize("free", [10**8, 4 * 2**30, 16 * 10**9])
def test_launches_are_balanced_whole_blocks_within_the_share(n_paths, free):
    facts = dataclasses.replace(H100, free_bytes=free)
    per_path, fixed = sizes(8, 16)
    plan = launches.plan(facts, n_paths, per_path=per_path, fixed=fixed)
    cut = parts(plan, n_paths)
    assert sum(cut) == n_paths and len(cut) == plan.launches
    assert plan.device_bytes == per_path * plan.paths + fixed
    assert plan.device_bytes <= launches.DEVICE_SHARE * free
    if plan.launches > 1:
        assert plan.paths % plan.threads == 0
        assert plan.paths - cut[-1] < plan.launches * plan.threads  # no small tail
        # the fewest launches of whole blocks in the share
        assert plan.paths <= cap(facts, per_path, fixed) < -(-n_paths // (plan.launches - 1))


def test_a_million_paths_of_64_cells_fill_four_waves_on_132_sms():
    """On an H100 with 16 GB free (shared): 3 launches of 2,605 blocks, 9.9 waves each (the
    issue's 1 GiB launches were 120 blocks, fewer than the 132 multiprocessors)."""
    facts = dataclasses.replace(H100, free_bytes=16 * 10**9)
    per_path, fixed = sizes(64, 64)
    plan = launches.plan(facts, 10**6, per_path=per_path, fixed=fixed)
    assert plan.launches == 3
    for n in parts(plan, 10**6):
        assert -(-n // plan.threads) / resident(facts, plan) >= launches.MIN_WAVES
    assert plan.waves == pytest.approx(2605 / 264)


def test_a_small_gpu_is_memory_bound():
    per_path, fixed = sizes(64, 64)
    plan = launches.plan(SMALL, 10**6, per_path=per_path, fixed=fixed)
    most = cap(SMALL, per_path, fixed)  # 123,264 paths of 17,416 bytes in 2 GiB
    assert most == 123_264 and plan.paths <= most < -(-10**6 // (plan.launches - 1))
    assert plan.launches == 9 and parts(plan, 10**6)[-1] > plan.paths - 9 * plan.threads
    assert plan.waves >= launches.MIN_WAVES
    # fewer hedger rows than cells (cost-independent rules share a row): larger launches
    rows = launches.plan(SMALL, 10**6, per_path=sizes(16, 64)[0], fixed=fixed)
    assert rows.paths > plan.paths and rows.launches < plan.launches


def test_memory_below_one_block_and_runs_below_one_wave():
    per_path = 10**6
    tiny = dataclasses.replace(SMALL, free_bytes=100 * 10**6)  # 50 paths in the share
    plan = launches.plan(tiny, 1000, per_path=per_path)
    assert (plan.paths, plan.launches, plan.blocks) == (50, 20, 1)
    small_run = launches.plan(H100, 1000, per_path=280)
    assert (small_run.paths, small_run.launches, small_run.blocks) == (1000, 1, 8)
    assert small_run.waves < launches.MIN_WAVES  # the whole run is smaller than a wave


def test_plan_refuses_no_paths():
    with pytest.raises(ValueError, match=r"launches.plan: 'n_paths' must be an integer >= 1; "
                                         r"got 0"):
        launches.plan(H100, 0, per_path=280)
    with pytest.raises(ValueError, match=r"'per_path' must be an integer >= 1; got 0"):
        launches.plan(H100, 10, per_path=0)


# ----------------------------------------------------------------------------- the engine
MARKET = gh.BlackScholes(spot=100.0, vol=0.2, rate=0.05)
BOOK = gh.Book([gh.Position(gh.EuropeanCall(strike=100.0, maturity=1.0), quantity=-1.0)])


def _tables(n_strategies, costs):
    strategies = {f"every {k}": gh.DeltaHedge(vol=0.2, every=k)
                  for k in range(1, n_strategies + 1)}
    times = np.linspace(0.0, 1.0, STEPS)
    book_table = engine._book_table("test", BOOK, times, "")
    hedgers, _ = engine._hedger_table("test", strategies, costs, MARKET, BOOK, book_table,
                                      times, "hedge")
    return engine.cost_table(costs, 0.05, 0.2), hedgers


def test_engine_plans_with_the_kernels_hedger_rows(monkeypatch):
    """Delta hedges do not depend on the cost level: 16 strategies x 4 proportional costs are
    16 hedger rows, and the plan counts 16 blocks of state rows per path, not 64."""
    costs = {f"{bp}bp": gh.Costs(proportional=bp * 1e-4) for bp in (0, 1, 5, 10)}
    costs_table, hedgers = _tables(16, costs)
    assert hedgers.shape[0] == 16 == engine.kernel_rows(
        {f"every {k}": gh.DeltaHedge(vol=0.2, every=k) for k in range(1, 17)}, costs)
    monkeypatch.setattr(backend, "device_facts", lambda: SMALL)
    kw = dict(n_strategies=16, costs_table=costs_table, hedgers=hedgers,
              dtype=np.dtype("float64"), n_times=STEPS, n_options=1)
    chunk, threads = engine._plan("test", "cuda", 10**7, None, **kw)
    per_path, fixed = sizes(16, 64)
    assert (chunk, threads) == (launches.plan(SMALL, 10**7, per_path=per_path,
                                              fixed=fixed).paths, 128)
    assert engine._plan("test", "cuda", 10**7, 5000, **kw) == (5000, 128)  # the caller's
    # the compiled kernel's registers set the threads: at 84, blocks of 64 keep 704 threads
    # resident per multiprocessor, of 128 640 (at the 255 assumed unknown, 256 each)
    assert engine._plan("test", "cuda", 10**7, None, registers=84, **kw)[1] == 64
    # the statistics' temporaries make launches smaller; the CPU keeps its one launch
    assert engine._plan("test", "cuda", 10**7, None, keep="stats", **kw)[0] < chunk
    assert engine._plan("test", "cpu", 10**7, None, **kw) == (10**7, None)
    # the default launch passes the device check, with room to spare
    stub_cupy(monkeypatch, SMALL.free_bytes)
    monkeypatch.setattr(backend, "device_facts", lambda: SMALL)
    memory.check_run("simulate", device="cuda", n_paths=chunk, chunk_paths=chunk,
                     n_strategies=16, costs_table=costs_table, hedgers=hedgers,
                     dtype=np.dtype("float64"), n_times=STEPS, n_options=1)
    footprint = memory.run_footprint(
        n_paths=10**7, chunk_paths=chunk, n_strategies=16, costs_table=costs_table,
        n_hedgers=16, n_rows=26, dtype=np.dtype("float64"), device="cuda", n_times=STEPS,
        n_options=1)
    assert footprint.device == per_path * chunk + fixed


def test_registers_come_from_the_run_s_own_kernel(monkeypatch):
    """The plan reads the registers of the kernel the run launches: its features and state
    shape, not the kernel with every code path (numba-cuda's dispatcher is replaced by a spy:
    reading registers needs a device)."""
    pytest.importorskip("numba_cuda", reason="the 'gpu' extra brings numba-cuda")
    from gpuhedge.kernels import _math, cuda

    asked = []
    monkeypatch.setattr(cuda, "registers", lambda *args: asked.append(args) or 84)
    costs_table, hedgers = _tables(2, {"1bp": gh.Costs(proportional=1e-4)})
    times = np.linspace(0.0, 1.0, STEPS)
    assert engine._registers("cpu", MARKET.dynamics, np.dtype("float32"), hedgers,
                             costs_table, times, 0.05, 0.0) is None
    assert engine._registers("cuda", MARKET.dynamics, np.dtype("float32"), hedgers,
                             costs_table, times, 0.05, 0.0) == 84
    grid = engine._grid(times, 0.05, 0.0)
    assert asked == [(MARKET.dynamics, "float32", False,
                      _math.Features.of(hedgers, costs_table, grid),
                      (2, _math.N_STATE))]


def stub_cupy(monkeypatch, free, **props):
    """A CuPy with one device of H100-like properties and ``free`` bytes free."""
    properties = {"multiProcessorCount": 132, "regsPerMultiprocessor": 65536,
                  "maxThreadsPerMultiProcessor": 2048, "maxBlocksPerMultiProcessor": 32,
                  "maxThreadsPerBlock": 1024, **props}
    runtime = types.SimpleNamespace(memGetInfo=lambda: (free, 80 * 2**30),
                                    getDeviceCount=lambda: 1,
                                    getDeviceProperties=lambda i: properties)
    pool = types.SimpleNamespace(free_bytes=lambda: 0)
    cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(
        runtime=runtime, Device=lambda: types.SimpleNamespace(id=0)),
        get_default_memory_pool=lambda: pool)
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setattr(backend, "_simulator", lambda: False)
    monkeypatch.setattr(backend, "cuda_status", lambda: (True, "1 CUDA device(s)"))


def test_device_facts_from_cupy_and_the_simulator(monkeypatch):
    stub_cupy(monkeypatch, 70 * 10**9, maxBlocksPerMultiProcessor=24)
    assert backend.device_facts() == dataclasses.replace(H100, free_bytes=70 * 10**9,
                                                         max_blocks_per_sm=24)
    monkeypatch.setattr(backend, "_simulator", lambda: True)
    assert backend.device_facts() == launches.SIMULATOR
    monkeypatch.setattr(backend, "_simulator", lambda: False)
    monkeypatch.setattr(backend, "cuda_status", lambda: (False, "no driver"))
    with pytest.raises(ValueError, match="device_facts: there is no usable CUDA device: "
                                         "no driver"):
        backend.device_facts()


def test_downloads_on_a_stream_into_page_locked_buffers(monkeypatch):
    """The real-GPU branches of ``backend.pinned_empty``, ``download``, ``mark`` and ``wait``
    against a stand-in CuPy whose asynchronous copy is recorded and then done by ``memmove``:
    the contiguous source's bytes go to the host buffer's address, on the current stream."""
    import ctypes

    stream = types.SimpleNamespace(ptr=7, record=lambda: types.SimpleNamespace(
        synchronize=lambda: copies.append("waited")))
    copies = []

    class Pointer:
        def __init__(self, host):
            self.host = host

        def copy_to_host_async(self, mem, size, on):
            copies.append((size, on.ptr))
            ctypes.memmove(mem, self.host.ctypes.data, size)

    class Array:  # a CuPy array, as backend.namespace tells them apart
        __module__ = "cupy._core.core"

        def __init__(self, host):
            self.host, self.nbytes, self.data = host, host.nbytes, Pointer(host)

    cupy = types.SimpleNamespace(
        cuda=types.SimpleNamespace(alloc_pinned_memory=lambda n: bytearray(n),
                                   get_current_stream=lambda: stream),
        ascontiguousarray=lambda a: Array(np.ascontiguousarray(a.host)))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setattr(backend, "_simulator", lambda: False)
    assert backend.stream_pointer() == 7
    pinned = backend.pinned_empty(12, np.float32, "cuda")
    assert pinned.dtype == np.float32 and pinned.size == 12
    values = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2]  # not contiguous
    backend.download(Array(values), pinned.reshape(4, 3))
    backend.wait(backend.mark("cuda"))
    assert copies == [(48, 7), "waited"]
    np.testing.assert_array_equal(pinned.reshape(4, 3), values)
    assert backend.mark("cpu") is None and type(backend.pinned_empty(3, float, "cpu")) is \
        np.ndarray
