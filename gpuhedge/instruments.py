"""Options, positions and books. A book nets several European options on one underlying into
one hedge; the simulation horizon is its latest maturity."""

from dataclasses import dataclass

import numpy as np

from . import _validation as check


@dataclass(frozen=True)
class EuropeanCall:
    """European call paying max(S_T - K, 0) at ``maturity`` (in years, > 0)."""

    strike: float
    maturity: float

    is_call = True

    def __post_init__(self):
        name = type(self).__name__
        object.__setattr__(self, "strike", check.positive(name, "strike", self.strike))
        object.__setattr__(self, "maturity",
                           check.real(name, "maturity", self.maturity, 0.0, 100.0, low_open=True))

    def payoff(self, spot):
        """Payoff at maturity for an array of terminal spots."""
        spot = np.asarray(spot, dtype=float)
        return np.maximum(spot - self.strike, 0.0) if self.is_call else np.maximum(
            self.strike - spot, 0.0)


@dataclass(frozen=True)
class EuropeanPut(EuropeanCall):
    """European put paying max(K - S_T, 0) at ``maturity`` (in years, > 0)."""

    is_call = False


@dataclass(frozen=True)
class Position:
    """``quantity`` units of ``option``: positive = long (bought), negative = short (written)."""

    option: EuropeanCall
    quantity: float

    def __post_init__(self):
        if not isinstance(self.option, EuropeanCall):
            raise ValueError(f"Position: 'option' must be an EuropeanCall or EuropeanPut; "
                             f"got {self.option!r}")
        object.__setattr__(self, "quantity",
                           check.real("Position", "quantity", self.quantity))
        if self.quantity == 0.0:
            raise ValueError("Position: 'quantity' must be a non-zero finite number; got 0.0")


@dataclass(frozen=True)
class Book:
    """A netted book of option positions on one underlying, hedged as one.

    Examples
    --------
    >>> Book([Position(EuropeanCall(100.0, 1.0), -10.0), Position(EuropeanPut(90.0, 0.5), 5.0)])
    >>> Book.short(EuropeanCall(100.0, 1.0), 10_000)
    """

    positions: tuple

    def __post_init__(self):
        positions = tuple(self.positions) if not isinstance(self.positions, Position) else (
            self.positions,)
        if not positions:
            raise ValueError("Book: 'positions' must hold at least one Position; got []")
        for p in positions:
            if not isinstance(p, Position):
                raise ValueError(f"Book: 'positions' must hold Position objects; got {p!r}")
        object.__setattr__(self, "positions", positions)

    @classmethod
    def short(cls, option, quantity=1.0):
        """A book that has written ``quantity`` > 0 units of ``option``."""
        q = check.positive("Book.short", "quantity", quantity)
        return cls([Position(option, -q)])

    @classmethod
    def long(cls, option, quantity=1.0):
        """A book that has bought ``quantity`` > 0 units of ``option``."""
        q = check.positive("Book.long", "quantity", quantity)
        return cls([Position(option, q)])

    @property
    def horizon(self) -> float:
        """Latest maturity of the book: the end of the simulation."""
        return max(p.option.maturity for p in self.positions)
