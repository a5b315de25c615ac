"""Contact timing and frequency: when to contact whom, how often, and who needs it now.

Four deterministic rules, each readable by a marketer:

- :func:`best_contact_times`: each customer's best weekday and hour, from their own
  purchase times shrunk towards the store's pattern when their history is short;
- :func:`peak_periods`: the store's busiest month, weekday and hour;
- :func:`churn_triggers`: customers to act on now, because their P(alive) fell below a
  threshold or they are overdue against their own rhythm;
- :func:`contact_plan`: messages per week by value tier, under a weekly cap.

The purchase counts come from :func:`lifevalue.data.timing.purchase_timing`
(``timing.customers`` and ``timing.population``); the other inputs are the scores table
and the value tiers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lifevalue.data.timing import HOUR_COLUMNS, MONTH_NAMES, WEEKDAY_COLUMNS, WEEKDAY_NAMES
from lifevalue.errors import DataValidationError, InputError

__all__ = [
    "DEFAULT_MESSAGES_PER_WEEK",
    "best_contact_times",
    "churn_triggers",
    "contact_plan",
    "peak_periods",
]

#: Default messages per week for each value tier of :func:`contact_plan`.
DEFAULT_MESSAGES_PER_WEEK: Mapping[str, float] = {
    "top": 2.0,
    "high": 1.0,
    "medium": 0.5,
    "low": 0.25,
}

_PERIODS = ("month", "weekday", "hour")


# --------------------------------------------------------------------------- helpers


def _bad(name: str, func: str, expectation: str, value: Any) -> InputError:
    return InputError(
        f"The {name!r} parameter of {func} must be {expectation}. Got {value!r} instead."
    )


def _number(
    value: Any, name: str, func: str, *, low: float, high: float = math.inf, low_open: bool = False
) -> float:
    is_number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )
    ok = is_number and math.isfinite(float(value)) and float(value) <= high
    ok = ok and (float(value) > low if low_open else float(value) >= low)
    if not ok:
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        expectation = bound if high == math.inf else f"between {low:g} and {high:g}"
        raise _bad(name, func, f"a finite number {expectation}", value)
    return float(value)


def _check_frame(frame: Any, columns: Sequence[str], func: str, what: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            f"{func} expects {what} as a pandas DataFrame. Got {type(frame).__name__} instead."
        )
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{func} needs the columns {', '.join(map(repr, missing))} of {what}; they are "
            f"missing (the table has: {', '.join(map(str, frame.columns)) or 'none'}).",
            rule="required_columns",
        )


def _numeric(
    frame: pd.DataFrame, column: str, func: str, what: str, *, allow_nan: bool = False
) -> np.ndarray:
    try:
        values = pd.to_numeric(frame[column], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{func} needs numbers in column {column!r} of {what}. "
            f"Got {frame[column].dtype} values instead.",
            rule="numeric",
        ) from exc
    bad = np.isinf(values) if allow_nan else ~np.isfinite(values)
    if bad.any():
        rows = frame.index[bad]
        raise DataValidationError(
            f"{func} needs a finite {column!r} for every row of {what}. Found "
            f"{int(bad.sum())} missing or infinite (rows {', '.join(map(str, rows[:5]))}"
            f"{', ...' if len(rows) > 5 else ''}).",
            rule="finite",
            rows=rows,
        )
    return values


def _population_counts(population: pd.DataFrame, period: str, size: int, func: str) -> np.ndarray:
    """Store-wide counts of one period as an array indexed by value (missing values: 0)."""
    rows = population[population["period"] == period]
    values = _numeric(rows, "value", func, "the population table")
    counts = _numeric(rows, "purchases", func, "the population table")
    outside = (values < 0) | (values >= size + (period == "month")) | (values != np.round(values))
    if period == "month":
        outside |= values < 1
    if outside.any() or (counts < 0).any():
        raise DataValidationError(
            f"{func}: the population table's {period} rows must have whole values in range "
            f"and non-negative purchases. Got values {sorted(set(values.tolist()))} and "
            f"purchases from {counts.min():g} instead.",
            rule="population_values",
        )
    out = np.zeros(size)
    offset = 1 if period == "month" else 0
    np.add.at(out, values.astype(np.int64) - offset, counts)
    return out


# --------------------------------------------------------------------------- best contact times


def best_contact_times(
    customer_counts: pd.DataFrame,
    population: pd.DataFrame,
    *,
    prior_strength: float = 5.0,
) -> pd.DataFrame:
    """Each customer's best weekday and hour to contact, shrunk towards the store's pattern.

    For each customer and each weekday ``d`` the weight is the Dirichlet posterior mean

        ``(own purchases on d + prior_strength x store share of d) / (n + prior_strength)``

    where ``n`` is the customer's number of purchases and the store share is the share of
    all purchases made on ``d`` (from ``population``). The best weekday is the one with
    the largest weight; hours work the same way over the 24 hours. The prior is worth
    ``prior_strength`` purchases spread like the store's: with many purchases the
    customer's own habit decides, with none the store's peak does. A customer with a
    single purchase on day ``d`` gets the store's peak (share ``s_peak``) only when
    ``prior_strength > 1 / (s_peak - s_d)``; with the default 5 that needs a store
    pattern in which the peak leads by more than 20 points, so a single purchase usually
    keeps its own weekday. That is deliberate: one purchase is a better guess of a habit
    than the store's peak (on the simulated businesses it finds the true preferred
    weekday about three times as often). Raise ``prior_strength`` to lean on the store.

    Ties (equal weights, up to rounding at 1e-12) go to the value the store as a whole
    buys on most; if the store's counts tie as well, to the earliest value (Monday first,
    then Tuesday, ...; midnight first for hours). So the answer never depends on the order
    of rows or customers.

    Parameters
    ----------
    customer_counts
        Per-customer counts indexed by ``customer_id``: ``weekday_0`` (Monday) ..
        ``weekday_6`` and, when times of day are known, ``hour_0`` .. ``hour_23``, as
        in ``purchase_timing(...).customers``.
    population
        Store-wide counts as in ``purchase_timing(...).population``: ``period``,
        ``value`` and ``purchases``; ``weekday`` rows are needed, ``hour`` rows when the
        customers have hour counts.
    prior_strength
        How many purchases the store's pattern is worth, ``>= 0``; default 5. Zero uses
        the customer's own counts only (a customer without any then gets the store's peak).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``customer_counts``: ``purchases_counted``, ``best_contact_weekday``
        (0 = Monday), ``best_contact_weekday_name``, ``weekday_weight`` (the winning
        posterior share), and ``best_contact_hour`` (0-23), ``hour_weight``. Without hour
        counts (a date-only log) the hour columns are missing values: the hour is unknown.

    Raises
    ------
    InputError
        A bad ``prior_strength`` or an input that is not a DataFrame.
    DataValidationError
        Missing columns, negative or missing counts, or a population with no purchases.
    """
    func = "best_contact_times"
    k = _number(prior_strength, "prior_strength", func, low=0.0)
    _check_frame(customer_counts, WEEKDAY_COLUMNS, func, "the customer counts")
    _check_frame(population, ("period", "value", "purchases"), func, "the population table")
    has_hours = all(c in customer_counts.columns for c in HOUR_COLUMNS)
    out = pd.DataFrame(index=customer_counts.index)
    weekday, weekday_weight, n = _shrunk_mode(
        customer_counts,
        WEEKDAY_COLUMNS,
        _population_counts(population, "weekday", 7, func),
        k,
        func,
        "weekday",
    )
    out["purchases_counted"] = n.astype(np.int64)
    out["best_contact_weekday"] = pd.array(weekday, dtype="Int64")
    out["best_contact_weekday_name"] = np.asarray(WEEKDAY_NAMES, dtype=object)[weekday]
    out["weekday_weight"] = weekday_weight
    if has_hours:
        hour_pop = _population_counts(population, "hour", 24, func)
        hour, hour_weight, _ = _shrunk_mode(
            customer_counts, HOUR_COLUMNS, hour_pop, k, func, "hour"
        )
        out["best_contact_hour"] = pd.array(hour, dtype="Int64")
        out["hour_weight"] = hour_weight
    else:
        out["best_contact_hour"] = pd.array([pd.NA] * len(out), dtype="Int64")
        out["hour_weight"] = np.nan
    return out


def _shrunk_mode(
    counts: pd.DataFrame,
    columns: Sequence[str],
    population: np.ndarray,
    k: float,
    func: str,
    period: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mode of the Dirichlet posterior mean per row, ties to the store's favourite."""
    total = population.sum()
    if total <= 0:
        raise DataValidationError(
            f"{func} needs store-wide {period} purchases to shrink towards; the population "
            f"table has none.",
            rule="empty_population",
        )
    share = population / total
    own = np.column_stack([_numeric(counts, c, func, "the customer counts") for c in columns])
    own = own.reshape(len(counts), len(columns))
    if (own < 0).any():
        rows = counts.index[(own < 0).any(axis=1)]
        raise DataValidationError(
            f"{func} needs non-negative {period} counts. Found negative counts for customers "
            f"{', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''}.",
            rule="negative_counts",
            rows=rows,
        )
    n = own.sum(axis=1)
    denominator = n + k
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = (own + k * share) / denominator[:, None]
    # Without purchases and without a prior, the store's pattern is all there is.
    weights[denominator == 0] = share
    best = weights.max(axis=1, initial=-np.inf, keepdims=True)
    tied = weights >= best - 1e-12
    # Among tied values, the store's favourite; argmax then takes the earliest.
    choice = np.argmax(np.where(tied, share[None, :], -np.inf), axis=1)
    return choice, weights[np.arange(len(own)), choice], n


