"""Branch-free double-precision exp, expm1, log, pow, cube root, sin/cos(2 pi u) and the normal
CDF: every transcendental of the kernels; their division and square root (IEEE's, computed on
the GPU without a call); and their float32 copies (``as_float32``: the same code with float32
constants, for the float32 kernels; ``docs/precision.md``).

Written once and compiled for both targets, these give the CPU and the GPU the same bits (libm
on the CPU and libdevice on the GPU differ by an ulp here and there): the kernels call no
``math.exp/log/expm1/pow`` or ``**`` (``tests/test_cuda.py`` scans the compiled kernels).

The kernels' hot loops (Box-Muller, the model steps, ln S, the book's greeks, the
Whalley-Wilmott band) call these instead of libm so that a CPU loop over a block of paths
(``_math.make_run_block``) vectorises: libm calls have no vector variants in numba's LLVM (no
SVML), these are plain arithmetic, fused multiply-adds, ``floor``, int <-> float conversions and
bit casts, and lane-dependent choices are selects. The functions are ordinary (called)
``register_jitable`` functions; the lane loops call their ``inlined`` copies, which numba
inlines (LLVM only vectorises what it sees; inlining everywhere would make compiling slow).

The three primitives ``fma``, ``f64_from_bits`` and ``bits_from_f64`` are plain Python
functions (used as such by direct calls and by numba's CUDA simulator, which runs device
functions as Python) overloaded for compiled code by LLVM intrinsics: ``llvm.fma.f64``
(``vfmadd`` on the CPU, ``fma.rn.f64`` in NVVM) and ``bitcast``. The Python ``fma`` rounds
once too (Python 3.11 has no ``math.fma``: Dekker's exact product and ``math.fsum``), so that
the simulator agrees with compiled code bit for bit. ``horner``, the one evaluation of every
polynomial here (a tuple of coefficients), is such a plain function too, unrolled for the
tuple's length in compiled code.

Accuracy (``tests/test_fastmath.py``): ``fexp`` within 2 ulp of ``math.exp`` on
[-700, 700]; ``fexpm1`` within 2 ulp of ``math.expm1`` on [-40, 709]; ``flog`` within 2 ulp of
``math.log`` on positive normal numbers; ``fpow`` within 2 ulp of ``math.pow`` for x > 0
(subnormals too) and |y ln x| <= 700; ``sincos_2pi``
within 2e-16 (absolute) of cos/sin(2 pi u) on [0, 1]; ``norm_cdf`` within 1e-15 absolute and
5e-15 relative (tails) of ``scipy.special.ndtr`` on [-37, 37]; ``div_exact`` and
``sqrt_exact`` (the GPU's ``fdiv`` and ``fsqrt``) equal to IEEE division and square root on
every case tested, in both precisions, for |b| in (2^-1020, 2^1020), quotients and roots above
2^-969 or zero (the overflow of a quotient is NaN, not inf). Special values are not handled
except where stated: ``fexp`` clamps its argument to [-746, 710] (0 and inf beyond),
``fexpm1`` to [-40, 710] (-1 and inf), ``fpow`` takes x >= 0 (0^y is 0, 1 or inf),
``flog`` assumes a positive normal number, ``cbrt`` (within 5e-14 relative, from exp and log)
gives 0 at and below 1e-300, ``norm_cdf`` saturates to 0 / 1 beyond |x| = 40 and propagates
NaN.

References: fdlibm (Sun Microsystems 1993) e_log.c, k_sin.c, k_cos.c for the log and sin/cos
kernels; exp by Cody-Waite reduction and a degree-13 Taylor polynomial on |r| <= ln2 / 2;
N(-x) = exp(-x^2/2) w P(1 - 2w) / 2, w = 3 / (x + 3), P a degree-24 Chebyshev fit of
erfcx(x / sqrt 2) (fitted in a prototype with mpmath; relative error 6e-16). The float32
copies (``as_float32``) take shorter polynomials where float32 needs fewer terms
(``_FLOAT32``; ``docs/precision.md``).
"""

import functools
import math
import struct
import types as _pytypes

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload, register_jitable


# ---------------------------------------------------------------------------------------------
# Primitives: Python functions for the simulator and direct calls, intrinsics when compiled.
# ---------------------------------------------------------------------------------------------
_SPLIT = 134217729.0  # 2**27 + 1 (Dekker's split)


