"""The CUDA kernels' disk cache (``gpuhedge.kernels._cuda_cache``), checked without a GPU.

Each case runs in processes of its own (a fresh numba-cuda, as a new worker would have):
one compiles a kernel with the real compiler (NVVM, for sm_90, with the current device stubbed)
and stores it, the next loads it. The device's part (linking the cubin, loading the module)
needs a GPU and is left to ``benchmarks/gpucheck.py``.
"""

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import sys, time
started = time.perf_counter()
import hashlib, json
import numba.cuda.codegen, numba.cuda.dispatcher
from benchmarks.ptx_figures import CC
from gpuhedge.kernels import _cache, _math, cuda as target

class Device:  # the compiler asks the current device for its compute capability
    compute_capability = CC

class Context:
    device = Device

numba.cuda.dispatcher.get_current_device = Device
numba.cuda.codegen.devices.get_context = Context
numba.cuda.codegen.JITCUDACodegen.magic_tuple = lambda self: ("runtime", CC)
mode, stamp = sys.argv[1:]
if stamp != "sources":
    _cache.source_stamp = lambda folders=None: stamp
run = target.kernel(_math.SUPPLIED, "float64")
sig = target.signature("float64")
if mode == "save":
    kernel = numba.cuda.dispatcher._Kernel(run.py_func, sig, **run.targetoptions)
    run._cache.save_overload(sig, kernel)
else:
    loading = time.perf_counter()
    kernel = run._cache.load_overload(sig, run.targetctx)
    loaded = time.perf_counter() - loading
library = kernel and kernel._codelibrary
print(json.dumps(dict(
    hit=kernel is not None,
    ptx=library and hashlib.sha256(library.get_asm_str().encode()).hexdigest(),
    linking=library and sorted(os.path.basename(f) for f in library._linking_files),
    seconds=time.perf_counter() - started,
    load=loaded if mode == "load" else None)))
"""


def _run(tmp_path, mode, stamp="sources"):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    done = subprocess.run([sys.executable, "-c", "import os\n" + SCRIPT, mode, stamp], env=env,
                          capture_output=True, text=True, timeout=600,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", reason="real compiler only")
def test_a_second_process_loads_the_kernel_and_an_edit_invalidates_it(tmp_path):
    pytest.importorskip("numba_cuda", reason="the 'gpu' extra brings the CUDA compiler")
    saved = _run(tmp_path, "save")
    loaded = _run(tmp_path, "load")
    print(f"\ncompile + store: {saved['seconds']:.1f} s; a second process: "
          f"{loaded['seconds']:.2f} s from start to the kernel loaded ({loaded['load']:.3f} s "
          "for the load)")
    assert loaded["hit"] and loaded["ptx"] == saved["ptx"]
    # the kernel links no file at launch (numba-cuda's cache keeps no kernel that does)
    assert loaded["linking"] == saved["linking"] == []
    # an edit of any kernel or model source changes the stamp: nothing is served
    assert not _run(tmp_path, "load", stamp="edited")["hit"]
