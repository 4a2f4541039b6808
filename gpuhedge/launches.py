"""Launch plan of the CUDA kernel: paths per launch and threads per block, from the device's
facts and the run's sizes. Arithmetic only: ``backend.device_facts`` measures the device,
``engine`` applies the plan, and ``memory.run_footprint`` counts a launch's device bytes with
``device_bytes``, so that the default launch always passes ``memory.check_run``.

Kept apart from ``memory`` (which guards a run against the memory available, on every target)
because the plan is about the GPU's geometry: streaming multiprocessors, resident blocks,
waves, and only then bytes.
"""

import math
from dataclasses import dataclass

from . import _validation as check
from .kernels import _math

DEVICE_SHARE = 0.5   # of the free device memory one launch may hold (memory.FRACTION is 0.8)
MIN_WAVES = 4        # waves of resident blocks a launch should fill, where memory allows
DEFAULT_THREADS = 128
OTHER_THREADS = (64, 256)  # tried against DEFAULT_THREADS at the kernel's registers
MAX_REGISTERS = 255  # registers of a thread when the kernel's are not known: the most it may use
WARP = 32
REGISTER_UNIT = 256  # registers are given to a warp in units of this many


@dataclass(frozen=True)
class DeviceFacts:
    """What the plan needs to know of a CUDA device.

    Attributes
    ----------
    free_bytes : int
        Free device memory (``backend.device_free_memory``).
    sm_count : int
        Streaming multiprocessors (132 on an H100 SXM).
    registers_per_sm, max_threads_per_sm, max_blocks_per_sm, max_threads_per_block : int
        The multiprocessor's limits (compute capability 9.0: 65,536, 2,048, 32 and 1,024).
    registers_per_thread : int
        The kernel's registers per thread (the engine compiles the run's kernel first and
        reads them from the driver, ``kernels.cuda.registers``); ``MAX_REGISTERS``, the
        conservative default, when not known.
    """
    free_bytes: int
    sm_count: int
    registers_per_sm: int = 65536
    max_threads_per_sm: int = 2048
    max_blocks_per_sm: int = 32
    max_threads_per_block: int = 1024
    registers_per_thread: int = MAX_REGISTERS


# Numba's simulator runs the CUDA kernels on host arrays: small, fixed facts (its launches are
# bounded by this "free memory", and memory.check_run counts them in host memory).
SIMULATOR = DeviceFacts(free_bytes=2**30, sm_count=2)


@dataclass(frozen=True)
class Plan:
    """Launches of one run.

    Attributes
    ----------
    paths : int
        Paths per launch (the last launch takes the rest, fewer by less than ``launches``
        blocks).
    launches : int
        Number of launches, ``ceil(n_paths / paths)``.
    threads : int
        Threads per block.
    blocks : int
        Blocks of one launch of ``paths`` paths, ``ceil(paths / threads)``.
    waves : float
        ``blocks`` over the blocks resident at once on the whole device
        (``sm_count x blocks_per_sm``).
    device_bytes : int
        Device bytes of one launch of ``paths`` paths (``device_bytes``).
    """
    paths: int
    launches: int
    threads: int
    blocks: int
    waves: float
    device_bytes: int


