"""Bad input gets a clear error (DESIGN.md section 3, invariant 7).

Every public constructor, ``simulate`` and ``hedge_paths`` refuse bad input with a ``ValueError``
whose message reads ``{owner}: '{parameter}' must be {allowed}; got {repr(value)}``, e.g.
``Heston: 'rho' must be in [-1, 1]; got 1.3``. NaN and +-inf are refused in every float field.
"""

import dataclasses
import math
import re
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpuhedge import (BlackScholes, Book, Costs, DeltaHedge, EuropeanCall, EuropeanPut,
                      NoHedge, Position, StaticHedge, Strategy, hedge_paths, simulate)
from gpuhedge import _validation as check

FAST = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

INF = math.inf


@dataclasses.dataclass(frozen=True)
class Field:
    """One float field of one class: how to build the class around it and its allowed range."""

    cls: type
    base: dict  # valid values of the other fields
    name: str
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False
    none_ok: bool = False
    allowed: str = ""  # the exact text the message must hold

    def build(self, value):
        return self.cls(**{**self.base, self.name: value})

    def __repr__(self):  # readable test ids
        return f"{self.cls.__name__}.{self.name}"


OPTION = EuropeanCall(100.0, 1.0)
BS = dict(spot=100.0, vol=0.2, rate=0.01)
FLOAT_FIELDS = [
    Field(BlackScholes, BS, "spot", 0.0, INF, low_open=True, allowed="a finite number > 0"),
    Field(BlackScholes, BS, "vol", 0.0, 10.0, allowed="a finite number in [0, 10]"),
    Field(BlackScholes, BS, "rate", -1.0, 1.0, allowed="a finite number in [-1, 1]"),
    Field(BlackScholes, BS, "dividend", -1.0, 1.0, allowed="a finite number in [-1, 1]"),
    Field(BlackScholes, BS, "drift", -5.0, 5.0, none_ok=True,
          allowed="None or a finite number in [-5, 5]"),
    Field(EuropeanCall, {"maturity": 1.0}, "strike", 0.0, INF, low_open=True,
          allowed="a finite number > 0"),
    Field(EuropeanCall, {"strike": 100.0}, "maturity", 0.0, 100.0, low_open=True,
          allowed="a finite number in (0, 100]"),
    Field(EuropeanPut, {"maturity": 1.0}, "strike", 0.0, INF, low_open=True,
          allowed="a finite number > 0"),
    Field(EuropeanPut, {"strike": 100.0}, "maturity", 0.0, 100.0, low_open=True,
          allowed="a finite number in (0, 100]"),
    Field(Costs, {}, "proportional", 0.0, 1.0, high_open=True,
          allowed="a finite number in [0, 1)"),
    Field(Costs, {}, "fixed", 0.0, INF, allowed="a finite number >= 0"),
    Field(NoHedge, {}, "vol", 0.0, 10.0, low_open=True, none_ok=True,
          allowed="None or a finite number in (0, 10]"),
    Field(StaticHedge, {}, "vol", 0.0, 10.0, low_open=True, allowed="a finite number in (0, 10]"),
    Field(DeltaHedge, {}, "vol", 0.0, 10.0, low_open=True, allowed="a finite number in (0, 10]"),
    Field(DeltaHedge, {"every": 3}, "vol", 0.0, 10.0, low_open=True,
          allowed="a finite number in (0, 10]"),
]

NON_FINITE = st.sampled_from([math.nan, INF, -INF, np.float64("nan"), np.float32("inf"),
                              np.float64("-inf"), -math.nan])
WRONG_TYPE = st.one_of(
    st.text(max_size=8),
    st.booleans(),
    st.just(np.True_),
    st.complex_numbers(max_magnitude=10.0),
    st.lists(st.floats(0.1, 1.0), min_size=1, max_size=3),
    st.just(np.array([0.5])),
    st.just(np.array(0.5)),  # a 0-d array is not a number
    st.just(Decimal("0.5")),
    st.just(b"0.5"),
    st.just(OPTION),
)
HUGE_INT = st.integers(min_value=2**1024, max_value=2**1100)  # beyond the float range


