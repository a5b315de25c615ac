"""When customers buy: purchase counts by weekday and hour, per customer and store-wide.

The counts feed the contact-timing rules of :mod:`lifevalue.value.timing`. They are
computed by the engine from validated transactions, in two aggregations:

- a *purchase* is a distinct (customer, timestamp) among the accepted rows with a
  positive amount. Returns (negative amounts) and zero-amount rows are no purchases, and
  the several lines of one order, which share its timestamp, count once;
- per customer: purchases on each weekday (``weekday_0`` is Monday, ..., ``weekday_6``
  Sunday) and at each hour of the day (``hour_0`` is 00:00-00:59, ..., ``hour_23``), in
  one pass with conditional counts;
- store-wide: purchases per calendar month (1 is January), weekday and hour. The
  weekday and hour totals are the sums of the customers' counts; the month totals are a
  second, small aggregation.

Python receives one row per customer and at most 43 store-wide rows.

**Date-only logs.** A log whose timestamps are dates (CDNOW, many ERP exports) carries
no time of day: every purchase reads as midnight. When no purchase has a time of day
other than 00:00:00 the log is taken to be date-only: :attr:`PurchaseTiming.has_time_of_day`
is ``False``, the hour columns and rows are left out (hours are unknown, not midnight),
and :attr:`PurchaseTiming.notes` says so. A log with real times in which every purchase
happened exactly at midnight would be read the same way; no real business has one.
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass

import ibis
import pandas as pd

from lifevalue.data.dates import parse_moment
from lifevalue.data.validate import ValidatedTransactions
from lifevalue.errors import InputError

logger = logging.getLogger(__name__)

#: Per-customer weekday count columns, Monday first.
WEEKDAY_COLUMNS: tuple[str, ...] = tuple(f"weekday_{d}" for d in range(7))
#: Per-customer hour count columns, midnight first.
HOUR_COLUMNS: tuple[str, ...] = tuple(f"hour_{h}" for h in range(24))
#: Names of the weekdays, Monday first (index = weekday number).
WEEKDAY_NAMES: tuple[str, ...] = tuple(calendar.day_name)
#: Names of the months, January first (index = month number - 1).
MONTH_NAMES: tuple[str, ...] = tuple(calendar.month_name[1:])

DATE_ONLY_NOTE = (
    "the log has dates only (every purchase at 00:00:00): hours of purchase are unknown, "
    "so there are no hour counts and no best contact hour"
)


@dataclass(frozen=True)
class PurchaseTiming:
    """Purchase counts by weekday and hour, per customer and store-wide.

    Attributes
    ----------
    customers
        One row per customer with at least one purchase, indexed by ``customer_id`` (sorted):
        ``purchases`` (their number), ``weekday_0`` .. ``weekday_6`` and, when the log
        has times of day, ``hour_0`` .. ``hour_23``. The weekday (and hour) counts of a
        customer add up to ``purchases``.
    population
        Store-wide counts, one row per period value: ``period`` (``"month"``,
        ``"weekday"``, ``"hour"``), ``value`` (month 1-12, weekday 0-6 with 0 = Monday,
        hour 0-23), ``label`` (``"December"``, ``"Saturday"``, ``"20:00"``), ``purchases``
        and ``share`` (of all purchases). Every value of a period has a row, zero
        counts included; there are no hour rows when the log has dates only.
    has_time_of_day
        Whether any purchase has a time of day other than midnight (see the module notes).
    notes
        Things worth knowing, in words (a date-only log, purchases left out by ``until``).
    """

    customers: pd.DataFrame
    population: pd.DataFrame
    has_time_of_day: bool
    notes: tuple[str, ...] = ()

    @property
    def total_purchases(self) -> int:
        """All purchases counted."""
        return int(self.customers["purchases"].sum())


def purchase_timing(transactions: ValidatedTransactions, *, until: object = None) -> PurchaseTiming:
    """Count each customer's purchases by weekday and hour, and the store's by month too.

    Parameters
    ----------
    transactions
        Validated transactions (:func:`~lifevalue.data.validate_transactions`).
    until
        Count only purchases at or before this moment (a date covers its whole day), for
        example the calibration end of an analysis. Default: every accepted purchase.

    Returns
    -------
    PurchaseTiming

    Raises
    ------
    InputError
        ``transactions`` is not validated transactions, or no purchase is left to count.
    """
    if not isinstance(transactions, ValidatedTransactions):
        raise InputError(
            "purchase_timing expects validated transactions (the result of "
            f"validate_transactions). Got {type(transactions).__name__} instead."
        )
    a = transactions.accepted
    rows = a.filter(a.amount > 0)
    notes: list[str] = []
    if until is not None:
        moment = parse_moment(until, name="until")
        rows = rows.filter(rows.timestamp <= ibis.literal(moment.end))
        notes.append(f"purchases after {moment} are not counted")
    purchases = rows.select("customer_id", "timestamp").distinct()
    ts = purchases.timestamp

    has_time = purchases.aggregate(
        n=purchases.count(), timed=(ts != ts.truncate("D")).sum()
    ).execute()
    n_total = int(has_time["n"].iloc[0])
    if n_total == 0:
        raise InputError(
            f"No purchase (a row with a positive amount) to count in {transactions.report.source}"
            + (f" up to {parse_moment(until, name='until')}" if until is not None else "")
            + f": {transactions.report.accepted:,} accepted rows, none of them a purchase."
        )
    timed = bool((has_time["timed"].fillna(0) > 0).iloc[0])
    if not timed:
        notes.append(DATE_ONLY_NOTE)
        logger.info("purchase timing: %s", DATE_ONLY_NOTE)

    weekday = ts.day_of_week.index()  # 0 = Monday
    aggs: dict[str, ibis.Value] = {"purchases": purchases.count()}
    aggs.update({col: (weekday == d).sum() for d, col in enumerate(WEEKDAY_COLUMNS)})
    if timed:
        hour = ts.hour()
        aggs.update({col: (hour == h).sum() for h, col in enumerate(HOUR_COLUMNS)})
    per_customer = purchases.group_by("customer_id").aggregate(**aggs).order_by("customer_id")
    customers = per_customer.to_pyarrow().to_pandas().set_index("customer_id")
    customers = customers.fillna(0).astype("int64")

    months = (
        purchases.group_by(month=ts.month())
        .aggregate(purchases=purchases.count())
        .execute()
        .set_index("month")["purchases"]
    )
    population = _population(customers, months, timed)
    return PurchaseTiming(customers, population, timed, tuple(notes))


def _population(customers: pd.DataFrame, months: pd.Series, timed: bool) -> pd.DataFrame:
    """Store-wide counts as one long table (month, weekday, hour rows)."""
    month_counts = months.reindex(range(1, 13), fill_value=0).to_numpy()
    parts = [
        pd.DataFrame(
            {
                "period": "month",
                "value": range(1, 13),
                "label": MONTH_NAMES,
                "purchases": month_counts,
            }
        ),
        pd.DataFrame(
            {
                "period": "weekday",
                "value": range(7),
                "label": WEEKDAY_NAMES,
                "purchases": customers[list(WEEKDAY_COLUMNS)].sum().to_numpy(),
            }
        ),
    ]
    if timed:
        parts.append(
            pd.DataFrame(
                {
                    "period": "hour",
                    "value": range(24),
                    "label": [f"{h:02d}:00" for h in range(24)],
                    "purchases": customers[list(HOUR_COLUMNS)].sum().to_numpy(),
                }
            )
        )
    population = pd.concat(parts, ignore_index=True)
    population["purchases"] = population["purchases"].astype("int64")
    totals = population.groupby("period", sort=False)["purchases"].transform("sum")
    population["share"] = population["purchases"] / totals
    return population
