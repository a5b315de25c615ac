"""Segments of the customer base, read from the scores table.

Every function here takes the scores table (one row per customer, indexed by
``customer_id``; see :mod:`lifevalue.value.scores`), never changes it, and returns a new,
labelled result:

- :func:`value_tiers`: top 5% / next 15% / next 30% / rest by predicted CLV (configurable);
- :func:`rfm_scores` and :func:`rfm_segments`: quintile scores R, F, M and the named RFM
  segments of :data:`RFM_SEGMENT_RULES` (champions ... lost);
- :func:`lifecycle_states`: new, active, at risk, lapsed, from P(alive) and overdue-ness;
- :func:`breakdown`: customers and value per group of any attribute or segment;
- :func:`value_concentration`, :func:`concentration_curve` and :func:`gini_coefficient`:
  how much of the future value the most valuable customers hold.

Every rule is deterministic: the same table gives the same labels whatever the order of
its rows, and customers with equal values always get the same label.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from lifevalue.errors import DataValidationError, InputError

__all__ = [
    "LIFECYCLE_STATES",
    "RFM_SEGMENTS",
    "RFM_SEGMENT_RULES",
    "UNKNOWN",
    "RfmRule",
    "breakdown",
    "concentration_curve",
    "gini_coefficient",
    "lifecycle_states",
    "rfm_scores",
    "rfm_segments",
    "value_concentration",
    "value_tiers",
]

logger = logging.getLogger(__name__)

#: Label of the group of customers whose attribute is missing, in :func:`breakdown`.
UNKNOWN = "(unknown)"

#: Lifecycle states, from the healthiest to the least.
LIFECYCLE_STATES: tuple[str, ...] = ("new", "active", "at risk", "lapsed")


class RfmRule(NamedTuple):
    """One row of the RFM rule table: a segment and the scores that put a customer in it.

    ``r`` and ``fm`` are inclusive ranges ``(low, high)`` of the recency score R and of the
    frequency-monetary score FM (both 1 to 5, 5 best).
    """

    segment: str
    r: tuple[int, int]
    fm: tuple[int, int]
    description: str


#: The RFM rule table, the widely used R x FM grid (R: recency score, FM: the rounded mean
#: of the frequency and monetary scores). The rules cover the 25 cells of the grid exactly
#: once. ``pd.DataFrame(RFM_SEGMENT_RULES)`` shows it in a report.
RFM_SEGMENT_RULES: tuple[RfmRule, ...] = (
    RfmRule("champions", (5, 5), (4, 5), "bought most recently, often and for a lot"),
    RfmRule("loyal", (3, 4), (4, 5), "buy often and for a lot, fairly recently"),
    RfmRule("potential loyalists", (4, 5), (2, 3), "recent customers with average activity"),
    RfmRule("new", (5, 5), (1, 1), "bought most recently, but little so far"),
    RfmRule("promising", (4, 4), (1, 1), "bought recently, but little so far"),
    RfmRule("need attention", (3, 3), (1, 3), "average recency, average activity or below"),
    RfmRule("at risk", (1, 2), (3, 4), "bought often and for a lot, but long ago"),
    RfmRule("can't lose them", (1, 2), (5, 5), "the best customers once, not seen for long"),
    RfmRule("hibernating", (2, 2), (1, 2), "long ago, little activity"),
    RfmRule("lost", (1, 1), (1, 2), "longest ago, little activity"),
)

#: The RFM segment names, in the order of :data:`RFM_SEGMENT_RULES`.
RFM_SEGMENTS: tuple[str, ...] = tuple(rule.segment for rule in RFM_SEGMENT_RULES)


def _rfm_grid() -> np.ndarray:
    grid = np.full((5, 5), -1, dtype=np.int64)
    for code, rule in enumerate(RFM_SEGMENT_RULES):
        block = grid[rule.r[0] - 1 : rule.r[1], rule.fm[0] - 1 : rule.fm[1]]
        if (block != -1).any():  # pragma: no cover - a broken table fails at import
            raise RuntimeError(f"RFM rule {rule.segment!r} overlaps another rule.")
        block[...] = code
    if (grid == -1).any():  # pragma: no cover
        raise RuntimeError("The RFM rule table leaves cells of the R x FM grid uncovered.")
    return grid


#: ``_RFM_GRID[r - 1, fm - 1]`` is the position in :data:`RFM_SEGMENT_RULES` of the cell.
_RFM_GRID = _rfm_grid()


# --------------------------------------------------------------------------- helpers


def _bad(name: str, func: str, expectation: str, value: Any) -> InputError:
    return InputError(
        f"The {name!r} parameter of {func} must be {expectation}. Got {value!r} instead."
    )


def _check_frame(scores: Any, columns: Sequence[str], func: str) -> None:
    if not isinstance(scores, pd.DataFrame):
        raise InputError(
            f"{func} expects the scores table as a pandas DataFrame. "
            f"Got {type(scores).__name__} instead."
        )
    missing = [c for c in columns if c not in scores.columns]
    if missing:
        raise DataValidationError(
            f"{func} needs the columns {', '.join(map(repr, missing))} of the scores table; "
            f"they are missing (the table has: {', '.join(map(str, scores.columns)) or 'none'}).",
            rule="required_columns",
        )


def _numeric(
    scores: pd.DataFrame, column: str, func: str, *, allow_nan: bool = False
) -> np.ndarray:
    try:
        values = pd.to_numeric(scores[column], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{func} needs numbers in column {column!r} of the scores table. "
            f"Got {scores[column].dtype} values instead.",
            rule="numeric",
        ) from exc
    if not allow_nan:
        bad = ~np.isfinite(values)
        if bad.any():
            rows = scores.index[bad]
            raise DataValidationError(
                f"{func} needs a finite {column!r} for every customer. Found {int(bad.sum())} "
                f"missing or infinite (customers {', '.join(map(str, rows[:5]))}"
                f"{', ...' if len(rows) > 5 else ''}).",
                rule="finite",
                rows=rows,
            )
    return values


def _fraction(value: Any, name: str, func: str, *, low: float = 0.0, high: float = 1.0) -> float:
    if not isinstance(value, int | float | np.integer | np.floating) or isinstance(value, bool):
        raise _bad(name, func, f"a number between {low:g} and {high:g}", value)
    if not low <= float(value) <= high or math.isnan(float(value)):
        raise _bad(name, func, f"between {low:g} and {high:g}", value)
    return float(value)


def _count_below(values: np.ndarray) -> np.ndarray:
    """For every value, how many values are strictly smaller (ties share the count)."""
    ordered = np.sort(values, kind="stable")
    return np.searchsorted(ordered, values, side="left")


def _count_above(values: np.ndarray) -> np.ndarray:
    """For every value, how many values are strictly larger (ties share the count)."""
    ordered = np.sort(values, kind="stable")
    return len(values) - np.searchsorted(ordered, values, side="right")


def _categorical(codes: np.ndarray, labels: Sequence[str], index: pd.Index, name: str) -> pd.Series:
    cat = pd.Categorical.from_codes(codes, categories=list(labels), ordered=True)
    return pd.Series(cat, index=index, name=name)


# --------------------------------------------------------------------------- value tiers


def value_tiers(
    scores: pd.DataFrame,
    *,
    cuts: Sequence[float] = (0.05, 0.15, 0.30),
    labels: Sequence[str] = ("top", "high", "medium", "low"),
    by: str = "predicted_clv",
) -> pd.Series:
    """Value tier of every customer: the top 5%, the next 15%, the next 30% and the rest.

    Customers are ranked by ``by`` from the most valuable down. With ``cuts = (c1, c2, ...)``
    a customer is in the first tier when fewer than ``c1`` of all customers are worth
    strictly more, in the second when fewer than ``c1 + c2`` are, and so on; everybody else
    is in the last tier. So with 100 customers of distinct values the tiers hold exactly 5,
    15, 30 and 50 customers.

    Ties: customers with equal values always share a tier. A group of equal values that
    straddles a cut goes, as a whole, to the tier its middle customer would fall in (in
    the ranking, the group takes the places ``k`` to ``k + m - 1``; it lands where place
    ``k + (m - 1) / 2`` lands), so tiers stay as close to their shares as ties allow: a
    large block of customers worth nothing stays in the last tier rather than lifting the
    tier above it. The result depends neither on the order of the rows nor on customer ids.

    Parameters
    ----------
    scores
        The scores table.
    cuts
        Shares of customers in each tier but the last, from the top; each in (0, 1), the
        total below 1 (the last tier holds the rest). Default: 5%, 15%, 30% (rest 50%).
    labels
        Tier names, one more than ``cuts``, from the top. Default: top, high, medium, low.
    by
        The column that ranks customers; default ``predicted_clv``.

    Returns
    -------
    pandas.Series
        Ordered categorical ``value_tier`` indexed like ``scores`` (categories in the order
        of ``labels``).

    Raises
    ------
    InputError
        Bad ``cuts`` or ``labels``.
    DataValidationError
        ``by`` is missing from the table, or has missing or infinite values.
    """
    func = "value_tiers"
    shares = _cuts(cuts, func)
    names = _labels(labels, len(shares) + 1, func)
    if not isinstance(by, str):
        raise _bad("by", func, "the name of a column of the scores table", by)
    _check_frame(scores, [by], func)
    values = _numeric(scores, by, func)
    n = len(values)
    above = _count_above(values)
    equal = n - above - _count_below(values)
    middle = above + (equal - 1) / 2  # place of the middle customer of each tied group
    # Rounding keeps 100 x 0.3 from becoming 30.000000000000004 customers.
    limits = np.round(np.cumsum(shares) * n, 9)
    codes = np.searchsorted(limits, middle, side="right")
    return _categorical(codes, names, scores.index, "value_tier")


def _cuts(cuts: Any, func: str) -> list[float]:
    if isinstance(cuts, str) or not isinstance(cuts, Sequence) or len(cuts) == 0:
        raise _bad("cuts", func, "a non-empty sequence of shares of customers", cuts)
    shares = [_fraction(c, "cuts", func) for c in cuts]
    if any(c <= 0 or c >= 1 for c in shares):
        raise _bad("cuts", func, "shares of customers strictly between 0 and 1", tuple(cuts))
    if sum(shares) >= 1:
        raise _bad(
            "cuts", func, "shares adding up to less than 1 (the last tier is the rest)", tuple(cuts)
        )
    return shares


def _labels(labels: Any, expected: int, func: str) -> list[str]:
    if isinstance(labels, str) or not isinstance(labels, Sequence) or len(labels) != expected:
        raise _bad("labels", func, f"a sequence of {expected} names (one more than cuts)", labels)
    names = [str(label) for label in labels]
    if len(set(names)) != len(names):
        raise _bad("labels", func, "distinct names", labels)
    return names


# --------------------------------------------------------------------------- RFM


def _quintile(values: np.ndarray, *, higher_is_better: bool) -> np.ndarray:
    """Score 1 to 5: 1 + floor(5 x share of customers strictly worse)."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    worse = _count_below(values) if higher_is_better else _count_above(values)
    return np.minimum(1 + (5 * worse) // n, 5).astype(np.int64)


def rfm_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Quintile scores R, F and M (1 to 5, 5 best) and the combined FM score.

    - R from ``days_since_last_order``: fewer days score higher;
    - F from ``n_orders`` (or ``frequency + 1`` without it): more orders score higher;
    - M from the mean order value ``historic_revenue`` per order when the table has
      ``historic_revenue``, else from ``monetary_value``; a missing spend (none measured)
      ranks below every known one;
    - FM = (F + M) / 2 rounded half up, the score the rule table reads.

    A score is ``1 + floor(5 x share of customers strictly worse)``, at most 5: the best
    fifth scores 5, the worst fifth 1, and customers with equal values always share a
    score (the lower one, when ties straddle a fifth: with 60% single-order customers they
    all get F = 1 and two orders gets F = 4).

    Parameters
    ----------
    scores
        The scores table.

    Returns
    -------
    pandas.DataFrame
        Columns ``r_score``, ``f_score``, ``m_score``, ``fm_score`` (integers), and
        ``rfm_cell`` (for example ``"534"``), indexed like ``scores``.

    Raises
    ------
    DataValidationError
        Needed columns are missing, or recency or frequency has missing values.
    """
    func = "rfm_scores"
    _check_frame(scores, [], func)
    columns = set(scores.columns)
    missing = []
    if "days_since_last_order" not in columns:
        missing.append("'days_since_last_order'")
    if not columns & {"n_orders", "frequency"}:
        missing.append("'n_orders' (or 'frequency')")
    if not columns & {"historic_revenue", "monetary_value"}:
        missing.append("'historic_revenue' (or 'monetary_value')")
    if missing:
        raise DataValidationError(
            f"{func} needs the columns {', '.join(missing)} of the scores table; they are "
            f"missing (the table has: {', '.join(map(str, scores.columns)) or 'none'}).",
            rule="required_columns",
        )
    if "n_orders" in columns:
        orders = _numeric(scores, "n_orders", func)
    else:
        orders = _numeric(scores, "frequency", func) + 1
    if "historic_revenue" in columns:
        revenue = _numeric(scores, "historic_revenue", func, allow_nan=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            spend = np.where(orders > 0, revenue / np.where(orders > 0, orders, 1), np.nan)
    else:
        spend = _numeric(scores, "monetary_value", func, allow_nan=True)
    days = _numeric(scores, "days_since_last_order", func)
    r = _quintile(days, higher_is_better=False)
    f = _quintile(orders, higher_is_better=True)
    # No measured spend ranks below every measured one.
    m = _quintile(np.where(np.isfinite(spend), spend, -np.inf), higher_is_better=True)
    fm = (f + m + 1) // 2
    cell = pd.Series(r.astype(str), dtype=object) + f.astype(str) + m.astype(str)
    return pd.DataFrame(
        {"r_score": r, "f_score": f, "m_score": m, "fm_score": fm, "rfm_cell": cell.to_numpy()},
        index=scores.index,
    )


def rfm_segments(scores: pd.DataFrame) -> pd.Series:
    """Named RFM segment of every customer, from the R and FM scores of :func:`rfm_scores`.

    The rules (:data:`RFM_SEGMENT_RULES`; R = recency score, FM = frequency-monetary score,
    both 1 to 5 with 5 best; every (R, FM) pair falls under exactly one rule):

    - **champions**: R = 5 and FM 4-5: bought most recently, often and for a lot;
    - **loyal**: R 3-4 and FM 4-5: buy often and for a lot, fairly recently;
    - **potential loyalists**: R 4-5 and FM 2-3: recent customers with average activity;
    - **new**: R = 5 and FM = 1: bought most recently, but little so far;
    - **promising**: R = 4 and FM = 1: bought recently, but little so far;
    - **need attention**: R = 3 and FM 1-3: average recency, average activity or below;
    - **at risk**: R 1-2 and FM 3-4: bought often and for a lot, but long ago;
    - **can't lose them**: R 1-2 and FM = 5: the best customers once, not seen for long;
    - **hibernating**: R = 2 and FM 1-2: long ago, little activity;
    - **lost**: R = 1 and FM 1-2: longest ago, little activity.

    Parameters
    ----------
    scores
        The scores table (``days_since_last_order``, ``n_orders`` or ``frequency``, and
        ``historic_revenue`` or ``monetary_value``).

    Returns
    -------
    pandas.Series
        Categorical ``segment`` (categories in the order of the rules) indexed like ``scores``.

    Raises
    ------
    DataValidationError
        As :func:`rfm_scores`.
    """
    rfm = rfm_scores(scores)
    codes = _RFM_GRID[rfm["r_score"].to_numpy() - 1, rfm["fm_score"].to_numpy() - 1]
    cat = pd.Categorical.from_codes(codes, categories=list(RFM_SEGMENTS))
    return pd.Series(cat, index=scores.index, name="segment")


# --------------------------------------------------------------------------- lifecycle


def lifecycle_states(
    scores: pd.DataFrame,
    *,
    at_risk_below: float = 0.5,
    lapsed_below: float = 0.2,
    new_within_days: float = 90,
    overdue_factor: float = 1.5,
) -> pd.Series:
    """Lifecycle state of every customer: new, active, at risk or lapsed.

    The rules, applied in this order (the first that holds wins):

    1. **new**: the first purchase was at most ``new_within_days`` before the as-of date
       (``tenure_days <= new_within_days``): too early to judge, whatever P(alive) says;
    2. **lapsed**: ``p_alive < lapsed_below``: most likely gone;
    3. **at risk**: ``p_alive < at_risk_below``, or overdue: ``days_since_last_order >
       overdue_factor x average_days_between_orders`` (customers without a repeat purchase
       have no rhythm and are never overdue);
    4. **active**: everybody else.

    Parameters
    ----------
    scores
        The scores table (``p_alive``, ``tenure_days``, ``days_since_last_order``,
        ``average_days_between_orders``).
    at_risk_below
        P(alive) under which a customer is at risk; default 0.5.
    lapsed_below
        P(alive) under which a customer is lapsed; default 0.2, at most ``at_risk_below``.
    new_within_days
        Days since the first purchase within which a customer is new; default 90.
    overdue_factor
        How many of their own average gaps between orders a customer may stay away before
        being overdue; default 1.5.

    Returns
    -------
    pandas.Series
        Ordered categorical ``lifecycle_state`` (categories :data:`LIFECYCLE_STATES`)
        indexed like ``scores``.

    Raises
    ------
    InputError
        A threshold is out of range.
    DataValidationError
        Needed columns are missing, or ``p_alive``, ``tenure_days`` or
        ``days_since_last_order`` has missing values, or ``p_alive`` is outside [0, 1].
    """
    func = "lifecycle_states"
    at_risk = _fraction(at_risk_below, "at_risk_below", func)
    lapsed = _fraction(lapsed_below, "lapsed_below", func, high=at_risk)
    if (
        not isinstance(new_within_days, int | float | np.integer | np.floating)
        or isinstance(new_within_days, bool)
        or not new_within_days >= 0
    ):
        raise _bad("new_within_days", func, ">= 0", new_within_days)
    if (
        not isinstance(overdue_factor, int | float | np.integer | np.floating)
        or isinstance(overdue_factor, bool)
        or not overdue_factor > 0
    ):
        raise _bad("overdue_factor", func, "> 0", overdue_factor)
    _check_frame(
        scores,
        ["p_alive", "tenure_days", "days_since_last_order", "average_days_between_orders"],
        func,
    )
    p_alive = _numeric(scores, "p_alive", func)
    outside = (p_alive < 0) | (p_alive > 1)
    if outside.any():
        rows = scores.index[outside]
        raise DataValidationError(
            f"{func} needs 'p_alive' between 0 and 1. Found {int(outside.sum())} outside "
            f"(customers {', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''}).",
            rule="p_alive_range",
            rows=rows,
        )
    tenure = _numeric(scores, "tenure_days", func)
    since = _numeric(scores, "days_since_last_order", func)
    gap = _numeric(scores, "average_days_between_orders", func, allow_nan=True)
    with np.errstate(invalid="ignore"):
        overdue = np.isfinite(gap) & (since > overdue_factor * gap)
    codes = np.select(
        [tenure <= new_within_days, p_alive < lapsed, (p_alive < at_risk) | overdue],
        [0, 3, 2],
        default=1,
    )
    return _categorical(codes, LIFECYCLE_STATES, scores.index, "lifecycle_state")


# --------------------------------------------------------------------------- breakdown


def breakdown(
    scores: pd.DataFrame,
    by: str | pd.Series,
    *,
    value: str = "predicted_clv",
) -> pd.DataFrame:
    """Customers and value per group of an attribute, a tier or a segment.

    Parameters
    ----------
    scores
        The scores table.
    by
        The name of a column of ``scores`` (``region``, ``age_band``,
        ``acquisition_channel``...) or a Series indexed by the same customers (the result
        of :func:`value_tiers`, :func:`rfm_segments`...). Missing values form the group
        ``"(unknown)"``: no customer is dropped.
    value
        The value column; default ``predicted_clv``.

    Returns
    -------
    pandas.DataFrame
        One row per group, indexed by the group (named after ``by``; labels as strings),
        sorted by total value, largest first (equal totals: more customers first, then by
        label). Columns: ``customers``, ``share_of_customers``, ``total_<value>``,
        ``mean_<value>``, ``share_of_<value>`` (the group's total over the grand total;
        NaN when the grand total is 0) and, when the table has ``p_alive``,
        ``mean_p_alive``. Customers and both shares add up to all customers and to 1.

    Raises
    ------
    InputError
        ``by`` is neither a column nor a Series of the same customers.
    DataValidationError
        The value column is missing or has missing values.
    """
    func = "breakdown"
    if not isinstance(value, str):
        raise _bad("value", func, "the name of a column of the scores table", value)
    _check_frame(scores, [value], func)
    if isinstance(by, pd.Series):
        if len(by) != len(scores) or not by.index.sort_values().equals(scores.index.sort_values()):
            raise InputError(
                f"The 'by' Series of {func} must be indexed by the customers of the scores "
                f"table ({len(scores)} customers). Got a Series of {len(by)} rows with "
                "other customers instead."
            )
        groups = by.reindex(scores.index) if not by.index.equals(scores.index) else by
        name: Hashable = by.name if by.name is not None else "group"
    elif isinstance(by, str):
        if by not in scores.columns:
            raise InputError(
                f"The 'by' parameter of {func} must name a column of the scores table "
                f"({', '.join(map(str, scores.columns))}). Got {by!r} instead."
            )
        groups = scores[by]
        name = by
    else:
        raise _bad("by", func, "a column name or a Series indexed by customer_id", by)
    values = _numeric(scores, value, func)
    keys = groups.astype(str).mask(groups.isna(), UNKNOWN).to_numpy(dtype=object)
    frame = pd.DataFrame({"group": keys, "value": values})
    has_alive = "p_alive" in scores.columns
    if has_alive:
        frame["p_alive"] = _numeric(scores, "p_alive", func, allow_nan=True)
    grouped = frame.groupby("group", sort=True)
    out = pd.DataFrame({"customers": grouped.size()})
    n = len(frame)
    total = float(values.sum())
    out["share_of_customers"] = out["customers"] / n if n else np.nan
    out[f"total_{value}"] = grouped["value"].sum()
    out[f"mean_{value}"] = grouped["value"].mean()
    out[f"share_of_{value}"] = out[f"total_{value}"] / total if total != 0 else np.nan
    if has_alive:
        out["mean_p_alive"] = grouped["p_alive"].mean()
    out = out.reset_index().sort_values(
        [f"total_{value}", "customers", "group"], ascending=[False, False, True], kind="stable"
    )
    out = out.set_index("group")
    out.index.name = name
    return out


# --------------------------------------------------------------------------- concentration


def _sorted_values(scores: pd.DataFrame, value: str, func: str) -> np.ndarray:
    if not isinstance(value, str):
        raise _bad("value", func, "the name of a column of the scores table", value)
    _check_frame(scores, [value], func)
    values = _numeric(scores, value, func)
    if len(values) == 0:
        raise DataValidationError(f"{func} needs at least one customer. Got an empty table.")
    return np.sort(values)[::-1]


def value_concentration(
    scores: pd.DataFrame,
    *,
    value: str = "predicted_clv",
    shares: Sequence[float] = (0.01, 0.05, 0.1, 0.2, 0.5),
) -> pd.DataFrame:
    """Share of the total value held by the most valuable x% of customers.

    The top x% are the ``ceil(x x n)`` most valuable of the ``n`` customers (at least
    one); which of several equal-valued customers count makes no difference to the sum.
    With values 1 to 100 the top 5% hold (96 + ... + 100) / 5050 = 490 / 5050.

    Parameters
    ----------
    scores
        The scores table.
    value
        The value column; default ``predicted_clv``. Negative values (customers expected
        to cost more than they bring) count as they are.
    shares
        Shares of customers, each in (0, 1]; default 1%, 5%, 10%, 20%, 50%.

    Returns
    -------
    pandas.DataFrame
        One row per share: ``top_share_of_customers``, ``customers``, ``value_held`` and
        ``share_of_value`` (NaN when the total is 0).

    Raises
    ------
    InputError
        A share is out of range.
    DataValidationError
        The value column is missing, has missing values, or the table is empty.
    """
    func = "value_concentration"
    if isinstance(shares, str) or not isinstance(shares, Sequence) or len(shares) == 0:
        raise _bad("shares", func, "a non-empty sequence of shares of customers", shares)
    tops = [_fraction(s, "shares", func) for s in shares]
    if any(s <= 0 for s in tops):
        raise _bad("shares", func, "shares of customers in (0, 1]", tuple(shares))
    ordered = _sorted_values(scores, value, func)
    n = len(ordered)
    cumulative = np.concatenate([[0.0], np.cumsum(ordered)])
    total = cumulative[-1]
    counts = np.maximum(np.ceil(np.round(np.asarray(tops) * n, 9)).astype(np.int64), 1)
    held = cumulative[counts]
    return pd.DataFrame(
        {
            "top_share_of_customers": tops,
            "customers": counts,
            "value_held": held,
            "share_of_value": held / total if total != 0 else np.full(len(tops), np.nan),
        }
    )


def concentration_curve(
    scores: pd.DataFrame, *, value: str = "predicted_clv", points: int = 101
) -> pd.DataFrame:
    """Cumulative share of value against share of customers, most valuable first.

    The Lorenz curve seen from the top: at ``x`` the share of the total value held by the
    top ``x`` of customers, joined linearly between customers (0 at 0, 1 at 1; the diagonal
    when everybody is worth the same; bowed up the more value is concentrated).

    Parameters
    ----------
    scores
        The scores table.
    value
        The value column; default ``predicted_clv``.
    points
        Number of evenly spaced shares of customers from 0 to 1, at least 2; default 101.

    Returns
    -------
    pandas.DataFrame
        Columns ``share_of_customers`` and ``share_of_value`` (NaN when the total is 0).

    Raises
    ------
    InputError
        ``points`` is not an integer >= 2.
    DataValidationError
        The value column is missing, has missing values, or the table is empty.
    """
    func = "concentration_curve"
    if not isinstance(points, int | np.integer) or isinstance(points, bool) or points < 2:
        raise _bad("points", func, "an integer >= 2", points)
    ordered = _sorted_values(scores, value, func)
    n = len(ordered)
    cumulative = np.concatenate([[0.0], np.cumsum(ordered)])
    total = cumulative[-1]
    x = np.linspace(0.0, 1.0, int(points))
    y = np.interp(x, np.arange(n + 1) / n, cumulative)
    return pd.DataFrame(
        {
            "share_of_customers": x,
            "share_of_value": y / total if total != 0 else np.full(len(x), np.nan),
        }
    )


def gini_coefficient(scores: pd.DataFrame, *, value: str = "predicted_clv") -> float:
    """Gini coefficient of the value: 0 when everybody is worth the same, near 1 when one
    customer holds everything.

    Computed exactly from the sorted values ``x_(1) <= ... <= x_(n)``:
    ``G = 2 sum(i x_(i)) / (n sum(x)) - (n + 1) / n``, which is twice the area between the
    :func:`concentration_curve` and the diagonal. With values 1 to 100 it is 0.33. With
    negative values it can leave [0, 1]; NaN when the total is 0.

    Parameters
    ----------
    scores
        The scores table.
    value
        The value column; default ``predicted_clv``.

    Returns
    -------
    float
        The Gini coefficient.

    Raises
    ------
    DataValidationError
        The value column is missing, has missing values, or the table is empty.
    """
    ordered = _sorted_values(scores, value, "gini_coefficient")[::-1]
    n = len(ordered)
    total = float(ordered.sum())
    if total == 0:
        return math.nan
    ranks = np.arange(1, n + 1, dtype=float)
    return float(2.0 * np.dot(ranks, ordered) / (n * total) - (n + 1) / n)