def fma(a, b, c):
    """a * b + c rounded once, in float32 when a, b and c are all float32, else in float64.
    In Python: a * b = p + e exactly (Dekker's product; the arguments here are far from
    overflow and underflow) and ``math.fsum`` rounds p + e + c correctly, so that the CUDA
    simulator agrees with compiled code bit for bit."""
    if isinstance(a, np.float32) and isinstance(b, np.float32) and isinstance(c, np.float32):
        return _fma_float32(a, b, c)
    a = float(a)
    b = float(b)
    p = a * b
    t = _SPLIT * a
    ah = t - (t - a)
    al = a - ah
    t = _SPLIT * b
    bh = t - (t - b)
    bl = b - bh
    e = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    return math.fsum((p, e, float(c)))


def _fma_float32(a, b, c):
    """a * b + c rounded once to float32. The product of two float32 is exact in float64;
    the sum is rounded to odd in float64 (the exact sum's error by two-sum, then the odd
    neighbour), which rounded to nearest float32 is the correctly rounded result (53 >= 24 + 2
    bits: Boldo and Melquiond 2008)."""
    p = float(a) * float(b)
    c = float(c)
    s = p + c
    t = s - p
    e = (p - (s - t)) + (c - t)
    if e != 0.0 and bits_from_f64(s) & 1 == 0:
        s = math.nextafter(s, math.inf if e > 0.0 else -math.inf)
    return np.float32(s)


def f64_from_bits(i):
    """The float64 whose IEEE bits are the int64 ``i``."""
    return struct.unpack("<d", struct.pack("<q", int(i)))[0]


def bits_from_f64(x):
    """The IEEE bits of the float64 ``x`` as an int64."""
    return struct.unpack("<q", struct.pack("<d", float(x)))[0]


def f32_from_bits(i):
    """The float32 whose IEEE bits are the low 32 bits of the integer ``i``."""
    return np.float32(struct.unpack("<f", struct.pack("<I", int(i) & 0xFFFFFFFF))[0])


def bits_from_f32(x):
    """The IEEE bits of the float32 ``x`` as an int32."""
    return struct.unpack("<i", struct.pack("<f", np.float32(x)))[0]


@intrinsic
def _fma32_intrinsic(typingctx, a, b, c):
    if all(v == types.float32 for v in (a, b, c)):
        def codegen(context, builder, sig, args):
            f = ir.FloatType()
            fn = builder.module.declare_intrinsic("llvm.fma", [f], ir.FunctionType(f, [f] * 3))
            return builder.call(fn, args)
        return types.float32(a, b, c), codegen


@intrinsic
def _fma_intrinsic(typingctx, a, b, c):
    if all(isinstance(v, types.Float) for v in (a, b, c)):
        def codegen(context, builder, sig, args):
            d = ir.DoubleType()
            args = [context.cast(builder, v, t, types.float64) for v, t in zip(args, sig.args)]
            fn = builder.module.declare_intrinsic("llvm.fma", [d], ir.FunctionType(d, [d] * 3))
            return builder.call(fn, args)
        return types.float64(a, b, c), codegen


def _bit_casts(int_type, float_type, ir_float, bits):
    """The bit-cast intrinsics of one IEEE format: integer -> float and float -> integer."""
    @intrinsic
    def from_bits(typingctx, x):
        if isinstance(x, types.Integer):
            def codegen(context, builder, sig, args):
                v = context.cast(builder, args[0], sig.args[0], int_type)
                return builder.bitcast(v, ir_float)
            return float_type(x), codegen

    @intrinsic
    def to_bits(typingctx, x):
        if isinstance(x, types.Float):
            def codegen(context, builder, sig, args):
                v = context.cast(builder, args[0], sig.args[0], float_type)
                return builder.bitcast(v, ir.IntType(bits))
            return int_type(x), codegen

    return from_bits, to_bits


_f64_from_bits_intrinsic, _bits_from_f64_intrinsic = _bit_casts(
    types.int64, types.float64, ir.DoubleType(), 64)
_f32_from_bits_intrinsic, _bits_from_f32_intrinsic = _bit_casts(
    types.int32, types.float32, ir.FloatType(), 32)


def horner(x, coefficients):
    """The polynomial with ``coefficients`` (highest degree first) at x, by Horner's rule in
    fused multiply-adds. Each polynomial of this module is a tuple of coefficients, so that its
    float32 copy can take a shorter one (``_FLOAT32``). Compiled, the rule is unrolled for the
    tuple's length (``_horner_overload``)."""
    p = coefficients[0]
    for c in coefficients[1:]:
        p = fma(p, x, c)
    return p


def fdiv(a, b):
    """a / b: IEEE division, an instruction on the CPU; on the GPU, where IEEE division is a
    call, the same result by ``div_exact`` (``kernels/cuda.py`` registers it)."""
    return a / b


def fsqrt(x):
    """sqrt(x): IEEE square root (float32 in, float32 out), an instruction on the CPU; on the
    GPU, where it is a call, the same result by ``sqrt_exact`` (``kernels/cuda.py``)."""
    return np.sqrt(x)