def floats_in(f):
    """Strategy for valid values of field ``f``: floats, ints, numpy scalars, fractions."""
    finite = dict(allow_nan=False, allow_infinity=False)
    lo = None if math.isinf(f.low) else f.low
    hi = None if math.isinf(f.high) else min(f.high, 1e300)
    plain = st.floats(min_value=lo, max_value=hi, exclude_min=f.low_open and lo is not None,
                      exclude_max=f.high_open and hi is not None, **finite)
    int_lo = math.floor(f.low) + 1 if f.low_open else math.ceil(f.low)
    if math.isinf(f.high):
        int_hi = 10**12
    else:
        int_hi = math.ceil(f.high) - 1 if f.high_open else math.floor(f.high)
    ints = st.integers(min_value=int_lo, max_value=int_hi)
    out = st.one_of(plain, ints, plain.map(np.float64), ints.map(np.int64),
                    ints.map(lambda n: Fraction(n, 1)))
    return out | st.none() if f.none_ok else out


def out_of_range(f):
    """Finite values outside field ``f``'s interval (bounds included where they are open)."""
    finite = dict(allow_nan=False, allow_infinity=False)
    parts = []
    if not math.isinf(f.low):
        parts.append(st.floats(max_value=f.low, exclude_max=not f.low_open, **finite))
        parts.append(st.integers(max_value=math.ceil(f.low) - (0 if f.low_open else 1),
                                 min_value=-10**9))
    if not math.isinf(f.high):
        parts.append(st.floats(min_value=f.high, exclude_min=not f.high_open, **finite))
        parts.append(st.integers(min_value=math.floor(f.high) + (0 if f.high_open else 1),
                                 max_value=10**9))
    return st.one_of(*parts)


def invalid_values(f):
    bad = st.one_of(NON_FINITE, WRONG_TYPE, HUGE_INT, out_of_range(f))
    return bad if f.none_ok else bad | st.none()


def assert_message(excinfo, owner, name, value, allowed=None):
    """The message names the owner, the quoted parameter, the range (if given) and the value."""
    msg = str(excinfo.value)
    assert msg.startswith(f"{owner}: '{name}' must be "), msg
    assert msg.endswith(f"; got {value!r}"), msg
    if allowed is not None:
        assert f"'{name}' must be {allowed}; got" in msg, msg


@pytest.mark.parametrize("field", FLOAT_FIELDS, ids=repr)
@FAST
@given(data=st.data())
def test_float_field_refuses_invalid(field, data):
    value = data.draw(invalid_values(field), label="value")
    with pytest.raises(ValueError) as excinfo:
        field.build(value)
    assert_message(excinfo, field.cls.__name__, field.name, value, field.allowed)


@pytest.mark.parametrize("field", FLOAT_FIELDS, ids=repr)
@FAST
@given(data=st.data())
def test_float_field_accepts_valid(field, data):
    value = data.draw(floats_in(field), label="value")
    obj = field.build(value)
    stored = getattr(obj, field.name)
    if value is None:
        assert stored is None
    else:
        assert type(stored) is float
        assert stored == float(value)


@pytest.mark.parametrize("field", FLOAT_FIELDS, ids=repr)
def test_float_field_bounds(field):
    """The bounds themselves: allowed where the interval is closed, refused where it is open."""
    for bound, is_open in ((field.low, field.low_open), (field.high, field.high_open)):
        if math.isinf(bound):
            continue
        if is_open:
            with pytest.raises(ValueError, match=re.escape(f"; got {bound!r}")):
                field.build(bound)
        else:
            assert getattr(field.build(bound), field.name) == bound


# --- Position: a non-zero finite quantity of an option ---------------------------------------

@FAST
@given(st.one_of(NON_FINITE, WRONG_TYPE, HUGE_INT, st.none(),
                 st.sampled_from([0, 0.0, -0.0, np.float64(0.0), Fraction(0)])))