# --------------------------------------------------------------------------- peak periods


def peak_periods(population: pd.DataFrame) -> pd.DataFrame:
    """The store's busiest month, weekday and hour, with their shares of purchases.

    The peak of a period is the value with the most purchases; ties go to the earliest
    value (January, Monday, midnight first). Months are calendar months summed over every
    year of the log, so in a log of 14 months two months are counted twice: read the month
    peak on logs covering whole years.

    Parameters
    ----------
    population
        Store-wide counts as in ``purchase_timing(...).population``: ``period``,
        ``value``, ``purchases``. Periods without rows (hours in a date-only log) are
        left out of the result.

    Returns
    -------
    pandas.DataFrame
        One row per period present, in the order month, weekday, hour, indexed by
        ``period``: ``peak`` (month 1-12, weekday 0-6 with 0 = Monday, hour 0-23),
        ``label`` (``"December"``, ``"Saturday"``, ``"20:00"``), ``purchases`` at the
        peak, ``share`` of the period's purchases, and ``share_if_even`` (1/12, 1/7 or
        1/24: the share without any pattern, to compare with).

    Raises
    ------
    DataValidationError
        Missing columns, bad values, or a period without any purchase.
    """
    func = "peak_periods"
    _check_frame(population, ("period", "value", "purchases"), func, "the population table")
    sizes = {"month": 12, "weekday": 7, "hour": 24}
    present = [p for p in _PERIODS if (population["period"] == p).any()]
    if not present:
        raise DataValidationError(
            f"{func} needs rows of period month, weekday or hour in the population table. "
            f"Got periods {sorted(map(str, population['period'].unique()))} instead.",
            rule="population_periods",
        )
    rows = []
    for period in present:  # at most three periods, never customers
        counts = _population_counts(population, period, sizes[period], func)
        total = counts.sum()
        if total <= 0:
            raise DataValidationError(
                f"{func}: the population table has no {period} purchases.",
                rule="empty_population",
            )
        i = int(np.argmax(counts))
        value = i + 1 if period == "month" else i
        label = {"month": MONTH_NAMES, "weekday": WEEKDAY_NAMES}.get(period)
        rows.append(
            {
                "period": period,
                "peak": value,
                "label": label[i] if label else f"{i:02d}:00",
                "purchases": int(counts[i]),
                "share": counts[i] / total,
                "share_if_even": 1 / sizes[period],
            }
        )
    return pd.DataFrame(rows).set_index("period")


