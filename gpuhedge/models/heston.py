"""Heston (1993) stochastic volatility, and Bates (1996): Heston plus Merton jumps."""

import math
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import _validation as check
from ..kernels import _math, layout
from ._base import COMMON, MERTON_JUMPS, Market
from .merton import Merton

HESTON = {"v0": dict(low=0.0, high=25.0), "kappa": dict(low=0.0, high=1000.0, low_open=True),
          "theta": dict(low=0.0, high=25.0), "xi": dict(low=0.0, high=100.0, low_open=True),
          "rho": dict(low=-1.0, high=1.0)}
SCHEMES = ("qe", "euler")


def _feller_warning(model):
    if 2.0 * model.kappa * model.theta < model.xi**2:
        warnings.warn(f"{type(model).__name__}: the Feller condition 2 kappa theta >= xi^2 fails "
                      f"({2 * model.kappa * model.theta:.4g} < {model.xi**2:.4g}); the variance "
                      f"can touch 0. The QE scheme handles it; Euler truncates at 0.",
                      FellerWarning, stacklevel=3)


class FellerWarning(UserWarning):
    """The variance process of a Heston-type model can reach zero (2 kappa theta < xi^2)."""


@dataclass(frozen=True)
class Heston(Market):
    """Heston (1993) stochastic volatility.

    dS/S = mu dt + sqrt(v) dW1, dv = kappa (theta - v) dt + xi sqrt(v) dW2, d<W1, W2> = rho dt.
    ``scheme="qe"`` (default): Andersen's (2008) quadratic-exponential variance step with the
    central discretisation of the integrated variance (gamma1 = gamma2 = 1/2) and his martingale
    correction, so E[S_{t+dt} | S_t] = S_t e^{mu dt} exactly; the variance never goes negative.
    ``scheme="euler"``: full-truncation Euler (Lord, Koekkoek and van Dijk 2010) on ln S.
    Warns once (``FellerWarning``) when 2 kappa theta < xi^2.
    """

    spot: float
    rate: float
    v0: float
    kappa: float
    theta: float
    xi: float
    rho: float
    dividend: float = 0.0
    drift: float | None = None
    scheme: str = "qe"

    _ranges: ClassVar[dict] = {**COMMON, **HESTON}
    dynamics: ClassVar[_math.Dynamics] = _math.Dynamics(_math.given_start, _math.heston_step)
    # declared here, they apply to the subclass Bates too
    hedge_rules: ClassVar[tuple] = (_math.RULE_INSTANTANEOUS, _math.RULE_EXPECTED_AVERAGE,
                                    _math.RULE_MIN_VARIANCE)

    def __post_init__(self):
        super().__post_init__()
        check.choice(type(self).__name__, "scheme", self.scheme, SCHEMES)
        _feller_warning(self)

    @property
    def reference_vol(self) -> float:
        """sqrt(v0), the instantaneous vol at t = 0."""
        return math.sqrt(self.v0)

    def initial_state(self):
        """(S_0, v0): the variance is the second state variable."""
        return self.spot, self.v0

    def hedge_params(self, horizon=0.0) -> np.ndarray:
        """(kappa, theta, xi, rho) of the variance-based hedge-vol rules."""
        return layout.HP_VARIANCE.stack(HP_KAPPA=self.kappa, HP_THETA=self.theta,
                                        HP_XI=self.xi, HP_RHO=self.rho)

    def kernel_params(self, dt: float) -> np.ndarray:
        """Step constants of ``_math.heston_step`` (Andersen 2008, section 3.2 and 4.2)."""
        k, th, xi, rho = self.kappa, self.theta, self.xi, self.rho
        e = math.exp(-k * dt)
        k0 = -rho * k * th * dt / xi
        k1 = 0.5 * dt * (k * rho / xi - 0.5) - rho / xi
        k2 = 0.5 * dt * (k * rho / xi - 0.5) + rho / xi
        k3 = 0.5 * dt * (1.0 - rho**2)
        return np.array([
            (self.mu - self.jump_compensator) * dt, k, th, xi, rho, dt,
            1.0 if self.scheme == "euler" else 0.0,
            e,                                           # 7: e^{-kappa dt}
            xi**2 * e * (1.0 - e) / k,                   # 8: s^2 = v * [8] + [9]
            th * xi**2 * (1.0 - e) ** 2 / (2.0 * k),     # 9
            k0, k1, k2, k3,                              # 10-13: K0, K1, K2, K3 = K4
        ])

    @staticmethod
    def pricer():
        """Lewis' (2001) integral of the characteristic function ("little Heston trap")."""
        from ..pricing import transform

        return transform.heston_values, "v"


@dataclass(frozen=True)
class Bates(Heston):
    """Bates (1996): Heston stochastic volatility plus Merton log-normal jumps in the price.

    The diffusion part is stepped as in ``Heston`` (QE or Euler), the jumps as in ``Merton``
    with the exact compensator lam (exp(mu_j + sigma_j^2/2) - 1) in the drift.
    """

    lam: float = 0.0
    mu_j: float = 0.0
    sigma_j: float = 0.0

    _ranges: ClassVar[dict] = {**COMMON, **HESTON, **MERTON_JUMPS}
    # mp[14] = lam dt, the mean number of jumps per step (``kernel_params``)
    dynamics: ClassVar[_math.Dynamics] = _math.Dynamics(_math.given_start, _math.bates_step,
                                                         jump_mean=14)

    jump_compensator = Merton.jump_compensator

    @property
    def reference_vol(self) -> float:
        """sqrt(v0 + lam E[ln(J)^2]): the instantaneous total quadratic variation at t = 0,
        diffusion plus jumps (as ``Merton.reference_vol``)."""
        return math.sqrt(self.v0 + self.lam * (self.mu_j**2 + self.sigma_j**2))

    def kernel_params(self, dt: float) -> np.ndarray:
        self._check_jump_step(dt)
        return np.concatenate([super().kernel_params(dt),
                               [self.lam * dt, self.mu_j, self.sigma_j]])
