"""Kou (2002) double-exponential jump diffusion, stepped exactly."""

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..kernels import _math
from ._base import COMMON, MERTON_JUMPS, VOL, Market


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

    _ranges: ClassVar[dict] = {
        **COMMON, "vol": VOL, "lam": MERTON_JUMPS["lam"], "p": dict(low=0.0, high=1.0),
        # eta1 > 1: E[J] = E[e^Y] is finite only then (the up-jump tail is e^{-eta1 y}).
        "eta1": dict(low=1.0, high=1e4, low_open=True),
        "eta2": dict(low=0.0, high=1e4, low_open=True)}
    # mp[2] = lam dt, the mean number of jumps per step (``kernel_params``). The lane loop
    # calls the step itself, not an inlined copy: its per-lane loop over the jumps (a trip
    # count that differs between lanes) keeps that loop from vectorising either way, and
    # inlining it is a change of the compiled code to be measured on its own.
    # its loop over the jumps of a step does not vectorise: the lane loops call it
    dynamics: ClassVar[_math.Dynamics] = _math.Dynamics(
        _math.given_start, _math.kou_step, jump_mean=2, vectorises=False)

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

    @staticmethod
    def pricer():
        """Lewis' (2001) characteristic-function integral."""
        from ..pricing import transform

        return transform.kou_values, "vol"
