"""Day-by-day purchase counts and cohort value curves, computed in the engine.

These feed the tracking plot (a model's expected repeat purchases of the whole base
against the real ones, through the calibration period and the holdout) and the cohort
value curves (what an acquisition month's customers have spent, month by month).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import ibis
import pandas as pd

if TYPE_CHECKING:
    from lifevalue.data.validate import ValidatedTransactions


def daily_occasions(
    validated: ValidatedTransactions, *, until: object = None, born_by: object = None
) -> pd.DataFrame:
    """Per calendar day: customers making their first purchase, and repeat purchases.

    An occasion is a customer's purchase day (any row but a return). A customer's first
    occasion is its birth; every later one is a repeat purchase, as the ``frequency`` of
    the customer summary counts them with daily occasions.

    Parameters
    ----------
    validated
        The validated transactions.
    until
        Ignore rows at or after this moment (default: none).
    born_by
        Count only the customers whose first purchase day is on or before this day (for
        tracking the calibration period's customers through the holdout).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``day`` (midnight timestamps, sorted, only days with activity):
        ``first_purchases`` and ``repeat_purchases``.
    """
    a = validated.accepted
    a = a.filter(~a.is_return)
    if until is not None:
        a = a.filter(a.timestamp < ibis.literal(pd.Timestamp(until)))
    days = a.select(customer_id=a.customer_id, day=a.occasion_at.truncate("D")).distinct()
    first = days.group_by("customer_id").aggregate(born=days.day.min())
    if born_by is not None:
        first = first.filter(first.born <= ibis.literal(pd.Timestamp(born_by)))
    marked = days.inner_join(first, "customer_id")
    counts = marked.group_by("day").aggregate(
        first_purchases=(marked.day == marked.born).sum(),
        repeat_purchases=(marked.day != marked.born).sum(),
    )
    frame = counts.to_pandas()
    frame["day"] = pd.to_datetime(frame["day"])
    return frame.set_index("day").sort_index().astype("int64")


def cohort_value(
    validated: ValidatedTransactions, *, until: object, margin_rate: float | None = None
) -> pd.DataFrame:
    """Cumulative revenue and margin per customer of each acquisition month.

    Parameters
    ----------
    validated
        The validated transactions.
    until
        The scoring date, the last day counted (like a calibration end); curves run to
        its month.
    margin_rate
        Gross margin on revenue when the log has no ``margin`` column (default: no
        margin column in the result then).

    Returns
    -------
    pandas.DataFrame
        One row per cohort and month since acquisition (0 is the acquisition month):
        ``cohort`` (``"YYYY-MM"``), ``months_since_acquisition``, ``customers`` (the
        cohort's size), ``revenue_per_customer`` and ``margin_per_customer`` (cumulative,
        net of returns).
    """
    end = pd.Timestamp(until).normalize()
    a = validated.accepted
    a = a.filter(a.timestamp < ibis.literal(end + pd.Timedelta(days=1)))
    bought = a.filter(~a.is_return)  # a return never starts a customer
    born = bought.group_by("customer_id").aggregate(cohort=bought.timestamp.min().truncate("M"))
    rows = a.inner_join(born, "customer_id")
    month = rows.timestamp.truncate("M")
    age = (month.year() - rows.cohort.year()) * 12 + (month.month() - rows.cohort.month())
    has_margin = "margin" in rows.columns
    spent = rows.group_by(["cohort", age.name("months_since_acquisition")]).aggregate(
        revenue=rows.amount.sum(),
        **({"margin": rows.margin.sum()} if has_margin else {}),
    )
    sizes = born.group_by("cohort").aggregate(customers=born.count()).to_pandas()
    frame = spent.to_pandas()
    for table in (frame, sizes):
        table["cohort"] = pd.to_datetime(table["cohort"]).dt.to_period("M")
    last = end.to_period("M")
    # Every month from acquisition to the last month seen, so curves have no gaps.
    grid = pd.DataFrame(
        [(cohort, m) for cohort in sizes["cohort"] for m in range((last - cohort).n + 1)],
        columns=["cohort", "months_since_acquisition"],
    )
    out = grid.merge(frame, how="left", on=["cohort", "months_since_acquisition"]).fillna(0.0)
    out = out.merge(sizes, on="cohort").sort_values(["cohort", "months_since_acquisition"])
    money = ["revenue"] + (["margin"] if has_margin else [])
    cumulative = out.groupby("cohort")[money].cumsum()
    out["revenue_per_customer"] = cumulative["revenue"] / out["customers"]
    if has_margin:
        out["margin_per_customer"] = cumulative["margin"] / out["customers"]
    elif margin_rate is not None:
        out["margin_per_customer"] = out["revenue_per_customer"] * float(margin_rate)
    out["cohort"] = out["cohort"].astype(str)
    keep = ["cohort", "months_since_acquisition", "customers", "revenue_per_customer"]
    keep += ["margin_per_customer"] if "margin_per_customer" in out.columns else []
    return out[keep].reset_index(drop=True)
