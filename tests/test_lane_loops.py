"""The CPU kernel's lane loops, read from the code LLVM compiles for them.

The block loop (``_math.make_run_block``) calls the inlined copies (``_fastmath.inlined``) of
its lane functions inside loops over 128 lanes, and its speed rests on two things that no result
shows: every function such a loop reaches is inlined into it, and the loop vectorises. Each
test compiles a loop of the block's shape around one lane function (a few seconds; the kernel
itself takes 35-75 s and is loaded from numba's cache as object code) and reads its optimised
LLVM IR: no call to a function of the package may be left, and the loop must hold vector
floating-point arithmetic. A helper added to a lane function without being jitable-and-branch-
free, or a libm call, fails here.
"""

import math
import re

import numba
import numpy as np
import pytest

import gpuhedge as gh
from gpuhedge.kernels import _fastmath, _math
from gpuhedge.kernels.cpu import LANES

# vector arithmetic on doubles (<2/4/8 x double> operands; floats: the float32 kernels) and the
# calls in a function body
_VECTOR = {t: re.compile(rf"= (?:fadd|fmul|fsub|fdiv)[^\n]*<\d+ x {t}>|@llvm\.fma\.v\d+{s}")
           for t, s in (("double", "f64"), ("float", "f32"))}
_CALL = re.compile(r"call [^@\n]*@([\w.$]+)\(")
# calls that compile to instructions (vectorised or not): LLVM intrinsics, and libm's sqrt
# (the scalar loop LLVM keeps beside the vector one, for arrays that may overlap, calls it:
# sqrtsd, and the call only to set errno for a negative argument); any other call (a package
# function, libm, llvm.log/exp/pow, which become libm calls) stays a call per lane
_INSTRUCTIONS = re.compile(r"sqrt$|llvm\.(?:fma|fabs|floor|ceil|trunc|sqrt|copysign|minnum|"
                           r"maxnum|memset|memcpy|lifetime|assume|smax|smin|umax|umin|"
                           r"masked\.gather)\b")


def _lane_loop(fn, n_lane, n_rest):
    """njit ``loop(out, a0, .., r0, ..)``: ``for j in range(LANES): out[j] = fn(a0[j], ..,
    r0, ..)`` over the inlined copy of ``fn``, its first ``n_lane`` arguments per lane."""
    lanes = [f"a{i}" for i in range(n_lane)]
    rest = [f"r{i}" for i in range(n_rest)]
    scope = {"lane_fn": _fastmath.inlined(fn), "LANES": LANES}
    exec(f"def loop(out, {', '.join(lanes + rest)}):\n"
         f"    for j in range(LANES):\n"
         f"        out[j] = lane_fn({', '.join([a + '[j]' for a in lanes] + rest)})\n", scope)
    return numba.njit(error_model="numpy", _nrt=False)(scope["loop"])


def _body(dispatcher, *args):
    """Optimised LLVM IR of the compiled ``dispatcher`` itself (not its Python wrapper)."""
    dispatcher(*args)
    (ir,) = dispatcher.inspect_llvm().values()
    for define in re.finditer(r"^define [^\n]*@([\w.$]+)\(", ir, flags=re.M):
        if not define.group(1).startswith(("cpython.", "cfunc.")):
            return ir[define.start():ir.index("\n}\n", define.start())]
    raise AssertionError("no compiled function in the IR")


def _check(body, what, element="double"):
    calls = sorted({c for c in _CALL.findall(body) if not _INSTRUCTIONS.match(c)})
    assert calls == [], f"{what}: calls left in the lane loop: {calls}"
    assert _VECTOR[element].search(body), \
        f"{what}: no vector arithmetic on {element}s in the lane loop"


LANE = np.linspace(0.5, 1.5, LANES)
CASES = {  # lane function -> (per-lane arguments, the other arguments)
    "log": (_fastmath.flog, [100.0 * LANE], ()),
    "delta": (_math.delta_from, [np.log(LANE), 0.5 + 0.0 * LANE],
              (0.99, 0.2, 0.03, 0.01, True)),
    "gamma": (_math.gamma_from, [100.0 * LANE, np.log(LANE)], (0.5, 0.99, 0.2, 0.03, 0.01)),
    "Whalley-Wilmott band": (_math.whalley_wilmott_path_part, [0.01 * LANE, 100.0 * LANE],
                             (0.98,)),
}


@pytest.mark.parametrize("name", CASES)
def test_lane_function_is_inlined_and_vectorised(name):
    fn, per_lane, rest = CASES[name]
    _check(_body(_lane_loop(fn, len(per_lane), len(rest)), np.empty(LANES), *per_lane, *rest),
           name)


# GBM, CEV and Heston, whose step reaches Box-Muller, exp, log, pow and the normal CDF; Merton's
# and Bates' steps add the jump sizes (a normal pair and exp, both here): 20 s of compiling
# each saved (the suite's time on 2 cores is close to its limit)
@pytest.mark.parametrize("model", [gh.BlackScholes, gh.CEV, gh.Heston],
                         ids=lambda m: m.__name__)
def test_model_step_is_inlined_and_vectorised(model):
    """Each model's step as the block loop calls it (``Dynamics.lane_step``)."""
    step = model.dynamics.lane_step()

    @numba.njit(error_model="numpy", _nrt=False)
    def loop(s, v, mp, paths, draw):
        for j in range(LANES):
            s[j], v[j] = step(s[j], v[j], mp, paths, np.uint64(1), np.uint64(2),
                              np.uint64(j), 0, 3, 1.0, draw[j])

    mp = np.full(20, 0.01)
    _check(_body(loop, 100.0 * LANE, 0.04 * LANE, mp, np.zeros((1, 1)), 0.0 * LANE),
           model.__name__)


def test_float32_step_is_inlined_and_vectorised_in_float32():
    """The float32 kernel's GBM step (its ``as_float32`` copy): vector float arithmetic."""
    step = gh.BlackScholes.dynamics.lane_step(single=True)
    one = np.float32(1.0)

    @numba.njit(error_model="numpy", _nrt=False)
    def loop(s, v, mp, paths, draw):
        for j in range(LANES):
            s[j], v[j] = step(s[j], v[j], mp, paths, np.uint64(1), np.uint64(2),
                              np.uint64(j), 0, 3, one, draw[j])

    f32 = np.float32
    _check(_body(loop, (100.0 * LANE).astype(f32), (0.04 * LANE).astype(f32),
                 np.full(2, 0.01, f32), np.zeros((1, 1), f32), (0.0 * LANE).astype(f32)),
           "GBM float32", "float")


def test_a_call_left_in_a_lane_loop_fails_the_check():
    """The check sees a libm call (numba's ``math.log``), which LLVM cannot vectorise."""

    @numba.njit(error_model="numpy", _nrt=False)
    def loop(out, x):
        for j in range(LANES):
            out[j] = math.log(x[j])

    with pytest.raises(AssertionError, match="calls left in the lane loop: .*llvm.log"):
        _check(_body(loop, np.empty(LANES), LANE), "math.log")
