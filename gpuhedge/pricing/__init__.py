"""Closed-form and transform prices: hedge inputs and test references.

``price`` and ``greeks`` dispatch on the market model (its ``pricer``):

* ``BlackScholes``: Black-Scholes-Merton closed forms (``black_scholes``);
* ``Merton``: Merton's (1976) series of Black-Scholes prices (``merton``);
* ``Kou``, ``Heston``, ``Bates``: Lewis' (2001) characteristic-function integral
  (``transform``; Heston and Bates in the "little Heston trap" form).
"""

import numpy as np

from ..instruments import Book, EuropeanCall, Position
from ..models import Market, priced_models
from .black_scholes import bs_delta, bs_gamma, bs_price, bs_vega
from .merton import merton_delta, merton_price

__all__ = ["bs_delta", "bs_gamma", "bs_price", "bs_vega", "greeks", "merton_delta",
           "merton_price", "price"]

def price(market, option, spot=None, t=0.0, vol=None, v=None):
    """Price of a European ``option`` at time ``t`` under ``market``.

    Parameters
    ----------
    market : BlackScholes, Merton, Kou, Heston or Bates
        The model; its real-world ``drift`` plays no part in the price.
    option : EuropeanCall, EuropeanPut, Position or Book
        A position is its quantity times its option's value; a book the sum of its positions
        (netted).
    spot : float or ndarray, optional
        Spot at time ``t`` (default: the market's S_0); arrays broadcast.
    t : float
        Valuation time; the option has ``option.maturity - t`` left (none left: its payoff).
    vol : float, optional
        Overrides the (diffusion) vol of BlackScholes, Merton and Kou markets.
    v : float, optional
        Current variance of Heston and Bates markets (default: their v0).

    Returns
    -------
    float or ndarray
    """
    return _values("price", market, option, spot, t, vol, v, greeks=False)["price"]


def greeks(market, option, spot=None, t=0.0, vol=None, v=None):
    """Dict of the price and Greeks of ``option`` (arguments as in ``price``; a position or a
    book gives the quantity-weighted sums).

    Every model gives ``price`` and ``delta`` (dPrice/dS); BlackScholes adds ``gamma`` and
    ``vega``; Heston and Bates add ``dv`` (dPrice/dv, the current variance), from which the
    Heston minimum-variance delta is ``delta + rho * xi / spot * dv``.
    """
    return _values("greeks", market, option, spot, t, vol, v, greeks=True)


def _values(verb, market, option, spot, t, vol, v, greeks):
    if isinstance(option, (Book, Position)):
        positions = option.positions if isinstance(option, Book) else (option,)
        total = {}
        for p in positions:
            for key, value in _values(verb, market, p.option, spot, t, vol, v, greeks).items():
                total[key] = total.get(key, 0.0) + p.quantity * value
        return total
    if not isinstance(option, EuropeanCall):  # EuropeanPut is a subclass
        raise ValueError(f"{verb}: 'option' must be an EuropeanCall, EuropeanPut, Position or "
                         f"Book; got {type(option).__name__}")
    # (values function, name of the state argument it takes: a vol or a variance)
    pricer = market.pricer() if isinstance(market, Market) else None
    if pricer is None:
        raise ValueError(f"{verb}: 'market' must be one of "
                         f"{', '.join(m.__name__ for m in priced_models())}; "
                         f"got {type(market).__name__}")
    values, state = pricer
    given = {"vol": vol, "v": v}
    for name, value in given.items():
        if name != state and value is not None:
            raise ValueError(f"{verb}: '{name}' must be None for a {type(market).__name__} "
                             f"market (it takes '{state}'); got {value!r}")
    s = market.spot if spot is None else np.asarray(spot, dtype=float)
    return values(market, option, s, option.maturity - t, greeks, given[state])
