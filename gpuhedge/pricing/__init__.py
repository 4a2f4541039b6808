"""Closed-form and transform prices: hedge inputs and test references."""

from .black_scholes import bs_delta, bs_gamma, bs_price, bs_vega, greeks, price

__all__ = ["bs_delta", "bs_gamma", "bs_price", "bs_vega", "greeks", "price"]