_PRIMITIVES = (fma, f64_from_bits, bits_from_f64, f32_from_bits, bits_from_f32, horner, fdiv,
               fsqrt)


@overload(fma)
def _fma_overload(a, b, c):
    if all(v == types.float32 for v in (a, b, c)):
        def impl(a, b, c):
            return _fma32_intrinsic(a, b, c)
        return impl
    if all(isinstance(v, (types.Float, types.Integer)) for v in (a, b, c)):
        def impl(a, b, c):
            return _fma_intrinsic(float(a), float(b), float(c))
        return impl


@overload(f64_from_bits)
def _f64_from_bits_overload(i):
    if isinstance(i, types.Integer):
        def impl(i):
            return _f64_from_bits_intrinsic(i)
        return impl


@overload(bits_from_f64)
def _bits_from_f64_overload(x):
    if isinstance(x, types.Float):
        def impl(x):
            return _bits_from_f64_intrinsic(float(x))
        return impl


@overload(f32_from_bits)
def _f32_from_bits_overload(i):
    if isinstance(i, types.Integer):
        def impl(i):
            return _f32_from_bits_intrinsic(i)
        return impl


@overload(bits_from_f32)
def _bits_from_f32_overload(x):
    if x == types.float32:
        def impl(x):
            return _bits_from_f32_intrinsic(x)
        return impl


@overload(fdiv, target="cpu")
def _fdiv_overload(a, b):
    if isinstance(a, types.Float) and isinstance(b, types.Float):
        def impl(a, b):
            return a / b
        return impl


@overload(fsqrt, target="cpu")
def _fsqrt_overload(x):
    if isinstance(x, types.Float):
        def impl(x):
            return np.sqrt(x)
        return impl


@overload(horner, inline="always")
def _horner_overload(x, coefficients):
    # Unrolled in the source: numba's inliner loses track of a loop's variables when it inlines
    # the loop twice into one function (norm_cdf's two chains).
    lines = ["def unrolled(x, coefficients):", "    p = coefficients[0]"]
    lines += [f"    p = fma(p, x, coefficients[{i}])" for i in range(1, len(coefficients.types))]
    scope = {"fma": fma}
    exec("\n".join(lines + ["    return p"]), scope)
    return scope["unrolled"]


# ---------------------------------------------------------------------------------------------
# Division and square root on the GPU. ``fdiv`` and ``fsqrt`` are IEEE division and square root:
# on the CPU (and in the CUDA simulator) the instructions, on the GPU ``div_exact`` and
# ``sqrt_exact`` (registered by ``kernels/cuda.py``), which compute the same correctly rounded
# results without a call. The GPU compiles IEEE division and square root to a fast path and a
# call of a slow path, whose fixed register convention costs every thread registers (the
# one-hedger GBM kernel took 84 registers with them, 62 without and with its loops not unrolled
# by their runtime counts: ``cuda.no_runtime_unrolling``).
#   Newton's iteration from a first guess read off the bits (the exponent negated, or halved
# and negated, by one integer subtraction: relative error below 0.051 for 1/b and 0.035 for
# 1/sqrt(x)), in fused multiply-adds: 1/b by e = 1 - b y, y <- y + y e (the error squares,
# 0.051 -> 2.6e-3 -> 6.6e-6 -> 4.3e-11 -> below 2^-53); 1/sqrt(x) by y <- y (3/2 - x y^2 / 2)
# (e -> 3 e^2 / 2, 0.035 -> 1.8e-3 -> 4.9e-6 -> 3.6e-11 -> below 2^-53); float32 needs three
# steps of each, the fourth costs it two operations (written out: numba's inliner loses track
# of a loop's variables when it inlines the loop twice into one function). The quotient a y
# (root x y) is then corrected once against its residual (Markstein), which makes it faithful
# (one of the two floats around the exact value), and the residual of that faithful result,
# exact in one fused multiply-add, says which of the two is the nearest: a / b rounds up from q
# when 2 |a - b q| exceeds |b| times the spacing above q (the exact quotient is never a
# midpoint), and sqrt(x) from s when x - s^2 exceeds s times it (all three are multiples of the
# spacing's square; Tuckerman's test), each comparison exact. Both equal IEEE's results for
# |b| in (2^-1020, 2^1020) and quotients and roots above 2^-969 in magnitude (or zero)
# (``tests/test_fastmath.py``: every one of millions, in both precisions).
# ---------------------------------------------------------------------------------------------
_RECIP_MAGIC = 0x7FDE623822FC16E6
_RSQRT_MAGIC = 0x5FE6EB50C7B537A9


