"""Uniform parameter checks: every message names the owner, the parameter, the allowed range and
the value given, e.g. ``Heston: 'rho' must be in [-1, 1]; got 1.3``.

The message is always ``{owner}: '{name}' must be {allowed}; got {value!r}``, where ``allowed``
reads as

* ``a finite number in [0, 10]``, ``... in (0, 100]``, ``... in [0, 1)`` (two bounds: interval
  notation, a square bracket for a bound that is allowed, a round one for a bound that is not);
* ``a finite number > 0``, ``a finite number >= 0``, ``a finite number <= 5`` (one bound);
* ``a finite number`` (no bound; NaN and +-inf are still refused);
* ``an integer >= 1``, ``an integer in [0, 4294967295]`` (integers: bools and floats refused);
* ``one of 'auto', 'cpu', 'cuda'`` (a choice).
"""

import math
import numbers

import numpy as np

_MAX_REPR = 200


def _short_repr(value):
    """``repr(value)``; cut to a readable length unless ``value`` is a number (a whole array or
    a long list could be given; a number is shown in full)."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real error
        return f"<{type(value).__name__} object>"
    if len(text) <= _MAX_REPR or isinstance(value, numbers.Number):
        return text
    return text[:_MAX_REPR - 3] + "..."


def fail(owner, name, allowed, value):
    """Raise the package's uniform ``ValueError`` (see the module docstring)."""
    raise ValueError(f"{owner}: '{name}' must be {allowed}; got {_short_repr(value)}")


_fail = fail  # the name used before ``fail`` was public


def _fail_text(owner, name, allowed, got):
    """Like ``fail`` with ``got`` already written out (e.g. ``nan at index (3,)``)."""
    raise ValueError(f"{owner}: '{name}' must be {allowed}; got {got}")


def _num(x):
    """A bound written for people: 0 not 0.0, 100 not 1e+02, 1e-12 as is, never rounded."""
    if isinstance(x, numbers.Integral):
        return str(int(x))
    x = float(x)
    if x.is_integer() and abs(x) < 1e16:
        return str(int(x))
    return repr(x)


def describe_range(kind, low=None, high=None, low_open=False, high_open=False):
    """The ``allowed`` text for ``kind`` ("a finite number", "an integer") between two bounds;
    None or an infinite value is no bound; an open end excludes the bound itself."""
    has_low = low is not None and not (isinstance(low, float) and math.isinf(low))
    has_high = high is not None and not (isinstance(high, float) and math.isinf(high))
    if has_low and has_high:
        return (f"{kind} in {'(' if low_open else '['}{_num(low)}, "
                f"{_num(high)}{')' if high_open else ']'}")
    if has_low:
        return f"{kind} {'>' if low_open else '>='} {_num(low)}"
    if has_high:
        return f"{kind} {'<' if high_open else '<='} {_num(high)}"
    return kind


def real(owner, name, value, low=-math.inf, high=math.inf, low_open=False, high_open=False,
         none_ok=False):
    """Return ``value`` as a float after checking it is a finite real in the given interval.

    Bools, strings, complex numbers, arrays and None are refused (None is returned as is when
    ``none_ok``); so are NaN and +-inf whatever the interval.
    """
    allowed = describe_range("a finite number", low, high, low_open, high_open)
    if none_ok:
        if value is None:
            return None
        allowed = "None or " + allowed
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        fail(owner, name, allowed, value)
    try:
        x = float(value)
    except (OverflowError, TypeError, ValueError):  # e.g. an int beyond the float range
        fail(owner, name, allowed, value)
    if not math.isfinite(x):
        fail(owner, name, allowed, value)
    if x < low or x > high or (low_open and x == low) or (high_open and x == high):
        fail(owner, name, allowed, value)
    return x


def positive(owner, name, value):
    """A finite float > 0."""
    return real(owner, name, value, low=0.0, low_open=True)


def non_negative(owner, name, value):
    """A finite float >= 0."""
    return real(owner, name, value, low=0.0)


def integer(owner, name, value, low=None, high=None):
    """Return ``value`` as an int after checking it is an integer in [low, high] (bounds
    included; None is no bound). Bools and floats (even 2.0) are refused."""
    allowed = describe_range("an integer", low, high)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(owner, name, allowed, value)
    n = int(value)
    if (low is not None and n < low) or (high is not None and n > high):
        fail(owner, name, allowed, value)
    return n


def choice(owner, name, value, options):
    """Return the option equal to ``value`` (same type: ``1`` never matches ``'1'``, and an
    array never matches a string)."""
    for option in options:
        if isinstance(value, type(option)) and value == option:
            return option
    fail(owner, name, "one of " + ", ".join(repr(o) for o in options), value)


def finite_array(owner, name, value, ndim):
    """Return ``value`` as a float64 array of ``ndim`` dimensions (an int, or a tuple of the
    allowed ones) with only finite entries.

    Integer and float entries are accepted; bools, strings, complex numbers and ragged nests
    are refused.
    """
    ndims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    allowed = f"a {' or '.join(f'{d}-d' for d in ndims)} array of finite numbers"
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested lists, objects numpy cannot read
        fail(owner, name, allowed, value)
    if raw.dtype.kind not in "iuf":
        _fail_text(owner, name, allowed, f"an array of dtype {raw.dtype} ({_short_repr(value)})")
    arr = raw.astype(np.float64)
    if arr.ndim not in ndims:
        _fail_text(owner, name, allowed, f"an array of shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        _fail_text(owner, name, allowed, f"{arr[first]} at index {first}")
    return arr