# --------------------------------------------------------------------------- churn triggers


def churn_triggers(
    scores: pd.DataFrame,
    *,
    p_alive_below: float = 0.3,
    overdue_factor: float = 1.5,
) -> pd.DataFrame:
    """Customers to contact now: P(alive) fell below a threshold, or overdue for an order.

    Two rules, either of which fires the trigger:

    - ``low_p_alive``: ``p_alive < p_alive_below`` (strictly; default 0.3);
    - ``overdue``: ``days_since_last_order > overdue_factor x average_days_between_orders``
      (strictly; default 1.5), that is, the customer has been silent for more than one and
      a half of their own usual gaps. Customers with a single purchase have no rhythm
      (their average gap is missing) and are never overdue; only the first rule can
      fire for them.

    Parameters
    ----------
    scores
        The scores table: ``p_alive``, ``days_since_last_order`` and
        ``average_days_between_orders`` (missing for single-purchase customers).
        ``predicted_clv`` is carried along when present, to show what is at stake.
    p_alive_below
        Threshold of P(alive), between 0 and 1; default 0.3.
    overdue_factor
        How many usual gaps of silence make a customer overdue, > 0; default 1.5.

    Returns
    -------
    pandas.DataFrame
        Only the triggered customers, indexed by ``customer_id``, least likely alive
        first (ties keep the scores table's order): ``p_alive``,
        ``days_since_last_order``, ``average_days_between_orders``, ``overdue_ratio``
        (days since the last order over the usual gap), ``low_p_alive`` and ``overdue``
        (which rules fired), ``predicted_clv`` when the scores have it, and ``reason``,
        the rules that fired in words.

    Raises
    ------
    InputError
        A bad threshold or factor.
    DataValidationError
        Missing columns, or missing values where they are not allowed.
    """
    func = "churn_triggers"
    threshold = _number(p_alive_below, "p_alive_below", func, low=0.0, high=1.0)
    factor = _number(overdue_factor, "overdue_factor", func, low=0.0, low_open=True)
    needed = ("p_alive", "days_since_last_order", "average_days_between_orders")
    _check_frame(scores, needed, func, "the scores table")
    p_alive = _numeric(scores, "p_alive", func, "the scores table")
    since = _numeric(scores, "days_since_last_order", func, "the scores table")
    gap = _numeric(scores, "average_days_between_orders", func, "the scores table", allow_nan=True)
    low = p_alive < threshold
    with np.errstate(invalid="ignore", divide="ignore"):
        overdue = np.isfinite(gap) & (since > factor * gap)
        ratio = np.where(np.isfinite(gap) & (gap > 0), since / gap, np.nan)
    fired = low | overdue
    out = pd.DataFrame(
        {
            "p_alive": p_alive,
            "days_since_last_order": since,
            "average_days_between_orders": gap,
            "overdue_ratio": ratio,
            "low_p_alive": low,
            "overdue": overdue,
        },
        index=scores.index,
    )
    if "predicted_clv" in scores.columns:
        out["predicted_clv"] = scores["predicted_clv"].to_numpy()
    out = out[fired]
    low_text = (
        "P(alive) " + out["p_alive"].round(2).astype(str) + f" is below {threshold:g}"
    ).where(out["low_p_alive"], "")
    overdue_text = (
        out["days_since_last_order"].round(0).astype("int64").astype(str)
        + " days since the last order, over "
        + f"{factor:g} x the usual "
        + out["average_days_between_orders"].fillna(0).round(0).astype("int64").astype(str)
        + " days between orders"
    ).where(out["overdue"], "")
    both = out["low_p_alive"] & out["overdue"]
    out["reason"] = low_text + np.where(both, "; ", "") + overdue_text
    order = np.argsort(out["p_alive"].to_numpy(), kind="stable")
    return out.iloc[order]