@register_jitable
def _spacing(x):
    """(the spacing of floats above |x|, whether |x| is a power of two) for a finite x."""
    bits = bits_from_f64(abs(x))
    e = bits >> _MBITS
    u = f64_from_bits((e - _MBITS) << _MBITS) if e > _MBITS else f64_from_bits(
        1 << max(e - 1, 0))
    return u, (bits & _MANT) == 0


@register_jitable
def div_exact(a, b):
    """a / b rounded as IEEE division, without a division, for finite a and 2^-1020 < |b| <
    2^1020, with |a / b| > 2^-969 or a = 0; branch-free."""
    m = abs(b)
    y = f64_from_bits(_RECIP_MAGIC - bits_from_f64(m))
    y = fma(y, fma(-m, y, 1.0), y)
    y = fma(y, fma(-m, y, 1.0), y)
    y = fma(y, fma(-m, y, 1.0), y)
    y = fma(y, fma(-m, y, 1.0), y)
    y = y if b > 0.0 else -y
    q = a * y
    q = fma(fma(-b, q, a), y, q)  # faithful
    r = fma(-b, q, a)  # a - b q, exact
    u, power = _spacing(q)
    up = (r > 0.0) == (b > 0.0)  # a / b is above q
    # the spacing on a/b's side of q: half below a power of two's magnitude
    step = 0.5 * u if power and up != (q > 0.0) else u
    nearer = q + step if up else q - step
    return nearer if r != 0.0 and 2.0 * abs(r) > m * step else q


@register_jitable
def sqrt_exact(x):
    """sqrt(x) rounded as IEEE's, without a square root, for x = 0 or 2^-1000 < x < 2^1020;
    branch-free."""
    y = f64_from_bits(_RSQRT_MAGIC - (bits_from_f64(x) >> 1))
    h = 0.5 * x
    y = y * fma(-(h * y), y, 1.5)
    y = y * fma(-(h * y), y, 1.5)
    y = y * fma(-(h * y), y, 1.5)
    y = y * fma(-(h * y), y, 1.5)
    s = x * y
    s = fma(fma(-s, s, x), 0.5 * y, s)  # faithful
    r = fma(-s, s, x)  # x - s^2, exact
    u, power = _spacing(s)
    down = r < 0.0
    step = 0.5 * u if power and down else u
    nearer = s - step if down else s + step
    further = r <= -(s * step) if down else r > s * u
    return nearer if further and x > 0.0 else s


# ---------------------------------------------------------------------------------------------
# exp: x = k ln2 + r (Cody-Waite, |r| <= ln2/2), exp(r) by its degree-13 Taylor polynomial
# (truncation error < 1e-17 relative), 2^k as 2^k1 2^k2 built from bits (covers subnormal
# results and k = 1024).
# ---------------------------------------------------------------------------------------------
_BIAS = 1023  # IEEE double: exponent bias, bits of the significand's fraction
_MBITS = 52
_INVLN2 = 1.44269504088896338700e+00
_LN2HI = 6.93147180369123816490e-01
_LN2LO = 1.90821492927058770002e-10
_EXP_MIN = -746.0
_EXP_MAX = 710.0
# exp(r) = 1 + r P(r), P the Taylor polynomial r^12 / 13! + ... + r / 2! + 1 (coefficients
# highest degree first, ``horner``); expm1(r) = r + r^2 (P(r) - 1) / r. Float32 stops at degree 7
# (r^8 / 8! < 6e-9 on |r| <= ln2 / 2, below half a float32 ulp).
_EXP_POLY = tuple(1.0 / math.factorial(i) for i in range(13, 0, -1))
_EXPM1_POLY = _EXP_POLY[:-1]


@register_jitable
def fexp(x):
    """exp(x), branch-free; x clamped to [-746, 710]."""
    x = min(max(x, _EXP_MIN), _EXP_MAX)
    k = int(math.floor(x * _INVLN2 + 0.5))
    kf = float(k)
    r = fma(-kf, _LN2LO, fma(-kf, _LN2HI, x))
    y = fma(horner(r, _EXP_POLY), r, 1.0)
    k1 = k >> 1
    k2 = k - k1
    return y * f64_from_bits((k1 + _BIAS) << _MBITS) * f64_from_bits((k2 + _BIAS) << _MBITS)


