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
            check.fail("Position", "option", "a EuropeanCall or a EuropeanPut", self.option)
        given = self.quantity
        try:
            quantity = check.real("Position", "quantity", given)
        except ValueError:
            quantity = 0.0  # refused below with the full allowed range
        if quantity == 0.0:
            check.fail("Position", "quantity", "a non-zero finite number", given)
        object.__setattr__(self, "quantity", quantity)


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
        given = self.positions
        allowed = "a Position or a non-empty list of Positions"
        if isinstance(given, Position):
            positions = (given,)
        elif isinstance(given, (str, bytes, dict)):
            check.fail("Book", "positions", allowed, given)
        else:
            try:
                positions = tuple(given)
            except TypeError:  # not iterable
                check.fail("Book", "positions", allowed, given)
        if not positions:
            check.fail("Book", "positions", allowed, given)
        for i, p in enumerate(positions):
            if not isinstance(p, Position):
                check.fail("Book", f"positions[{i}]", "a Position", p)
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
