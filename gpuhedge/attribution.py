"""Daily P&L attribution of one hedged call along a price path: gamma, theta, vega, the delta a
rule leaves unhedged, carry, costs and the higher-order rest, adding up to ``gh.hedge_paths``'
P&L exactly (tests/test_experiments_models.py, E10 and E12 check it window by window).

The rule's trades are replayed here, independently of the kernels, for the rules a back-test
of one call uses: ``NoHedge``, ``DeltaHedge``, ``DeltaBand(to="target")`` and
``WhalleyWilmott``, mirroring ``kernels/_math.run_path`` (from no shares: the first hedge at
t = 0 to the target, or for a band rule that starts at its edge to the nearest edge; unwind at
the horizon; proportional costs on both).
"""

import math

import numpy as np

from .pricing import bs_delta, bs_gamma, bs_price, bs_vega
from .rules import DeltaBand, DeltaHedge, NoHedge, WhalleyWilmott

BUCKETS = ("gamma", "theta", "vega", "delta residual", "carry", "costs", "higher order")


def _rule_trade(strategy, k, dev, spot, gamma, tau, rate, proportional, notional):
    """Shares the rule trades at grid point k, given the distance ``dev`` from the target."""
    if isinstance(strategy, NoHedge):
        return 0.0
    if k == 0 and not strategy.starts_at_edge:
        return dev
    if isinstance(strategy, DeltaHedge):
        return dev if k % strategy.every == 0 else 0.0
    if isinstance(strategy, DeltaBand):
        return dev if abs(dev) > strategy.band * notional else 0.0
    width = (1.5 * math.exp(-rate * tau) * proportional * spot * gamma**2
             / strategy.risk_aversion) ** (1.0 / 3.0)
    return 0.0 if abs(dev) <= width else dev - math.copysign(width, dev)


def daily_attribution(prices, times, strike, quantity, strategy, proportional=0.0, rate=0.0,
                      marks=None):
    """The rule's trades on one path and the day-by-day split of a call book's P&L.

    Parameters
    ----------
    prices, times : arrays of shape (n + 1,)
        Closes S_0 .. S_n at times t_0 = 0 < ... < t_n, the call's maturity (years).
    strike, quantity : float
        The European call's strike and the number held (negative: written).
    strategy : NoHedge, DeltaHedge, DeltaBand (to="target") or WhalleyWilmott
        The rule, hedging at its Black-Scholes ``vol`` (no dividend).
    proportional, rate : float
        Proportional cost per traded notional; the continuously compounded cash rate.
    marks : array of shape (n,), optional
        The vol sigma_k at which the book is marked at close k (default: the rule's vol every
        day). ``marks[0]`` must be the rule's vol: the book is bought at its value at that vol.

    Returns
    -------
    buckets : dict of arrays of shape (n,)
        Day k runs from close k to close k + 1; h_k are the shares held over it (after the
        trade at close k), V_k = V(S_k, t_k; sigma_k) the book's Black-Scholes value and
        Delta_k, Gamma_k, Vega_k its Greeks at the mark (V_n the payoff), D_k = e^{-r t_k}. In
        present value at t_0 the day's P&L is D_k (V_{k+1} - V_k + h_k dS) + (D_{k+1} - D_k)
        (V_{k+1} + h_k S_{k+1}) - costs, split into ``gamma`` D_k Gamma_k dS^2 / 2, ``theta``
        D_k Theta_k dt (Theta from the Black-Scholes equation at sigma_k), ``vega`` D_k Vega_k
        (sigma_{k+1} - sigma_k) (0 on the last day, whose end is the payoff), ``delta
        residual`` D_k (Delta_k + h_k) dS (0 where the rule has just traded to a target
        computed at the mark), ``carry`` (the second term: interest on the cash that finances
        the position), ``costs``, and ``higher order``, the rest D_k (V_{k+1} - V_k - Delta_k dS
        - Gamma_k dS^2 / 2 - Theta_k dt - vega part). They sum to the P&L exactly.
    trades : int
        Trades of the rule, the unwind at t_n included.
    """
    owner = "daily_attribution"
    if type(strategy) not in (NoHedge, DeltaHedge, DeltaBand, WhalleyWilmott) or (
            isinstance(strategy, DeltaBand) and strategy.to != "target") \
            or strategy.vol is None or strategy.initial_shares != 0.0:
        raise ValueError(f"{owner}: 'strategy' must be a NoHedge, DeltaHedge, "
                         f"DeltaBand(to='target') or WhalleyWilmott with a vol and no shares "
                         f"held at t=0; got {strategy!r}")
    prices, times = np.asarray(prices, float), np.asarray(times, float)
    n, hedge_vol = len(prices) - 1, strategy.vol
    marks = np.full(n, hedge_vol) if marks is None else np.asarray(marks, float)
    if marks.shape != (n,) or not math.isclose(marks[0], hedge_vol, rel_tol=1e-12):
        raise ValueError(f"{owner}: 'marks' must have shape ({n},) and start at the rule's vol "
                         f"{hedge_vol}; got shape {marks.shape} starting at {marks[:1]}")
    q, mat = float(quantity), times[-1]
    s, tau, disc = prices[:-1], mat - times[:-1], np.exp(-rate * times)
    delta = q * bs_delta(s, strike, tau, marks, rate, 0.0, True)
    gamma = q * bs_gamma(s, strike, tau, marks, rate, 0.0)
    vega = q * bs_vega(s, strike, tau, marks, rate, 0.0)
    value = np.append(q * bs_price(s, strike, tau, marks, rate, 0.0, True),
                      q * max(prices[-1] - strike, 0.0))
    theta = rate * value[:-1] - rate * s * delta - 0.5 * marks**2 * s * s * gamma
    # the rule trades on its own vol; at a constant mark these are the mark's Greeks
    same = bool(np.all(marks == hedge_vol))
    hedge_delta = delta if same else q * bs_delta(s, strike, tau, hedge_vol, rate, 0.0, True)
    hedge_gamma = gamma if same else q * bs_gamma(s, strike, tau, hedge_vol, rate, 0.0)
    held, h, costs, trades = 0.0, np.zeros(n), np.zeros(n), 0
    at_target = np.zeros(n, dtype=bool)
    for k in range(n):
        dev = -hedge_delta[k] - held
        qty = _rule_trade(strategy, k, dev, s[k], hedge_gamma[k], tau[k], rate, proportional,
                          abs(q))
        if qty != 0.0:
            held += qty
            at_target[k] = same and qty == dev
            costs[k] += proportional * abs(qty) * s[k] * disc[k]
            trades += 1
        h[k] = held
    if held != 0.0:  # unwind at the last close, charged to the last day
        costs[-1] += proportional * abs(held) * prices[-1] * disc[-1]
        trades += 1
    ds, dt = np.diff(prices), np.diff(times)
    dsigma = np.append(np.diff(marks), 0.0)
    vega_part = disc[:-1] * vega * dsigma
    out = {"gamma": disc[:-1] * 0.5 * gamma * ds * ds, "theta": disc[:-1] * theta * dt,
           "vega": vega_part,
           # 0 where the rule has just traded to its target (not a rounding error)
           "delta residual": np.where(at_target, 0.0, disc[:-1] * (delta + h) * ds),
           "carry": (disc[1:] - disc[:-1]) * (value[1:] + h * prices[1:]), "costs": -costs,
           "higher order": disc[:-1] * (np.diff(value) - delta * ds - 0.5 * gamma * ds * ds
                                        - theta * dt) - vega_part}
    return out, trades
