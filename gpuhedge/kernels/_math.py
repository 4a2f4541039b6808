"""Scalar maths of the hedging kernel, written once and compiled for two targets.

Everything here is plain Python on scalars and arrays that ``numba.njit`` (``kernels/cpu.py``)
and ``numba.cuda.jit`` (``kernels/cuda.py``) both compile. Helpers are marked
``register_jitable`` so that one helper may call another under ``njit`` and still be an ordinary
Python function for the CUDA compiler and for direct calls in tests. Nothing here allocates,
imports a device library or knows about chunks: a path is fully determined by its global index
``path`` and the generator key. exp, log, the cube root, sin/cos and the normal CDF of the hot
loops come from ``_fastmath`` (branch-free, so that the CPU's loops over paths vectorise), the
Black-Scholes formulas from ``black_scholes``, and each rule's decision from its own module of
``gpuhedge.rules`` (with its kind code, ``KIND_*``), which this module imports: the rules
import only the tables' columns (``tables``), never the kernel.

The tables the engine flattens the user's objects into (all float64) are declared by name, one
line per column, in ``layout``: the book and its times to maturity (``BOOK_*``, ``TAU_*``),
one row per rule and cost group (``HEDGER_*``), the cost levels (``COST_*``), time, discount
and dividend factor per grid point (``GRID_*``), the outputs (``OUT_*``, ``REC_*``) and the lane
scratch (``LANE_*``); the per-row state (``STATE_*``, ``ACC_*``) is declared in groups by the
modules of the features that own them and assembled in ``state``. ``tables`` and ``state``
bind the generated indices and widths (``N_*``) to module-level integers, and this module
binds all of them, which numba folds into the kernels as constants.
``make_run_block`` builds the hedging loop itself.

References
----------
Salmon, Moraes, Dror, Shaw (2011), "Parallel random numbers: as easy as 1, 2, 3", SC11
(Philox4x32-10). Box and Muller (1958).
"""

import hashlib
from dataclasses import astuple, dataclass

import numpy as np
from numba.extending import register_jitable

from ..rules.band import band_quantity, plain_width
from ..rules.insurers import KIND_CPPI, KIND_SYNTHETIC_PUT, cppi_target, synthetic_put_target
from ..rules.option_hedges import KIND_DELTA_GAMMA, KIND_DELTA_VEGA
from ..rules.spot_move import KIND_SPOT_MOVE, rebalance_quantity
from ..rules.whalley_wilmott import (KIND_WHALLEY_WILMOTT, whalley_wilmott_log_scale,
                                     whalley_wilmott_path_part, whalley_wilmott_path_part_one)
from ..rules.zakamouline import KIND_ZAKAMOULINE, zakamouline_rule
from ._fastmath import (as_float32, cbrt, fdiv, fexp, fexpm1, flog, fsqrt, inlined, norm_cdf,
                        sincos_2pi)
from .black_scholes import bs_delta, bs_price, delta_from, gamma_from, vega_from
from .state import *  # noqa: F403 (the per-path state's rows: globals numba folds)
from .tables import *  # noqa: F403 (every column index and code: globals numba folds)

# ---------------------------------------------------------------------------------------------
# Philox4x32-10 (Salmon et al. 2011). Each 32-bit word lives in a uint64 so that the 32x32->64
# multiply is one native multiply; every constant is a uint64 so numba never mixes in int64.
# ---------------------------------------------------------------------------------------------
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_SHIFT5 = np.uint64(5)
_SHIFT6 = np.uint64(6)
_TWO_POW_26 = 67108864.0
_TWO_POW_M53 = 1.0 / 9007199254740992.0


@register_jitable
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block: four 32-bit counter words and a two-word key -> four words.

    All arguments and results are ``uint64`` holding 32-bit values. Known answer (Random123):
    counter 0, key 0 -> 0x6627e8d5 0xe169c58d 0xbc57ac4c 0x9b00dbd8.
    """
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        n0 = (p1 >> _SHIFT32) ^ c1 ^ k0
        n1 = p1 & _MASK32
        n2 = (p0 >> _SHIFT32) ^ c3 ^ k1
        n3 = p0 & _MASK32
        c0, c1, c2, c3 = n0, n1, n2, n3
        # The key bump after the tenth round is never used; keeping it makes the loop uniform.
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


@register_jitable
def uniform53(hi, lo):
    """Uniform in (0, 1] from two 32-bit words: (x + 1) / 2**53 with x the top 53 bits.

    The interval is open at 0 so that ``log(u)`` in Box-Muller is always finite.
    """
    x = float(hi >> _SHIFT5) * _TWO_POW_26 + float(lo >> _SHIFT6)
    return (x + 1.0) * _TWO_POW_M53


@register_jitable
def uniform_pair(k0, k1, path, step, block):
    """Two independent uniforms in (0, 1] from the Philox block of counter (path, step, block, 0)
    and key (seed, stream)."""
    w0, w1, w2, w3 = philox4x32(np.uint64(path), np.uint64(step), np.uint64(block),
                                np.uint64(0), k0, k1)
    return uniform53(w0, w1), uniform53(w2, w3)


@register_jitable
def box_muller(u1, u2):
    """z1 = sqrt(-2 ln u1) cos(2 pi u2), z2 = sqrt(-2 ln u1) sin(2 pi u2): independent N(0, 1)."""
    r = fsqrt(-2.0 * flog(u1))
    c, s = sincos_2pi(u2)
    return r * c, r * s


@register_jitable
def normal_pair(k0, k1, path, step, block):
    """Two independent standard normals for (path, step, block) by Box-Muller."""
    u1, u2 = uniform_pair(k0, k1, path, step, block)
    return box_muller(u1, u2)


# Jumps per step are capped (``jump_counts``); models refuse lam * dt > MAX_JUMP_MEAN, where
# P(N > MAX_JUMPS) < 1e-47, so the cap never binds in practice.
MAX_JUMPS = 64
MAX_JUMP_MEAN = 5.0


# ---------------------------------------------------------------------------------------------
# Merton (1976) jump-diffusion price and delta as a series of Black-Scholes terms: the model
# delta of the kernels and the ufuncs of ``gpuhedge.pricing.merton``.
#   V = sum_{n >= 0} e^{-lam' tau} (lam' tau)^n / n! * BS(S, K, tau, vol_n, r_n, q),
#   lam' = lam (1 + k), vol_n^2 = vol^2 + n sigma_j^2 / tau, r_n = r - lam k + n ln(1 + k) / tau,
#   ln(1 + k) = mu_j + sigma_j^2 / 2; the delta is the same sum of Black-Scholes deltas.
# The series is cut after ``n_terms`` terms (``gpuhedge.pricing.merton.n_terms`` picks them).
# ---------------------------------------------------------------------------------------------
@register_jitable
def merton_series(spot, strike, tau, vol, rate, div, lam, mu_j, sigma_j, is_call, n_terms,
                  delta):
    """Sum of the first ``n_terms`` terms of the series: prices, or deltas if ``delta``.

    The weights e^{-m} m^n / n!, m = lam' tau, are carried in logs (ln w_n = ln w_{n-1}
    + ln m - ln n), so that they neither underflow nor overflow for large m. At tau <= 0, or
    without jumps (lam = 0), the series is its first term: the Black-Scholes value.
    """
    if tau <= 0.0 or lam <= 0.0:
        if delta:
            return bs_delta(spot, strike, tau, vol, rate, div, is_call)
        return bs_price(spot, strike, tau, vol, rate, div, is_call)
    log_growth = mu_j + 0.5 * sigma_j * sigma_j  # ln(1 + k)
    drift_rate = rate - lam * fexpm1(log_growth)  # r - lam k
    mean = lam * fexp(log_growth) * tau  # lam' tau
    log_mean = flog(mean)
    log_weight = -mean
    total = 0.0
    for n in range(n_terms):
        if n > 0:
            log_weight += log_mean - flog(float(n))
        vol_n = fsqrt(vol * vol + fdiv(n * sigma_j * sigma_j, tau))
        rate_n = drift_rate + fdiv(n * log_growth, tau)
        if delta:
            value = bs_delta(spot, strike, tau, vol_n, rate_n, div, is_call)
        else:
            value = bs_price(spot, strike, tau, vol_n, rate_n, div, is_call)
        total += fexp(log_weight) * value
    return total


@register_jitable
def merton_price(spot, strike, tau, vol, rate, div, lam, mu_j, sigma_j, is_call, n_terms):
    """Merton (1976) price of a European call (is_call=1) or put (is_call=0): the first
    ``n_terms`` (an int) terms of the series in the module docstring."""
    return merton_series(spot, strike, tau, vol, rate, div, lam, mu_j, sigma_j, is_call,
                         n_terms, False)


@register_jitable
def merton_delta(spot, strike, tau, vol, rate, div, lam, mu_j, sigma_j, is_call, n_terms):
    """dV/dS of ``merton_price``: the same Poisson weights times Black-Scholes deltas."""
    return merton_series(spot, strike, tau, vol, rate, div, lam, mu_j, sigma_j, is_call,
                         n_terms, True)


# ---------------------------------------------------------------------------------------------
# Markets: one step function per model family, all with the same signature
#   step(s, v, mp, paths, key0, key1, path, local, k, sign, draw) -> (s_next, v_next)
# for the move from grid point k to k+1; ``sign`` is -1 for the antithetic twin of a path
# (its normals are negated) and +1 otherwise; ``draw`` is what the hedging loop drew for the
# step beforehand, for all lanes at once: the Poisson count of jumps (``jump_counts``) for the
# families with jumps, the standard normal for GBM (``Dynamics.paired``), 0 for the others.
# ``s`` is the spot, ``v`` a second state variable
# (variance for stochastic-volatility families, unused otherwise), ``mp`` the family's float
# parameters prepared by the Python model class, ``paths`` a (paths x points) array used only by
# the supplied-path family. ``path`` is the global path index (random numbers), ``local`` the
# row within the chunk (supplied prices). A market model declares its functions and their
# traits in a ``Dynamics`` (``gpuhedge.models``); the engine picks the kernel by it in Python.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dynamics:
    """What the hedging loop needs of a market model: one compiled kernel per ``Dynamics`` and
    precision.

    Attributes
    ----------
    start : function
        ``start(spot0, paths, local) -> S_0`` of a path (jitable).
    step : function
        The step function (signature above, jitable); the CUDA kernel calls it, the CPU's lane
        loops its inlined copy (``lane_step``) so that they vectorise.
    jump_mean : int
        Index in ``mp`` of the mean number of jumps per step, Poisson(mp[jump_mean]) counts
        drawn for all lanes before the step (``jump_counts``) and passed as ``draw``; -1: no
        jumps.
    paired : bool
        The step takes its standard normal as ``draw``: the loop draws one Box-Muller pair
        (counter (path, j), block 0) for steps 2j and 2j + 1, so that each normal is computed
        once (drawing the pair at both steps cost 40 % of a GBM run).
    vectorises : bool
        The step is branch-free arithmetic that a loop over lanes vectorises once inlined;
        False (Kou's loop over its jumps): the lane loops call it.
    """

    start: object
    step: object
    jump_mean: int = -1
    paired: bool = False
    vectorises: bool = True

    def name(self) -> str:
        """The traits and the start and step functions (module and name), the same in every
        process."""
        return "/".join(f"{getattr(v, '__module__', '')}.{v.__qualname__}" if callable(v)
                        else repr(v) for v in astuple(self))

    def lane_step(self, single=False):
        """What the CPU's lane loops call: ``step`` (its float32 copy if ``single``,
        ``_fastmath.as_float32``) inlined with everything it calls (``_fastmath.inlined``),
        or not inlined when it does not vectorise."""
        step = as_float32(self.step) if single else self.step
        return inlined(step) if self.vectorises else step


@register_jitable
def given_start(spot0, paths, local):
    """Start every path at the model's S_0."""
    return spot0