def test_position_quantity_refuses_invalid(value):
    with pytest.raises(ValueError) as excinfo:
        Position(OPTION, value)
    assert_message(excinfo, "Position", "quantity", value, "a non-zero finite number")


@FAST
@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False).filter(bool),
                 st.integers(-10**12, 10**12).filter(bool)))
def test_position_quantity_accepts_valid(value):
    p = Position(EuropeanPut(90.0, 0.5), value)
    assert type(p.quantity) is float and p.quantity == float(value)


@pytest.mark.parametrize("option", [None, 100.0, "call", BS, NoHedge()], ids=repr)
def test_position_option_must_be_an_option(option):
    with pytest.raises(ValueError) as excinfo:
        Position(option, 1.0)
    assert_message(excinfo, "Position", "option", option, "a EuropeanCall or a EuropeanPut")


# --- DeltaHedge.every: an integer >= 1 --------------------------------------------------------

@FAST
@given(st.one_of(st.integers(max_value=0, min_value=-10**6), st.floats(), st.booleans(),
                 st.text(max_size=4), st.none(), st.just(np.float64(2.0)),
                 st.just(Fraction(2, 1)), NON_FINITE))
def test_every_refuses_invalid(value):
    with pytest.raises(ValueError) as excinfo:
        DeltaHedge(vol=0.2, every=value)
    assert_message(excinfo, "DeltaHedge", "every", value, "an integer >= 1")


@FAST
@given(st.one_of(st.integers(1, 10**6), st.integers(1, 10**6).map(np.int64),
                 st.integers(1, 255).map(np.uint8)))
def test_every_accepts_valid(value):
    h = DeltaHedge(every=value)
    assert type(h.every) is int and h.every == int(value)


# --- Book: at least one Position --------------------------------------------------------------

@pytest.mark.parametrize("positions", [[], (), 5, None, 1.5, "abc", {}, OPTION],
                         ids=repr)
def test_book_refuses_empty_or_not_positions(positions):
    with pytest.raises(ValueError) as excinfo:
        Book(positions)
    assert_message(excinfo, "Book", "positions", positions,
                   "a Position or a non-empty list of Positions")


@pytest.mark.parametrize("bad", [OPTION, 1.0, None, "x"], ids=repr)
def test_book_refuses_non_position_entries(bad):
    with pytest.raises(ValueError) as excinfo:
        Book([Position(OPTION, -1.0), bad])
    assert_message(excinfo, "Book", "positions[1]", bad, "a Position")


def test_book_accepts_position_list_tuple_generator():
    p, q = Position(OPTION, -1.0), Position(EuropeanPut(90.0, 0.5), 2.0)
    assert Book(p).positions == (p,)
    assert Book([p, q]).positions == (p, q)
    assert Book(x for x in (p, q)).positions == (p, q)
    assert Book([p, q]).horizon == 1.0


@pytest.mark.parametrize("method", ["short", "long"])
@pytest.mark.parametrize("quantity", [0, -1.0, math.nan, INF, "1", True, None], ids=repr)
def test_book_short_long_quantity(method, quantity):
    with pytest.raises(ValueError) as excinfo:
        getattr(Book, method)(OPTION, quantity)
    assert_message(excinfo, f"Book.{method}", "quantity", quantity, "a finite number > 0")


def test_book_short_long_sign():
    assert Book.short(OPTION, 3).positions[0].quantity == -3.0
    assert Book.long(OPTION, 3).positions[0].quantity == 3.0


# --- Strategy, frozen dataclasses -------------------------------------------------------------

def test_strategy_base_cannot_be_built():
    with pytest.raises(ValueError, match=r"^Strategy: is an abstract base .*use NoHedge"):
        Strategy()


@pytest.mark.parametrize("obj", [
    BlackScholes(**BS), OPTION, EuropeanPut(90.0, 0.5), Position(OPTION, 1.0),
    Book.short(OPTION), Costs(0.001, 0.5), NoHedge(), StaticHedge(), DeltaHedge(every=2)],
    ids=lambda o: type(o).__name__)
