"""Time units are exact durations."""

from __future__ import annotations

import pytest

from lifevalue.units import TimeUnit


def test_units_convert_without_drift():
    assert TimeUnit.WEEKS.convert(1, "days") == 7
    assert TimeUnit.YEARS.convert(1, "months") == pytest.approx(12)
    assert TimeUnit.MONTHS.days == pytest.approx(30.436875)
    assert TimeUnit.DAYS.per_year == pytest.approx(365.2425)
    assert TimeUnit.parse("W") is TimeUnit.WEEKS
    assert str(TimeUnit.MONTHS) == "months"


def test_unknown_units_are_named():
    with pytest.raises(ValueError, match="Unknown time unit 'fortnights'"):
        TimeUnit.parse("fortnights")