# ---------------------------------------------------------------------------------------------
# log (fdlibm e_log.c reduction and kernel): x = 2^k m, m in [sqrt2/2, sqrt2), found from the
# bits; log(m) = f - hfsq + s (hfsq + R), s = f / (2 + f).
# ---------------------------------------------------------------------------------------------
_LG1 = 6.666666666666735130e-01
_LG2 = 3.999999999940941908e-01
_LG3 = 2.857142874366239149e-01
_LG4 = 2.222219843214978396e-01
_LG5 = 1.818357216161805012e-01
_LG6 = 1.531383769920937332e-01
_LG7 = 1.479819860511658591e-01
# R = z (Lg1 + w Lg3 + ...) + w (Lg2 + w Lg4 + ...), z = s^2, w = z^2: the odd and the even
# terms as two chains. Float32 stops at Lg4 (the Lg5 term is below s^10 / 5 < 5e-9).
_LOG_ODD = (_LG7, _LG5, _LG3, _LG1)
_LOG_EVEN = (_LG6, _LG4, _LG2)
_OFF = 0x3fe6a09e667f3bcd  # bits of ~sqrt(2)/2
_MANT = 0x000fffffffffffff


@register_jitable
def flog(x):
    """Natural log of a positive normal float64, branch-free."""
    ix = bits_from_f64(x) - _OFF
    k = ix >> _MBITS
    m = f64_from_bits((ix & _MANT) + _OFF)
    f = m - 1.0
    s = fdiv(f, 2.0 + f)
    z = s * s
    w = z * z
    t1 = w * horner(w, _LOG_EVEN)
    t2 = z * horner(w, _LOG_ODD)
    big_r = t2 + t1
    hfsq = 0.5 * f * f
    dk = float(k)
    return fma(dk, _LN2HI, -((hfsq - fma(s, hfsq + big_r, dk * _LN2LO)) - f))


# ---------------------------------------------------------------------------------------------
# expm1: the reduction of exp, expm1(r) = r + r^2 (1/2 + r/6 + ...) by the same Taylor
# polynomial, then 2^k (1 + e) - 1 = 2^k2 (2^k1 e + (2^k1 - 2^-k2)) with one rounding (fma) and
# an exact scaling (k = k1 + k2 as in fexp: covers k = 1024). At k = 0 (|x| <= ln2/2) r = x
# exactly, so small arguments lose nothing to cancellation.
# ---------------------------------------------------------------------------------------------
_EXPM1_MIN = -40.0  # expm1(x) rounds to -1 below


@register_jitable
def fexpm1(x):
    """exp(x) - 1, branch-free, accurate near 0; x clamped to [-40, 710] (-1 and inf beyond)."""
    x = min(max(x, _EXPM1_MIN), _EXP_MAX)
    k = int(math.floor(x * _INVLN2 + 0.5))
    kf = float(k)
    r = fma(-kf, _LN2LO, fma(-kf, _LN2HI, x))
    e = fma(r * r, horner(r, _EXPM1_POLY), r)  # expm1(r)
    k1 = k >> 1
    k2 = k - k1
    s1 = f64_from_bits((k1 + _BIAS) << _MBITS)
    return fma(s1, e, s1 - f64_from_bits((_BIAS - k2) << _MBITS)) * f64_from_bits(
        (k2 + _BIAS) << _MBITS)


# ---------------------------------------------------------------------------------------------
# pow: x^y = exp(y ln x) with ln x in double-double (the fdlibm log reduction, its terms summed
# without rounding the leading ones: ln x = k ln2 + 2s + s R(s^2), s = f / (2 + f) as
# s + s_lo), so that y ln x carries ~2^-59 relative error and exp(p + p_lo) = e^p (1 + p_lo).
# ---------------------------------------------------------------------------------------------
_MIN_NORMAL = 2.2250738585072014e-308
_SUBNORMAL_BITS = 54  # subnormals are scaled by 2^54 to normal numbers first
_SUBNORMAL_SCALE = 18014398509481984.0
_INF = math.inf


@register_jitable
def _log_dd(x):
    """ln x as hi + lo (|lo| <= ulp(hi)) for a positive x (normal or subnormal)."""
    tiny = x < _MIN_NORMAL  # subnormal: scaled to a normal number first
    xs = x * _SUBNORMAL_SCALE if tiny else x
    ix = bits_from_f64(xs) - _OFF
    k = (ix >> _MBITS) - (_SUBNORMAL_BITS if tiny else 0)
    m = f64_from_bits((ix & _MANT) + _OFF)
    f = m - 1.0  # exact (Sterbenz)
    u = 2.0 + f
    u_lo = f - (u - 2.0)  # 2 + f = u + u_lo exactly
    s = fdiv(f, u)
    s_lo = fdiv(fma(-s, u, f) - s * u_lo, u)  # f / (2 + f) = s + s_lo
    z = s * s
    w = z * z
    t1 = w * horner(w, _LOG_EVEN)
    t2 = z * horner(w, _LOG_ODD)
    dk = float(k)
    a = dk * _LN2HI  # exact
    b = 2.0 * s
    hi = a + b  # two-sum of the two leading terms
    bb = hi - a
    lo = ((a - (hi - bb)) + (b - bb)) + (fma(dk, _LN2LO, 2.0 * s_lo) + s * (t1 + t2))
    top = hi + lo
    return top, lo - (top - hi)