def test_frozen(obj):
    field = dataclasses.fields(obj)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, field, getattr(obj, field))
    assert obj == type(obj)(**{f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})


# --- the message builders themselves ----------------------------------------------------------

@pytest.mark.parametrize("args, text", [
    (("a finite number", 0.0, 10.0), "a finite number in [0, 10]"),
    (("a finite number", 0.0, 1.0, False, True), "a finite number in [0, 1)"),
    (("a finite number", 0.0, 100.0, True, False), "a finite number in (0, 100]"),
    (("a finite number", -1.0, 1.0, True, True), "a finite number in (-1, 1)"),
    (("a finite number", 0.0, INF, True), "a finite number > 0"),
    (("a finite number", 0.0, INF), "a finite number >= 0"),
    (("a finite number", -INF, 5.0), "a finite number <= 5"),
    (("a finite number", -INF, 5.0, False, True), "a finite number < 5"),
    (("a finite number", -INF, INF), "a finite number"),
    (("a finite number", 1e-12, 0.25), "a finite number in [1e-12, 0.25]"),
    (("an integer", 1, None), "an integer >= 1"),
    (("an integer", 0, 2**32 - 1), "an integer in [0, 4294967295]"),
    (("an integer", 1, 2**64), "an integer in [1, 18446744073709551616]"),
    (("an integer", None, None), "an integer"),
])
def test_describe_range(args, text):
    assert check.describe_range(*args) == text


def test_real_unbounded_message():
    with pytest.raises(ValueError, match=r"^X: 'y' must be a finite number; got nan$"):
        check.real("X", "y", math.nan)


@pytest.mark.parametrize("value", ["cpu ", "CPU", 1, None, np.array(["cpu"]), ["cpu"], b"cpu"],
                         ids=repr)
def test_choice_is_exact(value):
    with pytest.raises(ValueError) as excinfo:
        check.choice("simulate", "device", value, ("auto", "cpu", "cuda"))
    assert_message(excinfo, "simulate", "device", value, "one of 'auto', 'cpu', 'cuda'")


def test_choice_returns_the_option():
    assert type(check.choice("s", "d", np.str_("cpu"), ("cpu",))) is str


@pytest.mark.parametrize("value, got", [
    ([0.0, math.nan, 1.0], "nan at index (1,)"),
    ([[1.0, 2.0], [3.0, -INF]], "array of shape (2, 2)"),
    ([0.0, INF], "inf at index (1,)"),
    (np.ones((2, 2)), "an array of shape (2, 2)"),
    (["0", "1"], "an array of dtype <U1"),
    ([True, False], "an array of dtype bool"),
    ([1 + 1j], "an array of dtype complex128"),
    ([[0.0, 1.0], [1.0]], "[[0.0, 1.0], [1.0]]"),
])
def test_finite_array(value, got):
    with pytest.raises(ValueError) as excinfo:
        check.finite_array("hedge_paths", "times", value, 1)
    msg = str(excinfo.value)
    assert msg.startswith("hedge_paths: 'times' must be a 1-d array of finite numbers; got ")
    assert got in msg
    assert "got '" not in msg  # the value is written out, not quoted as a string


def test_long_values_are_cut_numbers_are_not():
    with pytest.raises(ValueError) as excinfo:
        check.real("X", "y", list(range(1000)))
    assert len(str(excinfo.value)) < 300
    big = 10**400
    with pytest.raises(ValueError, match=re.escape(repr(big))):
        check.real("X", "y", big)


# --- simulate ---------------------------------------------------------------------------------

MARKET = BlackScholes(100.0, 0.2, 0.01)
BOOK = Book.short(EuropeanCall(100.0, 1.0), 10.0)
HEDGE = DeltaHedge(vol=0.2)
SIM = dict(n_paths=8, n_steps=4, device="cpu")


def run_sim(**kwargs):
    args = dict(market=MARKET, book=BOOK, hedges=HEDGE, costs=None, **SIM)
    args.update(kwargs)
    return simulate(args.pop("market"), args.pop("book"), args.pop("hedges"),
                    args.pop("costs"), **args)


