"""Market models: frozen, validated dataclasses that the engine flattens into kernel parameters.

Each model belongs to a *family*; the family picks the compiled kernel (one per family, dtype
and target), so the choice of model is made once in Python and never branched on per step.
"""

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from . import _validation as check
from .kernels import _math


@dataclass(frozen=True)
class BlackScholes:
    """Geometric Brownian motion, simulated exactly on the grid.

    dS_t = mu S_t dt + vol S_t dW_t, with mu = ``drift`` (the real-world drift of the price,
    dividends excluded) or ``rate - dividend`` when ``drift`` is None (risk-neutral). Steps are
    exact: S_{t+dt} = S_t exp((mu - vol^2/2) dt + vol sqrt(dt) Z).

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

    family: ClassVar[int] = _math.FAMILY_GBM

    def __post_init__(self):
        name = type(self).__name__
        object.__setattr__(self, "spot", check.positive(name, "spot", self.spot))
        object.__setattr__(self, "vol", check.real(name, "vol", self.vol, 0.0, 10.0))
        object.__setattr__(self, "rate", check.real(name, "rate", self.rate, -1.0, 1.0))
        object.__setattr__(self, "dividend",
                           check.real(name, "dividend", self.dividend, -1.0, 1.0))
        object.__setattr__(self, "drift", check.real(name, "drift", self.drift, -5.0, 5.0,
                                                     none_ok=True))

    @property
    def mu(self) -> float:
        """Drift of the spot used in the simulation (real-world if given, else r - q)."""
        return self.rate - self.dividend if self.drift is None else self.drift

    @property
    def reference_vol(self) -> float:
        """Volatility at which a hedger without its own vol prices the book."""
        return self.vol

    def initial_state(self):
        """(S_0, second state variable) at t = 0."""
        return self.spot, 0.0

    def kernel_params(self, dt: float) -> np.ndarray:
        """Parameters of ``_math.gbm_step`` for a step of length ``dt``."""
        return np.array([(self.mu - 0.5 * self.vol**2) * dt, self.vol * math.sqrt(dt)])
