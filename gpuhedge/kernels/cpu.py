"""CPU target: ``numba.njit(parallel=True)`` over paths, one thread per block of paths."""

import functools

import numba
import numpy as np

from . import _math


@functools.cache
def kernel(family: int, dtype: str):
    """The compiled CPU kernel of one market family and spot precision (cached per process).

    Called as ``kernel(path_offset, key0, key1, antithetic, spot0, v0, mp, hp, paths, grid, book,
    book_tau, hedgers, schedule, costs, rate, div, state, out, out_spot)`` (tables described in
    ``_math``); it fills ``out`` (fields ``_math.OUT_*`` x strategy x cost x path) and
    ``out_spot`` for paths path_offset .. path_offset + len(out_spot) - 1.
    """
    run_path = numba.njit(_math.make_run_path(*_math.FAMILIES[family], np.dtype(dtype).type))

    @numba.njit(parallel=True)
    def run(path_offset, key0, key1, antithetic, spot0, v0, mp, hp, paths, grid, book, book_tau,
            hedgers, schedule, costs, rate, div, state, out, out_spot):
        for local in numba.prange(out_spot.shape[0]):
            run_path(path_offset + local, local, key0, key1, antithetic, spot0, v0, mp, hp, paths,
                     grid, book, book_tau, hedgers, schedule, costs, rate, div, state, out,
                     out_spot)

    return run