@register_jitable
def supplied_start(spot0, paths, local):
    """Start each supplied path at its own first price."""
    return paths[local, 0]


@register_jitable
def gbm_step(s, v, mp, paths, key0, key1, path, local, k, sign, draw):
    """Exact log-normal step: S_{k+1} = S_k exp(mp[0] + mp[1] z), z = ``draw``.

    mp = ((mu - vol^2/2) dt, vol sqrt(dt)) with mu the drift of the spot (real-world or
    risk-neutral r - q). One Box-Muller pair serves two steps (``Dynamics.paired``): step 2j takes the
    first normal of the pair of counter j, step 2j+1 the second.
    """
    return s * fexp(mp[0] + mp[1] * sign * draw), v


@register_jitable
def lognormal_jumps(key0, key1, path, k, block, n, mu_j, sigma_j):
    """Summed log size of ``n`` Merton jumps on one step: the sum of n N(mu_j, sigma_j^2) is
    exactly n mu_j + sigma_j sqrt(n) Z with Z from block ``block``; 0 without a jump (Z is
    drawn anyway and discarded: no branch, so that a loop over paths vectorises)."""
    z, _ = normal_pair(key0, key1, path, k, block)
    jump = n * mu_j + sigma_j * fsqrt(n) * z
    return jump if n > 0.0 else 0.0


@register_jitable
def merton_step(s, v, mp, paths, key0, key1, path, local, k, sign, draw):
    """Exact Merton step: ln S += mp[0] + mp[1] Z + jumps (see ``lognormal_jumps``).

    mp = ((mu - lam k - vol^2/2) dt, vol sqrt(dt), lam dt, mu_j, sigma_j); ``draw`` is the
    count of jumps of the step (block 1, ``jump_counts``). Antithetic twins share their jumps and
    negate only the diffusion normal.
    """
    z, _ = normal_pair(key0, key1, path, k, 0)
    x = mp[0] + mp[1] * sign * z + lognormal_jumps(key0, key1, path, k, 2, draw, mp[3], mp[4])
    return s * fexp(x), v


@register_jitable
def kou_step(s, v, mp, paths, key0, key1, path, local, k, sign, draw):
    """Exact Kou step: ln S += mp[0] + mp[1] Z + sum of N double-exponential jumps.

    mp = ((mu - lam k - vol^2/2) dt, vol sqrt(dt), lam dt, p, eta1, eta2). N = ``draw`` ~
    Poisson(lam dt) from block 1 (``jump_counts``); jump j draws (direction, size) from
    block 2 + j: up with probability p and size -ln(u)/eta1, else down by -ln(u)/eta2.
    """
    z, _ = normal_pair(key0, key1, path, k, 0)
    x = mp[0] + mp[1] * sign * z
    for j in range(int(draw)):
        direction, size = uniform_pair(key0, key1, path, k, 2 + j)
        if direction <= mp[3]:
            x -= fdiv(flog(size), mp[4])
        else:
            x += fdiv(flog(size), mp[5])
    return s * fexp(x), v


@register_jitable
def heston_increment(v, mp, key0, key1, path, k, sign):
    """One Heston step of (ln S, v): returns (increment of ln S, v_next).

    mp (see ``Heston.kernel_params``): 0 (mu - lam k) dt, 1 kappa, 2 theta, 3 xi, 4 rho, 5 dt,
    6 scheme (0 QE, 1 Euler), 7 e^{-kappa dt}, 8-9 QE variance coefficients, 10-13 K0..K3.
    One Philox block gives (z_v, z_s) by Box-Muller; the QE exponential branch uses
    Phi(-z_v) as its uniform, so antithetic twins (z -> -z) stay exact.

    QE (Andersen 2008): m = theta + (v - theta) e^{-kappa dt}, s^2 = v mp[8] + mp[9],
    psi = s^2 / m^2. psi <= 1.5: v' = a (b + z_v)^2 with b^2 = 2/psi - 1 + sqrt(2/psi)
    sqrt(2/psi - 1), a = m / (1 + b^2). psi > 1.5: v' = 0 with probability p = (psi - 1) /
    (psi + 1), else ln((1 - p) / (1 - u)) / beta, beta = (1 - p) / m. Then
    ln S' = ln S + mu dt + K0* + K1 v + K2 v' + sqrt(K3 (v + v')) z_s, where K0* is the
    martingale correction making E[S'/S] = e^{mu dt} (Andersen's eqs. for A = K2 + K3/2);
    when it does not exist (A too large, rare for rho > 0) the uncorrected K0 is used.

    Both schemes and both QE branches are computed and the right ones selected (no branch, so
    that a loop over paths vectorises); the inputs of the values not selected are clamped to
    their domains, so that they stay finite and raise nothing.
    """
    z_v, z_s = normal_pair(key0, key1, path, k, 0)
    z_v *= sign
    z_s *= sign
    # Full-truncation Euler: the drift and diffusion see max(v, 0), v itself may dip below.
    vp = max(v, 0.0)
    root = fsqrt(vp * mp[5])
    rho = mp[4]
    x_euler = mp[0] - 0.5 * vp * mp[5] + root * (rho * z_v + fsqrt(1.0 - rho * rho) * z_s)
    v_euler = v + mp[1] * (mp[2] - vp) * mp[5] + mp[3] * root * z_v
    # QE
    m = mp[2] + (v - mp[2]) * mp[7]
    k1, k2, k3 = mp[11], mp[12], mp[13]
    big_a = k2 + 0.5 * k3
    m_pos = m if m > _TINY else 1.0
    # twice by m rather than once by m^2, which underflows for m below 1e-154 (outside the
    # range where the GPU's division is IEEE's, _fastmath.div_exact)
    psi = fdiv(fdiv(v * mp[8] + mp[9], m_pos), m_pos)
    quadratic = psi <= 1.5
    # quadratic branch (psi <= 1.5)
    t = fdiv(2.0, max(psi, _TINY) if quadratic else 1.5)
    b2 = t - 1.0 + fsqrt(t) * fsqrt(t - 1.0)
    a = fdiv(m_pos, 1.0 + b2)
    b = fsqrt(b2)
    v_quadratic = a * (b + z_v) * (b + z_v)
    arg = 1.0 - 2.0 * big_a * a
    corrected = arg > 0.0  # A < 1 / (2 a)
    arg = arg if corrected else 1.0
    k0_quadratic = fdiv(-big_a * b2 * a, arg) + 0.5 * flog(arg) - (k1 + 0.5 * k3) * v
    k0_quadratic = k0_quadratic if corrected else mp[10]
    # exponential branch (psi > 1.5)
    psi_e = 2.0 if quadratic else psi
    p = fdiv(psi_e - 1.0, psi_e + 1.0)
    beta = fdiv(1.0 - p, m_pos)
    tail = norm_cdf(-z_v)  # 1 - u, accurate for u near 1
    v_exponential = fdiv(flog(fdiv(1.0 - p, max(tail, _TINY))), beta)
    v_exponential = 0.0 if tail >= 1.0 - p else v_exponential
    corrected = big_a < beta
    arg = p + fdiv(beta * (1.0 - p), beta - big_a) if corrected else 1.0
    k0_exponential = -flog(arg) - (k1 + 0.5 * k3) * v if corrected else mp[10]
    v_next = v_quadratic if quadratic else v_exponential
    k0 = k0_quadratic if quadratic else k0_exponential
    x_qe = mp[0] + k0 + k1 * v + k2 * v_next + fsqrt(max(k3 * (v + v_next), 0.0)) * z_s
    # m <= 0 (v = theta = 0): the variance stays at 0 and the price only drifts
    x_qe = x_qe if m > _TINY else mp[0]
    v_qe = v_next if m > _TINY else 0.0
    euler = mp[6] > 0.5
    return (x_euler if euler else x_qe), (v_euler if euler else v_qe)


_TINY = 1e-300
_FLOAT32 = dict(_TINY=np.float32(np.finfo(np.float32).tiny))  # (``_fastmath.as_float32``)


@register_jitable
def heston_step(s, v, mp, paths, key0, key1, path, local, k, sign, draw):
    """Heston step (QE or Euler, see ``heston_increment``)."""
    x, v_next = heston_increment(v, mp, key0, key1, path, k, sign)
    return s * fexp(x), v_next


@register_jitable
def bates_step(s, v, mp, paths, key0, key1, path, local, k, sign, draw):
    """Bates step: Heston increment plus Merton jumps (mp[14:17] = lam dt, mu_j, sigma_j)."""
    x, v_next = heston_increment(v, mp, key0, key1, path, k, sign)
    x += lognormal_jumps(key0, key1, path, k, 2, draw, mp[15], mp[16])
    return s * fexp(x), v_next


@register_jitable
def supplied_step(s, v, mp, paths, key0, key1, path, local, k, sign, draw):
    """Read the next spot from a supplied (paths x points) price array (back-testing)."""
    return paths[local, k + 1], v




# ---------------------------------------------------------------------------------------------
# Hedgers. The rule is data: a kind code and parameters, plus a (steps x hedgers) table of the
# grid points at which a time schedule trades. One generic loop serves every mix of rules; each
# rule's decision is its module's (``gpuhedge.rules``).
# ---------------------------------------------------------------------------------------------
# A hedge option whose gamma (vega) is below this holds its position: no ratio to take.
_TINY_GREEK = 1e-12
_EXPIRED = 1e-12  # years to expiry below which a hedge option settles instead of trading