@register_jitable
def fpow(x, y):
    """x^y for x >= 0 (normal, subnormal or 0) and finite y, branch-free: 0^y is 0 (y > 0),
    1 (y = 0) or inf (y < 0)."""
    hi, lo = _log_dd(x if x > 0.0 else 1.0)
    p = y * hi
    p_lo = fma(y, hi, -p) + y * lo
    r = fexp(p)
    r = fma(r, p_lo, r) if r < _INF else r
    zero = 0.0 if y > 0.0 else (1.0 if y == 0.0 else _INF)
    return r if x > 0.0 else zero


@register_jitable
def cbrt(x):
    """x^(1/3) for x >= 0 as exp(ln(x) / 3), branch-free; 0 for x <= 0 (and tiny x)."""
    y = fexp(flog(max(x, _CBRT_MIN)) * (1.0 / 3.0))
    return y if x > _CBRT_MIN else 0.0


_CBRT_MIN = 1e-300


# ---------------------------------------------------------------------------------------------
# sin/cos of 2 pi u: u = q/4 + t exactly (|t| <= 1/8), fdlibm k_sin/k_cos on x = 2 pi t, then a
# rotation by q quarter turns (selects).
# ---------------------------------------------------------------------------------------------
_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10
_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11
# sin x = x + x^3 (S1 + z (S2 + z S3 + ...)), cos x = 1 - z / 2 + z^2 (C1 + z C2 + ...), z = x^2,
# |x| <= pi / 4. Float32 stops at S4 and C4 (the next terms are below 2e-9).
_SIN_POLY = (_S6, _S5, _S4, _S3, _S2)
_COS_POLY = (_C6, _C5, _C4, _C3, _C2, _C1)
_TWO_PI = 2.0 * math.pi


@register_jitable
def sincos_2pi(u):
    """(cos(2 pi u), sin(2 pi u)) for moderate u (|u| < 2**50), branch-free."""
    q = int(math.floor(4.0 * u + 0.5))
    t = u - 0.25 * float(q)
    x = _TWO_PI * t
    z = x * x
    v = z * x
    rs = horner(z, _SIN_POLY)
    sn = fma(v, fma(z, rs, _S1), x)
    rc = z * horner(z, _COS_POLY)
    hz = 0.5 * z
    w = 1.0 - hz
    cs = w + (((1.0 - w) - hz) + z * rc)
    swap = (q & 1) == 1
    c = sn if swap else cs
    s = cs if swap else sn
    c = -c if ((q + 1) & 2) != 0 else c
    s = -s if (q & 2) != 0 else s
    return c, s


# ---------------------------------------------------------------------------------------------
# Standard normal CDF: N(-a) = exp(-a^2/2) w P(1 - 2w) / 2 for a = |x|, w = 3 / (a + 3); a^2 is
# split exactly (fma) so that the exponential carries no argument error in the tails.
# ---------------------------------------------------------------------------------------------
_NK = 3.0
_NCDF_MAX = 40.0
(_Q0, _Q1, _Q2, _Q3, _Q4, _Q5, _Q6, _Q7, _Q8, _Q9, _Q10, _Q11, _Q12, _Q13, _Q14, _Q15, _Q16,
 _Q17, _Q18, _Q19, _Q20, _Q21, _Q22, _Q23, _Q24) = (
    0.4860557934222487, -0.33955465461166146, 0.1533451466497336, -0.031508683428461824,
    -0.006975244682047405, 0.004648414154639984, 0.0006850615018337941, -0.0006972190016328484,
    -0.00017105017515481062, 0.00010292900819344714, 5.254136110099777e-05,
    -8.827583782903341e-06, -1.3790797167141405e-05, -2.355020405926831e-06,
    2.4207910348629547e-06, 1.5251640097524738e-06, 1.6979442104548034e-08,
    -4.2431287527440545e-07, -1.9721983577354135e-07, 5.3976353242455475e-08,
    7.585116016849543e-08, 3.384820861276525e-09, -1.483119378441009e-08,
    -1.5953862240367284e-09, 1.2826556177822112e-09)
# P's even and odd coefficients, highest degree first, as two Horner chains in t^2 (shorter
# latency). Float32's P is a degree-11 fit of the same function (least squares on 2,000
# Chebyshev nodes of [-1, 1] against scipy's erfcx; relative error 1e-8, below float32's
# rounding of the sums): ``_FLOAT32``.
_NCDF_EVEN = (_Q24, _Q22, _Q20, _Q18, _Q16, _Q14, _Q12, _Q10, _Q8, _Q6, _Q4, _Q2, _Q0)
_NCDF_ODD = (_Q23, _Q21, _Q19, _Q17, _Q15, _Q13, _Q11, _Q9, _Q7, _Q5, _Q3, _Q1)


