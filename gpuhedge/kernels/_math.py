"""Scalar maths of the hedging kernel, written once and compiled for two targets.

Everything here is plain Python on scalars and arrays that ``numba.njit`` (``kernels/cpu.py``)
and ``numba.cuda.jit`` (``kernels/cuda.py``) both compile. Helpers are marked
``register_jitable`` so that one helper may call another under ``njit`` and still be an ordinary
Python function for the CUDA compiler and for direct calls in tests. Nothing here allocates,
imports a device library or knows about chunks: a path is fully determined by its global index
``path`` and the generator key.

Layout of the tables the engine flattens the user's objects into (all float64):

* ``book[i]   = (strike, maturity, quantity, is_call, maturity_step)``
* ``hedgers[h] = (kind, vol, every)`` where ``kind`` is one of the ``KIND_*`` codes and ``vol``
  the hedge vol, also the vol at which the hedger buys (or sells) the book at t=0;
* ``costs[c]  = (proportional, fixed, ends)``, ends = 1 when the initial hedge and the final
  unwind pay costs too;
* ``grid[k]   = (t_k, exp(-r t_k), (exp(q (t_k - t_{k-1})) - 1) exp(-r t_k))`` for k = 0..n_steps.

References
----------
Salmon, Moraes, Dror, Shaw (2011), "Parallel random numbers: as easy as 1, 2, 3", SC11
(Philox4x32-10). Box and Muller (1958). Black and Scholes (1973); Merton (1973).
"""

import math

import numpy as np
from numba.extending import register_jitable

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
_TWO_PI = 2.0 * math.pi


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
    r = math.sqrt(-2.0 * math.log(u1))
    angle = _TWO_PI * u2
    return r * math.cos(angle), r * math.sin(angle)


@register_jitable
def normal_pair(k0, k1, path, step, block):
    """Two independent standard normals for (path, step, block) by Box-Muller."""
    u1, u2 = uniform_pair(k0, k1, path, step, block)
    return box_muller(u1, u2)


# Jumps per step are capped here; models refuse lam * dt > MAX_JUMP_MEAN, where
# P(N > MAX_JUMPS) < 1e-47, so the cap never binds in practice.
MAX_JUMPS = 64
MAX_JUMP_MEAN = 5.0


@register_jitable
def poisson_count(u, mean):
    """Poisson(mean) by sequential inversion of the uniform ``u``: the smallest n with
    P(N <= n) >= u, capped at MAX_JUMPS."""
    p = math.exp(-mean)
    cdf = p
    n = 0
    while u > cdf and n < MAX_JUMPS:
        n += 1
        p *= mean / n
        cdf += p
    return n


# ---------------------------------------------------------------------------------------------
# Black-Scholes-Merton closed forms (continuous dividend yield q). One definition, used by the
# kernels for hedge ratios and premia and by ``gpuhedge.pricing`` through numba.vectorize.
# ---------------------------------------------------------------------------------------------
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@register_jitable
def norm_cdf(x):
    """Standard normal CDF through erfc (accurate in both tails)."""
    return 0.5 * math.erfc(-x * _INV_SQRT2)


@register_jitable
def norm_pdf(x):
    return _INV_SQRT2PI * math.exp(-0.5 * x * x)


@register_jitable
def d1_from(log_moneyness, sqrt_tau, vol, rate, div):
    """d1 = (ln(S/K) + (r - q) tau) / (vol sqrt(tau)) + vol sqrt(tau) / 2; tau, vol > 0."""
    sd = vol * sqrt_tau
    return (log_moneyness + (rate - div) * sqrt_tau * sqrt_tau) / sd + 0.5 * sd


@register_jitable
def bs_d1(spot, strike, tau, vol, rate, div):
    return d1_from(math.log(spot / strike), math.sqrt(tau), vol, rate, div)


@register_jitable
def bs_price(spot, strike, tau, vol, rate, div, is_call):
    """Black-Scholes-Merton price of a European call (is_call=1) or put (is_call=0).

    C = S e^{-q tau} N(d1) - K e^{-r tau} N(d2), P = K e^{-r tau} N(-d2) - S e^{-q tau} N(-d1).
    At tau = 0 or vol = 0 the price is the discounted intrinsic value of the forward.
    """
    fwd = spot * math.exp(-div * tau)
    pvk = strike * math.exp(-rate * tau)
    if tau <= 0.0 or vol <= 0.0:
        # Deterministic world: the option is worth its discounted forward intrinsic value.
        return max(fwd - pvk, 0.0) if is_call else max(pvk - fwd, 0.0)
    d1 = bs_d1(spot, strike, tau, vol, rate, div)
    d2 = d1 - vol * math.sqrt(tau)
    if is_call:
        return fwd * norm_cdf(d1) - pvk * norm_cdf(d2)
    return pvk * norm_cdf(-d2) - fwd * norm_cdf(-d1)


@register_jitable
def delta_from(log_moneyness, sqrt_tau, div_discount, vol, rate, div, is_call):
    """Delta from ln(S/K), sqrt(tau) and e^{-q tau}, which the kernel precomputes per step.

    Delta = e^{-q tau} N(d1) for a call, e^{-q tau} (N(d1) - 1) for a put. In the degenerate
    cases (tau = 0 or vol = 0) the limit is a step in the forward moneyness:
    e^{-q tau} 1{ln(S/K) + (r - q) tau > 0} (minus e^{-q tau} for puts).
    """
    if sqrt_tau <= 0.0 or vol <= 0.0:
        itm = 1.0 if log_moneyness + (rate - div) * sqrt_tau * sqrt_tau > 0.0 else 0.0
        return div_discount * itm if is_call else div_discount * (itm - 1.0)
    n1 = norm_cdf(d1_from(log_moneyness, sqrt_tau, vol, rate, div))
    return div_discount * n1 if is_call else div_discount * (n1 - 1.0)


