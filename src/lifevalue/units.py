"""Time units carried explicitly with every summary and model.

A unit is an exact duration. Months and years are the mean Gregorian month and year
(365.2425 days per year, a twelfth of that per month), never a 30-day month, so a
quantity converts between units without drift.
"""

from __future__ import annotations

from enum import StrEnum

DAYS_PER_YEAR = 365.2425
SECONDS_PER_DAY = 86_400.0


class TimeUnit(StrEnum):
    """The unit in which recency, T and horizons are measured."""

    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"
    YEARS = "years"

    @property
    def days(self) -> float:
        """Length of one unit in days."""
        return _DAYS[self]

    @property
    def seconds(self) -> float:
        """Length of one unit in seconds."""
        return _DAYS[self] * SECONDS_PER_DAY

    @property
    def per_year(self) -> float:
        """How many of this unit make a year."""
        return DAYS_PER_YEAR / _DAYS[self]

    def convert(self, value: float, to: TimeUnit | str) -> float:
        """Express ``value`` (a duration in this unit) in the unit ``to``."""
        return value * self.days / TimeUnit.parse(to).days

    @classmethod
    def parse(cls, value: TimeUnit | str) -> TimeUnit:
        """Read a unit from its name, singular or plural (``"week"``, ``"weeks"``, ``"W"``).

        Raises
        ------
        ValueError
            If the name is not a known unit.
        """
        if isinstance(value, TimeUnit):
            return value
        key = str(value).strip().lower()
        unit = _ALIASES.get(key)
        if unit is None:
            raise ValueError(
                f"Unknown time unit {value!r}: expected one of days, weeks, months, years."
            )
        return unit


_DAYS = {
    TimeUnit.DAYS: 1.0,
    TimeUnit.WEEKS: 7.0,
    TimeUnit.MONTHS: DAYS_PER_YEAR / 12.0,
    TimeUnit.YEARS: DAYS_PER_YEAR,
}

_ALIASES = {
    alias: unit
    for unit, names in {
        TimeUnit.DAYS: ("d", "day", "days", "daily"),
        TimeUnit.WEEKS: ("w", "week", "weeks", "weekly"),
        TimeUnit.MONTHS: ("m", "month", "months", "monthly"),
        TimeUnit.YEARS: ("y", "year", "years", "yearly", "annual"),
    }.items()
    for alias in names
}