@register_jitable
def book_value(book, spot, t, vol, rate, div, k):
    """Black-Scholes value of the options of the book still alive at grid point k."""
    total = 0.0
    for i in range(book.shape[0]):
        if k < book[i, BOOK_STEP]:
            total += book[i, BOOK_QUANTITY] * bs_price(
                spot, book[i, BOOK_STRIKE], book[i, BOOK_MATURITY] - t, vol, rate, div,
                book[i, BOOK_IS_CALL] > 0.5)
    return total


@register_jitable
def expected_average_vol(v, kappa, theta, tau):
    """sqrt of the expected average Heston variance over the next ``tau`` years:
    sqrt(theta + (v - theta) (1 - e^{-kappa tau}) / (kappa tau)); sqrt(v) at tau = 0."""
    if tau <= 0.0:
        return fsqrt(max(v, 0.0))
    x = kappa * tau
    return fsqrt(max(theta + (v - theta) * fdiv(-fexpm1(-x), x), 0.0))


@register_jitable
def rule_vol(rule, vol, v, hp, tau):
    """The Black-Scholes vol a hedge-vol rule uses for an option ``tau`` years from maturity."""
    if rule == RULE_INSTANTANEOUS:
        return fsqrt(max(v, 0.0))
    if rule == RULE_EXPECTED_AVERAGE or rule == RULE_MIN_VARIANCE:
        return expected_average_vol(v, hp[HP_KAPPA], hp[HP_THETA], tau)
    return vol


@register_jitable
def book_delta(book, book_tau, spot, log_spot, v, rule, vol, hp, rate, div, k):
    """Hedge ratio dV/dS of the options alive at grid point k under a hedge-vol rule.

    Black-Scholes delta at the rule's vol. The minimum-variance rule adds the variance
    channel of a Heston-type market, rho xi / S * dC/dv (Bakshi, Cao and Chen 1997; Hull and
    White 2017), with C approximated by Black-Scholes at the expected-average vol sigma, so
    dC/dv = vega(sigma) w / (2 sigma), w = (1 - e^{-kappa tau}) / (kappa tau).
    The model rule sums the Merton series of Black-Scholes deltas (``hp[HP_TERMS]`` terms).
    ``book_tau[k, i]`` holds sqrt(T_i - t_k) and e^{-q (T_i - t_k)}. Cost per option: one erfc
    (constant, instantaneous), plus one expm1 and one sqrt (expected-average), plus one exp
    (minimum-variance); n_terms full Black-Scholes deltas (model; about 20 at lam T = 1).
    """
    total = 0.0
    for i in range(book.shape[0]):
        if k < book[i, BOOK_STEP]:
            sqrt_tau = book_tau[k, i, TAU_SQRT]
            tau = sqrt_tau * sqrt_tau
            if rule == RULE_MODEL:
                total += book[i, BOOK_QUANTITY] * merton_delta(
                    spot, book[i, BOOK_STRIKE], tau, hp[HP_VOL], rate, div, hp[HP_LAM],
                    hp[HP_MU_J], hp[HP_SIGMA_J], book[i, BOOK_IS_CALL] > 0.5,
                    int(hp[HP_TERMS]))
                continue
            sigma = rule_vol(rule, vol, v, hp, tau)
            moneyness = log_spot - book[i, BOOK_LOG_STRIKE]
            div_discount = book_tau[k, i, TAU_DIV_DISCOUNT]
            d = delta_from(moneyness, sqrt_tau, div_discount, sigma, rate, div,
                           book[i, BOOK_IS_CALL] > 0.5)
            if rule == RULE_MIN_VARIANCE and sigma > 0.0 and tau > 0.0:
                x = hp[HP_KAPPA] * tau
                w = fdiv(-fexpm1(-x), x)
                d += fdiv(hp[HP_RHO] * hp[HP_XI]
                          * vega_from(spot, moneyness, sqrt_tau, div_discount, sigma, rate, div)
                          * w, 2.0 * sigma * spot)
            total += book[i, BOOK_QUANTITY] * d
    return total


@register_jitable
def book_greek(book, book_tau, spot, log_spot, v, rule, vol, hp, rate, div, k, vega):
    """Black-Scholes gamma (``vega`` False) or vega (True) of the options alive at grid point k
    at the vol of the hedge-vol rule (the market vol ``hp[HP_VOL]`` for the model rule)."""
    total = 0.0
    for i in range(book.shape[0]):
        if k < book[i, BOOK_STEP]:
            sqrt_tau = book_tau[k, i, TAU_SQRT]
            sigma = hp[HP_VOL] if rule == RULE_MODEL else rule_vol(
                rule, vol, v, hp, sqrt_tau * sqrt_tau)
            moneyness = log_spot - book[i, BOOK_LOG_STRIKE]
            div_discount = book_tau[k, i, TAU_DIV_DISCOUNT]
            if vega:
                g = vega_from(spot, moneyness, sqrt_tau, div_discount, sigma, rate, div)
            else:
                g = gamma_from(spot, moneyness, sqrt_tau, div_discount, sigma, rate, div)
            total += book[i, BOOK_QUANTITY] * g
    return total


@register_jitable
def book_settlement(book, spot, k):
    """Payoff of the book's options that mature exactly at grid point k (cash settled)."""
    total = 0.0
    for i in range(book.shape[0]):
        if k == book[i, BOOK_STEP]:
            intrinsic = spot - book[i, BOOK_STRIKE]
            if book[i, BOOK_IS_CALL] < 0.5:
                intrinsic = -intrinsic
            total += book[i, BOOK_QUANTITY] * max(intrinsic, 0.0)
    return total


@register_jitable
def state_index(hb, row, stride, local):
    """Index of ``state[h, row, local]`` in the flat view of the state (``hb`` = h * rows *
    stride, unsigned; ``row_base``). Signed indices would be wrapped around when negative, and
    that select per element hides from LLVM that a lane loop walks memory contiguously; with a
    constant stride (the CPU's block size) the rows of one hedger row are provably apart."""
    return hb + np.uint64(row * stride + local)


@register_jitable
def row_base(state, h):
    """(hb, stride) of hedger row h in the flat view of ``state`` (``state_index``)."""
    return np.uint64(h * state.shape[1] * state.shape[2]), state.shape[2]


@register_jitable
def trade_amounts(qty, spot, disc):
    """(tickets, cash paid, notional) of a trade of ``qty`` shares at ``spot``, the cash and
    notional as present values (times ``disc`` = e^{-r t}): 1 ticket unless ``qty`` = 0, so
    that lane loops trade without a branch."""
    return 1.0 if qty != 0.0 else 0.0, qty * spot * disc, abs(qty) * spot * disc


# One trade's accounting, in three parts so that the lane loops run each part as a loop of its
# own without a branch (``fill`` for every order, ``fill_ends`` for the initial hedge and the
# unwind, ``fill_impact`` when some cost level charges impact); ``trade`` is their sum, for
# the rules that decide lane by lane. Cash flows enter as present values, so interest on the
# cash account is exact and needs no per-step compounding. ``qty`` = 0 changes nothing.
@register_jitable
def fill(flat, hb, stride, local, qty, spot, disc):
    """Fill ``qty`` shares at ``spot`` (sell if negative): shares, cash, trades and the sums
    of the proportional cost and the fee."""
    traded, cash, notional = trade_amounts(qty, spot, disc)
    flat[state_index(hb, STATE_POSITION, stride, local)] += qty
    flat[state_index(hb, STATE_FLOW, stride, local)] -= cash
    flat[state_index(hb, STATE_TRADES, stride, local)] += traded
    flat[state_index(hb, ACC_TURNOVER, stride, local)] += notional
    flat[state_index(hb, ACC_TICKETS, stride, local)] += disc * traded


@register_jitable
def fill_ends(flat, hb, stride, local, qty, spot, disc):
    """The ends' part of ``fill``'s cost sums, for the initial hedge and the final unwind
    (which a cost level may spare, ``Costs.ends``)."""
    traded, _, notional = trade_amounts(qty, spot, disc)
    flat[state_index(hb, ACC_ENDS_TURNOVER, stride, local)] += notional
    flat[state_index(hb, ACC_ENDS_TICKETS, stride, local)] += disc * traded


@register_jitable
def fill_impact(flat, hb, stride, local, qty, spot, disc, end):
    """The market-impact sums of a fill (and their ends' part, ``end``)."""
    size = abs(qty)
    _, _, notional = trade_amounts(size, spot, disc)
    root = notional * fsqrt(size)
    linear = notional * size
    flat[state_index(hb, ACC_IMPACT_SQRT, stride, local)] += root
    flat[state_index(hb, ACC_IMPACT_LINEAR, stride, local)] += linear
    if end:
        flat[state_index(hb, ACC_ENDS_IMPACT_SQRT, stride, local)] += root
        flat[state_index(hb, ACC_ENDS_IMPACT_LINEAR, stride, local)] += linear


@register_jitable
def trade(flat, hb, stride, local, qty, spot, disc, end, impact):
    """A whole fill of ``qty`` shares at ``spot``; ``end``: the initial hedge or the final
    unwind; ``impact``: whether some cost level charges market impact (its sums are skipped
    otherwise)."""
    fill(flat, hb, stride, local, qty, spot, disc)
    if end:
        fill_ends(flat, hb, stride, local, qty, spot, disc)
    if impact:
        fill_impact(flat, hb, stride, local, qty, spot, disc, end)


@register_jitable
def trade_option(flat, hb, stride, local, qty, value, disc, end):
    """Buy ``qty`` hedge options at ``value`` each (sell if negative): one ticket."""
    cash = qty * value * disc
    notional = abs(cash)  # the value and the discount are >= 0
    flat[state_index(hb, STATE_OPT_POSITION, stride, local)] += qty
    flat[state_index(hb, STATE_FLOW, stride, local)] -= cash
    flat[state_index(hb, ACC_OPTION_TURNOVER, stride, local)] += notional
    flat[state_index(hb, ACC_TICKETS, stride, local)] += disc
    if end:
        flat[state_index(hb, ACC_ENDS_OPTION_TURNOVER, stride, local)] += notional
        flat[state_index(hb, ACC_ENDS_TICKETS, stride, local)] += disc


