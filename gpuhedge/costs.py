"""Transaction costs, charged on share trades."""

from dataclasses import dataclass

from . import _validation as check


@dataclass(frozen=True)
class Costs:
    """Cost of a trade of q shares at price S: ``proportional * |q| * S + fixed``.

    Parameters
    ----------
    proportional : float
        Fraction of traded notional paid (half the bid-ask spread plus fees), in [0, 1).
    fixed : float
        Fee per trade (per rebalance that trades), in currency, >= 0.
    ends : bool
        Whether the initial hedge at t=0 and the final unwind at the horizon pay costs too
        (default). False charges only the rebalancing in between, as in Leland's (1985) and
        Whalley and Wilmott's analyses, where the hedge is set up and delivered for free.
    """

    proportional: float = 0.0
    fixed: float = 0.0
    ends: bool = True

    def __post_init__(self):
        name = type(self).__name__
        object.__setattr__(self, "proportional", check.real(
            name, "proportional", self.proportional, 0.0, 1.0, high_open=True))
        object.__setattr__(self, "fixed", check.non_negative(name, "fixed", self.fixed))
        if not isinstance(self.ends, bool):
            check.fail(name, "ends", "True or False", self.ends)
