"""Black-Scholes-Merton closed forms (continuous dividend yield q): price, d1, delta, gamma and
vega, written once as jitable scalar functions. The kernels use them for hedge ratios and
premia (``_math``), the rules for their decisions (``gpuhedge.rules``) and
``gpuhedge.pricing`` through numba.vectorize.

References
----------
Black and Scholes (1973); Merton (1973).
"""

import math

from numba.extending import register_jitable

from ._fastmath import fdiv, fexp, flog, fsqrt, norm_cdf

_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@register_jitable
def norm_pdf(x):
    return _INV_SQRT2PI * fexp(-0.5 * x * x)


@register_jitable
def d1_from(log_moneyness, sqrt_tau, vol, rate, div):
    """d1 = (ln(S/K) + (r - q) tau) / (vol sqrt(tau)) + vol sqrt(tau) / 2; tau, vol > 0 (for
    tau = 0 or vol = 0, which callers select away, it divides by 1 instead: no overflow).
    It multiplies by 1 / (vol sqrt(tau)): in a loop over paths at one tau and vol the compiler
    hoists that division out of the loop (a division per path cost about a tenth of a delta's
    time on AVX-512)."""
    sd = vol * sqrt_tau
    # sd + 1 at sd = 0, not a select of 1: LLVM would turn 1 / select(c, sd, 1) into
    # select(c, 1 / sd, 1) and divide by zero (numpy's ufuncs warn of the flag it raises)
    inv_sd = fdiv(1.0, sd + (1.0 if sd <= 0.0 else 0.0))
    return (log_moneyness + (rate - div) * sqrt_tau * sqrt_tau) * inv_sd + 0.5 * sd


@register_jitable
def bs_d1(spot, strike, tau, vol, rate, div):
    return d1_from(flog(fdiv(spot, strike)), fsqrt(tau), vol, rate, div)


@register_jitable
def bs_price(spot, strike, tau, vol, rate, div, is_call):
    """Black-Scholes-Merton price of a European call (is_call=1) or put (is_call=0).

    C = S e^{-q tau} N(d1) - K e^{-r tau} N(d2), P = K e^{-r tau} N(-d2) - S e^{-q tau} N(-d1).
    At tau = 0 or vol = 0 the price is the discounted intrinsic value of the forward.
    """
    fwd = spot * fexp(-div * tau)
    pvk = strike * fexp(-rate * tau)
    if tau <= 0.0 or vol <= 0.0:
        # Deterministic world: the option is worth its discounted forward intrinsic value.
        return max(fwd - pvk, 0.0) if is_call else max(pvk - fwd, 0.0)
    d1 = bs_d1(spot, strike, tau, vol, rate, div)
    d2 = d1 - vol * fsqrt(tau)
    if is_call:
        return fwd * norm_cdf(d1) - pvk * norm_cdf(d2)
    return pvk * norm_cdf(-d2) - fwd * norm_cdf(-d1)


@register_jitable
def delta_from(log_moneyness, sqrt_tau, div_discount, vol, rate, div, is_call):
    """Delta from ln(S/K), sqrt(tau) and e^{-q tau}, which the kernel precomputes per step.

    Delta = e^{-q tau} N(d1) for a call, e^{-q tau} (N(d1) - 1) for a put. In the degenerate
    cases (tau = 0 or vol = 0) the limit is a step in the forward moneyness:
    e^{-q tau} 1{ln(S/K) + (r - q) tau > 0} (minus e^{-q tau} for puts). Both are computed
    and one selected (no branch: loops over paths vectorise).
    """
    regular = sqrt_tau > 0.0 and vol > 0.0
    itm = 1.0 if log_moneyness + (rate - div) * sqrt_tau * sqrt_tau > 0.0 else 0.0
    n1 = norm_cdf(d1_from(log_moneyness, sqrt_tau, vol, rate, div))
    n1 = n1 if regular else itm
    return div_discount * n1 if is_call else div_discount * (n1 - 1.0)


@register_jitable
def bs_delta(spot, strike, tau, vol, rate, div, is_call):
    """dV/dS of a European call (is_call=1) or put (is_call=0); see ``delta_from``."""
    return delta_from(flog(fdiv(spot, strike)), fsqrt(max(tau, 0.0)), fexp(-div * tau),
                      vol, rate, div, is_call)


@register_jitable
def gamma_from(spot, log_moneyness, sqrt_tau, div_discount, vol, rate, div):
    """Gamma e^{-q tau} n(d1) / (S vol sqrt(tau)) from precomputed ln(S/K), sqrt(tau) and
    e^{-q tau}; 0 at expiry or zero vol (selected, no branch)."""
    sd = vol * sqrt_tau
    gamma = fdiv(div_discount * norm_pdf(d1_from(log_moneyness, sqrt_tau, vol, rate, div)),
                 spot * (sd if sd > 0.0 else 1.0))
    return gamma if sqrt_tau > 0.0 and vol > 0.0 else 0.0


@register_jitable
def bs_gamma(spot, strike, tau, vol, rate, div):
    """d2V/dS2 = e^{-q tau} n(d1) / (S vol sqrt(tau)), the same for calls and puts."""
    tau = max(tau, 0.0)
    return gamma_from(spot, flog(fdiv(spot, strike)), fsqrt(tau), fexp(-div * tau), vol,
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
    return vega_from(spot, flog(fdiv(spot, strike)), fsqrt(tau), fexp(-div * tau), vol,
                     rate, div)