@register_jitable
def order(state, flat, h, local, qty, spot, disc, k, lag, first, impact):
    """Place an order decided at grid point k (``qty`` = 0: none): filled now without lag,
    else parked in the ring of orders in flight and filled at grid point k + lag
    (``fill_due``). ``first``: k is the first grid point (an explicit flag, so that loops at
    later points see a constant). The spot of the last order is kept for the spot-move
    rule."""
    state[h, STATE_ORDERED, local] += qty
    last = state[h, STATE_LAST_SPOT, local]
    state[h, STATE_LAST_SPOT, local] = spot if qty != 0.0 else last
    if lag == 0:
        hb, stride = row_base(state, h)
        trade(flat, hb, stride, local, qty, spot, disc, first, impact)
    else:
        state[h, N_STATE + k % lag, local] = qty


@register_jitable
def fill_due(state, flat, h, local, spot, disc, k, lag, impact):
    """Fill the order decided at grid point k - lag (if any) at today's price."""
    row = N_STATE + k % lag
    hb, stride = row_base(state, h)
    trade(flat, hb, stride, local, state[h, row, local], spot, disc, k == lag, impact)
    state[h, row, local] = 0.0


@register_jitable
def option_greeks(strike, is_call, tau, s, v, rule, vol, hp, rate, div):
    """Black-Scholes (value, delta, gamma, vega) of a hedge option ``tau`` years from expiry,
    at the vol its hedge-vol rule gives (the market vol for the model rule)."""
    tau = max(tau, 0.0)
    sigma = hp[HP_VOL] if rule == RULE_MODEL else rule_vol(rule, vol, v, hp, tau)
    sqrt_tau = fsqrt(tau)
    div_discount = fexp(-div * tau)
    moneyness = flog(fdiv(s, strike))
    return (bs_price(s, strike, tau, sigma, rate, div, is_call),
            delta_from(moneyness, sqrt_tau, div_discount, sigma, rate, div, is_call),
            gamma_from(s, moneyness, sqrt_tau, div_discount, sigma, rate, div),
            vega_from(s, moneyness, sqrt_tau, div_discount, sigma, rate, div))


@register_jitable
def serves(costs, c, by_cost, group):
    """Whether a row of group ``group`` (grouped as ``by_cost``: 0 by lag, 1 by proportional
    cost and lag, 2 one row per level) serves cost level c."""
    if by_cost > 1.5:
        return c == group
    column = COST_GROUP_RULE if by_cost > 0.5 else COST_GROUP_LAG
    return costs[c, column] == group


@register_jitable
def level_costs(state, h, local, costs, c):
    """(spread, fee, impact, funding) paid so far by row h at cost level c (present values):
    the level's rates times the row's sums, less the ends' part when the level spares them."""
    spare = costs[c, COST_ENDS] < 0.5  # a select, not a branch: x - 0.0 is x
    acc0 = state[h, ACC_TURNOVER, local] - (state[h, ACC_ENDS_TURNOVER, local] if spare
                                            else 0.0)
    acc1 = state[h, ACC_TICKETS, local] - (state[h, ACC_ENDS_TICKETS, local] if spare else 0.0)
    acc2 = state[h, ACC_IMPACT_SQRT, local] - (state[h, ACC_ENDS_IMPACT_SQRT, local] if spare
                                               else 0.0)
    acc3 = state[h, ACC_IMPACT_LINEAR, local] - (state[h, ACC_ENDS_IMPACT_LINEAR, local] if spare
                                                 else 0.0)
    acc4 = state[h, ACC_OPTION_TURNOVER, local] - (
        state[h, ACC_ENDS_OPTION_TURNOVER, local] if spare else 0.0)
    spread = costs[c, COST_PROPORTIONAL] * acc0 + costs[c, COST_OPTION] * acc4
    fee = costs[c, COST_FIXED] * acc1
    impact = costs[c, COST_IMPACT_SQRT] * acc2 + costs[c, COST_IMPACT_LINEAR] * acc3
    fund = costs[c, COST_BORROW] * state[h, STATE_BORROWED, local] + \
        costs[c, COST_LEND] * state[h, STATE_LENT, local]
    return spread, fee, impact, fund


@register_jitable
def charges(costs, c, field):
    """Whether cost level c charges the cost kind of output ``field`` (``OUT_SPREAD``,
    ``OUT_FEE``, ``OUT_IMPACT``, ``OUT_FUNDING``; ``OUT_COST``: any kind). The kernel writes
    a cost field only for the levels that charge it (the result starts at zero) and the
    engine reports a kind when some level charges it."""
    spread = costs[c, COST_PROPORTIONAL] != 0.0 or costs[c, COST_OPTION] != 0.0
    fee = costs[c, COST_FIXED] != 0.0
    impact = costs[c, COST_IMPACT_SQRT] != 0.0 or costs[c, COST_IMPACT_LINEAR] != 0.0
    funding = costs[c, COST_BORROW] != 0.0 or costs[c, COST_LEND] != 0.0
    if field == OUT_SPREAD:
        return spread
    if field == OUT_FEE:
        return fee
    if field == OUT_IMPACT:
        return impact
    if field == OUT_FUNDING:
        return funding
    return spread or fee or impact or funding


@register_jitable
def record_date(state, base, first, count, lanes, hedgers, costs, book, grid, hp, rate, div, k,
                rec):
    """Write grid point k of the per-date record ``rec[REC_*, k, strategy, cost, path]`` of
    the block's first ``count`` lanes, after the trades of k (and the unwind at the horizon).

    With D = e^{-r t_k}, F the present value at t=0 of the row's cash flows so far (premium,
    trades, dividends, the book's settlements) and C that of its costs at the cost level:
    shares and hedge options held; the cash account (F - C) / D; the book's value B (the
    options still alive at Black-Scholes at the row's vol, the value paid for the book on
    supplied paths; an insurer's floor owed, minus its PV over D); the value of the hedged
    position cash + shares S + options O + B (O: the hedge option's value, ``option_greeks``);
    the P&L to date, (F - C) + D (shares S + options O + B), the present value at t=0 of that
    value, written so that at the horizon (nothing held, every option settled) it is the pnl
    of ``write_outputs`` to the bit; C; the trades so far. An insurer's F is net of its floor's
    PV, so that its cash adds the floor's PV back and its P&L leaves B out.
    """
    t = grid[k, GRID_TIME]
    disc = grid[k, GRID_DISCOUNT]
    for h in range(hedgers.shape[0]):
        insurer = hedgers[h, HEDGER_INSURER] > 0.5
        option_hedge = hedgers[h, HEDGER_OPTION_HEDGE] > 0.5
        strategy = int(hedgers[h, HEDGER_STRATEGY])
        for j in range(count):
            local = base + j
            s = lanes[LANE_SPOT, j]
            shares = state[h, STATE_POSITION, local]
            options = state[h, STATE_OPT_POSITION, local]
            option_value = 0.0
            if option_hedge and options != 0.0:
                option_value, _, _, _ = option_greeks(
                    state[h, STATE_OPT_STRIKE, local], hedgers[h, HEDGER_OPT_IS_CALL] > 0.5,
                    state[h, STATE_OPT_EXPIRY, local] - t, s, lanes[LANE_VAR, j],
                    int(hedgers[h, HEDGER_RULE]), hedgers[h, HEDGER_OPT_VOL], hp, rate, div)
            if insurer:
                book_now = fdiv(-hedgers[h, HEDGER_P3], disc)
                marks = shares * s + options * option_value
                flow = state[h, STATE_FLOW, local]
            else:
                book_now = book_value(book, s, t, hedgers[h, HEDGER_VOL], rate, div, k)
                marks = shares * s + options * option_value + book_now
                flow = state[h, STATE_FLOW, local] + lanes[LANE_SETTLED, j]
            for c in range(costs.shape[0]):
                if not serves(costs, c, hedgers[h, HEDGER_BY_COST], hedgers[h, HEDGER_COST]):
                    continue
                spread, fee, impact, fund = level_costs(state, h, local, costs, c)
                cost = spread + fee + impact + fund
                held = flow - cost
                cash = fdiv(held + (hedgers[h, HEDGER_P3] if insurer else 0.0), disc)
                path = np.uint64(first + j)
                rec[REC_SHARES, k, strategy, c, path] = shares
                rec[REC_OPTIONS, k, strategy, c, path] = options
                rec[REC_CASH, k, strategy, c, path] = cash
                rec[REC_BOOK, k, strategy, c, path] = book_now
                rec[REC_VALUE, k, strategy, c, path] = cash + shares * s + \
                    options * option_value + book_now
                rec[REC_PNL, k, strategy, c, path] = held + disc * marks
                rec[REC_COST, k, strategy, c, path] = cost
                rec[REC_TRADES, k, strategy, c, path] = state[h, STATE_TRADES, local]


# ---------------------------------------------------------------------------------------------
# The hedging loop over a block of paths in lockstep ("lanes"). The CPU runs blocks of 128
# lanes; the work that is the same code for every lane (the model step, ln S, the book's
# Black-Scholes greeks, the plain rules and their trades) runs in loops over the lanes that
# LLVM vectorises, because everything they call is inlined branch-free arithmetic
# (``_fastmath``); the other rules run lane by lane (``hedge_lane``). CUDA runs the same
# function with one lane per thread. A block's lane scratch ``lanes[row, lane]`` has the rows
# ``LANE_*``.
# ---------------------------------------------------------------------------------------------


@register_jitable
def jump_counts(lanes, n_lanes, mean, key0, key1, first_path, pair, k):
    """Poisson(mean) numbers of jumps on grid step k of every lane, into ``lanes[LANE_DRAW]``:
    sequential inversion of the uniform of Philox block 1, the smallest n with P(N <= n) >= u,
    capped at MAX_JUMPS. The loop over n is outside the loops over the lanes (so that those
    vectorise) and stops when no lane needs a larger n; each lane does the arithmetic of the
    scalar inversion (p_n = p_{n-1} mean / n, cdf += p_n), so the counts are the same.
    ``first_path``: the global path of lane 0; ``pair``: 1 for antithetic pairs (twins share
    their jumps), else 0."""
    p0 = fexp(-mean)
    for j in range(n_lanes):
        u, _ = uniform_pair(key0, key1, (first_path + j) >> pair, k, 1)
        lanes[LANE_U, j] = u
        lanes[LANE_P, j] = p0
        lanes[LANE_CDF, j] = p0
        lanes[LANE_DRAW, j] = 0.0
    for n in range(1, MAX_JUMPS + 1):
        more = 0
        for j in range(n_lanes):
            more += 1 if lanes[LANE_U, j] > lanes[LANE_CDF, j] else 0
        if more == 0:
            break
        ratio = fdiv(mean, float(n))
        for j in range(n_lanes):
            go = lanes[LANE_U, j] > lanes[LANE_CDF, j]
            p = lanes[LANE_P, j] * ratio
            lanes[LANE_P, j] = p if go else lanes[LANE_P, j]
            lanes[LANE_CDF, j] = lanes[LANE_CDF, j] + p if go else lanes[LANE_CDF, j]
            lanes[LANE_DRAW, j] = float(n) if go else lanes[LANE_DRAW, j]


