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

The same wrapper marks every pointer argument of the kernel ``noalias`` in the LLVM IR it hands
to NVVM (numba-cuda marks none), as ``__restrict__`` would in CUDA C: the engine passes arrays
of their own (tables, paths, outputs), and the kernel only reads the tables and only writes the
outputs. NVVM then loads the tables, which are the same for every thread, through the read-only
data cache (``ld.global.nc``: every table load of the one-hedger kernel's PTX). It also marks
every loop not to be unrolled by a runtime count (``no_runtime_unrolling``).
"""

import contextlib
import contextvars
import functools
import re

import numpy as np
from numba import cuda, float64, types
from numba.extending import intrinsic
from numba.np import arrayobj

from .. import launches
from . import _fastmath, _math

THREADS_PER_BLOCK = launches.DEFAULT_THREADS  # when the caller plans none
N_LANE = _math.N_LANE  # a module constant, as cuda.local.array needs a literal shape


def simulator_enabled() -> bool:
    """True when numba runs CUDA kernels in its simulator (set before numba is imported)."""
    from numba import config

    return bool(config.ENABLE_CUDASIM)


# within ``contraction(enabled)``: ``enabled``; None: a compilation not of this package's kernels
_CONTRACT = contextvars.ContextVar("gpuhedge_fma_contraction", default=None)
_KERNEL_NAME = re.compile(r'@("[^"]+"|[\w.$]+), !"kernel", i32 1')
_DEFINE = re.compile(r"^define [^@\n]*@(\"[^\"]+\"|[\w.$]+)\(.*$", re.M)
_POINTER_ARGUMENT = re.compile(r"(\*|\bptr) (%[\w.$\"]+)")


def restrict_arguments(llvmir: str) -> str:
    """``llvmir`` (an NVVM IR module as text) with the pointer arguments of its kernels (the
    functions its ``nvvm.annotations`` mark ``"kernel"``) marked ``noalias``."""
    kernels = set(_KERNEL_NAME.findall(llvmir))

    def mark(define):
        if define.group(1) not in kernels:
            return define.group(0)
        return _POINTER_ARGUMENT.sub(r"\1 noalias \2", define.group(0))

    return _DEFINE.sub(mark, llvmir)


_BLOCK = re.compile(r'^("[^"]+"|[\w.$-]+):', re.M)
_JUMP = re.compile(r'^(\s+br label %("[^"]+"|[\w.$-]+))\s*$', re.M)
_LOOP_ID = 0x6E0000  # metadata ids of ours: far above numba's, which count from 0


def no_runtime_unrolling(llvmir: str) -> str:
    """``llvmir`` (an NVVM IR module as text) with every loop marked not to be unrolled by a
    runtime trip count, as ``#pragma unroll 1`` would for such loops in CUDA C (loops of a
    constant trip count still unroll fully). A loop is a jump back to a block above it in its
    function (numba lowers every loop's latch to one).

    NVVM unrolls the kernels' loops over the book's options, the hedger rows and the cost
    levels by 4 for any count, with a remainder loop and its trip count modulo 4 kept in
    registers across the step loop: a third more instructions in the one-hedger kernel's step
    loop and registers that run only one of the copies anyway."""
    marked = []

    def mark(function):
        above = set()

        def latch(jump):
            if jump.group(2).strip('"') not in above:
                return jump.group(0)
            marked.append(_LOOP_ID + 1 + len(marked))
            return f"{jump.group(1)}, !llvm.loop !{marked[-1]}"

        out = []
        for line in function.split("\n"):
            block = _BLOCK.match(line)
            if block:
                above.add(block.group(1).strip('"'))
            out.append(_JUMP.sub(latch, line))
        return "\n".join(out)

    text = "\ndefine".join(mark(part) for part in llvmir.split("\ndefine"))
    if not marked:
        return text
    return "\n".join([text, f'!{_LOOP_ID} = !{{!"llvm.loop.unroll.runtime.disable"}}'] +
                     [f"!{n} = distinct !{{!{n}, !{_LOOP_ID}}}" for n in marked]) + "\n"


def _ours(llvmir: str) -> str:
    """What this package's kernels hand NVVM: ``llvmir`` with ``restrict_arguments`` and
    ``no_runtime_unrolling``."""
    return no_runtime_unrolling(restrict_arguments(llvmir))


@functools.cache
def _wrap_nvvm_compile():
    """Route numba-cuda's NVVM compilations through ``_CONTRACT`` (once per process): within
    ``contraction``, no FMA contraction unless enabled, and the kernels' pointer arguments
    ``noalias`` (``restrict_arguments``)."""
    from numba.cuda.cudadrv import nvvm

    compile_ir = nvvm.compile_ir

    @functools.wraps(compile_ir)
    def compile_ir_contraction(llvmir, **options):
        contract = _CONTRACT.get()
        if contract is None:
            return compile_ir(llvmir, **options)
        if not contract:
            options["fma"] = False
        if isinstance(llvmir, str):
            return compile_ir(_ours(llvmir), **options)
        return compile_ir([_ours(module) for module in llvmir], **options)

    nvvm.compile_ir = compile_ir_contraction


@contextlib.contextmanager
def contraction(enabled: bool):
    """Within this block, kernels compiled by NVVM contract multiply-adds into FMAs or not (and
    their pointer arguments are ``noalias``: ``restrict_arguments``)."""
    if not simulator_enabled():
        _wrap_nvvm_compile()
    token = _CONTRACT.set(enabled)
    try:
        yield
    finally:
        _CONTRACT.reset(token)


# no LTO (see the module docstring); the simulator's jit takes no such option
_JIT_OPTIONS = {} if simulator_enabled() else {"lto": False}


def _register_exact_division():
    """Compile ``_fastmath.fdiv`` and ``fsqrt`` on the GPU as ``div_exact`` and ``sqrt_exact``
    (their float32 copies for float32 arguments): IEEE's results without the calls of its slow
    paths (``_fastmath``). The simulator runs them as Python: IEEE division and square root."""
    from numba.cuda.extending import overload

    def exact(fn, args):
        single = all(arg == types.float32 for arg in args)
        return _fastmath.as_float32(fn) if single else fn

    @overload(_fastmath.fdiv)
    def _fdiv(a, b):
        if isinstance(a, types.Float) and isinstance(b, types.Float):
            div = exact(_fastmath.div_exact, (a, b))
            return lambda a, b: div(a, b)

    @overload(_fastmath.fsqrt)
    def _fsqrt(x):
        if isinstance(x, types.Float):
            root = exact(_fastmath.sqrt_exact, (x,))
            return lambda x: root(x)


if not simulator_enabled():
    _register_exact_division()


@intrinsic
def _flat_view(typingctx, a):
    """The C-contiguous array ``a`` as a 1-D array over the same memory, without the call to
    numba's reshape helper that ``a.reshape`` compiles to (an opaque call taking the array's
    address, which would pin a thread's local array in memory)."""
    if isinstance(a, types.Array) and a.layout == "C":
        def codegen(context, builder, sig, args):
            src = arrayobj.make_array(sig.args[0])(context, builder, args[0])
            dst = arrayobj.make_array(sig.return_type)(context, builder)
            size = context.get_constant(types.intp, 1)
            for axis in range(sig.args[0].ndim):
                size = builder.mul(size, builder.extract_value(src.shape, axis))
            arrayobj.populate_array(dst, data=src.data, shape=[size], strides=[src.itemsize],
                                    itemsize=src.itemsize, meminfo=src.meminfo,
                                    parent=src.parent)
            return dst._getvalue()
        return a.copy(ndim=1)(a), codegen


def _flat_view_simulated(a):
    return a.reshape(a.size)  # a view of the simulator's NumPy array


# (dynamics, dtype, record, features, rows) -> the kernel built in this process (``kernel``);
# also read by reports of what was compiled (registers per thread from the driver)
BUILT = {}


def kernel(dynamics: _math.Dynamics, dtype: str, record: bool = False,
           features: _math.Features = _math.GENERIC, rows: tuple = (1, _math.N_STATE)):
    """The CUDA kernel of one market model's ``dynamics`` and spot precision, writing the
    per-date record or not, with the code paths of ``features`` compiled in (the engine passes
    ``Features.of`` its run: a GPU thread's registers are those of the largest path compiled
    in, so each run gets a kernel holding only its own; see ``results/bench/``), for ``rows`` =
    (hedger rows, state rows per hedger row) of state per path; same call as ``cpu.kernel``
    (whose ``state`` argument gives only its shape here too).

    Each thread keeps its path's state in an array of its own in local memory (private to the
    thread, cached in L1, laid out by the hardware so that neighbouring threads' same fields
    are neighbours), sized at compile time: no per-path state array in device memory (the
    one-hedger GBM kernel took 84 registers that way instead of 109 with its state in global
    memory, sm_90). Launch through ``launch``, which compiles it (at its first launch) without
    contraction.
    """
    key = (dynamics, dtype, record, features, rows)
    if key in BUILT:
        return BUILT[key]
    run_block = cuda.jit(device=True)(
        _math.make_run_block(dynamics, np.dtype(dtype).type, 1, False, record, features))
    flat_view = _flat_view_simulated if simulator_enabled() else _flat_view
    n_rows, n_fields = rows

    @cuda.jit(**_JIT_OPTIONS)
    def run(path_offset, key0, key1, antithetic, spot0, v0, mp, hp, paths, grid, book, book_tau,
            hedgers, schedule, costs, rate, div, state, out, out_spot, rec):
        local = cuda.grid(1)
        if local < out_spot.shape[0]:
            # one lane per thread: its scratch and its state (hedger rows x fields x 1 lane,
            # and the same memory as a 1-D array) are its own
            lanes = cuda.local.array((N_LANE, 1), float64)
            own = cuda.local.array((n_rows, n_fields, 1), float64)
            run_block(local, 1, 0, path_offset, key0, key1, antithetic, spot0, v0, mp, hp,
                      paths, grid, book, book_tau, hedgers, schedule, costs, rate, div, own,
                      flat_view(own), lanes, out, out_spot, rec)

    if not simulator_enabled():
        from . import _cuda_cache  # numba-cuda's compiler internals: not in the simulator

        run = _cuda_cache.enable(
            run, _cuda_cache.specialisation(dynamics, dtype, record, features, rows, run))
    BUILT[key] = run
    return run


def launch(dynamics, dtype, record, features, rows, n, *args, threads=THREADS_PER_BLOCK,
           stream=None):
    """Enqueue ``kernel(dynamics, dtype, record, features, rows)`` over ``n`` paths in enough
    blocks of ``threads`` threads (``launches.plan``) on ``stream`` (a CUDA stream handle,
    ``backend.stream_pointer``; None: numba's default stream), without waiting: the download
    of its outputs on the same stream waits for it."""
    blocks = (n + threads - 1) // threads
    # handle 0 is CuPy's null stream, the legacy default stream: numba's stream 0
    where = () if stream is None else (cuda.external_stream(stream) if stream else 0,)
    with contraction(False):
        kernel(dynamics, dtype, record, features, rows)[(blocks, threads) + where](*args)


def registers(dynamics, dtype, record, features, rows):
    """Registers per thread of ``kernel(dynamics, dtype, record, features, rows)`` as the
    driver reports them for the current device (compiling the kernel, as its first launch
    would: the launch plan's threads per block depend on them); None under the simulator."""
    if simulator_enabled():
        return None
    run = kernel(dynamics, dtype, record, features, rows)
    with contraction(False):
        run.compile(signature(dtype))
    return max(run.get_regs_per_thread().values())


def signature(dtype: str):
    """numba argument types of ``kernel(dynamics, dtype)`` (as ``engine`` launches it)."""
    ft = types.float32 if dtype == "float32" else types.float64

    def array(nd, dt=types.float64):
        return types.Array(dt, nd, "C")

    return (types.int64, types.uint64, types.uint64, types.boolean, types.float64,
            types.float64, array(1, ft), array(1), array(2, ft), array(2), array(2), array(3),
            array(2), array(2, types.uint8), array(2), types.float64, types.float64, array(3),
            array(4), array(1, ft), array(5))


@functools.cache
def ptx(dynamics: _math.Dynamics, dtype: str, cc=(9, 0), contract: bool = False,
        features: _math.Features = _math.GENERIC, rows: tuple = (1, _math.N_STATE)) -> str:
    """PTX of ``kernel(dynamics, dtype, False, features, rows)`` for compute capability ``cc``,
    as launches compile it (``contract=True``: NVVM's default contraction instead); kept per
    process. Needs the CUDA compiler (the ``gpu`` extra), not a GPU."""
    with contraction(contract):
        code, _ = cuda.compile_ptx(kernel(dynamics, dtype, False, features, rows).py_func,
                                   signature(dtype), cc=cc)
    return code
