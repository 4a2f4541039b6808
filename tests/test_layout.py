"""The declared column layouts of the kernel's tables (``kernels/layout.py``) and the constants
that ``_math`` binds from them. No kernel is compiled."""

import pytest

from gpuhedge.kernels import _math, layout, state

PREFIXES = ("BOOK_", "TAU_", "GRID_", "HP_", "HEDGER_", "COST_", "STATE_", "ACC_", "OUT_",
            "REC_", "LANE_")
TABLES = layout.TABLES + (state.STATE,)
WIDTHS = {"N_HEDGER": layout.HEDGER, "N_COST": layout.COST, "N_STATE": state.STATE,
          "N_OUT": layout.OUT, "N_REC": layout.REC, "N_LANE": layout.LANE}


@pytest.mark.parametrize("table", TABLES, ids=lambda t: f"{t.name}:{t.names[0]}")
def test_columns_are_0_to_width_without_gaps_or_duplicates(table):
    assert len(set(table.names)) == table.width == len(table.fields)
    assert sorted(table.index(name) for name in table.names) == list(range(table.width))
    assert table.columns == tuple(range(table.width))
    assert table.width == sum(len(g.fields) for g in table.groups)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: f"{t.name}:{t.names[0]}")
def test_math_binds_every_declared_name_to_its_index(table):
    for i, name in enumerate(table.names):
        assert getattr(_math, name) == table.index(name) == i
        assert type(getattr(_math, name)) is int  # numba folds a global int as a constant


def test_every_column_constant_of_math_is_declared():
    declared = {name for table in TABLES for name in table.names}
    constants = {name for name, value in vars(_math).items()
                 if name.startswith(PREFIXES) and isinstance(value, int)}
    assert constants == declared
    for name, table in WIDTHS.items():
        assert getattr(_math, name) == table.width


def test_state_is_the_sum_of_its_owners_groups():
    """Each owner declares its rows of the per-path state in its own module."""
    from gpuhedge import costs
    from gpuhedge.rules import option_hedges, spot_move

    groups = state.STATE.groups
    assert groups == (state.EVERY_ROW, *spot_move.STATE, *costs.STATE, *option_hedges.STATE,
                      state.GREEKS)
    assert _math.N_STATE == sum(len(g.fields) for g in groups) == 26
    assert "execution lag" in state.STATE.owner("STATE_ORDERED")
    assert "funding" in state.STATE.owner("STATE_LENT")
    assert "hedge option" in state.STATE.owner("STATE_OPT_MONEYNESS")
    assert "spot move" in state.STATE.owner("STATE_LAST_SPOT")
    assert "greeks" in state.STATE.owner("STATE_GAMMA_AT")
    assert "hedge option" in layout.HEDGER.owner("HEDGER_OPT_TENOR")


def test_every_cost_sum_has_its_ends_part():
    # ``level_costs`` spares a level the ends' part ``ACC_ENDS_<sum>`` of each sum ``ACC_<sum>``
    sums = [name for name in state.STATE.names
            if name.startswith("ACC_") and not name.startswith("ACC_ENDS_")]
    assert sums == ["ACC_TURNOVER", "ACC_TICKETS", "ACC_IMPACT_SQRT", "ACC_IMPACT_LINEAR",
                    "ACC_OPTION_TURNOVER"]
    for name in sums:
        assert "ends" in state.STATE.owner(name.replace("ACC_", "ACC_ENDS_"))


def test_a_name_declared_twice_is_refused():
    with pytest.raises(ValueError, match=r"Layout t: field 'T_A' is declared twice "
                                         r"\(groups 'first' and 'second'\)"):
        layout.Layout("t", "a table", layout.group("first", ("T_A", "a"), ("T_B", "b")),
                      layout.group("second", ("T_A", "again")))
    with pytest.raises(ValueError, match=r"Layout t: field 'T_A' is declared twice "
                                         r"\(groups 'first' and 'first'\)"):
        layout.Layout("t", "a table", layout.group("first", ("T_A", "a"), ("T_A", "b")))


def test_bad_names_and_bindings_are_refused():
    table = layout.Layout("t", "a table", layout.group("g", ("T_A", "a"), ("T_B", "b")))
    with pytest.raises(ValueError, match=r"upper-case identifier; got 't_c'"):
        layout.Layout("t", "a table", layout.group("g", ("t_c", "c")))
    with pytest.raises(ValueError, match=r"Layout t: no field 'T_C'; the fields are T_A, T_B"):
        table.index("T_C")
    with pytest.raises(ValueError, match=r"Layout t: T_B must be bound to 1; got 0"):
        table.check_bound({"T_A": 0, "T_B": 0})
    with pytest.raises(ValueError, match=r"Layout t: T_A must be bound to 0; got None"):
        table.check_bound({})
    table.check_bound({"T_A": 0, "T_B": 1})


def test_stack_places_each_value_in_its_named_column():
    row = layout.COST.stack(**{name: float(i) for i, name in
                               reversed(list(enumerate(layout.COST.names)))})
    assert row.dtype == float and row.tolist() == [float(i) for i in range(_math.N_COST)]
    times = [0.0, 0.5, 1.0]
    grid = layout.GRID.stack(GRID_DISCOUNT=[1.0, 0.9, 0.8], GRID_TIME=times,
                             GRID_DIVIDEND=[0.0, 0.0, 0.0])
    assert grid.shape == (3, 3) and grid[:, _math.GRID_TIME].tolist() == times
    assert grid[:, _math.GRID_DISCOUNT].tolist() == [1.0, 0.9, 0.8]
    with pytest.raises(ValueError, match=r"Layout grid: stack needs exactly the fields "
                                         r"GRID_TIME, GRID_DISCOUNT, GRID_DIVIDEND; got "
                                         r"GRID_TIME, GRID_DISCOUNT$"):
        layout.GRID.stack(GRID_TIME=0.0, GRID_DISCOUNT=1.0)
    with pytest.raises(ValueError, match=r"got GRID_TIME, GRID_DISCOUNT, GRID_DIVIDEND, "
                                         r"GRID_RATE$"):
        layout.GRID.stack(GRID_TIME=0.0, GRID_DISCOUNT=1.0, GRID_DIVIDEND=0.0, GRID_RATE=0.0)