@pytest.mark.parametrize("name, value, allowed", [
    ("n_paths", 0, "an integer in [1, 4294967296]"),
    ("n_paths", -8, "an integer in [1, 4294967296]"),
    ("n_paths", 2**32 + 1, "an integer in [1, 4294967296]"),
    ("n_paths", 8.0, "an integer in [1, 4294967296]"),
    ("n_paths", True, "an integer in [1, 4294967296]"),
    ("n_steps", 0, None),
    ("n_steps", -1, None),
    ("n_steps", 4.0, None),
    ("n_steps", "4", None),
    ("device", "tpu", "one of 'auto', 'cpu', 'cuda'"),
    ("device", "GPU", "one of 'auto', 'cpu', 'cuda'"),
    ("dtype", "float16", "float64 or float32"),
    ("dtype", "int32", "float64 or float32"),
    ("seed", -1, "an integer in [0, 4294967295]"),
    ("seed", 2**32, "an integer in [0, 4294967295]"),
    ("seed", 1.5, "an integer in [0, 4294967295]"),
    ("seed", None, "an integer in [0, 4294967295]"),
    ("stream", -1, "an integer in [0, 4294967295]"),
    ("chunk_paths", 0, "an integer >= 1"),
    ("chunk_paths", -5, "an integer >= 1"),
    ("chunk_paths", 2.5, "an integer >= 1"),
    ("antithetic", "yes", "True or False"),
    ("antithetic", 1, "True or False"),
])
def test_simulate_refuses_bad_arguments(name, value, allowed):
    with pytest.raises(ValueError) as excinfo:
        run_sim(**{name: value})
    assert_message(excinfo, "simulate", name, value, allowed)


def test_simulate_refuses_numpy_float16_dtype():
    with pytest.raises(ValueError, match=r"^simulate: 'dtype' must be float64 or float32; "
                                         r"got .*float16"):
        run_sim(dtype=np.float16)


@pytest.mark.parametrize("hedges, parts", [
    ({}, ["must hold at least one Strategy", "empty dict"]),
    ([], ["must hold at least one Strategy", "empty list"]),
    ({"a": 5}, ["'a'", "must be a Strategy", "int"]),
    ({"delta": HEDGE, "costs": Costs()}, ["'costs'", "must be a Strategy", "Costs"]),
    ([HEDGE, "static"], ["'static'", "must be a Strategy", "str"]),
    (5, ["must be a Strategy, a list or a dict", "int"]),
    ({"": HEDGE}, ["keys must be non-empty strings", "''"]),
    ({1: HEDGE}, ["keys must be non-empty strings", "got 1"]),
])
def test_simulate_refuses_bad_hedges(hedges, parts):
    with pytest.raises(ValueError, match=r"^simulate: 'hedges") as excinfo:
        run_sim(hedges=hedges)
    for part in parts:
        assert part in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize("costs, parts", [
    ([], ["must hold at least one Costs", "empty list"]),
    ({"spread": 0.001}, ["'spread'", "must be a Costs", "float"]),
    (0.001, ["must be a Costs, a list or a dict", "float"]),
])
def test_simulate_refuses_bad_costs(costs, parts):
    with pytest.raises(ValueError, match=r"^simulate: 'costs") as excinfo:
        run_sim(costs=costs)
    for part in parts:
        assert part in str(excinfo.value), str(excinfo.value)


@pytest.mark.parametrize("market", ["bs", None, OPTION], ids=repr)
def test_simulate_refuses_non_market(market):
    with pytest.raises(ValueError, match=r"^simulate: 'market' must be a market model"):
        run_sim(market=market)


@pytest.mark.parametrize("book", [[1], OPTION, None], ids=repr)
def test_simulate_refuses_non_book(book):
    with pytest.raises(ValueError, match=r"^simulate: 'book' must be a Book or a Position"):
        run_sim(book=book)


