"""On-disk cache of the compiled CUDA kernels, stamped like the CPU cache (``_cache``).

Typing, lowering and NVVM take about 10 s per market family and precision, in every process
and every Dask worker. numba-cuda can keep a kernel on disk (``cache=True``: its PTX, its
cubins per compute capability and its launch data), but as it stands it would not serve these
kernels:

* it keys a kernel by a pickle of its closure, which here holds the ``run_block`` device
  dispatcher, whose pickle differs between processes (as the CPU block loop's does, see
  ``cpu.kernel``): every process would add an entry;
* it judges freshness by the modification time of ``cuda.py`` only, while the kernel compiles
  ``_math``, ``_fastmath`` and the models' step functions;
* it refuses to pickle a kernel that links a file at launch, and ours links numba-cuda's
  ``reshape_funcs.cu`` (the 1-D view of the state array).

``enable(dispatcher, specialisation)`` gives a CUDA dispatcher a cache that keys it by an
explicit specialisation (market family and precision) with the compute capability, the CUDA
runtime and numba-cuda's version, stamps it with ``_cache.source_stamp`` (every source file of
the kernels and models folders), and stores linked files by their name inside numba-cuda
(they are re-linked only when no cubin for the device was stored). The files go where the CPU
cache's go (``NUMBA_CACHE_DIR``, the package's ``__pycache__`` or the user-wide cache folder).
"""

import dataclasses
import os

import numba_cuda
from numba.cuda import codegen
from numba.cuda.core import caching
from numba.cuda.dispatcher import CUDACache, CUDACacheImpl, _Kernel

from . import _cache

# numba-cuda's own helper sources (reshape_funcs.cu), the only linked files a cached kernel keeps
_NUMBA_CUDA = os.path.dirname(os.path.abspath(codegen.__file__))


def _linked(library):
    """Names, relative to numba-cuda's folder, of the files ``library`` links at launch (None
    when one is not numba-cuda's own source file)."""
    names = []
    for item in library._linking_files:
        if not isinstance(item, str) or os.path.dirname(os.path.abspath(item)) != _NUMBA_CUDA:
            return None
        names.append(os.path.basename(item))
    return sorted(names)


class _Impl(CUDACacheImpl):
    """numba-cuda's kernel cache with the stamped locators and linked files kept by name."""

    _locator_classes = [_cache._stamped(getattr(caching, name)) for name in (
        "_UserProvidedCacheLocator", "_InTreeCacheLocator", "_UserWideCacheLocator")]

    def check_cachable(self, kernel):
        return _linked(kernel._codelibrary) is not None

    def reduce(self, kernel):
        library = kernel._codelibrary
        files, library._linking_files = library._linking_files, set()
        try:  # numba-cuda pickles no library that links files: they are stored by name
            library_states = library._reduce_states()
        finally:
            library._linking_files = files
        library_states["linking"] = _linked(library)
        return {**kernel._reduce_states(), "codelibrary": library_states}

    def rebuild(self, target_context, payload):
        states = dict(payload["codelibrary"])
        linking = states.pop("linking")
        library = codegen.CUDACodeLibrary._rebuild(**{**states,
                                                      "codegen": target_context.codegen()})
        library._linking_files |= {os.path.join(_NUMBA_CUDA, name) for name in linking}
        return _Kernel._rebuild(**{**payload, "codelibrary": library})


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


def specialisation(dynamics, dtype: str, record: bool, features, dispatcher) -> str:
    """The cache key of the kernel of market ``dynamics`` (a ``_math.Dynamics``), precision
    ``dtype``, the per-date ``record`` or not, the code paths compiled in (``features``, a
    ``_math.Features``) and ``dispatcher``'s compile options: the names of the functions it
    compiles in (their code is in the source stamp), its traits and its options."""
    def name(value):
        return f"{value.__module__}.{value.__qualname__}" if callable(value) else repr(value)

    fields = [f"{field.name}={name(getattr(dynamics, field.name))}"
              for field in dataclasses.fields(dynamics)]
    options = sorted((key, repr(value)) for key, value in dispatcher.targetoptions.items())
    return f"{dtype}; record={record}; {features!r}; {'; '.join(fields)}; options={options}"
