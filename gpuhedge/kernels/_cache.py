"""On-disk cache of the compiled CPU kernels, stamped with the kernel sources.

Compiling one market family's CPU block loop (``cpu.kernel``) takes 35-75 s; numba's
``cache=True`` keeps the machine code on disk so that the next process loads it instead. numba
judges a cached function fresh by the modification time of the file that defines it, but the
block loop (defined in ``_math``) also inlines ``_fastmath``, the market models' step functions
(``gpuhedge/models``) and the rules' decisions (``gpuhedge/rules``): an edit there would leave a
stale kernel. The locators here serve the functions defined in this package only, in the places
numba's own locators would choose (the folder in ``NUMBA_CACHE_DIR``, the package's
``__pycache__``, or the user-wide cache folder), and stamp them with a hash of every source file
of the kernels, models and rules folders and of ``costs.py``, which declares the costs' per-path
state (``SOURCES``), so that any edit recompiles. numba also
keys each cached function by its numba version, the CPU and the contents of its closure (here
the market model's ``Dynamics`` and precision).
"""

import functools
import hashlib
from pathlib import Path

from numba.core import caching

PACKAGE = Path(__file__).resolve().parent
# the folders and files whose code a kernel compiles: the kernels, the models with their step
# functions, the rules with their decisions and the costs' declaration of their per-path state
SOURCES = (PACKAGE, PACKAGE.parent / "models", PACKAGE.parent / "rules",
           PACKAGE.parent / "costs.py")


@functools.cache
def source_stamp(sources=SOURCES):
    """SHA-256 of the names and contents of the ``.py`` files in ``sources`` (folders, each
    sorted, and files)."""
    digest = hashlib.sha256()
    for source in map(Path, sources):
        for path in [source] if source.is_file() else sorted(source.glob("*.py")):
            name = f"{path.parent.name}/{path.name}"
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _stamped(base):
    """A subclass of numba's locator ``base`` that serves this package's functions only and
    stamps them with ``source_stamp``."""

    class Locator(base):
        def get_source_stamp(self):
            return source_stamp()

        @classmethod
        def from_function(cls, py_func, py_file):
            if Path(py_file).resolve().parent != PACKAGE:
                return None
            return super().from_function(py_func, py_file)

    Locator.__name__ = Locator.__qualname__ = "Stamped" + base.__name__.lstrip("_")
    return Locator


def _numba_name(name):
    # older numba versions name some of these classes with a leading underscore
    return getattr(caching, name, None) or getattr(caching, "_" + name)


def install():
    """Put the stamped locators first in numba's list (once); other functions are unaffected."""
    impl = _numba_name("CacheImpl")
    if any(getattr(cls, "_gpuhedge", False) for cls in impl._locator_classes):
        return
    stamped = []
    for name in ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator"):
        cls = _stamped(_numba_name(name))
        cls._gpuhedge = True
        stamped.append(cls)
    impl._locator_classes = stamped + list(impl._locator_classes)


class LazyUfunc:
    """A ``numba.vectorize`` ufunc of ``func`` over ``signatures``, compiled (or loaded from
    the on-disk cache) at its first call rather than at import: importing the package stays
    cheap for commands that never price anything."""

    def __init__(self, func, signatures, doc):
        self._func, self._signatures = func, signatures
        self.__name__ = func.__name__
        self.__doc__ = doc

    @functools.cached_property
    def ufunc(self):
        import numba

        install()
        return numba.vectorize(self._signatures, cache=True)(self._func)

    def __call__(self, *args, **kwargs):
        return self.ufunc(*args, **kwargs)
