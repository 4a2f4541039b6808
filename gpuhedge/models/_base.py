"""The base of the market models: validation from a table of ranges, and the traits that a
model declares beside its parameters (read by the engine, the pricing and the hedge rules)."""

from typing import ClassVar

import numpy as np

from .. import _validation as check
from ..kernels import _math

RATE = dict(low=-1.0, high=1.0)
COMMON = {"spot": dict(low=0.0, low_open=True), "rate": RATE, "dividend": RATE,
          "drift": dict(low=-5.0, high=5.0, none_ok=True)}
VOL = dict(low=0.0, high=10.0)
MERTON_JUMPS = {"lam": dict(low=0.0, high=1000.0), "mu_j": dict(low=-5.0, high=5.0),
                "sigma_j": dict(low=0.0, high=5.0)}


class Market:
    """Base of the market models.

    A model is a frozen dataclass of its named parameters, validated from ``_ranges`` (field
    -> ``_validation.real`` keywords), that declares:

    * ``dynamics``: its kernel start and step functions and their traits (jumps, paired
      normals), a ``_math.Dynamics``; ``kernel_params(dt)`` gives the step's ``mp`` array;
    * ``initial_state()``: (S_0, second state variable), the variance for stochastic-vol
      models;
    * ``hedge_rules``: the hedge-vol rules (``_math.RULE_*``) beyond the constant vol that
      apply to it (and to its subclasses); ``hedge_params(horizon)`` their constants;
    * ``pricer()``: (values function, name of its state argument) for
      ``gpuhedge.pricing.price``, or None: then it simulates with ``premium="hedge"`` only.
    """

    _ranges: ClassVar[dict] = {}
    dynamics: ClassVar[_math.Dynamics]
    hedge_rules: ClassVar[tuple] = ()

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

    @staticmethod
    def pricer():
        """(values function, state argument name) of ``gpuhedge.pricing``; None: no pricer."""
        return None

    def _check_jump_step(self, dt):
        """The per-step Poisson draw is capped (``_math.MAX_JUMPS``): keep lam dt small."""
        if self.lam * dt > _math.MAX_JUMP_MEAN:
            raise ValueError(f"{type(self).__name__}: 'lam' * dt must be <= "
                             f"{_math.MAX_JUMP_MEAN:g} (use more steps); got lam = {self.lam!r} "
                             f"with dt = {dt:.6g}")
