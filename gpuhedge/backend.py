"""Device resolution and host/device arrays. The only module that imports CuPy.

``device`` is "auto", "cpu" or "cuda" (the environment variable ``GPUHEDGE_DEVICE`` supplies
the default). "auto" picks "cuda" when CuPy sees a CUDA device, and says which device it chose
and why (``choose``; results carry it as ``device_reason``). An explicit "cuda" never falls back:
without a usable device it raises, naming the reason. Under numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``) "cuda" runs the CUDA kernels in the simulator on NumPy arrays.
"""

import ctypes
import functools
import os

import numpy as np

from . import _validation as check

DEVICES = ("auto", "cpu", "cuda")


def _simulator() -> bool:
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


@functools.cache
def cuda_status() -> tuple[bool, str]:
    """(whether a real CUDA device can run the kernels, why or why not, in words)."""
    if _simulator():
        return False, "NUMBA_ENABLE_CUDASIM=1: 'cuda' runs numba's CUDA simulator"
    try:
        import cupy
    except ModuleNotFoundError as error:
        if error.name != "cupy":
            raise
        return False, "CuPy is not installed (pip install -e '.[gpu]' on a CUDA machine)"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as error:  # no driver, or the driver refuses
        return False, f"CuPy finds no usable CUDA driver ({type(error).__name__}: {error})"
    if count < 1:
        return False, "the CUDA driver sees no device"
    return True, f"{count} CUDA device(s) visible to CuPy"


def gpu_available() -> bool:
    """True when a real CUDA device is visible to CuPy (never under the simulator). Only the
    expected failures (no CuPy, a CUDA runtime error) mean False; anything else raises."""
    return cuda_status()[0]


def device_count() -> int:
    """Real CUDA devices visible to CuPy (0 under the simulator or without a driver)."""
    if not gpu_available():
        return 0
    import cupy

    return cupy.cuda.runtime.getDeviceCount()


def device_free_memory() -> int:
    """Free bytes on the current CUDA device, the free blocks of CuPy's memory pool included
    (the driver counts them as used; CuPy reuses them first)."""
    import cupy

    free, _ = cupy.cuda.runtime.memGetInfo()
    return int(free) + int(cupy.get_default_memory_pool().free_bytes())


def device_facts():
    """``launches.DeviceFacts`` of the current CUDA device: its free memory
    (``device_free_memory``), multiprocessors and their limits (CuPy's device properties);
    ``launches.SIMULATOR`` under numba's simulator. Raises a ValueError without either."""
    from . import launches

    if _simulator():
        return launches.SIMULATOR
    usable, why = cuda_status()
    if not usable:
        raise ValueError(f"device_facts: there is no usable CUDA device: {why}")
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    limits = {field: props[key] for field, key in (
        ("registers_per_sm", "regsPerMultiprocessor"),
        ("max_threads_per_sm", "maxThreadsPerMultiProcessor"),
        ("max_blocks_per_sm", "maxBlocksPerMultiProcessor"),
        ("max_threads_per_block", "maxThreadsPerBlock")) if key in props}
    return launches.DeviceFacts(free_bytes=device_free_memory(),
                                sm_count=int(props["multiProcessorCount"]),
                                **{k: int(v) for k, v in limits.items()})


def stream_pointer():
    """The handle of CuPy's current stream, on which the engine enqueues the kernels and the
    downloads of their outputs (one stream: each waits for the one before); None under the
    simulator, whose launches are synchronous."""
    if _simulator():
        return None
    import cupy

    return cupy.cuda.get_current_stream().ptr


def _on_gpu(device):
    return device == "cuda" and not _simulator()


def pinned_empty(size, dtype, device):
    """A flat host array of ``size`` items, page-locked on a real GPU (the copy engine fills
    it without a staging copy and without holding the host), NumPy memory elsewhere."""
    if not _on_gpu(device):
        return np.empty(size, dtype=dtype)
    import cupy

    dtype = np.dtype(dtype)
    memory = cupy.cuda.alloc_pinned_memory(max(1, size * dtype.itemsize))
    return np.frombuffer(memory, dtype=dtype, count=size)


def download(array, out):
    """Copy ``array`` (CuPy or NumPy) into the C-contiguous host array ``out`` of its shape
    and dtype: for a CuPy array enqueued on the current stream without waiting (``wait`` on
    a later ``mark``); ``out`` must then be page-locked (``pinned_empty``)."""
    xp = namespace(array)
    if xp is np:
        out[...] = array
        return
    # a temporary made here and freed on return goes back to CuPy's pool for this stream,
    # whose later work runs after the copy
    array = xp.ascontiguousarray(array)
    array.data.copy_to_host_async(out.ctypes.data_as(ctypes.c_void_p), array.nbytes,
                                  xp.cuda.get_current_stream())


def mark(device):
    """An event recorded on the current stream after the work enqueued so far (None where
    work runs at once: the CPU and the simulator)."""
    if not _on_gpu(device):
        return None
    import cupy

    return cupy.cuda.get_current_stream().record()


def wait(event):
    """Wait until the work before ``event`` (``mark``) is done; no wait for None."""
    if event is not None:
        event.synchronize()


def choose(device: str | None = None, owner: str = "simulate") -> tuple[str, str]:
    """(device, why): a device request resolved to "cpu" or "cuda", and the reason in words.

    "auto" takes "cuda" when a real device is usable, else "cpu", and the reason says why
    (``cuda_status``). An explicit "cuda" without a usable device (and outside the simulator)
    raises a ValueError naming the reason: it never falls back to the CPU.
    """
    source = "device"
    if device is None:
        device = os.environ.get("GPUHEDGE_DEVICE", "auto")
        source = "GPUHEDGE_DEVICE"
    check.choice(owner, "device", device, DEVICES)
    usable, why = cuda_status()
    if device == "auto":
        return ("cuda", f"auto: {why}") if usable else ("cpu", f"auto: no usable GPU: {why}")
    if device == "cuda" and not (usable or _simulator()):
        raise ValueError(f"{owner}: 'device' is 'cuda' but there is no usable CUDA device: "
                         f"{why} (set NUMBA_ENABLE_CUDASIM=1 to run the CUDA kernels in "
                         "numba's simulator); got 'cuda'")
    return device, f"{source}={device!r} requested" + (f"; {why}" if device == "cuda" else "")


def resolve(device: str | None = None, owner: str = "simulate") -> str:
    """Resolve a device request to "cpu" or "cuda" (``choose`` without the reason)."""
    return choose(device, owner)[0]


def array_module(device: str):
    """numpy for "cpu" and the simulator, cupy for a real GPU."""
    if device == "cuda" and not _simulator():
        import cupy

        return cupy
    return np


def to_device(array, device):
    return array_module(device).asarray(array)


def namespace(array):
    """The array module of ``array``: cupy for a CuPy array, else numpy (CuPy is imported only
    when such an array exists), so that one code path reduces arrays where they are."""
    if type(array).__module__.partition(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def to_numpy(array) -> np.ndarray:
    """Host copy of a NumPy or CuPy array."""
    get = getattr(array, "get", None)
    return get() if callable(get) else np.asarray(array)


def device_name(device: str) -> str:
    """Human-readable name of the device that runs the kernels."""
    if device == "cpu":
        import platform

        return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    if _simulator():
        return "cuda simulator (numba)"
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    return name.decode() if isinstance(name, bytes) else str(name)
