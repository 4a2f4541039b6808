"""``WhalleyWilmott``: the asymptotically optimal no-trade band of Whalley and Wilmott (1997)."""

from dataclasses import dataclass, field

from ..kernels import _math
from ._base import Strategy


@dataclass(frozen=True, repr=False)
class WhalleyWilmott(Strategy):
    """Whalley and Wilmott's (1997) asymptotically optimal no-trade band around the delta.

    H = (3/2 e^{-r (T - t)} lambda S Gamma^2 / gamma)^{1/3} shares, with lambda the cost
    level's proportional cost, Gamma the book's Black-Scholes gamma at ``vol`` and gamma =
    ``risk_aversion`` (exponential utility, in 1/currency). Trades to the band's edge, checked
    at every grid point; one kernel row per proportional cost. Scaling: Gamma grows with the
    position size N, so H grows like N^{2/3} at a fixed risk aversion; keeping the relative band
    fixed needs a risk aversion proportional to 1/N. With no proportional cost H = 0: hedging at
    every grid point.

    ``initial="edge"`` (the default) starts as the theory does: from the ``initial_shares``
    held (default none), the first trade goes only to the nearest edge of the band at t=0
    (max(Delta - H, 0) shares from none for a target Delta > 0), as at every later date; the
    band is the optimal policy from any position, the start included, when the start pays
    the cost. ``"target"`` hedges to the full delta at t=0 and applies the band afterwards:
    the natural start when the set-up is free (``Costs(ends=False)``), where the best
    position to set up costs nothing to reach.

    Kernel decision: ``_math.band_quantity`` with the half-width ``_math.whalley_wilmott_band``
    (through ``_math.plain_width``).
    """

    vol: float = 0.2
    risk_aversion: float = 1.0
    hedge_vol: str = "constant"
    initial: str = field(default="edge", kw_only=True)
    initial_shares: float = field(default=0.0, kw_only=True)

    kind = _math.KIND_WHALLEY_WILMOTT
    needs_gamma = True
    cost_dependent = True

    def __post_init__(self):
        self._check_vol(required=True)
        self._check("risk_aversion", low=0.0, high=1e12, low_open=True)
        self._check_start(band=True)

    def row_params(self, book, costs, dt, short_gamma):
        return self.vol, costs.proportional, self.risk_aversion
