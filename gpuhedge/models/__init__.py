"""Market models: frozen, validated dataclasses that the engine flattens into kernel parameters.

One module per model holds its dataclass (its parameters as named fields), its kernel functions
and their traits (``Market.dynamics``: jumps, paired normals), its variance state
(``initial_state``), the hedge-vol rules that apply to it and its optional pricer (see
``Market``). ``MODELS`` registers them: the engine, the pricing and the hedge rules read their
tables from it. A model's ``Dynamics`` picks its compiled kernel (one per dynamics, dtype and
target), so the choice of model is made once in Python and never branched on per step.
Parameter names follow the papers: ``lam, mu_j, sigma_j`` (Merton 1976), ``lam, p, eta1, eta2``
(Kou 2002), ``v0, kappa, theta, xi, rho`` (Heston 1993), Bates (1996) = Heston + Merton jumps.

``drift`` is the real-world drift of the price (E[S_t] = S_0 e^{drift t}, dividends paid
out); None means risk-neutral, drift = rate - dividend. Jump compensators are exact, so the
discounted price plus dividends is a martingale under the pricing measure whatever the grid.
"""

from ..kernels import _math
from ._base import Market
from .black_scholes import BlackScholes
from .cev import CEV
from .heston import SCHEMES, Bates, FellerWarning, Heston
from .kou import Kou
from .merton import Merton

__all__ = ["Bates", "BlackScholes", "CEV", "FellerWarning", "Heston", "Kou", "Market", "Merton",
           "MODELS", "SCHEMES", "DYNAMICS", "rule_markets", "priced_models"]

# The registry: a new model is its module and its entry here.
MODELS = (BlackScholes, Merton, Kou, Heston, Bates, CEV)

# every kernel's dynamics (the supplied prices of ``hedge_paths`` first), each once
DYNAMICS = tuple(dict.fromkeys((_math.SUPPLIED, *(m.dynamics for m in MODELS))))


def rule_markets(rule):
    """The models that declare hedge-vol ``rule`` (their subclasses inherit it); () for the
    constant vol, which applies to every market."""
    return tuple(m for m in MODELS if rule in vars(m).get("hedge_rules", ()))


def priced_models():
    """The models with a pricer (``gpuhedge.pricing.price``), in registry order."""
    return tuple(m for m in MODELS if m.pricer() is not None)
