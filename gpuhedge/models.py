"""Market models: frozen, validated dataclasses that the engine flattens into kernel parameters.

Each model belongs to a *family*; the family picks the compiled kernel (one per family, dtype
and target), so the choice of model is made once in Python and never branched on per step.
Parameter names follow the papers: ``lam, mu_j, sigma_j`` (Merton 1976), ``lam, p, eta1, eta2``
(Kou 2002), ``v0, kappa, theta, xi, rho`` (Heston 1993), Bates (1996) = Heston + Merton jumps.

``drift`` is the real-world drift of the price (E[S_t] = S_0 e^{drift t}, dividends paid
out); None means risk-neutral, drift = rate - dividend. Jump compensators are exact, so the
discounted price plus dividends is a martingale under the pricing measure whatever the grid.
"""

import math
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from . import _validation as check
from .kernels import _math

_RATE = dict(low=-1.0, high=1.0)
_COMMON = {"spot": dict(low=0.0, low_open=True), "rate": _RATE, "dividend": _RATE,
           "drift": dict(low=-5.0, high=5.0, none_ok=True)}
_VOL = dict(low=0.0, high=10.0)
_MERTON_JUMPS = {"lam": dict(low=0.0, high=1000.0), "mu_j": dict(low=-5.0, high=5.0),
                 "sigma_j": dict(low=0.0, high=5.0)}
_HESTON = {"v0": dict(low=0.0, high=25.0), "kappa": dict(low=0.0, high=1000.0, low_open=True),
           "theta": dict(low=0.0, high=25.0), "xi": dict(low=0.0, high=100.0, low_open=True),
           "rho": dict(low=-1.0, high=1.0)}
SCHEMES = ("qe", "euler")


class Market:
    """Base of the market models: validation from the ``_ranges`` table and the kernel hooks."""

    _ranges: ClassVar[dict] = {}
    family: ClassVar[int]

    def __post_init__(self):
        name = type(self).__name__
        for field, allowed in self._ranges.items():
            object.__setattr__(self, field, check.real(name, field, getattr(self, field),
                                                       **allowed))

    @property
    def mu(self) -> float:
        """Drift of the spot used in the simulation (real-world if given, else r - q)."""
        return self.rate - self.dividend if self.drift is None else self.drift

    @property
    def jump_compensator(self) -> float:
        """lam * E[J - 1], the drift that the jumps add to the price (0 without jumps)."""
        return 0.0

    def initial_state(self):
        """(S_0, second state variable) at t = 0."""
        return self.spot, 0.0

    def hedge_params(self, horizon=0.0) -> np.ndarray:
        """Constants of the hedge-vol rules (``_math.HP_*``) for a book of this ``horizon``:
        zeros where the market has no rule beyond the constant vol."""
        return np.zeros(5)

    def _check_jump_step(self, dt):
        """The per-step Poisson draw is capped (``_math.MAX_JUMPS``): keep lam dt small."""
        if self.lam * dt > _math.MAX_JUMP_MEAN:
            raise ValueError(f"{type(self).__name__}: 'lam' * dt must be <= "
                             f"{_math.MAX_JUMP_MEAN:g} (use more steps); got lam = {self.lam!r} "
                             f"with dt = {dt:.6g}")


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

    family: ClassVar[int] = _math.FAMILY_GBM
    _ranges: ClassVar[dict] = {**_COMMON, "vol": _VOL}

    @property
    def reference_vol(self) -> float:
        """Volatility at which a hedger without its own vol prices the book."""
        return self.vol

    def hedge_params(self, horizon=0.0) -> np.ndarray:
        """(vol, lam=0, 0, 0, 1 term): the model delta is the Black-Scholes delta."""
        return np.array([self.vol, 0.0, 0.0, 0.0, 1.0])

    def kernel_params(self, dt: float) -> np.ndarray:
        """Parameters of ``_math.gbm_step`` for a step of length ``dt``."""
        return np.array([(self.mu - 0.5 * self.vol**2) * dt, self.vol * math.sqrt(dt)])


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

    family: ClassVar[int] = _math.FAMILY_MERTON
    _ranges: ClassVar[dict] = {**_COMMON, "vol": _VOL, **_MERTON_JUMPS}

    @property
    def jump_compensator(self) -> float:
        return self.lam * math.expm1(self.mu_j + 0.5 * self.sigma_j**2)

    @property
    def reference_vol(self) -> float:
        """sqrt(vol^2 + lam E[ln(J)^2]): the total quadratic variation per unit time."""
        return math.sqrt(self.vol**2 + self.lam * (self.mu_j**2 + self.sigma_j**2))

    def hedge_params(self, horizon=0.0) -> np.ndarray:
        """(vol, lam, mu_j, sigma_j, n_terms) of the series delta, enough terms for ``horizon``."""
        from .pricing.merton import n_terms

        return np.array([self.vol, self.lam, self.mu_j, self.sigma_j,
                         n_terms(self.lam, self.mu_j, self.sigma_j, horizon)])

    def kernel_params(self, dt: float) -> np.ndarray:
        self._check_jump_step(dt)
        return np.array([(self.mu - self.jump_compensator - 0.5 * self.vol**2) * dt,
                         self.vol * math.sqrt(dt), self.lam * dt, self.mu_j, self.sigma_j])


