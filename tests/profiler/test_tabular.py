"""Tabular families: remembered validations give exactly what a fresh validation gives."""

from __future__ import annotations

import pytest

from profiler.space import Boolean, Choice, SpaceError
from profiler.tabular import TabularFamily

ROWS = [{"hw": "56", "act": "relu", "k": "3"}, {"hw": "28", "act": "hswish", "k": "5"},
        {"hw": "14", "act": "relu", "k": "7"}]


@pytest.fixture()
def fam() -> TabularFamily:
    return TabularFamily.from_rows("demo", ROWS, params=["hw", "act", "k"])


def test_repeated_validation_is_remembered_and_returns_fresh_dicts(fam: TabularFamily) -> None:
    first = fam.validate({"hw": 56, "act": "relu", "k": 3})
    first["hw"] = 999  # the caller may change what it got: the remembered config must not change
    again = fam.validate({"hw": 56, "act": "relu", "k": 3})
    assert again == {"hw": 56, "act": "relu", "k": 3}
    assert again is not first
    assert fam.key({"hw": 56, "act": "relu", "k": 3}) == fam.key({"k": "3", "hw": "56", "act": "relu"})


def test_equal_values_of_other_types_are_validated_on_their_own(fam: TabularFamily) -> None:
    assert fam.validate({"hw": 56.0, "act": "relu", "k": 3}) == {"hw": 56, "act": "relu", "k": 3}
    with pytest.raises(SpaceError, match="True"):  # True == 1 and hash(True) == hash(1): not the same input
        fam.validate({"hw": 56, "act": "relu", "k": True})
    with pytest.raises(SpaceError, match="hw"):
        fam.validate({"hw": 57, "act": "relu", "k": 3})
    with pytest.raises(SpaceError, match="hw"):  # an error is not remembered as a success either
        fam.validate({"hw": 57, "act": "relu", "k": 3})


def test_unhashable_values_still_get_the_validation_error(fam: TabularFamily) -> None:
    with pytest.raises(SpaceError, match="hw"):
        fam.validate({"hw": [56], "act": "relu", "k": 3})


def test_choice_fast_path_agrees_with_the_full_check() -> None:
    c = Choice("k", (3, 5, 7.5, "x"))
    assert c.validate(3) == 3 and c.validate(3.0) == 3 and c.validate(7.5) == 7.5 and c.validate("x") == "x"
    for bad in (True, 4, "3", None, [3]):
        with pytest.raises(SpaceError):
            c.validate(bad)
    b = Boolean("flag")
    assert b.validate(True) is True
    with pytest.raises(SpaceError):
        b.validate(1)