@dataclass(frozen=True)
class Features:
    """What a kernel's rows, cost levels and grid need, each compiled in or left out.

    A kernel built for ``Features.of(...)`` of a run holds only the code paths that run can
    take: the branches of the others are constants the compiler removes with what they call.
    The CUDA kernels are specialised this way (a GPU thread's registers are set by the largest
    code path compiled in, taken or not: the one-hedger GBM kernel needs 200 with every rule
    compiled in); the CPU kernel is compiled once for ``GENERIC`` (every path in), as each
    specialisation costs its compilation (tens of seconds) and its lane loops already skip
    what a block does not need at run time.

    Attributes
    ----------
    lag : bool
        Some row trades with an execution lag (orders in flight).
    option_hedges : bool
        Delta-gamma or delta-vega rows (a hedge option besides the shares).
    lane_rules : bool
        Rows whose decision runs lane by lane (``hedge_lane``): Zakamouline, the option hedges,
        the portfolio insurers.
    insurers : bool
        Portfolio insurers (synthetic put, CPPI): no book, capital and floor instead.
    hedge_vol_rules : bool
        Rows whose delta is not Black-Scholes at a constant vol (``book_delta``).
    gamma : bool
        Rows whose rule reads the book's gamma (Whalley-Wilmott, Zakamouline, delta-gamma).
    whalley_wilmott : bool
        Whalley-Wilmott rows (the band's path-dependent cube root).
    spot_move : bool
        Spot-move rows (the spot of the last trade kept per path).
    impact, funding : bool
        Some cost level charges market impact, funding spreads.
    dividends : bool
        The shares held earn a dividend at some grid point (``GRID_DIVIDEND``: the dividend
        yield over the step).
    """

    lag: bool = True
    option_hedges: bool = True
    lane_rules: bool = True
    insurers: bool = True
    hedge_vol_rules: bool = True
    gamma: bool = True
    whalley_wilmott: bool = True
    spot_move: bool = True
    impact: bool = True
    funding: bool = True
    dividends: bool = True

    @classmethod
    def of(cls, hedgers, costs, grid):
        """The features of a run's hedger, cost and grid tables (``engine``)."""
        kinds = {int(k) for k in hedgers[:, HEDGER_KIND]}

        def some(column):
            return bool((hedgers[:, column] > 0.5).any())

        return cls(
            lag=bool((hedgers[:, HEDGER_LAG] > 0).any()),
            option_hedges=some(HEDGER_OPTION_HEDGE),
            lane_rules=bool((hedgers[:, HEDGER_DECIDES] == DECIDES_LANE).any()),
            insurers=some(HEDGER_INSURER),
            hedge_vol_rules=bool((hedgers[:, HEDGER_RULE] != RULE_CONSTANT).any()),
            gamma=some(HEDGER_GAMMA),
            whalley_wilmott=KIND_WHALLEY_WILMOTT in kinds,
            spot_move=KIND_SPOT_MOVE in kinds,
            impact=any(charges(costs, c, OUT_IMPACT) for c in range(len(costs))),
            funding=any(charges(costs, c, OUT_FUNDING) for c in range(len(costs))),
            dividends=bool((grid[:, GRID_DIVIDEND] != 0).any()))


GENERIC = Features()


@register_jitable
def hedge_lane(state, flat, h, local, s, v, log_spot, k, n_steps, horizon, disc, grid, book,
               book_tau, hedgers, schedule, costs, hp, rate, div, impact):
    """One lane's decision and order at grid point k for the rules that are not plain
    (Zakamouline, the option hedges, the portfolio insurers)."""
    kind = int(hedgers[h, HEDGER_KIND])
    option_hedge = hedgers[h, HEDGER_OPTION_HEDGE] > 0.5
    # a hedge option sold to roll is replaced at once, whatever the schedule
    rolled = option_hedge and k > 0 and state[h, STATE_OPT_POSITION, local] == 0.0 and \
        state[h, STATE_OPT_STEP, local] > hedgers[h, HEDGER_OPT_STEP]
    if schedule[k, h] == 0 and not rolled:
        return
    vol = hedgers[h, HEDGER_VOL]
    rule = int(hedgers[h, HEDGER_RULE])
    greeks = int(hedgers[h, HEDGER_GREEKS])
    width = -1.0
    if kind == KIND_CPPI:
        # cushion = portfolio value - floor (the floor's PV is in the premium), net of the
        # costs paid so far (a CPPI row serves one cost level)
        spread, fee, impact_cost, fund = level_costs(state, h, local, costs,
                                                     int(hedgers[h, HEDGER_COST]))
        cushion = fdiv(state[h, STATE_FLOW, local] - spread - fee - impact_cost - fund, disc) + \
            state[h, STATE_POSITION, local] * s
        target = cppi_target(cushion, s, hedgers[h, HEDGER_P1], hedgers[h, HEDGER_P2],
                             hedgers[h, HEDGER_P3], disc)
    elif kind == KIND_SYNTHETIC_PUT:
        tau = horizon - grid[k, GRID_TIME]
        target = synthetic_put_target(hedgers[h, HEDGER_P2], hedgers[h, HEDGER_P1], log_spot,
                                      tau, rule_vol(rule, vol, v, hp, tau), rate, div)
    else:
        target = -state[greeks, STATE_DELTA, local]
        gamma = state[greeks, STATE_GAMMA, local]
        if kind == KIND_ZAKAMOULINE:
            vol_m, width = zakamouline_rule(
                gamma, s, vol, hedgers[h, HEDGER_P1], hedgers[h, HEDGER_P2],
                horizon - grid[k, GRID_TIME], fdiv(grid[n_steps, GRID_DISCOUNT], disc),
                hedgers[h, HEDGER_P3] > 0.5)
            target = -book_delta(book, book_tau, s, log_spot, v, RULE_CONSTANT, vol_m, hp, rate,
                                 div, k)
        else:  # delta-gamma, delta-vega
            value, o_delta, o_gamma, o_vega = option_greeks(
                state[h, STATE_OPT_STRIKE, local], hedgers[h, HEDGER_OPT_IS_CALL] > 0.5,
                state[h, STATE_OPT_EXPIRY, local] - grid[k, GRID_TIME], s, v, rule,
                hedgers[h, HEDGER_OPT_VOL], hp, rate, div)
            held = state[h, STATE_OPT_POSITION, local]
            wanted = held
            if kind == KIND_DELTA_GAMMA and abs(o_gamma) > _TINY_GREEK:
                wanted = fdiv(-gamma, o_gamma)
            elif kind == KIND_DELTA_VEGA and abs(o_vega) > _TINY_GREEK:
                wanted = fdiv(-book_greek(book, book_tau, s, log_spot, v, rule, vol, hp, rate,
                                          div, k, True), o_vega)
            if wanted != held:
                hb, stride = row_base(state, h)
                trade_option(flat, hb, stride, local, wanted - held, value, disc, k == 0)
            target -= wanted * o_delta
    deviation = target - state[h, STATE_ORDERED, local]
    qty = deviation
    if k > 0 or hedgers[h, HEDGER_START_EDGE] > 0.5:  # else the first hedge is to the target
        qty = rebalance_quantity(kind, deviation, hedgers[h, HEDGER_P1], width, s,
                                 state[h, STATE_LAST_SPOT, local])
    order(state, flat, h, local, qty, s, disc, k, int(hedgers[h, HEDGER_LAG]), k == 0, impact)


@register_jitable
def option_event(state, flat, h, local, s, v, k, n_steps, disc, grid, hedgers, hp, rate, div):
    """The hedge option's event at grid point k: it expires and settles, or it is sold to
    roll into a fresh one of the same tenor and moneyness (bought by the rebalance)."""
    strike = state[h, STATE_OPT_STRIKE, local]
    is_call = hedgers[h, HEDGER_OPT_IS_CALL] > 0.5
    held = state[h, STATE_OPT_POSITION, local]
    tau = state[h, STATE_OPT_EXPIRY, local] - grid[k, GRID_TIME]
    if tau > _EXPIRED:
        value, _, _, _ = option_greeks(strike, is_call, tau, s, v, int(hedgers[h, HEDGER_RULE]),
                                       hedgers[h, HEDGER_OPT_VOL], hp, rate, div)
        hb, stride = row_base(state, h)
        trade_option(flat, hb, stride, local, -held, value, disc, k == n_steps)
    else:
        payoff = s - strike if is_call else strike - s
        state[h, STATE_FLOW, local] += held * max(payoff, 0.0) * disc
        state[h, STATE_OPT_POSITION, local] = 0.0
    if hedgers[h, HEDGER_OPT_TENOR] > 0.0 and k < n_steps:
        state[h, STATE_OPT_STRIKE, local] = state[h, STATE_OPT_MONEYNESS, local] * s
        state[h, STATE_OPT_STEP, local] = k + hedgers[h, HEDGER_OPT_TENOR]
        state[h, STATE_OPT_EXPIRY, local] = grid[k, GRID_TIME] + hedgers[h, HEDGER_OPT_MATURITY]


@register_jitable
def unwind_options(state, flat, h, local, s, v, k, disc, grid, hedgers, hp, rate, div):
    """At the horizon, after the shares (``run_block``): sell the hedge options held."""
    options = state[h, STATE_OPT_POSITION, local]
    if options != 0.0:
        value, _, _, _ = option_greeks(
            state[h, STATE_OPT_STRIKE, local], hedgers[h, HEDGER_OPT_IS_CALL] > 0.5,
            state[h, STATE_OPT_EXPIRY, local] - grid[k, GRID_TIME], s, v,
            int(hedgers[h, HEDGER_RULE]), hedgers[h, HEDGER_OPT_VOL], hp, rate, div)
        hb, stride = row_base(state, h)
        trade_option(flat, hb, stride, local, -options, value, disc, True)


# The supplied prices of ``hedge_paths`` (no model).
SUPPLIED = Dynamics(supplied_start, supplied_step)


