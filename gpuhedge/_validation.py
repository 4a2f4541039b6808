"""Uniform parameter checks: every message names the owner, the parameter, the allowed range and
the value given, e.g. ``Heston: 'rho' must be in [-1, 1]; got 1.3``."""

import math
import numbers

import numpy as np


def _fail(owner, name, allowed, value):
    raise ValueError(f"{owner}: '{name}' must be {allowed}; got {value!r}")


def real(owner, name, value, low=-math.inf, high=math.inf, low_open=False, high_open=False):
    """Return ``value`` as a float after checking it is a finite real in the given interval."""
    left = "(" if low_open else "["
    right = ")" if high_open or high == math.inf else "]"
    allowed = f"a finite number in {left}{low:g}, {high:g}{right}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(owner, name, allowed, value)
    x = float(value)
    if not math.isfinite(x):
        _fail(owner, name, allowed, value)
    if x < low or x > high or (low_open and x == low) or (high_open and x == high):
        _fail(owner, name, allowed, value)
    return x


def positive(owner, name, value):
    return real(owner, name, value, low=0.0, low_open=True)


def non_negative(owner, name, value):
    return real(owner, name, value, low=0.0)


def integer(owner, name, value, low=None, high=None):
    """Return ``value`` as an int after checking it is an integer in [low, high]."""
    allowed = "an integer" + (f" >= {low}" if low is not None else "")
    if high is not None:
        allowed += f" and <= {high}"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(owner, name, allowed, value)
    n = int(value)
    if (low is not None and n < low) or (high is not None and n > high):
        _fail(owner, name, allowed, value)
    return n


def choice(owner, name, value, options):
    if value not in options:
        _fail(owner, name, "one of " + ", ".join(repr(o) for o in options), value)
    return value


def finite_array(owner, name, value, ndim):
    """Return ``value`` as a float64 array of ``ndim`` dimensions with only finite entries."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        _fail(owner, name, f"a {ndim}-d array of finite numbers", type(value).__name__)
    if arr.ndim != ndim:
        _fail(owner, name, f"a {ndim}-d array of finite numbers", f"array of shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        _fail(owner, name, "finite everywhere", f"{arr[first]} at index {first}")
    return arr
