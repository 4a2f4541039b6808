"""Black-Scholes market: geometric Brownian motion, stepped exactly."""

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import _math, layout
from ._base import COMMON, VOL, Market


@dataclass(frozen=True)
class BlackScholes(Market):
    """Geometric Brownian motion, simulated exactly on the grid.

    dS_t = mu S_t dt + vol S_t dW_t; steps S_{t+dt} = S_t exp((mu - vol^2/2) dt + vol sqrt(dt) Z).

    Parameters
    ----------
    spot : float
        S_0 > 0.
    vol : float
        Volatility vol >= 0 (annualised).
    rate : float
        Continuously compounded risk-free rate r (the hedger's cash account earns it).
    dividend : float
        Continuous dividend yield q; the hedger's shares receive it.
    drift : float or None
        Real-world drift mu; None means risk-neutral, mu = r - q.
    """

    spot: float
    vol: float
    rate: float
    dividend: float = 0.0
    drift: float | None = None

    _ranges: ClassVar[dict] = {**COMMON, "vol": VOL}
    dynamics: ClassVar[_math.Dynamics] = _math.Dynamics(_math.given_start, _math.gbm_step,
                                                         paired=True)
    hedge_rules: ClassVar[tuple] = (_math.RULE_MODEL,)

    @property
    def reference_vol(self) -> float:
        """Volatility at which a hedger without its own vol prices the book."""
        return self.vol

    def hedge_params(self, horizon=0.0) -> np.ndarray:
        """(vol, lam=0, 0, 0, 1 term): the model delta is the Black-Scholes delta."""
        return layout.HP_MODEL.stack(HP_VOL=self.vol, HP_LAM=0.0, HP_MU_J=0.0, HP_SIGMA_J=0.0,
                                     HP_TERMS=1.0)

    def kernel_params(self, dt: float) -> np.ndarray:
        """Parameters of ``_math.gbm_step`` for a step of length ``dt``."""
        return np.array([(self.mu - 0.5 * self.vol**2) * dt, self.vol * math.sqrt(dt)])

    @staticmethod
    def pricer():
        """Black-Scholes-Merton closed forms."""
        from ..pricing import black_scholes

        return black_scholes.values, "vol"
