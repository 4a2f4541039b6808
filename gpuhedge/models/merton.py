"""Merton (1976) jump diffusion: GBM plus compound-Poisson log-normal jumps, stepped exactly."""

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import _math, layout
from ._base import COMMON, MERTON_JUMPS, VOL, Market


@dataclass(frozen=True)
class Merton(Market):
    """Merton (1976) jump diffusion: GBM plus compound-Poisson log-normal jumps.

    d ln S = (mu - lam k - vol^2/2) dt + vol dW + dJ, jumps at rate ``lam`` with
    ln(J) ~ N(mu_j, sigma_j^2) and k = E[J - 1] = exp(mu_j + sigma_j^2/2) - 1. On each step the
    number of jumps is Poisson(lam dt) (inversion of one uniform) and their summed log size is
    exactly N mu_j + sigma_j sqrt(N) Z, so the step is exact in distribution.
    """

    spot: float
    vol: float
    rate: float
    lam: float
    mu_j: float
    sigma_j: float
    dividend: float = 0.0
    drift: float | None = None

    _ranges: ClassVar[dict] = {**COMMON, "vol": VOL, **MERTON_JUMPS}
    # mp[2] = lam dt, the mean number of jumps per step (``kernel_params``)
    dynamics: ClassVar[_math.Dynamics] = _math.Dynamics(_math.given_start, _math.merton_step,
                                                         jump_mean=2)
    hedge_rules: ClassVar[tuple] = (_math.RULE_MODEL,)

    @property
    def jump_compensator(self) -> float:
        return self.lam * math.expm1(self.mu_j + 0.5 * self.sigma_j**2)

    @property
    def reference_vol(self) -> float:
        """sqrt(vol^2 + lam E[ln(J)^2]): the total quadratic variation per unit time."""
        return math.sqrt(self.vol**2 + self.lam * (self.mu_j**2 + self.sigma_j**2))

    def hedge_params(self, horizon=0.0) -> np.ndarray:
        """(vol, lam, mu_j, sigma_j, n_terms) of the series delta, enough terms for ``horizon``."""
        from ..pricing.merton import n_terms

        return layout.HP_MODEL.stack(
            HP_VOL=self.vol, HP_LAM=self.lam, HP_MU_J=self.mu_j, HP_SIGMA_J=self.sigma_j,
            HP_TERMS=n_terms(self.lam, self.mu_j, self.sigma_j, horizon))

    def kernel_params(self, dt: float) -> np.ndarray:
        self._check_jump_step(dt)
        return np.array([(self.mu - self.jump_compensator - 0.5 * self.vol**2) * dt,
                         self.vol * math.sqrt(dt), self.lam * dt, self.mu_j, self.sigma_j])

    @staticmethod
    def pricer():
        """Merton's (1976) series of Black-Scholes prices."""
        from ..pricing import merton

        return merton.values, "vol"