def blocks_per_sm(facts, threads):
    """Blocks of ``threads`` threads resident on one multiprocessor at once.

    The least of three limits: the blocks a multiprocessor holds (``max_blocks_per_sm``), its
    threads (``max_threads_per_sm // threads``) and its registers. A warp of 32 threads takes
    ``ceil(32 r / 256) x 256`` registers at ``r`` registers per thread; a multiprocessor holds
    ``floor(registers_per_sm / that)`` warps, and whole blocks of ``threads / 32`` warps of
    them. At 184 registers and 128 threads (the kernel of 2026-12): 5,888 registers per warp,
    11 warps, 2 blocks; at 64 threads, 5 blocks.
    """
    if threads > facts.max_threads_per_block:
        return 0
    warp_registers = math.ceil(WARP * facts.registers_per_thread / REGISTER_UNIT) * REGISTER_UNIT
    warps = facts.registers_per_sm // warp_registers
    return min(facts.max_blocks_per_sm, facts.max_threads_per_sm // threads,
               warps // math.ceil(threads / WARP))


def threads_per_block(facts):
    """``DEFAULT_THREADS`` unless a block of ``OTHER_THREADS`` keeps strictly more threads
    resident per multiprocessor (``blocks_per_sm x threads``) at the kernel's registers.

    At ``MAX_REGISTERS`` each of 64, 128 and 256 threads keeps 256 threads resident: 128. At
    184 registers, 64 threads keep 320 and 128 keep 256: 64.
    """
    best = DEFAULT_THREADS
    for threads in OTHER_THREADS:
        if threads * blocks_per_sm(facts, threads) > best * blocks_per_sm(facts, best):
            best = threads
    return best


def device_bytes(*, n_hedgers, n_rows, cells, n_times, n_options, itemsize=8, record=False,
                 supplied=False, temporaries=0):
    """(bytes per path, bytes per launch) of one launch in device memory.

    Per path: the kernel's state, ``n_hedgers x n_rows`` float64 (one block of rows per
    *hedger row*, ``engine.kernel_rows``, not per strategy x cost cell: a rule that does not
    depend on the cost level runs one row for them all; it is in each thread's local memory,
    which the driver reserves for the threads resident at once, so counting it per path of
    the launch is an upper bound), its outputs (``_math.N_OUT`` float64
    per cell, and with ``record`` ``_math.N_REC`` per cell and grid point), the terminal spot
    (``itemsize``), the supplied prices (``n_times x itemsize``) and ``temporaries`` (bytes
    per path of what reduces the outputs where they are, ``reductions.work_bytes(cells, 1)``).
    Per launch: the float64 tables of the grid and the book (``n_times x (3 + 2 n_options)``)
    and the uint8 schedule (``n_times x n_hedgers``).

    Parameters
    ----------
    n_hedgers : int
        Hedger rows of the kernel (``hedgers.shape[0]``).
    n_rows : int
        State rows per hedger row, ``_math.N_STATE`` plus the largest lag.
    cells : int
        Strategies x cost levels.
    n_times, n_options : int
        Grid points and options of the book.
    """
    per_path = (8 * n_hedgers * n_rows
                + 8 * cells * (_math.N_OUT + (_math.N_REC * n_times if record else 0))
                + itemsize * (1 + (n_times if supplied else 0)) + temporaries)
    fixed = 8 * n_times * (3 + 2 * n_options) + n_times * n_hedgers
    return int(per_path), int(fixed)


def plan(facts, n_paths, *, per_path, fixed=0):
    """The launches of ``n_paths`` paths of ``per_path`` device bytes each (and ``fixed`` per
    launch), as ``device_bytes`` counts them.

    1. Threads per block: ``threads_per_block(facts)``.
    2. Memory: a launch holds at most ``DEVICE_SHARE`` of the free memory,
       ``cap = floor((DEVICE_SHARE x free_bytes - fixed) / per_path)`` paths, rounded down to
       whole blocks (at least one path). Below ``memory.FRACTION`` (0.8), so that the plan
       passes ``memory.check_run`` and leaves room for the downloads' casts.
    3. Balance: ``k = ceil(n_paths / cap)`` launches of ``ceil(n_paths / k)`` paths rounded
       up to whole blocks (still <= cap, a multiple of blocks), so that the last launch falls
       short by less than ``k`` blocks instead of being a small tail: 10^6 paths under a cap
       of 600,064 run as 500,096 + 499,904, not 600,064 + 399,936.
    4. Waves: as launches are as large as memory allows, and balancing keeps each above half
       the cap, a launch fills at least ``MIN_WAVES`` waves (``sm_count x blocks_per_sm``
       resident blocks each) whenever the run has that many paths and memory holds
       ``2 x MIN_WAVES`` waves; ``Plan.waves`` says what a launch got.

    One launch per run when memory allows it: ``simulate(..., keep="stats")`` simulates the
    paths once rather than twice, and every launch and download costs a fixed latency.
    """
    n_paths = check.integer("launches.plan", "n_paths", n_paths, low=1)
    per_path = check.integer("launches.plan", "per_path", per_path, low=1)
    threads = threads_per_block(facts)
    cap = max(1, int((DEVICE_SHARE * facts.free_bytes - fixed) // per_path))
    if cap >= threads:
        cap -= cap % threads
    n_launches = -(-n_paths // cap)
    even = -(-n_paths // n_launches)  # ceil(n_paths / k), then up to whole blocks
    paths = n_paths if n_launches == 1 else min(cap, -(-even // threads) * threads)
    blocks = -(-paths // threads)
    return Plan(paths=paths, launches=-(-n_paths // paths), threads=threads, blocks=blocks,
                waves=blocks / (facts.sm_count * blocks_per_sm(facts, threads)),
                device_bytes=per_path * paths + fixed)
