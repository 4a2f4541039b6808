"""On-disk cache of the compiled CUDA kernels, stamped like the CPU cache (``_cache``).

Typing, lowering and NVVM take about 10 s per market family and precision, in every process
and every Dask worker. numba-cuda can keep a kernel on disk (``cache=True``: its PTX, its
cubins per compute capability and its launch data), but as it stands it would not serve these
kernels:

* it keys a kernel by a pickle of its closure, which here holds the ``run_block`` device
  dispatcher, whose pickle differs between processes (as the CPU block loop's does, see
  ``cpu.kernel``): every process would add an entry;
* it judges freshness by the modification time of ``cuda.py`` only, while the kernel compiles
  ``_math``, ``_fastmath``, the models' step functions and the rules' decisions.

``enable(dispatcher, specialisation)`` gives a CUDA dispatcher a cache that keys it by an
explicit specialisation (market family, precision, code paths and state shape) with the compute
capability, the CUDA runtime and numba-cuda's version, and stamps it with
``_cache.source_stamp`` (every source file of the kernels, models and rules folders). The
kernels link no file at launch (numba-cuda caches no kernel that does). The files go where the
CPU cache's go (``NUMBA_CACHE_DIR``, the package's ``__pycache__`` or the user-wide cache
folder).
"""

import dataclasses

import numba_cuda
from numba.cuda.core import caching
from numba.cuda.dispatcher import CUDACache, CUDACacheImpl

from . import _cache

class _Impl(CUDACacheImpl):
    """numba-cuda's kernel cache with the stamped locators."""

    _locator_classes = [_cache._stamped(getattr(caching, name)) for name in (
        "_UserProvidedCacheLocator", "_InTreeCacheLocator", "_UserWideCacheLocator")]


class KernelCache(CUDACache):
    """A CUDA kernel's disk cache, keyed by ``specialisation`` instead of its closure."""

    _impl_class = _Impl

    def __init__(self, py_func, specialisation: str):
        self.specialisation = specialisation
        super().__init__(py_func)

    def _index_key(self, sig, codegen):
        from .cuda import _CONTRACT  # NVVM's contraction while compiling (``cuda.contraction``)

        key = (sig, codegen.magic_tuple(), numba_cuda.__version__, self.specialisation,
               ("contraction", _CONTRACT.get()))
        launch_config = getattr(self, "_launch_config_key", None)  # newer numba-cuda only
        if launch_config is not None:
            key += (("launch_config", launch_config),)
        return key


def enable(dispatcher, specialisation: str):
    """Give CUDA ``dispatcher`` the stamped disk cache under ``specialisation`` (a string that
    names everything, other than the sources and the argument types, that changes its code);
    returns the dispatcher."""
    dispatcher._cache = KernelCache(dispatcher.py_func, specialisation)
    return dispatcher


def specialisation(dynamics, dtype: str, record: bool, features, rows, dispatcher) -> str:
    """The cache key of the kernel of market ``dynamics`` (a ``_math.Dynamics``), precision
    ``dtype``, the per-date ``record`` or not, the code paths compiled in (``features``, a
    ``_math.Features``), the shape of a path's state (``rows``) and ``dispatcher``'s compile
    options: the names of the functions it compiles in (their code is in the source stamp),
    its traits and its options."""
    def name(value):
        return f"{value.__module__}.{value.__qualname__}" if callable(value) else repr(value)

    fields = [f"{field.name}={name(getattr(dynamics, field.name))}"
              for field in dataclasses.fields(dynamics)]
    options = sorted((key, repr(value)) for key, value in dispatcher.targetoptions.items())
    return (f"{dtype}; record={record}; {features!r}; rows={rows}; {'; '.join(fields)}; "
            f"options={options}")
