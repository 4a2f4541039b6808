"""Shared fixtures and markers.

Tests marked ``cudasim`` run the CUDA kernels in numba's simulator. The simulator must be chosen
before numba is first imported, so they run in their own pytest process (started by
``tests/test_cuda.py::test_cuda_simulator_suite``) and are skipped in the main one.
"""

import os

import pytest

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def pytest_collection_modifyitems(config, items):
    from gpuhedge import backend

    skip_sim = pytest.mark.skip(reason="needs NUMBA_ENABLE_CUDASIM=1 (run in its own process)")
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cudasim" in item.keywords and not SIMULATOR:
            item.add_marker(skip_sim)
        if "gpu" in item.keywords and not backend.gpu_available():
            item.add_marker(skip_gpu)