# --------------------------------------------------------------------------- contact plan


def contact_plan(
    scores: pd.DataFrame,
    tiers: pd.Series,
    *,
    per_tier: Mapping[str, float] = DEFAULT_MESSAGES_PER_WEEK,
    max_per_week: float = 2,
) -> pd.DataFrame:
    """Recommended messages per week for each customer, by value tier, under a weekly cap.

    A customer in tier ``t`` gets ``min(per_tier[t], max_per_week)`` messages a week;
    fractions mean less than weekly (0.5 is one message every two weeks, 0.25 one every
    four). The defaults follow the value at stake: top 2, high 1, medium 0.5, low 0.25.

    Parameters
    ----------
    scores
        The scores table; its index (``customer_id``) decides whom the plan covers, and
        ``expected_next_order_date`` is carried along when present.
    tiers
        Each customer's value tier (``value_tiers(scores)``), indexed like ``scores``.
    per_tier
        Messages per week for each tier, each a finite number ``>= 0``; every tier in
        ``tiers`` must have one. Default: top 2, high 1, medium 0.5, low 0.25.
    max_per_week
        The cap on messages per week, > 0; default 2.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``scores``: ``value_tier``, ``messages_per_week``,
        ``days_between_messages`` (7 / messages per week; missing when no message is
        planned), ``capped`` (whether the cap lowered the tier's rate), and
        ``expected_next_order_date`` when the scores have it.

    Raises
    ------
    InputError
        Bad ``per_tier`` or ``max_per_week``, or ``tiers`` not a Series.
    DataValidationError
        ``tiers`` misses customers of ``scores`` or holds a tier ``per_tier`` does not name.
    """
    func = "contact_plan"
    cap = _number(max_per_week, "max_per_week", func, low=0.0, low_open=True)
    if not isinstance(per_tier, Mapping) or not per_tier:
        raise _bad(
            "per_tier", func, "a non-empty mapping of tier names to messages per week", per_tier
        )
    rates = {str(t): _number(v, "per_tier", func, low=0.0) for t, v in per_tier.items()}
    _check_frame(scores, (), func, "the scores table")
    if not isinstance(tiers, pd.Series):
        raise InputError(
            f"{func} expects the value tiers as a pandas Series indexed by customer_id. "
            f"Got {type(tiers).__name__} instead."
        )
    aligned = tiers.reindex(scores.index)
    missing = scores.index[aligned.isna().to_numpy()]
    if len(missing):
        raise DataValidationError(
            f"{func} needs a value tier for every customer of the scores table. Found "
            f"{len(missing)} without one (customers {', '.join(map(str, missing[:5]))}"
            f"{', ...' if len(missing) > 5 else ''}).",
            rule="missing_tier",
            rows=missing,
        )
    labels = aligned.astype(str)
    unknown = sorted(set(labels.unique()) - set(rates))
    if unknown:
        raise DataValidationError(
            f"{func}: the tiers {', '.join(map(repr, unknown))} have no rate in per_tier "
            f"(it names {', '.join(map(repr, rates))}).",
            rule="unknown_tier",
        )
    wanted = labels.map(rates).to_numpy(dtype=float)
    messages = np.minimum(wanted, cap)
    out = pd.DataFrame(index=scores.index)
    out["value_tier"] = aligned.array
    out["messages_per_week"] = messages
    with np.errstate(divide="ignore"):
        out["days_between_messages"] = np.where(messages > 0, 7.0 / messages, np.nan)
    out["capped"] = wanted > cap
    if "expected_next_order_date" in scores.columns:
        out["expected_next_order_date"] = scores["expected_next_order_date"].to_numpy()
    return out