def test_simulate_refuses_maturity_off_grid():
    book = Book([Position(EuropeanCall(100.0, 1.0), -1.0), Position(EuropeanPut(95.0, 0.3), 1.0)])
    with pytest.raises(ValueError) as excinfo:
        run_sim(book=book, n_steps=4)
    msg = str(excinfo.value)
    assert msg.startswith("simulate: 'book.positions[1].option.maturity'"), msg
    assert "time grid" in msg and "'n_steps'" in msg, msg
    assert msg.endswith("; got 0.3"), msg
    assert "0.25" in msg, msg  # the grid spacing, to help choose n_steps


@settings(FAST, max_examples=25)
@given(n_paths=st.integers(1, 16), n_steps=st.integers(1, 8), seed=st.integers(0, 2**32 - 1),
       chunk=st.one_of(st.none(), st.integers(1, 20)), antithetic=st.booleans(),
       as_numpy=st.booleans())
def test_simulate_accepts_valid(n_paths, n_steps, seed, chunk, antithetic, as_numpy):
    if as_numpy:
        n_paths, n_steps, seed = np.int64(n_paths), np.int32(n_steps), np.uint32(seed)
    ds = run_sim(n_paths=n_paths, n_steps=n_steps, seed=seed, chunk_paths=chunk,
                 antithetic=antithetic, costs=[Costs(), Costs(0.001, 0.01)],
                 book=Book([Position(EuropeanCall(100.0, 1.0), -1.0),
                            Position(EuropeanPut(95.0, 1.0), 2.0)]),
                 hedges={"none": NoHedge(), "static": StaticHedge(0.25), "delta": HEDGE})
    assert ds.pnl.shape == (3, 2, int(n_paths))
    assert np.isfinite(ds.pnl.values).all()
    assert ds.attrs["seed"] == int(seed) and ds.attrs["n_steps"] == int(n_steps)


def test_simulate_accepts_dtype_spellings():
    a = run_sim(dtype="float64")
    b = run_sim(dtype=np.float64)
    c = run_sim(dtype=np.dtype("float64"))
    np.testing.assert_array_equal(a.pnl.values, b.pnl.values)
    np.testing.assert_array_equal(a.pnl.values, c.pnl.values)


# --- hedge_paths ------------------------------------------------------------------------------

TIMES = np.linspace(0.0, 1.0, 5)
PRICES = np.array([[100.0, 101.0, 99.0, 100.5, 102.0], [100.0, 98.0, 97.0, 99.0, 95.0]])


def run_hp(prices=PRICES, times=TIMES, **kwargs):
    args = dict(book=BOOK, hedges=HEDGE, rate=0.01, device="cpu")
    args.update(kwargs)
    return hedge_paths(prices, times, args.pop("book"), args.pop("hedges"), **args)


@pytest.mark.parametrize("bad, got", [
    (math.nan, "nan at index (1, 2)"), (INF, "inf at index (1, 2)"),
    (-INF, "-inf at index (1, 2)")])
def test_hedge_paths_refuses_non_finite_prices(bad, got):
    prices = PRICES.copy()
    prices[1, 2] = bad
    with pytest.raises(ValueError) as excinfo:
        run_hp(prices)
    assert str(excinfo.value) == ("hedge_paths: 'prices' must be a 1-d or 2-d array of finite "
                                  f"numbers; got {got}")


@pytest.mark.parametrize("times", [
    [0.0, 0.5, 0.25, 0.75, 1.0], [0.0, 0.25, 0.25, 0.75, 1.0], [0.1, 0.25, 0.5, 0.75, 1.0],
    [1.0, 0.75, 0.5, 0.25, 0.0]], ids=str)
def test_hedge_paths_refuses_times_not_increasing_from_zero(times):
    with pytest.raises(ValueError, match=r"^hedge_paths: 'times' must (hold at least 2 points "
                                         r"starting at 0|increase strictly); got"):
        run_hp(times=times)


def test_hedge_paths_refuses_non_finite_times():
    with pytest.raises(ValueError, match=r"^hedge_paths: 'times' must be a 1-d array of finite "
                                         r"numbers; got nan at index \(3,\)$"):
        run_hp(times=[0.0, 0.25, 0.5, math.nan, 1.0])