def make_run_block(dynamics, cast, n_lanes, inline, record=False, features=GENERIC):
    """Build the hedging loop over a block of ``n_lanes`` paths for one market model's
    ``Dynamics`` and one state precision.

    ``dynamics`` gives the model's start and step functions and their traits, ``cast`` the
    numpy scalar type of the market's state (float32 or float64). With float32 the market's
    path (the model's step, its random numbers from the uniforms on, its exp and log), ln S
    and the Black-Scholes delta and gamma of the lane loops compute in float32 (their
    ``_fastmath.as_float32`` copies; ``mp`` is then a float32 array) and are stored exactly in
    the float64 scratch; the trades, the cash flows, the settlements, every accumulator and the
    rules that decide lane by lane stay float64 (``docs/precision.md``).
    ``inline``: the lane loops call the inlined copies (``_fastmath.inlined``) of the functions
    they call and the model's ``Dynamics.lane_step`` (the CPU, where they vectorise; numba's
    CUDA target fails to type some of them inlined), else the called functions. The returned plain function is compiled by both targets; one compiled kernel
    serves any mix of hedgers, costs and books. Every lane computes exactly what a loop over
    one path would, so results depend neither on the block size nor on the target.

    The loop runs in phases, each a function called once per block or grid point (not
    inlined: ``phase_jit``; ``settle``, small, is inlined): ``start_rows``; at each grid point
    ``advance`` (from the second on), ``settle``, ``fill_pending`` (rows with lag or a hedge
    option), ``rebalance`` (not at the horizon: the greeks, then the decisions and orders),
    ``record_date`` (recording kernels), ``accrue_funding``; then ``unwind`` at the horizon and
    ``write_outputs``.

    Called as ``run_block(first, count, base, path_offset, key0, key1, antithetic, spot0, v0,
    mp, hp, paths, grid, book, book_tau, hedgers, schedule, costs, rate, div, state, flat,
    lanes, out, out_spot, rec)``: lane j runs the chunk's path ``first + j`` (global path
    ``path_offset + first + j``) with its state at ``state[:, :, base + j]`` (hedger row x
    field; ``flat`` is the same memory as a 1-D array, ``state_index``) and its scratch at
    ``lanes[:, j]``; lanes from ``count`` on pad the block (computed on the last path's
    supplied prices, never written out). ``record``: the kernel writes the per-date record
    (``record_date``) into ``rec`` (``N_REC`` x grid points x strategy x cost x path); a
    compile-time choice, so that kernels without it hold no call to it (its opaque call in the
    step loop, even untaken, made the 32-rule benchmark 18 % slower). ``features``: the code
    paths compiled in (``Features``); a run needing one left out computes wrong results, so
    the engine builds kernels for ``Features.of`` its tables or for ``GENERIC``.

    P&L convention (one definition, see ``gpuhedge.engine``): the hedger buys the book at t=0
    at its Black-Scholes value at the hedger's vol (a short book receives it), holds shares
    (and hedge options) against it, settles each option at its maturity, unwinds at the
    horizon, and pnl = present value at t=0 of all these cash flows minus the present value
    of costs. Portfolio insurers hold no book: they start from their capital and owe their
    floor at the horizon.
    """
    def lane(fn):
        return inlined(fn) if inline else fn

    def market(fn):  # the market's path and the book's greeks: in the state's precision
        return lane(as_float32(fn) if single else fn)

    single = cast is np.float32
    start = dynamics.start
    lane_step = dynamics.lane_step(single) if inline else (
        as_float32(dynamics.step) if single else dynamics.step)
    lane_log = market(flog)
    lane_delta = market(delta_from)
    lane_gamma = market(gamma_from)
    lane_rebalance = lane(rebalance_quantity)
    lane_band_quantity = lane(band_quantity)
    lane_band = lane(whalley_wilmott_path_part)
    lane_band_one = lane(whalley_wilmott_path_part_one)
    lane_costs = lane(level_costs)
    at = lane(state_index)
    lane_fill = lane(fill)
    lane_fill_ends = lane(fill_ends)
    lane_fill_impact = lane(fill_impact)
    lane_jumps = lane(jump_counts)
    lane_normal_pair = market(normal_pair)
    jump_mean = dynamics.jump_mean
    paired = dynamics.paired
    has_lag = features.lag
    has_option_hedges = features.option_hedges
    has_lane_rules = features.lane_rules
    has_insurers = features.insurers
    has_hedge_vol_rules = features.hedge_vol_rules
    has_gamma = features.gamma
    has_whalley_wilmott = features.whalley_wilmott
    has_spot_move = features.spot_move
    has_impact = features.impact
    has_funding = features.funding
    has_dividends = features.dividends

    def lane_jit(fn):
        # A fresh decorator per function: numba's register_jitable(inline=...) decorator pops
        # the option when it first decorates, so a shared one inlines only its first function.
        return register_jitable(inline="always" if inline else "never")(fn)

    # what makes this kernel's code its own, hashed into its phases' names (``phase_jit``)
    variant = hashlib.sha256(repr((dynamics.name(), np.dtype(cast).name, n_lanes, inline,
                                   record, features)).encode()).hexdigest()[:16]

    def phase_jit(fn):
        # The phases of the step loop are called, not inlined: numba types an inlined function
        # again at every level it is inlined into, so inlining the phases into the loop doubled
        # the CPU compile time. Called, each phase compiles once, with the lane loops and what
        # they call inlined into it (and the block loop's settings that let LLVM vectorise:
        # no ZeroDivisionError branch, no reference counting). NVVM inlines them on the GPU.
        # Their symbols carry the kernel's ``variant``: numba links the functions a cached
        # kernel calls by name, first definition wins, so a kernel loaded from the disk cache
        # into a process that compiled another kernel's phase of the same name (and the same
        # per-process id) ran that other phase (seen: NaN in the P&L).
        fn.__qualname__ = f"{fn.__qualname__}_{variant}"
        return register_jitable(error_model="numpy", _nrt=False)(fn) if inline else \
            register_jitable(fn)

    @lane_jit
    def frame(state, base):
        """(base, stride, rows) of a block's state: the CPU's blocks own their state (base 0,
        the block size the stride: constants the compiler sees), CUDA's threads share one."""
        if n_lanes > 1:
            return 0, n_lanes, state.shape[1]
        return base, state.shape[2], state.shape[1]

    @lane_jit
    def lane_extras(flat, hb, stride, base, lanes, disc, ends, impact):
        """The rest of ``trade`` for the orders ``lanes[LANE_QTY, :]`` just filled
        (``lane_fill``): the ends' parts of the sums (``ends``) and the impact sums
        (``impact``)."""
        if ends:
            for j in range(n_lanes):
                lane_fill_ends(flat, hb, stride, base + j, lanes[LANE_QTY, j],
                               lanes[LANE_SPOT, j], disc)
        if impact:
            for j in range(n_lanes):
                lane_fill_impact(flat, hb, stride, base + j, lanes[LANE_QTY, j],
                                 lanes[LANE_SPOT, j], disc, ends)

    @lane_jit
    def lane_rows(kind, width, flat, hb, gb, stride, base, lanes, p1, p2, disc, first,
                  to_target, impact):
        """``order`` without lag for every lane of a plain row at a grid point where its rule
        may trade (``first``: the first grid point; ``to_target``: the row hedges to the target
        there whatever its rule: the start of every rule but the band rules that start at the
        edge, and the dates ``SCHEDULE_TO_TARGET``). Without lag, orders fill at once: the row
        compares its target with the shares it holds (``STATE_ORDERED`` is not kept).
        ``width`` < -1: the Whalley-Wilmott band of each lane, ``lanes[LANE_BAND]`` (set by
        the caller) times (p1 / p2)^{1/3}, else the band's edge. Only the spot-move rule reads
        and keeps the spot of its last trade (and divides by it): the other rules' loop skips
        that work."""
        per_lane = has_whalley_wilmott and width < -1.5
        # (lambda / gamma)^{1/3} per row and grid point, not once per strategy: taking it from
        # the hedger table instead (no call left in this function) made LLVM run every plain
        # row's loop about 3x slower (16 rows trading every step, 21 -> 63 ns per path-step)
        scale = cbrt(fdiv(p1, p2)) if per_lane else 0.0
        # The target (minus the book's delta) goes through the scratch: reading another row's
        # fields in the loop that writes this row's stops it from vectorising.
        for j in range(n_lanes):
            lanes[LANE_QTY, j] = -flat[at(gb, STATE_DELTA, stride, base + j)]
        if has_spot_move and kind == KIND_SPOT_MOVE:
            for j in range(n_lanes):
                local = base + j
                s = lanes[LANE_SPOT, j]
                last = flat[at(hb, STATE_LAST_SPOT, stride, local)]
                deviation = lanes[LANE_QTY, j] - flat[at(hb, STATE_POSITION, stride, local)]
                qty = lane_rebalance(kind, deviation, p1, width, s, last)
                qty = deviation if to_target else qty
                lanes[LANE_QTY, j] = qty
                flat[at(hb, STATE_LAST_SPOT, stride, local)] = s if qty != 0.0 else last
                lane_fill(flat, hb, stride, local, qty, s, disc)
        else:
            for j in range(n_lanes):
                local = base + j
                deviation = lanes[LANE_QTY, j] - flat[at(hb, STATE_POSITION, stride, local)]
                band = lanes[LANE_BAND, j] * scale if per_lane else width
                qty = lane_band_quantity(kind, deviation, p1, band)
                qty = deviation if to_target else qty
                lanes[LANE_QTY, j] = qty
                lane_fill(flat, hb, stride, local, qty, lanes[LANE_SPOT, j], disc)
        lane_extras(flat, hb, stride, base, lanes, disc, first, impact)

    @phase_jit
    def start_rows(state, flat, base, lanes, hedgers, book, grid, rate, div):
        """Phase: the start. Zero every row's state in every lane, pay (or receive) each row's
        premium at t=0 and give it the shares it holds at t=0, paid at the lane's first price
        without cost (the lanes' spots are set)."""
        base, stride, n_rows = frame(state, base)
        for h in range(hedgers.shape[0]):
            hb = np.uint64(h * n_rows * stride)
            for row in range(N_STATE + int(hedgers[h, HEDGER_LAG])):
                for j in range(n_lanes):
                    flat[at(hb, row, stride, base + j)] = 0.0
            premium = hedgers[h, HEDGER_PREMIUM]
            strike = hedgers[h, HEDGER_OPT_STRIKE]
            step = hedgers[h, HEDGER_OPT_STEP]
            expiry = hedgers[h, HEDGER_OPT_MATURITY]
            held = hedgers[h, HEDGER_INITIAL_SHARES]
            disc = grid[0, GRID_DISCOUNT]
            for j in range(n_lanes):
                local = base + j
                s = lanes[LANE_SPOT, j]
                flat[at(hb, STATE_LAST_SPOT, stride, local)] = s
                flat[at(hb, STATE_POSITION, stride, local)] = held
                flat[at(hb, STATE_ORDERED, stride, local)] = held
                flat[at(hb, STATE_OPT_STRIKE, stride, local)] = strike
                flat[at(hb, STATE_OPT_STEP, stride, local)] = step
                flat[at(hb, STATE_OPT_EXPIRY, stride, local)] = expiry
                flat[at(hb, STATE_OPT_MONEYNESS, stride, local)] = fdiv(strike, s)
                flat[at(hb, STATE_DELTA_AT, stride, local)] = -1.0
                flat[at(hb, STATE_GAMMA_AT, stride, local)] = -1.0
            at_start = hedgers[h, HEDGER_PRICE_AT_START] > 0.5
            for j in range(n_lanes):
                s = lanes[LANE_SPOT, j]
                value = book_value(book, s, grid[0, GRID_TIME], hedgers[h, HEDGER_VOL], rate,
                                   div, 0) if at_start else premium
                flat[at(hb, STATE_FLOW, stride, base + j)] = -value - held * s * disc

    @phase_jit
    def write_outputs(state, base, first, count, lanes, hedgers, costs, out, out_spot):
        """Phase: the outputs. Per-path results of the block's first ``count`` lanes: P&L,
        trades, turnover and
        the costs by kind for every (strategy, cost level), and the terminal spot. A cost field
        is written only at the levels that charge it (``charges``; the result starts at zero):
        the pages of ``out`` left untouched are never mapped (the 16 x 4 benchmark spends a
        quarter of its time writing outputs)."""
        for h in range(hedgers.shape[0]):
            settles = 0.0 if has_insurers and hedgers[h, HEDGER_INSURER] > 0.5 else 1.0
            strategy = int(hedgers[h, HEDGER_STRATEGY])
            group = hedgers[h, HEDGER_COST]
            by_cost = hedgers[h, HEDGER_BY_COST]
            for c in range(costs.shape[0]):
                if not serves(costs, c, by_cost, group):
                    continue
                charged = charges(costs, c, OUT_COST)
                spread_on = charges(costs, c, OUT_SPREAD)
                fee_on = charges(costs, c, OUT_FEE)
                impact_on = charges(costs, c, OUT_IMPACT)
                funding_on = charges(costs, c, OUT_FUNDING)
                for j in range(count):
                    local = base + j
                    path = np.uint64(first + j)
                    spread, fee, impact_cost, fund = lane_costs(state, h, local, costs, c)
                    cost = spread + fee + impact_cost + fund
                    value = state[h, STATE_FLOW, local] + (
                        lanes[LANE_SETTLED, j] if settles > 0.5 else 0.0)
                    out[OUT_PNL, strategy, c, path] = value - cost
                    out[OUT_TRADES, strategy, c, path] = state[h, STATE_TRADES, local]
                    out[OUT_TURNOVER, strategy, c, path] = state[h, ACC_TURNOVER, local]
                    if charged:
                        out[OUT_COST, strategy, c, path] = cost
                    if spread_on:
                        out[OUT_SPREAD, strategy, c, path] = spread
                    if fee_on:
                        out[OUT_FEE, strategy, c, path] = fee
                    if impact_on:
                        out[OUT_IMPACT, strategy, c, path] = impact_cost
                    if funding_on:
                        out[OUT_FUNDING, strategy, c, path] = fund
        for j in range(count):
            out_spot[np.uint64(first + j)] = lanes[LANE_SPOT, j]

    @phase_jit
    def advance(k, first, last, path_offset, key0, key1, pair, mp, paths, lanes):
        """Phase: the market's step from grid point k - 1 to k in every lane (the step's jump
        counts and normals, then the model's step)."""
        if jump_mean >= 0:
            lane_jumps(lanes, n_lanes, np.float64(mp[jump_mean]), key0, key1,
                       path_offset + first, pair, k - 1)
        if paired and k % 2 == 1:  # steps k - 1 and k share one Box-Muller pair
            for j in range(n_lanes):
                z1, z2 = lane_normal_pair(key0, key1, (path_offset + first + j) >> pair,
                                          (k - 1) // 2, 0)
                lanes[LANE_DRAW, j] = z1
                lanes[LANE_NEXT, j] = z2
        elif paired:
            for j in range(n_lanes):
                lanes[LANE_DRAW, j] = lanes[LANE_NEXT, j]
        for j in range(n_lanes):
            # Antithetic pairs (2i, 2i+1) share the draws of generator index i; the odd member
            # negates its normals (shifts and masks: no branch).
            path = path_offset + first + j
            gen_path = path >> pair
            sign = cast(1.0 - 2.0 * (path & pair))
            s, v = lane_step(cast(lanes[LANE_SPOT, j]), cast(lanes[LANE_VAR, j]), mp, paths,
                             key0, key1, gen_path, min(first + j, last), k - 1, sign,
                             cast(lanes[LANE_DRAW, j]))
            lanes[LANE_SPOT, j] = np.float64(cast(s))
            lanes[LANE_VAR, j] = np.float64(cast(v))

    @lane_jit
    def settle(k, state, base, lanes, grid, book, n_hedgers):
        """Phase: the cash flows at grid point k that need no decision: the dividend on the
        shares held over the step to k, and the payoff of the book's options maturing at k.
        Inlined into the loop: it is small, and a call per grid point costs more than its
        work."""
        base, _, _ = frame(state, base)
        dividend = grid[k, GRID_DIVIDEND] if has_dividends and k > 0 else 0.0
        if dividend != 0.0:
            for h in range(n_hedgers):
                for j in range(n_lanes):
                    state[h, STATE_FLOW, base + j] += (
                        state[h, STATE_POSITION, base + j] * lanes[LANE_SPOT, j] * dividend)
        disc = grid[k, GRID_DISCOUNT]
        for i in range(book.shape[0]):
            if book[i, BOOK_STEP] == k:
                for j in range(n_lanes):
                    lanes[LANE_SETTLED, j] += book_settlement(book, lanes[LANE_SPOT, j], k) * disc
                break

    @phase_jit
    def fill_pending(k, state, flat, base, lanes, grid, hedgers, hp, rate, div, impact):
        """Phase: the rows' work at grid point k besides their rule: the orders decided ``lag``
        steps ago fill at today's price, and hedge options expire or roll."""
        base, _, _ = frame(state, base)
        n_steps = grid.shape[0] - 1
        disc = grid[k, GRID_DISCOUNT]
        for h in range(hedgers.shape[0]):
            lag = int(hedgers[h, HEDGER_LAG])
            option_hedge = has_option_hedges and hedgers[h, HEDGER_OPTION_HEDGE] > 0.5
            for j in range(n_lanes):
                local = base + j
                # at the horizon, orders still in flight are cancelled (``unwind``)
                if has_lag and lag > 0 and k >= lag and k < n_steps:
                    fill_due(state, flat, h, local, lanes[LANE_SPOT, j], disc, k, lag, impact)
                if option_hedge and state[h, STATE_OPT_STEP, local] == k:
                    option_event(state, flat, h, local, lanes[LANE_SPOT, j], lanes[LANE_VAR, j],
                                 k, n_steps, disc, grid, hedgers, hp, rate, div)

    @phase_jit
    def unwind(k, state, flat, base, lanes, grid, hedgers, hp, rate, div, impact):
        """Phase: at the horizon, every row sells the shares it holds (orders in flight are
        cancelled), then its hedge options."""
        base, stride, n_rows = frame(state, base)
        disc = grid[k, GRID_DISCOUNT]
        for h in range(hedgers.shape[0]):
            hb = np.uint64(h * n_rows * stride)
            for j in range(n_lanes):
                local = base + j
                qty = -flat[at(hb, STATE_POSITION, stride, local)]
                lanes[LANE_QTY, j] = qty
                lane_fill(flat, hb, stride, local, qty, lanes[LANE_SPOT, j], disc)
            lane_extras(flat, hb, stride, base, lanes, disc, True, impact)
            if has_option_hedges and hedgers[h, HEDGER_OPTION_HEDGE] > 0.5:
                for j in range(n_lanes):
                    unwind_options(state, flat, h, base + j, lanes[LANE_SPOT, j],
                                   lanes[LANE_VAR, j], k, disc, grid, hedgers, hp, rate, div)

    @phase_jit
    def rebalance(k, state, flat, base, lanes, grid, book, book_tau, hedgers, schedule, costs,
                  hp, rate, div, impact, band_row, band_step):
        """Phase: the rows that may trade at grid point k (option hedges may have to replace a
        rolled option at any point): ln S and the book's greeks they need, once per greeks row
        (``HEDGER_GREEKS``), then each row's decision and orders. One function rather than
        two: a call per block and grid point costs (two calls: the one-hedger benchmark 4 %
        slower). ``band_row``, ``band_step``: the greeks row and grid point of the
        Whalley-Wilmott band's path part in ``lanes[LANE_BAND]``; returned updated."""
        base, stride, n_rows = frame(state, base)
        n_hedgers = hedgers.shape[0]
        one_option = book.shape[0] == 1
        active = False
        for h in range(n_hedgers):
            if schedule[k, h] != 0 or (has_option_hedges
                                       and hedgers[h, HEDGER_OPTION_HEDGE] > 0.5):
                active = True
        if active:
            for j in range(n_lanes):
                lanes[LANE_LOG_SPOT, j] = lane_log(cast(lanes[LANE_SPOT, j]))
        # the book's greeks
        for h in range(n_hedgers if active else 0):
            kind = int(hedgers[h, HEDGER_KIND])
            if hedgers[h, HEDGER_DELTA] < 0.5 or (schedule[k, h] == 0 and (
                    not has_option_hedges or hedgers[h, HEDGER_OPTION_HEDGE] < 0.5)):
                continue
            g = int(hedgers[h, HEDGER_GREEKS])
            gb = np.uint64(g * n_rows * stride)
            vol = hedgers[g, HEDGER_VOL]
            rule = int(hedgers[g, HEDGER_RULE])
            # The delta and gamma loops below are near-copies on purpose: one shared function
            # for both (a flag choosing the greek) measured 25 % slower with 16 rows on this
            # CPU.
            if state[g, STATE_DELTA_AT, base] != k:
                state[g, STATE_DELTA_AT, base] = k
                if rule == RULE_CONSTANT or not has_hedge_vol_rules:
                    for j in range(n_lanes):
                        flat[at(gb, STATE_DELTA, stride, base + j)] = 0.0
                    for i in range(book.shape[0]):
                        if k < book[i, BOOK_STEP]:
                            quantity = book[i, BOOK_QUANTITY]
                            log_strike = cast(book[i, BOOK_LOG_STRIKE])
                            sqrt_tau = cast(book_tau[k, i, TAU_SQRT])
                            div_discount = cast(book_tau[k, i, TAU_DIV_DISCOUNT])
                            is_call = book[i, BOOK_IS_CALL] > 0.5
                            for j in range(n_lanes):
                                flat[at(gb, STATE_DELTA, stride, base + j)] += \
                                    quantity * lane_delta(
                                    cast(lanes[LANE_LOG_SPOT, j]) - log_strike, sqrt_tau,
                                    div_discount, cast(vol), cast(rate), cast(div), is_call)
                else:
                    for j in range(n_lanes):
                        state[g, STATE_DELTA, base + j] = book_delta(
                            book, book_tau, lanes[LANE_SPOT, j], lanes[LANE_LOG_SPOT, j],
                            lanes[LANE_VAR, j], rule, vol, hp, rate, div, k)
            # (the plain Whalley-Wilmott rows of a one-option book need no gamma: their band
            # comes from d1, ``whalley_wilmott_path_part_one``)
            band_from_d1 = one_option and rule == RULE_CONSTANT and \
                kind == KIND_WHALLEY_WILMOTT and hedgers[h, HEDGER_LAG] == 0.0
            if has_gamma and hedgers[h, HEDGER_GAMMA] > 0.5 and not band_from_d1 and \
                    state[g, STATE_GAMMA_AT, base] != k:
                state[g, STATE_GAMMA_AT, base] = k
                if rule == RULE_CONSTANT or not has_hedge_vol_rules:
                    for j in range(n_lanes):
                        flat[at(gb, STATE_GAMMA, stride, base + j)] = 0.0
                    for i in range(book.shape[0]):
                        if k < book[i, BOOK_STEP]:
                            quantity = book[i, BOOK_QUANTITY]
                            log_strike = cast(book[i, BOOK_LOG_STRIKE])
                            sqrt_tau = cast(book_tau[k, i, TAU_SQRT])
                            div_discount = cast(book_tau[k, i, TAU_DIV_DISCOUNT])
                            for j in range(n_lanes):
                                flat[at(gb, STATE_GAMMA, stride, base + j)] += \
                                    quantity * lane_gamma(
                                    cast(lanes[LANE_SPOT, j]),
                                    cast(lanes[LANE_LOG_SPOT, j]) - log_strike, sqrt_tau,
                                    div_discount, cast(vol), cast(rate), cast(div))
                else:
                    for j in range(n_lanes):
                        state[g, STATE_GAMMA, base + j] = book_greek(
                            book, book_tau, lanes[LANE_SPOT, j], lanes[LANE_LOG_SPOT, j],
                            lanes[LANE_VAR, j], rule, vol, hp, rate, div, k, False)
        # the decisions and orders
        n_steps = grid.shape[0] - 1
        horizon = grid[n_steps, GRID_TIME]
        disc = grid[k, GRID_DISCOUNT]
        discount = fdiv(grid[n_steps, GRID_DISCOUNT], disc)  # e^{-r (T - t_k)}
        for h in range(n_hedgers if active else 0):
            kind = int(hedgers[h, HEDGER_KIND])
            decides = int(hedgers[h, HEDGER_DECIDES])
            if decides == DECIDES_LANES:
                if schedule[k, h] == 0:
                    continue
                g = int(hedgers[h, HEDGER_GREEKS])
                p1 = hedgers[h, HEDGER_P1]
                p2 = hedgers[h, HEDGER_P2]
                lag = int(hedgers[h, HEDGER_LAG])
                start_edge = hedgers[h, HEDGER_START_EDGE] > 0.5
                dated = schedule[k, h] == SCHEDULE_TO_TARGET
                if has_lag and lag > 0:
                    for j in range(n_lanes):
                        local = base + j
                        s = lanes[LANE_SPOT, j]
                        deviation = -state[g, STATE_DELTA, local] - \
                            state[h, STATE_ORDERED, local]
                        qty = deviation
                        if (k > 0 or start_edge) and not dated:  # else to the target
                            qty = rebalance_quantity(
                                kind, deviation, p1,
                                plain_width(kind, p1, p2, state[g, STATE_GAMMA, local], s,
                                            discount),
                                s, state[h, STATE_LAST_SPOT, local])
                        order(state, flat, h, local, qty, s, disc, k, lag, k == 0, impact)
                else:  # the common case: loops over lanes without a branch
                    width = -2.0 if kind == KIND_WHALLEY_WILMOTT else plain_width(
                        kind, p1, p2, 0.0, 1.0, 1.0)
                    gb = np.uint64(g * n_rows * stride)
                    if has_whalley_wilmott and kind == KIND_WHALLEY_WILMOTT and (
                            band_row != g or band_step != k):
                        band_row, band_step = g, k
                        vol = hedgers[g, HEDGER_VOL]
                        if one_option and int(hedgers[g, HEDGER_RULE]) == RULE_CONSTANT:
                            sqrt_tau = book_tau[k, 0, TAU_SQRT]
                            live = k < book[0, BOOK_STEP] and sqrt_tau > 0.0 and \
                                vol > 0.0 and book[0, BOOK_QUANTITY] != 0.0
                            log_scale = whalley_wilmott_log_scale(
                                book[0, BOOK_QUANTITY], sqrt_tau,
                                book_tau[k, 0, TAU_DIV_DISCOUNT], vol, discount)
                            log_strike = book[0, BOOK_LOG_STRIKE]
                            for j in range(n_lanes):
                                log_spot = lanes[LANE_LOG_SPOT, j]
                                part = lane_band_one(log_spot - log_strike, log_spot,
                                                     sqrt_tau, vol, rate, div, log_scale)
                                lanes[LANE_BAND, j] = part if live else 0.0
                        else:
                            for j in range(n_lanes):
                                lanes[LANE_BAND, j] = lane_band(
                                    flat[at(gb, STATE_GAMMA, stride, base + j)],
                                    lanes[LANE_SPOT, j], discount)
                    lane_rows(kind, width, flat, np.uint64(h * n_rows * stride), gb, stride,
                              base, lanes, p1, p2, disc, k == 0,
                              (k == 0 and not start_edge) or dated, impact)
            elif has_lane_rules and decides == DECIDES_LANE:
                for j in range(n_lanes):
                    hedge_lane(state, flat, h, base + j, lanes[LANE_SPOT, j],
                               lanes[LANE_VAR, j], lanes[LANE_LOG_SPOT, j], k, n_steps,
                               horizon, disc, grid, book, book_tau, hedgers, schedule, costs,
                               hp, rate, div, impact)
        return band_row, band_step

    @phase_jit
    def accrue_funding(k, state, base, lanes, grid, hedgers):
        """Phase: funding spreads accrue on the cash balance over [t_k, t_{k+1}] (first order
        in the spread): the present value of the balance times dt, seen from t_{k+1}."""
        base, _, _ = frame(state, base)
        factor = fdiv((grid[k + 1, GRID_TIME] - grid[k, GRID_TIME]) * grid[k + 1, GRID_DISCOUNT],
                      grid[k, GRID_DISCOUNT])
        for h in range(hedgers.shape[0]):
            insurer = has_insurers and hedgers[h, HEDGER_INSURER] > 0.5
            for j in range(n_lanes):
                local = base + j
                # insurers' cash: capital - floor PV (the premium) + trades + floor PV
                balance = state[h, STATE_FLOW, local] + (
                    hedgers[h, HEDGER_P3] if insurer else lanes[LANE_SETTLED, j])
                if balance < 0.0:
                    state[h, STATE_BORROWED, local] -= balance * factor
                else:
                    state[h, STATE_LENT, local] += balance * factor

    def run_block(first, count, base, path_offset, key0, key1, antithetic, spot0, v0, mp, hp,
                  paths, grid, book, book_tau, hedgers, schedule, costs, rate, div, state,
                  flat, lanes, out, out_spot, rec):
        n_steps = grid.shape[0] - 1
        n_hedgers = hedgers.shape[0]
        last = first + count - 1
        pair = 1 if antithetic else 0
        funding = False
        impact = False
        for c in range(costs.shape[0]):
            funding = has_funding and (funding or charges(costs, c, OUT_FUNDING))
            impact = has_impact and (impact or charges(costs, c, OUT_IMPACT))
        # Rows with orders in flight or a hedge option have work at every grid point besides
        # their rule; plain rows skip that pass.
        pending = False
        for h in range(n_hedgers if has_lag or has_option_hedges else 0):
            if hedgers[h, HEDGER_LAG] > 0.0 or hedgers[h, HEDGER_OPTION_HEDGE] > 0.5:
                pending = True

        for j in range(n_lanes):
            lanes[LANE_SPOT, j] = np.float64(cast(start(spot0, paths, min(first + j, last))))
            lanes[LANE_VAR, j] = v0
            lanes[LANE_SETTLED, j] = 0.0
            lanes[LANE_DRAW, j] = 0.0
        start_rows(state, flat, base, lanes, hedgers, book, grid, rate, div)
        band_row = -1
        band_step = -1
        for k in range(n_steps + 1):
            if k > 0:
                advance(k, first, last, path_offset, key0, key1, pair, mp, paths, lanes)
            settle(k, state, base, lanes, grid, book, n_hedgers)
            if pending:
                fill_pending(k, state, flat, base, lanes, grid, hedgers, hp, rate, div, impact)
            if k == n_steps:
                break
            band_row, band_step = rebalance(k, state, flat, base, lanes, grid, book, book_tau,
                                            hedgers, schedule, costs, hp, rate, div, impact,
                                            band_row, band_step)
            if record:
                record_date(state, base, first, count, lanes, hedgers, costs, book, grid, hp,
                            rate, div, k, rec)
            if funding:
                accrue_funding(k, state, base, lanes, grid, hedgers)
        unwind(n_steps, state, flat, base, lanes, grid, hedgers, hp, rate, div, impact)
        if record:
            record_date(state, base, first, count, lanes, hedgers, costs, book, grid, hp, rate,
                        div, n_steps, rec)
        write_outputs(state, base, first, count, lanes, hedgers, costs, out, out_spot)

    return run_block
