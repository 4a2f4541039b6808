"""CPU target: ``numba.njit(parallel=True)`` over blocks of ``LANES`` paths, one thread per block.

Each block runs its paths in lockstep (``_math.make_run_block``): the model step, ln S, the
book's greeks and the plain rules are loops over the block's lanes that LLVM vectorises (AVX2 /
AVX-512 on x86). A block's state is a small (hedger rows x rows x ``LANES``) array of its own,
lanes the fast axis. The block loop ``run_block`` is cached on disk (``_cache``): a process
after the first loads it instead of compiling it (35-75 s per market model and precision).
"""

import functools
import warnings

import numba
import numpy as np
from numba.core.errors import NumbaIRAssumptionWarning

from . import _cache, _math

_cache.install()

# Paths per block. Each row's work at a grid point has a fixed part (its rule's parameters, the
# loops' set-up) that a block shares among its lanes: 16 delta hedgers trading every step cost
# 40, 31, 26 ns per path-step (one thread, AVX-512) with blocks of 32, 64, 128 lanes; 256 was
# no faster (the state of 16 rows, 16 x 26 x 128 doubles, fits in L2).
LANES = 128


@functools.cache
def kernel(dynamics: _math.Dynamics, dtype: str, record: bool = False):
    """The compiled CPU kernel of one market model's ``dynamics`` and spot precision, writing the
    per-date record or not (cached per process).

    Called as ``kernel(path_offset, key0, key1, antithetic, spot0, v0, mp, hp, paths, grid, book,
    book_tau, hedgers, schedule, costs, rate, div, state, out, out_spot, rec)`` (tables
    described in ``_math``); it fills ``out`` (fields ``_math.OUT_*`` x strategy x cost x path)
    and ``out_spot`` for paths path_offset .. path_offset + len(out_spot) - 1, and, if
    ``record``, the per-date record ``rec`` (``_math.REC_*`` x grid point x strategy x cost x
    path). Only the shape of ``state`` (hedger rows, state rows, any) is used: each
    block keeps its own.
    """
    # error_model="numpy": a division by zero gives inf / NaN instead of a raise, so that the
    # lane loops carry no branch to raise from (the maths never divides by zero). _nrt=False:
    # run_block allocates nothing, and without reference counting the arrays that inlined
    # functions take carry no incref / decref calls, which keep LLVM from vectorising.
    run_block = numba.njit(error_model="numpy", _nrt=False, cache=True)(
        _math.make_run_block(dynamics, np.dtype(dtype).type, LANES, True, record))

    # Not cached: numba keys a cached function by its closure, and this one holds the
    # run_block dispatcher, which pickles with an id of its own per process (every process
    # would add an entry). It compiles in about 5 s.
    @numba.njit(parallel=True)
    def run_blocks(path_offset, key0, key1, antithetic, spot0, v0, mp, hp, paths, grid, book,
                   book_tau, hedgers, schedule, costs, rate, div, state, out, out_spot, rec):
        n = out_spot.shape[0]
        n_hedgers, n_rows = state.shape[0], state.shape[1]
        for block in numba.prange((n + LANES - 1) // LANES):
            first = block * LANES
            own = np.empty(n_hedgers * n_rows * LANES)
            lanes = np.empty((_math.N_LANE, LANES))
            run_block(first, min(LANES, n - first), 0, path_offset, key0, key1, antithetic,
                      spot0, v0, mp, hp, paths, grid, book, book_tau, hedgers, schedule, costs,
                      rate, div, own.reshape((n_hedgers, n_rows, LANES)), own, lanes, out,
                      out_spot, rec)

    def run(*args):
        # numba's pedantic IR check flags variables of the inlined lane functions (harmless:
        # the inlined code is correct, see tests/test_cuda.py parity) while compiling
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaIRAssumptionWarning)
            run_blocks(*args)

    return run
