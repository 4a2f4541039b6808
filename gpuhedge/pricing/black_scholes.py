"""Black-Scholes-Merton prices and Greeks as NumPy ufuncs.

The formulas are the kernels' own (``gpuhedge.kernels._math``), compiled here with
``numba.vectorize`` (at first use) so that Python users, tests and the engine use one
definition.
"""

from ..kernels import black_scholes
from ..kernels._cache import LazyUfunc

_SIG7 = ["float64(float64, float64, float64, float64, float64, float64, boolean)"]
_SIG6 = ["float64(float64, float64, float64, float64, float64, float64)"]

bs_price = LazyUfunc(black_scholes.bs_price, _SIG7, """bs_price(spot, strike, tau, vol, rate, div,
is_call): Black-Scholes-Merton price.

C = S e^{-q tau} N(d1) - K e^{-r tau} N(d2); P = K e^{-r tau} N(-d2) - S e^{-q tau} N(-d1),
d1 = (ln(S/K) + (r - q + vol^2/2) tau) / (vol sqrt(tau)), d2 = d1 - vol sqrt(tau).
Broadcasts over arrays.""")
bs_delta = LazyUfunc(black_scholes.bs_delta, _SIG7,
                     "bs_delta(spot, strike, tau, vol, rate, div, is_call): dV/dS.")
bs_gamma = LazyUfunc(black_scholes.bs_gamma, _SIG6,
                     "bs_gamma(spot, strike, tau, vol, rate, div): d2V/dS2 (calls and puts).")
bs_vega = LazyUfunc(black_scholes.bs_vega, _SIG6,
                    "bs_vega(spot, strike, tau, vol, rate, div): dV/dvol (calls and puts).")


def values(market, option, spot, tau, greeks, vol=None):
    """Price (and delta, gamma, vega if ``greeks``) of ``option`` under a ``BlackScholes``
    market, ``tau`` before expiry; ``vol`` overrides the market's vol (arrays broadcast)."""
    vol = market.vol if vol is None else vol
    args = (spot, option.strike, tau, vol, market.rate, market.dividend)
    out = {"price": bs_price(*args, option.is_call)}
    if greeks:
        out.update(delta=bs_delta(*args, option.is_call), gamma=bs_gamma(*args),
                   vega=bs_vega(*args))
    return out