@pytest.mark.parametrize("prices, times, pattern", [
    (PRICES[:, :4], TIMES, r"^hedge_paths: 'prices' must have shape \(n_paths >= 1, 5\) to "
                           r"match 'times'; got \(2, 4\)$"),
    (PRICES[None], TIMES, r"^hedge_paths: 'prices' must be a 1-d or 2-d array .*; got an "
                          r"array of shape \(1, 2, 5\)$"),
    (100.0, TIMES, r"^hedge_paths: 'prices' must be a 1-d or 2-d array .*; got an array of "
                   r"shape \(\)$"),
    (PRICES, TIMES[None], r"^hedge_paths: 'times' must be a 1-d array of finite numbers; got "
                          r"an array of shape \(1, 5\)$"),
    (PRICES[:, :1], TIMES[:1], r"^hedge_paths: 'times' must hold at least 2 points"),
])
def test_hedge_paths_refuses_wrong_shapes(prices, times, pattern):
    with pytest.raises(ValueError, match=pattern):
        run_hp(prices, times)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_hedge_paths_refuses_non_positive_prices(bad):
    prices = PRICES.copy()
    prices[0, 3] = bad
    with pytest.raises(ValueError, match=r"^hedge_paths: 'prices' must be > 0"):
        run_hp(prices)


def test_hedge_paths_refuses_times_not_ending_at_horizon():
    with pytest.raises(ValueError, match=r"^hedge_paths: the last time must be the book's "
                                         r"horizon 1.0; got 2.0$"):
        run_hp(times=2 * TIMES)


@pytest.mark.parametrize("name, value", [("rate", math.nan), ("rate", 2.0), ("rate", "0.01"),
                                         ("dividend", INF), ("dividend", None),
                                         ("chunk_paths", 0), ("dtype", "float16")])
def test_hedge_paths_refuses_bad_scalars(name, value):
    with pytest.raises(ValueError) as excinfo:
        run_hp(**{name: value})
    assert_message(excinfo, "hedge_paths", name, value)


def test_hedge_paths_refuses_unknown_device():
    with pytest.raises(ValueError, match=r"'device' must be one of 'auto', 'cpu', 'cuda'; "
                                         r"got 'tpu'$"):
        run_hp(device="tpu")


def test_hedge_paths_needs_a_vol_for_every_strategy():
    with pytest.raises(ValueError, match=r"^hedge_paths: every strategy needs a 'vol'"):
        run_hp(hedges={"delta": HEDGE, "none": NoHedge()})


def test_hedge_paths_accepts_valid():
    ds = run_hp(hedges={"delta": HEDGE, "static": StaticHedge(0.2), "none": NoHedge(0.2)},
                costs=[Costs(), Costs(0.01)])
    assert ds.pnl.shape == (3, 2, 2)
    assert np.isfinite(ds.pnl.values).all()
    one = run_hp(PRICES[0], hedges={"delta": HEDGE})  # one path as a 1-d array
    np.testing.assert_array_equal(one.pnl.values[..., 0], ds.pnl.values[:1, :1, 0])


# --- engine checks found missing by the validation review ------------------------------------


def test_engine_check_hedge_paths_ragged_prices():
    with pytest.raises(ValueError, match=r"^hedge_paths: 'prices'"):
        run_hp([[100.0, 101.0, 99.0, 100.5, 102.0], [100.0, 98.0]])


def test_engine_check_hedge_paths_no_paths():
    with pytest.raises(ValueError, match=r"^hedge_paths: 'prices'"):
        run_hp(np.empty((0, 5)))


def test_engine_check_hedge_paths_device_error_names_hedge_paths():
    with pytest.raises(ValueError, match=r"^hedge_paths: 'device'"):
        run_hp(device="tpu")


def test_engine_check_strategy_subclass_without_kind():
    class Custom(Strategy):
        vol = 0.2

    with pytest.raises(ValueError, match=r"^simulate: 'hedges"):
        run_sim(hedges=Custom())