@register_jitable
def norm_cdf(x):
    """Standard normal CDF, branch-free, accurate in both tails (NaN in, NaN out)."""
    a = min(abs(x), _NCDF_MAX)
    hi = a * a
    lo = fma(a, a, -hi)  # a*a = hi + lo exactly
    e = fexp(-0.5 * hi) * (1.0 - 0.5 * lo)
    w = fdiv(_NK, a + _NK)
    t = 1.0 - 2.0 * w
    t2 = t * t  # even and odd coefficients as two Horner chains in t^2 (shorter latency)
    pe = horner(t2, _NCDF_EVEN)
    po = horner(t2, _NCDF_ODD)
    p = fma(po, t, pe)
    tail = 0.5 * e * (w * p)
    # 1 - tail for x > 0, else tail, as arithmetic (both exact: pos is 0 or 1); NaN stays NaN
    pos = 1.0 if x > 0.0 else 0.0
    return pos + (1.0 - 2.0 * pos) * tail


# ---------------------------------------------------------------------------------------------
# Inlined copies for the lane loops. numba inlines ``inline='always'`` functions at every call
# site, which is slow to compile; so the package's jitable functions are ordinary (called)
# functions, and the lane loops call copies of the same code inlined with all their callees.
# ---------------------------------------------------------------------------------------------
def _ours(value):
    """A jitable function of this package: a plain function of it called from compiled code,
    other than the primitives (which compile to their intrinsics, not to their Python code)."""
    return isinstance(value, _pytypes.FunctionType) and value not in _PRIMITIVES and \
        value.__module__.split(".")[0] == __name__.split(".")[0]


@functools.cache
def inlined(fn):
    """A copy of the package's jitable function ``fn`` that numba inlines at its call sites and
    that calls the inlined copies of the package's functions ``fn`` calls (its global names and
    closure cells), recursively: what a lane loop calls through it is all in the loop's body,
    where LLVM can vectorise it. The copy runs ``fn``'s own code (``__code__``), so there is
    one definition, and the kernels' cache stamps (by file) cover both."""
    scope = dict(fn.__globals__)
    for name in fn.__code__.co_names:
        if _ours(scope.get(name)):
            scope[name] = inlined(scope[name])
    closure = None if fn.__closure__ is None else tuple(
        _pytypes.CellType(inlined(cell.cell_contents) if _ours(cell.cell_contents)
                          else cell.cell_contents) for cell in fn.__closure__)
    copy = _pytypes.FunctionType(fn.__code__, scope, fn.__name__ + "_inline", fn.__defaults__,
                                 closure)
    copy.__doc__ = fn.__doc__
    return register_jitable(inline="always")(copy)


# ---------------------------------------------------------------------------------------------
# Float32 copies: the same code with its floating-point constants in float32, so that the
# float32 kernels run these algorithms in float32 arithmetic (one source for both precisions).
# ---------------------------------------------------------------------------------------------
# The float32 values of the constants whose float64 values do not carry over: the IEEE single
# layout, the ranges of exp and expm1, and ln 2 split for float32's Cody-Waite reduction (the
# high part has 15 significant bits, so that k ln2_hi is exact for |k| < 2^9).
_LN2 = math.log(2.0)


def _float32_tuple(values):
    return tuple(np.float32(v) for v in values)


_FLOAT32 = dict(
    _BIAS=127, _MBITS=23, _OFF=0x3F3504F3, _MANT=0x007FFFFF,
    _LN2HI=np.float32(round(_LN2 * 2**15) / 2**15),
    _LN2LO=np.float32(_LN2 - round(_LN2 * 2**15) / 2**15),
    _RECIP_MAGIC=0x7EF311C7, _RSQRT_MAGIC=0x5F3759DF,
    _EXP_MIN=np.float32(-104.0), _EXP_MAX=np.float32(89.0), _EXPM1_MIN=np.float32(-18.0),
    _MIN_NORMAL=np.float32(np.finfo(np.float32).tiny), _SUBNORMAL_BITS=25,
    _SUBNORMAL_SCALE=np.float32(2.0**25), _CBRT_MIN=np.float32(1e-37),
    # the polynomials at the degrees float32 needs (see each one's comment): the float64 ones
    # without their highest terms, and the normal CDF's own fit
    _EXP_POLY=_float32_tuple(_EXP_POLY[-7:]), _EXPM1_POLY=_float32_tuple(_EXPM1_POLY[-6:]),
    _LOG_ODD=_float32_tuple(_LOG_ODD[-2:]), _LOG_EVEN=_float32_tuple(_LOG_EVEN[-2:]),
    _SIN_POLY=_float32_tuple(_SIN_POLY[-3:]), _COS_POLY=_float32_tuple(_COS_POLY[-4:]),
    _NCDF_EVEN=_float32_tuple((2.36337582e-05, -0.000142851641, 0.000671498361,
                               -0.00697220862, 0.153344899, 0.486055791)),
    _NCDF_ODD=_float32_tuple((-1.01356554e-05, 0.000102577556, -0.000696517993,
                              0.00464813504, -0.0315086432, -0.339554667)))


