"""CUDA target: one thread per path. The only module that imports ``numba.cuda`` (with its
disk cache, ``_cuda_cache``).

Under ``NUMBA_ENABLE_CUDASIM=1`` the same kernels run in numba's CUDA simulator on host arrays,
which is how CI checks CPU/GPU parity without a GPU.

The kernels compile without floating-point contraction, so that the GPU rounds every
multiply and add as the CPU build does (bitwise parity; the explicit ``fma`` of ``_fastmath``
stays fused on both). NVVM contracts ``a * b + c`` into ``fma.rn.f64`` by default (its
``-fma=1``), and numba-cuda (0.30) passes no ``fma`` option of its own: only ``fastmath=True``,
which turns it on. So ``nvvm.compile_ir``, the call through which numba-cuda hands every kernel
to NVVM, is wrapped to add ``fma=False`` while ``contraction(False)`` is active (launches and
``ptx``; other numba-cuda users in the process are untouched). With contraction off, NVVM writes
``mul.rn.f64`` / ``add.rn.f64``, which ptxas may not fuse either. The kernels are linked without
LTO: with LTO the final code generation runs in nvJitLink, which does not see NVVM's options.
"""

import contextlib
import contextvars
import functools

import numpy as np
from numba import cuda, float64, types

from .. import launches
from . import _math

THREADS_PER_BLOCK = launches.DEFAULT_THREADS  # when the caller plans none
N_LANE = _math.N_LANE  # a module constant, as cuda.local.array needs a literal shape


def simulator_enabled() -> bool:
    """True when numba runs CUDA kernels in its simulator (set before numba is imported)."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


_CONTRACT = contextvars.ContextVar("gpuhedge_fma_contraction", default=True)


@functools.cache
def _wrap_nvvm_compile():
    """Route numba-cuda's NVVM compilations through ``_CONTRACT`` (once per process)."""
    from numba.cuda.cudadrv import nvvm

    compile_ir = nvvm.compile_ir

    @functools.wraps(compile_ir)
    def compile_ir_contraction(llvmir, **options):
        if not _CONTRACT.get():
            options["fma"] = False
        return compile_ir(llvmir, **options)

    nvvm.compile_ir = compile_ir_contraction


@contextlib.contextmanager
def contraction(enabled: bool):
    """Within this block, kernels compiled by NVVM contract multiply-adds into FMAs or not."""
    if not simulator_enabled():
        _wrap_nvvm_compile()
    token = _CONTRACT.set(enabled)
    try:
        yield
    finally:
        _CONTRACT.reset(token)


# no LTO (see the module docstring); the simulator's jit takes no such option
_JIT_OPTIONS = {} if simulator_enabled() else {"lto": False}


@functools.cache
def kernel(dynamics: _math.Dynamics, dtype: str, record: bool = False):
    """The CUDA kernel of one market model's ``dynamics`` and spot precision, writing the
    per-date record or not, same call as ``cpu.kernel``.

    Launch through ``launch``, which compiles it (at its first launch) without contraction.
    """
    run_block = cuda.jit(device=True)(
        _math.make_run_block(dynamics, np.dtype(dtype).type, 1, False, record))

    @cuda.jit(**_JIT_OPTIONS)
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

    if simulator_enabled():
        return run
    from . import _cuda_cache  # numba-cuda's compiler internals: not there in the simulator

    return _cuda_cache.enable(run, _cuda_cache.specialisation(dynamics, dtype, record, run))


def launch(dynamics, dtype, record, n, *args, threads=THREADS_PER_BLOCK, stream=None):
    """Enqueue the kernel over ``n`` paths in enough blocks of ``threads`` threads
    (``launches.plan``) on ``stream`` (a CUDA stream handle, ``backend.stream_pointer``; None:
    numba's default stream), without waiting: the download of its outputs on the same stream
    waits for it."""
    blocks = (n + threads - 1) // threads
    # handle 0 is CuPy's null stream, the legacy default stream: numba's stream 0
    where = () if stream is None else (cuda.external_stream(stream) if stream else 0,)
    with contraction(False):
        kernel(dynamics, dtype, record)[(blocks, threads) + where](*args)


def signature(dtype: str):
    """numba argument types of ``kernel(dynamics, dtype)`` (as ``engine`` launches it)."""
    ft = types.float32 if dtype == "float32" else types.float64

    def array(nd, dt=types.float64):
        return types.Array(dt, nd, "C")

    return (types.int64, types.uint64, types.uint64, types.boolean, types.float64,
            types.float64, array(1), array(1), array(2, ft), array(2), array(2), array(3),
            array(2), array(2, types.uint8), array(2), types.float64, types.float64, array(3),
            array(4), array(1, ft), array(5))


@functools.cache
def ptx(dynamics: _math.Dynamics, dtype: str, cc=(9, 0), contract: bool = False) -> str:
    """PTX of ``kernel(dynamics, dtype)`` for compute capability ``cc``, as launches compile it
    (``contract=True``: NVVM's default contraction instead); kept per process. Needs the CUDA
    compiler (the ``gpu`` extra), not a GPU."""
    with contraction(contract):
        code, _ = cuda.compile_ptx(kernel(dynamics, dtype).py_func, signature(dtype), cc=cc)
    return code
