"""CUDA target: one thread per path. The only module that imports ``numba.cuda``.

Under ``NUMBA_ENABLE_CUDASIM=1`` the same kernels run in numba's CUDA simulator on host arrays,
which is how CI checks CPU/GPU parity without a GPU.
"""

import functools

import numpy as np
from numba import cuda, float64

from . import _math

THREADS_PER_BLOCK = 128
N_LANE = _math.N_LANE  # a module constant, as cuda.local.array needs a literal shape


def simulator_enabled() -> bool:
    """True when numba runs CUDA kernels in its simulator (set before numba is imported)."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


@functools.cache
def kernel(dynamics: _math.Dynamics, dtype: str):
    """The CUDA kernel of one market model's ``dynamics`` and spot precision, same call as
    ``cpu.kernel``.

    Launch as ``kernel[blocks, THREADS_PER_BLOCK](...)``.
    """
    run_block = cuda.jit(device=True)(
        _math.make_run_block(dynamics, np.dtype(dtype).type, 1, False))

    @cuda.jit
    def run(path_offset, key0, key1, antithetic, spot0, v0, mp, hp, paths, grid, book, book_tau,
            hedgers, schedule, costs, rate, div, state, out, out_spot, rec):
        local = cuda.grid(1)
        if local < out_spot.shape[0]:
            # one lane per thread, its state in the shared (hedger rows x rows x paths) array
            # (and its 1-D view: a view, not a copy, also for the simulator's arrays)
            lanes = cuda.local.array((N_LANE, 1), float64)
            run_block(local, 1, local, path_offset, key0, key1, antithetic, spot0, v0, mp, hp,
                      paths, grid, book, book_tau, hedgers, schedule, costs, rate, div, state,
                      state.reshape(state.size), lanes, out, out_spot, rec)

    return run


def launch(dynamics, dtype, n, *args):
    """Run the kernel over ``n`` paths with enough blocks of ``THREADS_PER_BLOCK`` threads."""
    blocks = (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    kernel(dynamics, dtype)[blocks, THREADS_PER_BLOCK](*args)
    if not simulator_enabled():
        cuda.synchronize()