def _floor32(x):
    return math.floor(x)


@intrinsic
def _floor32_intrinsic(typingctx, x):
    if x == types.float32:
        def codegen(context, builder, sig, args):
            f = ir.FloatType()
            fn = builder.module.declare_intrinsic("llvm.floor", [f], ir.FunctionType(f, [f]))
            return builder.call(fn, args)
        return types.float32(x), codegen


@overload(_floor32, inline="always")
def _floor32_overload(x):
    # numba's math.floor of a float32 calls libm's floorf, which a loop over lanes cannot
    # vectorise; llvm.floor.f32 is one instruction on both targets
    if x == types.float32:
        def impl(x):
            return int(_floor32_intrinsic(x))
        return impl


# What the float32 copies see as ``math``: its floor, compiled to the float32 instruction (the
# kernels take square roots by ``fsqrt``, float32 for float32).
_MATH32 = _pytypes.ModuleType("gpuhedge float32 math")
_MATH32.floor = _floor32
_F64_ONLY = {"pi", "e", "tau", "inf", "nan", "fsum", "exp", "log", "expm1", "pow", "erf",
             "erfc", "log1p", "sin", "cos", "sqrt"}
_AS_FLOAT32 = {f64_from_bits: f32_from_bits, bits_from_f64: bits_from_f32}


def _float32_constant(name, value):
    with np.errstate(over="ignore"):
        single = np.float32(value)
    if (value != 0.0 and single == 0.0) or (math.isfinite(value) and not np.isfinite(single)):
        raise ValueError(f"as_float32: the constant {name} = {value!r} has no float32 value "
                         "(it rounds to 0 or overflows); give one in its module's _FLOAT32")
    return single


def _float32_value(name, value, overrides):
    if name in overrides:
        return overrides[name]
    if isinstance(value, float) and not isinstance(value, np.float32):
        return _float32_constant(name, value)
    if isinstance(value, tuple):
        return tuple(_float32_value(name, v, overrides) for v in value)
    if value is math:
        return _MATH32
    if value is float:
        return np.float32
    if _ours(value):
        return as_float32(value)
    for double, single in _AS_FLOAT32.items():
        if value is double:
            return single
    return value


@functools.cache
def as_float32(fn):
    """A copy of the package's jitable function ``fn`` that computes in float32 given float32
    arguments: its float literals, its module's float constants and ``float(...)`` become
    float32 (constants that have no float32 value take their module's ``_FLOAT32`` entry, and
    one missing is an error), the bit casts are the float32 ones, and the package's functions
    it calls are their float32 copies, recursively. The copy runs ``fn``'s own code with those
    constants (``__code__.replace``), so each algorithm has one definition. Arrays read inside
    must be float32 too (numba, like NumPy, computes float32 op float64 in float64):
    ``tests/test_float32.py`` compiles the copies the kernels use and finds no double-precision
    operation in their code.
    """
    code = fn.__code__
    if "math" in code.co_names and _F64_ONLY & set(code.co_names):
        raise ValueError(f"as_float32: {fn.__name__} uses math."
                         f"{sorted(_F64_ONLY & set(code.co_names))[0]} (float64 only)")
    overrides = fn.__globals__.get("_FLOAT32", {})
    consts = tuple(_float32_value("a literal", c, {}) if isinstance(c, (float, tuple)) else c
                   for c in code.co_consts)
    scope = dict(fn.__globals__)
    for name in code.co_names:
        if name in scope:
            scope[name] = _float32_value(name, scope[name], overrides)
        elif name == "float":
            scope[name] = np.float32
    closure = None if fn.__closure__ is None else tuple(
        _pytypes.CellType(_float32_value(code.co_freevars[i], cell.cell_contents,
                                         overrides))
        for i, cell in enumerate(fn.__closure__))
    copy = _pytypes.FunctionType(code.replace(co_consts=consts), scope, fn.__name__ + "_f32",
                                 fn.__defaults__, closure)
    copy.__doc__ = fn.__doc__
    return register_jitable(copy)