@dataclass(frozen=True)
class Kou(Market):
    """Kou (2002) double-exponential jump diffusion.

    ln(J) is Exp(eta1) (upwards) with probability ``p`` and -Exp(eta2) otherwise;
    k = E[J - 1] = p eta1 / (eta1 - 1) + (1 - p) eta2 / (eta2 + 1) - 1, finite only for
    eta1 > 1. Each jump on a step costs one Philox block (direction and size).
    """

    spot: float
    vol: float
    rate: float
    lam: float
    p: float
    eta1: float
    eta2: float
    dividend: float = 0.0
    drift: float | None = None

    family: ClassVar[int] = _math.FAMILY_KOU
    _ranges: ClassVar[dict] = {
        **_COMMON, "vol": _VOL, "lam": _MERTON_JUMPS["lam"], "p": dict(low=0.0, high=1.0),
        # eta1 > 1: E[J] = E[e^Y] is finite only then (the up-jump tail is e^{-eta1 y}).
        "eta1": dict(low=1.0, high=1e4, low_open=True),
        "eta2": dict(low=0.0, high=1e4, low_open=True)}

    @property
    def jump_compensator(self) -> float:
        return self.lam * (self.p * self.eta1 / (self.eta1 - 1.0)
                           + (1.0 - self.p) * self.eta2 / (self.eta2 + 1.0) - 1.0)

    @property
    def reference_vol(self) -> float:
        """sqrt(vol^2 + lam E[ln(J)^2]), E[Y^2] = 2 p / eta1^2 + 2 (1 - p) / eta2^2."""
        second = 2.0 * self.p / self.eta1**2 + 2.0 * (1.0 - self.p) / self.eta2**2
        return math.sqrt(self.vol**2 + self.lam * second)

    def kernel_params(self, dt: float) -> np.ndarray:
        self._check_jump_step(dt)
        return np.array([(self.mu - self.jump_compensator - 0.5 * self.vol**2) * dt,
                         self.vol * math.sqrt(dt), self.lam * dt, self.p, self.eta1, self.eta2])


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

    family: ClassVar[int] = _math.FAMILY_HESTON
    _ranges: ClassVar[dict] = {**_COMMON, **_HESTON}

    def __post_init__(self):
        super().__post_init__()
        check.choice(type(self).__name__, "scheme", self.scheme, SCHEMES)
        _feller_warning(self)

    @property
    def reference_vol(self) -> float:
        """sqrt(v0), the instantaneous vol at t = 0."""
        return math.sqrt(self.v0)

    def initial_state(self):
        return self.spot, self.v0

    def hedge_params(self, horizon=0.0) -> np.ndarray:
        return np.array([self.kappa, self.theta, self.xi, self.rho, 0.0])

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


@dataclass(frozen=True)
class Bates(Heston):
    """Bates (1996): Heston stochastic volatility plus Merton log-normal jumps in the price.

    The diffusion part is stepped as in ``Heston`` (QE or Euler), the jumps as in ``Merton``
    with the exact compensator lam (exp(mu_j + sigma_j^2/2) - 1) in the drift.
    """

    lam: float = 0.0
    mu_j: float = 0.0
    sigma_j: float = 0.0

    family: ClassVar[int] = _math.FAMILY_BATES
    _ranges: ClassVar[dict] = {**_COMMON, **_HESTON, **_MERTON_JUMPS}

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


MODELS = (BlackScholes, Merton, Kou, Heston, Bates)