@register_jitable
def bs_delta(spot, strike, tau, vol, rate, div, is_call):
    """dV/dS of a European call (is_call=1) or put (is_call=0); see ``delta_from``."""
    return delta_from(math.log(spot / strike), math.sqrt(max(tau, 0.0)), math.exp(-div * tau),
                      vol, rate, div, is_call)


@register_jitable
def gamma_from(spot, log_moneyness, sqrt_tau, div_discount, vol, rate, div):
    """Gamma e^{-q tau} n(d1) / (S vol sqrt(tau)) from precomputed ln(S/K), sqrt(tau) and
    e^{-q tau}; 0 at expiry or zero vol."""
    if sqrt_tau <= 0.0 or vol <= 0.0:
        return 0.0
    d1 = d1_from(log_moneyness, sqrt_tau, vol, rate, div)
    return div_discount * norm_pdf(d1) / (spot * vol * sqrt_tau)


@register_jitable
def bs_gamma(spot, strike, tau, vol, rate, div):
    """d2V/dS2 = e^{-q tau} n(d1) / (S vol sqrt(tau)), the same for calls and puts."""
    tau = max(tau, 0.0)
    return gamma_from(spot, math.log(spot / strike), math.sqrt(tau), math.exp(-div * tau), vol,
                      rate, div)


@register_jitable
def vega_from(spot, log_moneyness, sqrt_tau, div_discount, vol, rate, div):
    """Vega S e^{-q tau} n(d1) sqrt(tau) from precomputed ln(S/K), sqrt(tau) and e^{-q tau}."""
    if sqrt_tau <= 0.0 or vol <= 0.0:
        return 0.0
    d1 = d1_from(log_moneyness, sqrt_tau, vol, rate, div)
    return spot * div_discount * norm_pdf(d1) * sqrt_tau


@register_jitable
def bs_vega(spot, strike, tau, vol, rate, div):
    """dV/dvol = S e^{-q tau} n(d1) sqrt(tau), the same for calls and puts."""
    tau = max(tau, 0.0)
    return vega_from(spot, math.log(spot / strike), math.sqrt(tau), math.exp(-div * tau), vol,
                     rate, div)


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
    drift_rate = rate - lam * math.expm1(log_growth)  # r - lam k
    mean = lam * math.exp(log_growth) * tau  # lam' tau
    log_mean = math.log(mean)
    log_weight = -mean
    total = 0.0
    for n in range(n_terms):
        if n > 0:
            log_weight += log_mean - math.log(n)
        vol_n = math.sqrt(vol * vol + n * sigma_j * sigma_j / tau)
        rate_n = drift_rate + n * log_growth / tau
        if delta:
            value = bs_delta(spot, strike, tau, vol_n, rate_n, div, is_call)
        else:
            value = bs_price(spot, strike, tau, vol_n, rate_n, div, is_call)
        total += math.exp(log_weight) * value
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
#   step(s, v, mp, paths, key0, key1, path, local, k, sign) -> (s_next, v_next)
# for the move from grid point k to k+1; ``sign`` is -1 for the antithetic twin of a path
# (its normals are negated) and +1 otherwise. ``s`` is the spot, ``v`` a second state variable
# (variance for stochastic-volatility families, unused otherwise), ``mp`` the family's float
# parameters prepared by the Python model class, ``paths`` a (paths x points) array used only by
# the supplied-path family. ``path`` is the global path index (random numbers), ``local`` the
# row within the chunk (supplied prices).
# ---------------------------------------------------------------------------------------------
FAMILY_GBM = 0
FAMILY_SUPPLIED = 1
FAMILY_MERTON = 2
FAMILY_KOU = 3
FAMILY_HESTON = 4
FAMILY_BATES = 5


@register_jitable
def given_start(spot0, paths, local):
    """Start every path at the model's S_0."""
    return spot0


@register_jitable
def supplied_start(spot0, paths, local):
    """Start each supplied path at its own first price."""
    return paths[local, 0]


