"""Time units carried explicitly with every summary and model.

A unit is an exact duration. Months and years are the mean Gregorian month and year
(365.2425 days per year, a twelfth of that per month), never a 30-day month, so a
quantity converts between units without drift.
"""

from __future__ import annotations

import math
from enum import StrEnum

DAYS_PER_YEAR = 365.2425
SECONDS_PER_DAY = 86_400.0
#: Key under which tables and frames carry lifevalue's metadata (time unit and more):
#: ``frame.attrs[METADATA_KEY]`` for pandas, the schema metadata for Arrow and Parquet.
METADATA_KEY = "lifevalue"


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


def period_discount_rate(annual_rate: float, unit: TimeUnit | str) -> float:
    """The discount rate per ``unit`` equivalent to ``annual_rate`` compounded yearly.

    ``(1 + annual_rate) ** (1 / units_per_year) - 1``: 10% a year is about 0.797% a month
    (not 10/12 %) and 0.1834% a week.
    """
    _check_annual_rate(annual_rate)
    return (1.0 + annual_rate) ** (1.0 / TimeUnit.parse(unit).per_year) - 1.0


def continuous_discount_rate(annual_rate: float, unit: TimeUnit | str) -> float:
    """The continuous rate per ``unit``: ``exp(-rate * units_per_year) = 1 / (1 + annual_rate)``."""
    _check_annual_rate(annual_rate)
    return math.log1p(annual_rate) / TimeUnit.parse(unit).per_year


def _check_annual_rate(annual_rate: float) -> None:
    number = isinstance(annual_rate, int | float) and math.isfinite(annual_rate)
    if not (number and annual_rate >= 0):
        raise ValueError(
            f"An annual discount rate must be a number >= 0 (0.1 for 10%). Got {annual_rate!r}."
        )