@register_jitable
def gbm_step(s, v, mp, paths, key0, key1, path, local, k, sign):
    """Exact log-normal step: S_{k+1} = S_k exp(mp[0] + mp[1] z).

    mp = ((mu - vol^2/2) dt, vol sqrt(dt)) with mu the drift of the spot (real-world or
    risk-neutral r - q). One Box-Muller pair serves two steps: steps 2j and 2j+1 use the
    pair of counter j; the second normal waits in ``v``, which GBM has no other use for.
    """
    if k % 2 == 0:
        z, v = normal_pair(key0, key1, path, k // 2, 0)
    else:
        z = v
    return s * math.exp(mp[0] + mp[1] * sign * z), v


@register_jitable
def lognormal_jumps(key0, key1, path, k, block, lam_dt, mu_j, sigma_j):
    """Summed log size of the Merton jumps on one step: N ~ Poisson(lam dt) from block
    ``block``; given N, the sum of N N(mu_j, sigma_j^2) is exactly N mu_j + sigma_j sqrt(N) Z
    with Z from block ``block + 1`` (drawn only when a jump occurs)."""
    u, _ = uniform_pair(key0, key1, path, k, block)
    n = poisson_count(u, lam_dt)
    if n == 0:
        return 0.0
    z, _ = normal_pair(key0, key1, path, k, block + 1)
    return n * mu_j + sigma_j * math.sqrt(n) * z


@register_jitable
def merton_step(s, v, mp, paths, key0, key1, path, local, k, sign):
    """Exact Merton step: ln S += mp[0] + mp[1] Z + jumps (see ``lognormal_jumps``).

    mp = ((mu - lam k - vol^2/2) dt, vol sqrt(dt), lam dt, mu_j, sigma_j). Antithetic twins
    share their jumps and negate only the diffusion normal.
    """
    z, _ = normal_pair(key0, key1, path, k, 0)
    x = mp[0] + mp[1] * sign * z + lognormal_jumps(key0, key1, path, k, 1, mp[2], mp[3], mp[4])
    return s * math.exp(x), v


@register_jitable
def kou_step(s, v, mp, paths, key0, key1, path, local, k, sign):
    """Exact Kou step: ln S += mp[0] + mp[1] Z + sum of N double-exponential jumps.

    mp = ((mu - lam k - vol^2/2) dt, vol sqrt(dt), lam dt, p, eta1, eta2). N ~ Poisson(lam dt)
    from block 1; jump j draws (direction, size) from block 2 + j: up with probability p and
    size -ln(u)/eta1, else down by -ln(u)/eta2.
    """
    z, _ = normal_pair(key0, key1, path, k, 0)
    x = mp[0] + mp[1] * sign * z
    u, _ = uniform_pair(key0, key1, path, k, 1)
    n = poisson_count(u, mp[2])
    for j in range(n):
        direction, size = uniform_pair(key0, key1, path, k, 2 + j)
        if direction <= mp[3]:
            x -= math.log(size) / mp[4]
        else:
            x += math.log(size) / mp[5]
    return s * math.exp(x), v


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
    """
    z_v, z_s = normal_pair(key0, key1, path, k, 0)
    z_v *= sign
    z_s *= sign
    if mp[6] > 0.5:
        # Full-truncation Euler: the drift and diffusion see max(v, 0), v itself may dip below.
        vp = max(v, 0.0)
        root = math.sqrt(vp * mp[5])
        rho = mp[4]
        x = mp[0] - 0.5 * vp * mp[5] + root * (rho * z_v + math.sqrt(1.0 - rho * rho) * z_s)
        return x, v + mp[1] * (mp[2] - vp) * mp[5] + mp[3] * root * z_v
    m = mp[2] + (v - mp[2]) * mp[7]
    k1, k2, k3 = mp[11], mp[12], mp[13]
    big_a = k2 + 0.5 * k3
    if m <= 0.0:
        # v = theta = 0: the variance stays at 0 and the price only drifts.
        return mp[0], 0.0
    psi = (v * mp[8] + mp[9]) / (m * m)
    if psi <= 1.5:
        t = 2.0 / psi
        b2 = t - 1.0 + math.sqrt(t) * math.sqrt(t - 1.0)
        a = m / (1.0 + b2)
        b = math.sqrt(b2)
        v_next = a * (b + z_v) * (b + z_v)
        if big_a < 0.5 / a:
            k0 = -big_a * b2 * a / (1.0 - 2.0 * big_a * a) + 0.5 * math.log(
                1.0 - 2.0 * big_a * a) - (k1 + 0.5 * k3) * v
        else:
            k0 = mp[10]
    else:
        p = (psi - 1.0) / (psi + 1.0)
        beta = (1.0 - p) / m
        tail = norm_cdf(-z_v)  # 1 - u, accurate for u near 1
        v_next = 0.0 if tail >= 1.0 - p else math.log((1.0 - p) / tail) / beta
        if big_a < beta:
            k0 = -math.log(p + beta * (1.0 - p) / (beta - big_a)) - (k1 + 0.5 * k3) * v
        else:
            k0 = mp[10]
    x = mp[0] + k0 + k1 * v + k2 * v_next + math.sqrt(k3 * (v + v_next)) * z_s
    return x, v_next


@register_jitable
def heston_step(s, v, mp, paths, key0, key1, path, local, k, sign):
    """Heston step (QE or Euler, see ``heston_increment``)."""
    x, v_next = heston_increment(v, mp, key0, key1, path, k, sign)
    return s * math.exp(x), v_next


@register_jitable
def bates_step(s, v, mp, paths, key0, key1, path, local, k, sign):
    """Bates step: Heston increment plus Merton jumps (mp[14:17] = lam dt, mu_j, sigma_j)."""
    x, v_next = heston_increment(v, mp, key0, key1, path, k, sign)
    x += lognormal_jumps(key0, key1, path, k, 1, mp[14], mp[15], mp[16])
    return s * math.exp(x), v_next


@register_jitable
def supplied_step(s, v, mp, paths, key0, key1, path, local, k, sign):
    """Read the next spot from a supplied (paths x points) price array (back-testing)."""
    return paths[local, k + 1], v


# family code -> (start, step) functions; the engine picks the family in Python.
FAMILIES = {
    FAMILY_GBM: (given_start, gbm_step),
    FAMILY_SUPPLIED: (supplied_start, supplied_step),
    FAMILY_MERTON: (given_start, merton_step),
    FAMILY_KOU: (given_start, kou_step),
    FAMILY_HESTON: (given_start, heston_step),
    FAMILY_BATES: (given_start, bates_step),
}


# ---------------------------------------------------------------------------------------------
# Hedgers. The rule is data: a kind code and parameters, plus a (steps x hedgers) table of the
# grid points at which a time schedule trades. One generic loop serves every mix of rules.
# ---------------------------------------------------------------------------------------------
# Rule kinds. Time schedules (static, every k steps, explicit times, Leland, the option hedges,
# the portfolio insurers) trade at the grid points of their schedule table; the band rules
# check every grid point.
KIND_NONE = 0
KIND_STATIC = 1
KIND_SCHEDULE = 2
KIND_BAND = 3  # |target - held| > band (shares): to the target, or to the band's edge
KIND_SPOT_MOVE = 4  # |S / S_last trade - 1| > pct: to the target
KIND_WHALLEY_WILMOTT = 5  # |target - held| > H (Whalley and Wilmott 1997): to the edge
KIND_ZAKAMOULINE = 6  # delta at a modified vol, band H0 + H1 (Zakamouline 2006): to the edge
KIND_DELTA_GAMMA = 7  # shares and a hedge option: book delta and gamma to zero
KIND_DELTA_VEGA = 8  # shares and a hedge option: book delta and Black-Scholes vega to zero
KIND_SYNTHETIC_PUT = 9  # shares replicating stock + put on own capital (portfolio insurance)
KIND_CPPI = 10  # constant proportion portfolio insurance on own capital

# Hedge-vol rules: which volatility (or model) gives the hedge ratio. ``hp`` holds the model
# constants the rules need: (kappa, theta, xi, rho) of Heston-type models; (vol, lam, mu_j,
# sigma_j, n_terms) of Black-Scholes (lam = 0) and Merton markets for their model delta.
RULE_CONSTANT = 0  # the strategy's own implied vol
RULE_INSTANTANEOUS = 1  # sqrt(v_t)
RULE_EXPECTED_AVERAGE = 2  # Heston expected average variance to each option's maturity
RULE_MIN_VARIANCE = 3  # expected-average delta + rho xi / S * dC/dv
RULE_MODEL = 4  # the market's own delta (Merton series; Black-Scholes at the market vol)
HP_KAPPA, HP_THETA, HP_XI, HP_RHO = 0, 1, 2, 3
HP_VOL, HP_LAM, HP_MU_J, HP_SIGMA_J, HP_TERMS = 0, 1, 2, 3, 4

BOOK_STRIKE, BOOK_MATURITY, BOOK_QUANTITY, BOOK_IS_CALL, BOOK_STEP, BOOK_LOG_STRIKE = range(6)
TAU_SQRT, TAU_DIV_DISCOUNT = 0, 1
# A hedger row is one strategy for a group of cost levels that it trades alike: levels with the
# same execution lag (``by_cost`` = 0), and for the rules that depend on the proportional cost
# (Whalley-Wilmott, Zakamouline, Leland; ``by_cost`` = 1) the same proportional cost too; CPPI,
# whose cushion is net of the costs paid, has one row per cost level (``by_cost`` = 2).
# ``cost`` is the group's id (``serves``).
# premium: the value paid for the book at t=0 (portfolio insurers: PV of the floor minus the
# capital); price_at_start = 1: price the book instead at the hedge vol at the path's first
# price (supplied paths, whose first price differs per path). lag: execution lag in grid steps.
# p1, p2, p3: the rule's parameters (band: width in shares, 1 = to the edge; spot move: pct;
# Whalley-Wilmott and Zakamouline: the proportional cost lambda, the risk aversion gamma;
# synthetic put: strike, number of units; CPPI: multiplier, leverage cap, PV of the floor).
# opt_*: the hedge option of the delta-gamma and delta-vega rules: strike at t=0, grid step of
# its first event (expiry, or roll; n_steps + 1 when that is after the horizon), 1 for a call,
# its implied vol, the grid steps between rolls (0: no roll) and its maturity in years (the
# tenor of each fresh option).
HEDGER_KIND, HEDGER_VOL, HEDGER_RULE, HEDGER_PREMIUM, HEDGER_STRATEGY, HEDGER_COST = range(6)
HEDGER_P1, HEDGER_P2, HEDGER_PRICE_AT_START, HEDGER_LAG, HEDGER_P3 = 6, 7, 8, 9, 10
HEDGER_OPT_STRIKE, HEDGER_OPT_STEP, HEDGER_OPT_IS_CALL, HEDGER_OPT_VOL = 11, 12, 13, 14
HEDGER_OPT_TENOR, HEDGER_OPT_MATURITY, HEDGER_BY_COST = 15, 16, 17
N_HEDGER = 18
# Cost levels: proportional and fixed costs, ends (1: the initial hedge and the final unwind
# pay too), the coefficients of square-root and linear market impact (eta sigma_d / sqrt(adv),
# eta sigma_d / adv), the funding spreads (borrow rate - rate, rate - lend rate), the
# proportional cost of option trades, and the ids of the level's groups (see HEDGER_COST).
COST_PROPORTIONAL, COST_FIXED, COST_ENDS, COST_IMPACT_SQRT, COST_IMPACT_LINEAR = range(5)
COST_BORROW, COST_LEND, COST_OPTION, COST_GROUP_RULE, COST_GROUP_LAG = range(5, 10)
N_COST = 10
GRID_TIME, GRID_DISCOUNT, GRID_DIVIDEND = 0, 1, 2
# Per (hedger, path) state. POSITION: shares held (filled); ORDERED: shares held plus orders in
# flight (execution lag), what the rule compares with its target. Costs are linear in a few
# sums, so the kernel keeps the sums and prices every cost level once at the end:
#   spread = proportional * TURNOVER + option proportional * OPTION_TURNOVER,
#   fee = fixed * TICKETS, impact = c_sqrt * IMPACT_SQRT + c_lin * IMPACT_LINEAR,
#   funding = borrow spread * BORROWED + lend spread * LENT,
# with TURNOVER = sum e^{-r t} |q| S, TICKETS = sum e^{-r t} per trade, IMPACT_SQRT =
# sum e^{-r t} S |q|^{3/2}, IMPACT_LINEAR = sum e^{-r t} S q^2, BORROWED (LENT) = sum over steps
# of the PV of the negative (positive) cash balance times the step length. The accumulators
# from ACC_ENDS on hold the part of the first five due to the initial hedge and the final
# unwind. Rows from N_STATE on are the ring of orders in flight (one per lag step).
STATE_POSITION, STATE_FLOW, STATE_TRADES, STATE_LAST_SPOT, STATE_ORDERED = range(5)
STATE_OPT_POSITION, STATE_OPT_STRIKE, STATE_OPT_STEP, STATE_BORROWED, STATE_LENT = range(5, 10)
ACC_TURNOVER, ACC_TICKETS, ACC_IMPACT_SQRT, ACC_IMPACT_LINEAR, ACC_OPTION_TURNOVER = range(10, 15)
N_ACC = 5
ACC_ENDS = 15  # ACC_ENDS + i: the ends' part of accumulator 10 + i
STATE_OPT_EXPIRY = 20  # expiry of the hedge option held (years)
STATE_OPT_MONEYNESS = 21  # strike / spot at t=0 of the hedge option (kept when it rolls)
N_STATE = 22
# Outputs (field, strategy, cost, path).
OUT_PNL, OUT_COST, OUT_SPREAD, OUT_FEE, OUT_IMPACT, OUT_FUNDING, OUT_TRADES = range(7)
OUT_TURNOVER = 7
N_OUT = 8
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
        return math.sqrt(max(v, 0.0))
    x = kappa * tau
    return math.sqrt(max(theta + (v - theta) * (-math.expm1(-x) / x), 0.0))


@register_jitable
def rule_vol(rule, vol, v, hp, tau):
    """The Black-Scholes vol a hedge-vol rule uses for an option ``tau`` years from maturity."""
    if rule == RULE_INSTANTANEOUS:
        return math.sqrt(max(v, 0.0))
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
                w = -math.expm1(-x) / x
                d += (hp[HP_RHO] * hp[HP_XI] / spot
                      * vega_from(spot, moneyness, sqrt_tau, div_discount, sigma, rate, div)
                      * w / (2.0 * sigma))
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
def whalley_wilmott_band(gamma, spot, cost, risk_aversion, discount):
    """Half-width of the Whalley-Wilmott (1997) no-trade band around the delta, in shares:
    H = (3/2 e^{-r (T - t)} lambda S Gamma^2 / gamma)^{1/3}, with lambda the proportional
    cost, Gamma the book's gamma and gamma the risk aversion (1/currency)."""
    return (1.5 * discount * cost * spot * gamma * gamma / risk_aversion) ** (1.0 / 3.0)


@register_jitable
def zakamouline_rule(gamma, spot, vol, cost, risk_aversion, tau, discount, short_gamma):
    """Zakamouline's (2006) approximation of the utility-based hedge with proportional costs.

    Returns (modified vol, band half-width in shares). With lambda the proportional cost,
    gamma the risk aversion, Gamma the book's Black-Scholes gamma at ``vol``, tau the time to
    the horizon and D = e^{-r tau}:

    * sigma_m^2 = sigma^2 (1 - s K), K = -4.76 lambda^0.78 tau^-0.02 (D / sigma)^0.25
      (gamma S^2 |Gamma|)^0.15, s = +1 for a book short gamma (it hedges at a higher vol),
      -1 for a long-gamma book (floored at a tenth of sigma^2);
    * H = H0 + H1, H0 = lambda / (gamma S sigma^2 tau), H1 = 1.12 lambda^0.31 tau^0.05
      (D / sigma)^0.25 (|Gamma| / gamma)^0.5.
    """
    if cost <= 0.0 or tau <= 0.0:
        return vol, 0.0
    scale = (discount / vol) ** 0.25
    big_k = -4.76 * cost ** 0.78 * tau ** -0.02 * scale * (
        risk_aversion * spot * spot * abs(gamma)) ** 0.15
    factor = 1.0 - big_k if short_gamma else 1.0 + big_k
    vol_m = vol * math.sqrt(max(factor, 0.1))
    h0 = cost / (risk_aversion * spot * vol * vol * tau)
    h1 = 1.12 * cost ** 0.31 * tau ** 0.05 * scale * math.sqrt(abs(gamma) / risk_aversion)
    return vol_m, h0 + h1


@register_jitable
def rebalance_quantity(kind, deviation, p1, width, spot, last_spot):
    """Shares a rule trades at a grid point where it may trade, given the deviation
    target - held (0: no trade). ``width`` is the band's half-width for the band rules that
    trade to the edge (DeltaBand to the edge, Whalley-Wilmott, Zakamouline), else negative.
    Time schedules always trade to the target."""
    if kind == KIND_SPOT_MOVE:
        return deviation if abs(spot / last_spot - 1.0) > p1 else 0.0
    if kind == KIND_BAND or kind == KIND_WHALLEY_WILMOTT or kind == KIND_ZAKAMOULINE:
        band = p1 if kind == KIND_BAND else width
        if abs(deviation) <= band:
            return 0.0
        return deviation - math.copysign(band, deviation) if width >= 0.0 else deviation
    return deviation


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
def accumulate(state, h, local, row, value, end):
    """Add ``value`` to a cost accumulator (and to its ends' part for the end trades)."""
    state[row, h, local] += value
    if end:
        state[row - ACC_TURNOVER + ACC_ENDS, h, local] += value


@register_jitable
def trade(state, h, local, qty, spot, disc, end, impact):
    """Fill ``qty`` shares at ``spot`` (sell if negative); ``end``: the initial hedge or the
    final unwind; ``impact``: whether some cost level charges market impact (its sums are
    skipped otherwise).

    Cash flows enter as present values (times ``disc`` = e^{-r t}), so interest on the cash
    account is exact and needs no per-step compounding.
    """
    state[STATE_POSITION, h, local] += qty
    state[STATE_FLOW, h, local] -= qty * spot * disc
    state[STATE_TRADES, h, local] += 1.0
    size = abs(qty)
    notional = size * spot * disc
    accumulate(state, h, local, ACC_TURNOVER, notional, end)
    accumulate(state, h, local, ACC_TICKETS, disc, end)
    if impact:
        accumulate(state, h, local, ACC_IMPACT_SQRT, notional * math.sqrt(size), end)
        accumulate(state, h, local, ACC_IMPACT_LINEAR, notional * size, end)


@register_jitable
def trade_option(state, h, local, qty, value, disc, end):
    """Buy ``qty`` hedge options at ``value`` each (sell if negative)."""
    state[STATE_OPT_POSITION, h, local] += qty
    state[STATE_FLOW, h, local] -= qty * value * disc
    accumulate(state, h, local, ACC_OPTION_TURNOVER, abs(qty) * value * disc, end)
    accumulate(state, h, local, ACC_TICKETS, disc, end)


@register_jitable
def order(state, h, local, qty, spot, disc, k, lag, impact):
    """Place an order decided at grid point k: filled now without lag, else parked in the
    ring of orders in flight and filled at grid point k + lag (``fill_due``)."""
    state[STATE_ORDERED, h, local] += qty
    if lag == 0:
        trade(state, h, local, qty, spot, disc, k == 0, impact)
    else:
        state[N_STATE + k % lag, h, local] = qty


@register_jitable
def fill_due(state, h, local, spot, disc, k, lag, impact):
    """Fill the order decided at grid point k - lag (if any) at today's price."""
    row = N_STATE + k % lag
    qty = state[row, h, local]
    if qty != 0.0:
        trade(state, h, local, qty, spot, disc, k == lag, impact)
        state[row, h, local] = 0.0


@register_jitable
def option_greeks(strike, is_call, tau, s, v, rule, vol, hp, rate, div):
    """Black-Scholes (value, delta, gamma, vega) of a hedge option ``tau`` years from expiry,
    at the vol its hedge-vol rule gives (the market vol for the model rule)."""
    tau = max(tau, 0.0)
    sigma = hp[HP_VOL] if rule == RULE_MODEL else rule_vol(rule, vol, v, hp, tau)
    sqrt_tau = math.sqrt(tau)
    div_discount = math.exp(-div * tau)
    moneyness = math.log(s / strike)
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
    acc0 = state[ACC_TURNOVER, h, local]
    acc1 = state[ACC_TICKETS, h, local]
    acc2 = state[ACC_IMPACT_SQRT, h, local]
    acc3 = state[ACC_IMPACT_LINEAR, h, local]
    acc4 = state[ACC_OPTION_TURNOVER, h, local]
    if costs[c, COST_ENDS] < 0.5:
        acc0 -= state[ACC_ENDS, h, local]
        acc1 -= state[ACC_ENDS + 1, h, local]
        acc2 -= state[ACC_ENDS + 2, h, local]
        acc3 -= state[ACC_ENDS + 3, h, local]
        acc4 -= state[ACC_ENDS + 4, h, local]
    spread = costs[c, COST_PROPORTIONAL] * acc0 + costs[c, COST_OPTION] * acc4
    fee = costs[c, COST_FIXED] * acc1
    impact = costs[c, COST_IMPACT_SQRT] * acc2 + costs[c, COST_IMPACT_LINEAR] * acc3
    fund = costs[c, COST_BORROW] * state[STATE_BORROWED, h, local] + \
        costs[c, COST_LEND] * state[STATE_LENT, h, local]
    return spread, fee, impact, fund


def make_run_path(start, step, cast):
    """Build the per-path hedging loop for one market family and one state precision.

    ``start`` and ``step`` are the family's start and step functions (above) and ``cast`` the
    numpy scalar type of the simulated state (float32 or float64): the spot is rounded to it
    at every grid point, while the arithmetic and every accumulator stay float64 (so that both
    targets round identically; numba and NumPy promote mixed float32 expressions differently).
    The returned plain function is compiled by both targets; one compiled kernel serves any
    mix of hedgers, costs and books.

    P&L convention (one definition, see ``gpuhedge.engine``): the hedger buys the book at t=0
    at its Black-Scholes value at the hedger's vol (a short book receives it), holds shares
    (and hedge options) against it, settles each option at its maturity, unwinds at the
    horizon, and pnl = present value at t=0 of all these cash flows minus the present value
    of costs. Portfolio insurers hold no book: they start from their capital and owe their
    floor at the horizon.
    """

    def run_path(path, local, key0, key1, antithetic, spot0, v0, mp, hp, paths, grid, book,
                 book_tau, hedgers, schedule, costs, rate, div, state, out, out_spot):
        n_steps = grid.shape[0] - 1
        n_hedgers = hedgers.shape[0]
        horizon = grid[n_steps, GRID_TIME]
        # Antithetic pairs (2j, 2j+1) share the draws of generator index j; the odd member
        # negates its normals.
        gen_path = path
        sign = 1.0
        if antithetic:
            gen_path = path // 2
            if path % 2 == 1:
                sign = -1.0
        funding = False
        impact = False
        for c in range(costs.shape[0]):
            if costs[c, COST_BORROW] != 0.0 or costs[c, COST_LEND] != 0.0:
                funding = True
            if costs[c, COST_IMPACT_SQRT] != 0.0 or costs[c, COST_IMPACT_LINEAR] != 0.0:
                impact = True
        # Rows with orders in flight or a hedge option have work at every grid point besides
        # their rule; plain rows skip that pass.
        pending = False
        for h in range(n_hedgers):
            if hedgers[h, HEDGER_LAG] > 0.0 or (hedgers[h, HEDGER_KIND] >= KIND_DELTA_GAMMA
                                                and hedgers[h, HEDGER_KIND] <= KIND_DELTA_VEGA):
                pending = True

        s = np.float64(cast(start(spot0, paths, local)))
        v = v0
        for h in range(n_hedgers):
            for row in range(N_STATE + int(hedgers[h, HEDGER_LAG])):
                state[row, h, local] = 0.0
            state[STATE_LAST_SPOT, h, local] = s
            premium = hedgers[h, HEDGER_PREMIUM]
            if hedgers[h, HEDGER_PRICE_AT_START] > 0.5:
                premium = book_value(book, s, grid[0, GRID_TIME], hedgers[h, HEDGER_VOL], rate,
                                     div, 0)
            state[STATE_FLOW, h, local] = -premium
            state[STATE_OPT_STRIKE, h, local] = hedgers[h, HEDGER_OPT_STRIKE]
            state[STATE_OPT_STEP, h, local] = hedgers[h, HEDGER_OPT_STEP]
            state[STATE_OPT_EXPIRY, h, local] = hedgers[h, HEDGER_OPT_MATURITY]
            state[STATE_OPT_MONEYNESS, h, local] = hedgers[h, HEDGER_OPT_STRIKE] / s

        settled = 0.0
        for k in range(n_steps + 1):
            if k > 0:
                s, v = step(s, v, mp, paths, key0, key1, gen_path, local, k - 1, sign)
                s = np.float64(cast(s))
                dividend = grid[k, GRID_DIVIDEND]
                if dividend != 0.0:
                    for h in range(n_hedgers):
                        state[STATE_FLOW, h, local] += (state[STATE_POSITION, h, local] * s
                                                        * dividend)
            disc = grid[k, GRID_DISCOUNT]
            settled += book_settlement(book, s, k) * disc
            for h in range(n_hedgers if pending else 0):
                # Orders decided `lag` steps ago fill at today's price; at the horizon, orders
                # still in flight are cancelled and the filled position is unwound.
                lag = int(hedgers[h, HEDGER_LAG])
                if lag > 0 and k >= lag and k < n_steps:
                    fill_due(state, h, local, s, disc, k, lag, impact)
                # The hedge option's event: it expires and settles, or it is sold to roll
                # into a fresh one of the same tenor and moneyness (bought by the rebalance).
                if state[STATE_OPT_STEP, h, local] == k and hedgers[h, HEDGER_KIND] >= \
                        KIND_DELTA_GAMMA and hedgers[h, HEDGER_KIND] <= KIND_DELTA_VEGA:
                    strike = state[STATE_OPT_STRIKE, h, local]
                    is_call = hedgers[h, HEDGER_OPT_IS_CALL] > 0.5
                    held = state[STATE_OPT_POSITION, h, local]
                    tau = state[STATE_OPT_EXPIRY, h, local] - grid[k, GRID_TIME]
                    if tau > _EXPIRED:
                        value, _, _, _ = option_greeks(strike, is_call, tau, s, v,
                                                       int(hedgers[h, HEDGER_RULE]),
                                                       hedgers[h, HEDGER_OPT_VOL], hp, rate,
                                                       div)
                        trade_option(state, h, local, -held, value, disc, k == n_steps)
                    else:
                        payoff = s - strike if is_call else strike - s
                        state[STATE_FLOW, h, local] += held * max(payoff, 0.0) * disc
                        state[STATE_OPT_POSITION, h, local] = 0.0
                    if hedgers[h, HEDGER_OPT_TENOR] > 0.0 and k < n_steps:
                        state[STATE_OPT_STRIKE, h, local] = (
                            state[STATE_OPT_MONEYNESS, h, local] * s)
                        state[STATE_OPT_STEP, h, local] = k + hedgers[h, HEDGER_OPT_TENOR]
                        state[STATE_OPT_EXPIRY, h, local] = (grid[k, GRID_TIME]
                                                             + hedgers[h, HEDGER_OPT_MATURITY])
            if k == n_steps:
                for h in range(n_hedgers):
                    held = state[STATE_POSITION, h, local]
                    if held != 0.0:
                        trade(state, h, local, -held, s, disc, True, impact)
                    options = state[STATE_OPT_POSITION, h, local]
                    if options != 0.0:
                        value, _, _, _ = option_greeks(
                            state[STATE_OPT_STRIKE, h, local],
                            hedgers[h, HEDGER_OPT_IS_CALL] > 0.5,
                            state[STATE_OPT_EXPIRY, h, local] - grid[k, GRID_TIME], s, v,
                            int(hedgers[h, HEDGER_RULE]), hedgers[h, HEDGER_OPT_VOL], hp,
                            rate, div)
                        trade_option(state, h, local, -options, value, disc, True)
                break
            # ln S is computed once per grid point, when a hedger needs it. (A flag, not a NaN
            # sentinel: fastmath compilation assumes no NaNs and would drop the test.)
            have_log = False
            log_spot = 0.0
            # Hedgers sharing a hedge-vol rule share one delta (and gamma) per grid point.
            cached_vol = -1.0
            cached_rule = -1.0
            cached_delta = 0.0
            gamma_vol = -1.0
            gamma_rule = -1.0
            cached_gamma = 0.0
            for h in range(n_hedgers):
                kind = int(hedgers[h, HEDGER_KIND])
                rolled = (kind == KIND_DELTA_GAMMA or kind == KIND_DELTA_VEGA) and k > 0 and \
                    state[STATE_OPT_POSITION, h, local] == 0.0 and \
                    state[STATE_OPT_STEP, h, local] > hedgers[h, HEDGER_OPT_STEP]
                if schedule[k, h] == 0 and not rolled:
                    continue
                vol = hedgers[h, HEDGER_VOL]
                rule = hedgers[h, HEDGER_RULE]
                if not have_log:
                    log_spot = math.log(s)
                    have_log = True
                width = -1.0
                if kind == KIND_CPPI:
                    # cushion = portfolio value - floor (the floor's PV is in the premium),
                    # net of the costs paid so far (a CPPI row serves one cost level)
                    spread, fee, impact_cost, fund = level_costs(
                        state, h, local, costs, int(hedgers[h, HEDGER_COST]))
                    cushion = (state[STATE_FLOW, h, local] - spread - fee - impact_cost
                               - fund) / disc + state[STATE_POSITION, h, local] * s
                    exposure = min(hedgers[h, HEDGER_P1] * max(cushion, 0.0),
                                   hedgers[h, HEDGER_P2] * (cushion + hedgers[h, HEDGER_P3]
                                                            / disc))
                    target = exposure / s
                elif kind == KIND_SYNTHETIC_PUT:
                    tau = horizon - grid[k, GRID_TIME]
                    put = delta_from(log_spot - math.log(hedgers[h, HEDGER_P1]),
                                     math.sqrt(tau), math.exp(-div * tau),
                                     rule_vol(int(rule), vol, v, hp, tau), rate, div, False)
                    target = hedgers[h, HEDGER_P2] * (1.0 + put)
                else:
                    if vol != cached_vol or rule != cached_rule:
                        cached_delta = book_delta(book, book_tau, s, log_spot, v, int(rule),
                                                  vol, hp, rate, div, k)
                        cached_vol = vol
                        cached_rule = rule
                    target = -cached_delta
                    needs_gamma = kind == KIND_WHALLEY_WILMOTT or kind == KIND_ZAKAMOULINE or \
                        kind == KIND_DELTA_GAMMA
                    if needs_gamma and (vol != gamma_vol or rule != gamma_rule):
                        cached_gamma = book_greek(book, book_tau, s, log_spot, v, int(rule),
                                                  vol, hp, rate, div, k, False)
                        gamma_vol = vol
                        gamma_rule = rule
                    discount = grid[n_steps, GRID_DISCOUNT] / disc
                    if kind == KIND_WHALLEY_WILMOTT:
                        width = whalley_wilmott_band(cached_gamma, s, hedgers[h, HEDGER_P1],
                                                     hedgers[h, HEDGER_P2], discount)
                    elif kind == KIND_ZAKAMOULINE:
                        vol_m, width = zakamouline_rule(
                            cached_gamma, s, vol, hedgers[h, HEDGER_P1], hedgers[h, HEDGER_P2],
                            horizon - grid[k, GRID_TIME], discount, hedgers[h, HEDGER_P3] > 0.5)
                        target = -book_delta(book, book_tau, s, log_spot, v, RULE_CONSTANT,
                                             vol_m, hp, rate, div, k)
                    elif kind == KIND_DELTA_GAMMA or kind == KIND_DELTA_VEGA:
                        value, o_delta, o_gamma, o_vega = option_greeks(
                            state[STATE_OPT_STRIKE, h, local],
                            hedgers[h, HEDGER_OPT_IS_CALL] > 0.5,
                            state[STATE_OPT_EXPIRY, h, local] - grid[k, GRID_TIME], s, v,
                            int(rule), hedgers[h, HEDGER_OPT_VOL], hp, rate, div)
                        held = state[STATE_OPT_POSITION, h, local]
                        wanted = held
                        if kind == KIND_DELTA_GAMMA and abs(o_gamma) > _TINY_GREEK:
                            wanted = -cached_gamma / o_gamma
                        elif kind == KIND_DELTA_VEGA and abs(o_vega) > _TINY_GREEK:
                            wanted = -book_greek(book, book_tau, s, log_spot, v, int(rule),
                                                 vol, hp, rate, div, k, True) / o_vega
                        if wanted != held:
                            trade_option(state, h, local, wanted - held, value, disc, k == 0)
                        target -= wanted * o_delta
                    elif kind == KIND_BAND and hedgers[h, HEDGER_P2] > 0.5:
                        width = hedgers[h, HEDGER_P1]
                deviation = target - state[STATE_ORDERED, h, local]
                qty = deviation
                if k > 0:  # the first hedge always goes to the target
                    qty = rebalance_quantity(kind, deviation, hedgers[h, HEDGER_P1], width, s,
                                             state[STATE_LAST_SPOT, h, local])
                if qty != 0.0:
                    order(state, h, local, qty, s, disc, k, int(hedgers[h, HEDGER_LAG]), impact)
                    state[STATE_LAST_SPOT, h, local] = s

            if funding:
                # Funding spreads accrue on the cash balance over [t_k, t_{k+1}] (first order
                # in the spread): PV of the balance times dt, seen from t_{k+1}.
                factor = (grid[k + 1, GRID_TIME] - grid[k, GRID_TIME]) * \
                    grid[k + 1, GRID_DISCOUNT] / disc
                for h in range(n_hedgers):
                    kind = int(hedgers[h, HEDGER_KIND])
                    insurer = kind == KIND_SYNTHETIC_PUT or kind == KIND_CPPI
                    # insurers' cash: capital - floor PV (the premium) + trades + floor PV
                    balance = state[STATE_FLOW, h, local] + (
                        hedgers[h, HEDGER_P3] if insurer else settled)
                    if balance < 0.0:
                        state[STATE_BORROWED, h, local] -= balance * factor
                    else:
                        state[STATE_LENT, h, local] += balance * factor

        for h in range(n_hedgers):
            kind = int(hedgers[h, HEDGER_KIND])
            insurer = kind == KIND_SYNTHETIC_PUT or kind == KIND_CPPI
            base = state[STATE_FLOW, h, local] + (0.0 if insurer else settled)
            strategy = int(hedgers[h, HEDGER_STRATEGY])
            group = hedgers[h, HEDGER_COST]
            by_cost = hedgers[h, HEDGER_BY_COST]
            for c in range(costs.shape[0]):
                if not serves(costs, c, by_cost, group):
                    continue
                spread, fee, impact_cost, fund = level_costs(state, h, local, costs, c)
                cost = spread + fee + impact_cost + fund
                out[OUT_PNL, strategy, c, local] = base - cost
                out[OUT_COST, strategy, c, local] = cost
                out[OUT_SPREAD, strategy, c, local] = spread
                out[OUT_FEE, strategy, c, local] = fee
                out[OUT_IMPACT, strategy, c, local] = impact_cost
                out[OUT_FUNDING, strategy, c, local] = fund
                out[OUT_TRADES, strategy, c, local] = state[STATE_TRADES, h, local]
                out[OUT_TURNOVER, strategy, c, local] = state[ACC_TURNOVER, h, local]
        out_spot[local] = s

    return run_path
