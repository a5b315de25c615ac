"""Revenue forecast of the existing customer base, per future week or month.

For sales and operations planning: how many orders, how much revenue and how much margin
the customers already in the summary are expected to bring in each coming period.

How a period's numbers are made
-------------------------------
- The as-of date is the summary's calibration end (``attrs["lifevalue"]["calibration_end"]``);
  the forecast covers the days after it. A transaction model's expected purchases in
  ``(T, T + t]`` are cumulative; the expected orders of a period are the difference of
  that curve at the period's last and first boundaries, summed over customers.
- Boundaries are real calendar days. ``period="months"`` follows calendar months (October
  has 31 days, February 28 or 29); the first month is the rest of the as-of date's month
  when the forecast does not start on the 1st. ``period="weeks"`` is consecutive blocks of
  seven days from the first forecast day. Each boundary is converted to the model's time
  unit exactly (:class:`lifevalue.units.TimeUnit`), never through a 30-day month.
- Revenue is each customer's expected orders times their expected spend per order: the
  Gamma-Gamma conditional expected spend when a fitted spend model is given, else the
  summary's ``monetary_value``, with customers without repeat purchases (whose
  ``monetary_value`` describes no repeat order) at the mean over repeat buyers. Margin is
  revenue times the margin rate (one number, or one per customer).
- Intervals (``_low`` / ``_high``) express the estimation uncertainty of both models'
  parameters: for each joint draw of the parameters (independent between the transaction
  and the spend model) the period's total over all customers is computed, and the
  interval is the equal-tailed quantile range of those totals at ``level``. They describe
  how well the *expected* values are known, not the chance variation of the orders that
  will really come in, which adds to it.

Memory grows with the batch of customers times the draws, never with all customers times
all draws.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from lifevalue.errors import DataValidationError, InputError
from lifevalue.models import BaseModel
from lifevalue.models._arrays import factorize, subset
from lifevalue.models.clv import observed_spend
from lifevalue.units import METADATA_KEY, TimeUnit

logger = logging.getLogger(__name__)

#: Forecast columns, in the order the result has them (after the period description).
FORECAST_COLUMNS: tuple[str, ...] = (
    "expected_orders",
    "expected_orders_low",
    "expected_orders_high",
    "expected_revenue",
    "expected_revenue_low",
    "expected_revenue_high",
    "expected_margin",
    "expected_margin_low",
    "expected_margin_high",
)
#: Period kinds the forecast knows.
PERIODS: tuple[str, ...] = ("weeks", "months")
# Draws x customers evaluated at once.
_BATCH_ELEMENTS = 2_000_000

SpendLike = BaseModel | pd.Series | float | None


def revenue_forecast(
    summary: pd.DataFrame,
    transactions: BaseModel,
    spend: SpendLike = None,
    *,
    periods: int = 12,
    period: str = "months",
    margin: float | pd.Series = 1.0,
    level: float = 0.9,
    n_draws: int = 200,
    start: Any = None,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Expected orders, revenue and margin of the existing customers per future period.

    Parameters
    ----------
    summary
        A customer summary (:meth:`lifevalue.data.CustomerSummary.to_pandas`) in the
        transaction model's time unit, its calibration end (the as-of date) in
        ``attrs["lifevalue"]["calibration_end"]``.
    transactions
        A fitted continuous-time transaction model (BG/NBD, MBG/NBD, Pareto/NBD).
    spend
        Expected value of an order: a fitted Gamma-Gamma model (its conditional expected
        spend, whose parameter uncertainty enters the intervals), a Series per customer
        (aligned on ``customer_id``) or one number. Default: the summary's
        ``monetary_value``, with customers without repeat purchases at the mean
        ``monetary_value`` of the repeat buyers.
    periods
        Number of future periods (default 12).
    period
        ``"months"`` (default; calendar months) or ``"weeks"`` (seven-day blocks from the
        first forecast day).
    margin
        Share of revenue that is margin: one rate between 0 and 1 (default 1: margin is
        revenue), or a Series per customer.
    level
        Coverage of the intervals (default 0.9).
    n_draws
        Parameter draws behind the intervals (default 200).
    start
        First day of the forecast (a date after the as-of date). Default: the day after
        the as-of date. Orders expected between the as-of date and ``start`` are left out.
    random_state
        Seed of the parameter draws (default 0: the same forecast every run).

    Returns
    -------
    pandas.DataFrame
        One row per period, indexed by ``period`` (1, 2, ...): ``period_start`` and
        ``period_end`` (first and last day, both included), ``days``, then
        :data:`FORECAST_COLUMNS`. ``attrs["lifevalue"]`` holds ``as_of``, ``period``,
        ``level``, ``n_draws``, ``n_customers``, the time unit and the models.

    Raises
    ------
    InputError
        For a bad option, an unfitted or discrete-time model.
    DataValidationError
        When the summary has no calibration end or breaks the models' rules.
    """
    period = _period_name(period)
    _check_options(periods, period, level, n_draws)
    if not isinstance(transactions, BaseModel) or not hasattr(transactions, "_expected_purchases"):
        raise InputError(
            "The 'transactions' parameter of revenue_forecast must be a fitted transaction "
            f"model (BG/NBD, MBG/NBD, Pareto/NBD). Got {type(transactions).__name__} instead."
        )
    transactions._check_fitted()
    if transactions.discrete_time:
        raise InputError(
            "revenue_forecast needs a continuous-time transaction model; "
            f"{type(transactions).__name__} counts whole purchase opportunities, which "
            "calendar periods do not divide. Use BG/NBD, MBG/NBD or Pareto/NBD."
        )
    as_of = _as_of(summary)
    first_day = _first_day(start, as_of)
    ends = _period_ends(first_day, periods, period)
    boundaries = [first_day - pd.Timedelta(days=1), *ends]
    unit = transactions.time_unit_
    # Boundary k as time after the as-of date in the model's unit (the end of a day).
    times = np.array(
        [TimeUnit.DAYS.convert(float((b - as_of).days), unit) for b in boundaries], dtype=float
    )

    arrays, labels = transactions._predict_arrays(summary)
    coded = [c for c in transactions.coded_columns if c in arrays]
    arrays = {**arrays, **factorize({c: arrays[c] for c in coded})}
    spend_model, spend_arrays = _spend(spend, summary, labels)
    margins = _margins(margin, labels)

    seeds = np.random.SeedSequence(random_state).generate_state(2)
    tx_params = _with_estimate(
        transactions, transactions.param_draws(n_draws, random_state=int(seeds[0]))
    )
    spend_params = None
    if spend_model is not None:
        spend_draws = spend_model.param_draws(n_draws, random_state=int(seeds[1]))
        spend_params = _with_estimate(spend_model, spend_draws)
    totals = _totals(
        transactions, tx_params, arrays, spend_model, spend_params, spend_arrays, margins, times
    )
    q = [(1 - level) / 2, (1 + level) / 2]
    frame = pd.DataFrame(
        {
            "period_start": [b + pd.Timedelta(days=1) for b in boundaries[:-1]],
            "period_end": ends,
        },
        index=pd.RangeIndex(1, periods + 1, name="period"),
    )
    frame["days"] = (frame["period_end"] - frame["period_start"]).dt.days + 1
    for name, values in zip(("orders", "revenue", "margin"), totals, strict=True):
        # values: (n_periods, 1 + n_draws), column 0 at the estimates
        low, high = np.nanquantile(values[:, 1:], q, axis=1)
        frame[f"expected_{name}"] = values[:, 0]
        frame[f"expected_{name}_low"] = low
        frame[f"expected_{name}_high"] = high
    frame.attrs[METADATA_KEY] = {
        "as_of": str(as_of.date()),
        "period": period,
        "level": level,
        "n_draws": n_draws,
        "n_customers": len(labels),
        "time_unit": unit.value,
        "transaction_model": transactions.model_name,
        "spend_model": spend_model.model_name if spend_model is not None else None,
    }
    return frame


# ------------------------------------------------------------------------ computing


def _totals(
    model: BaseModel,
    params: dict[str, np.ndarray],
    arrays: dict[str, np.ndarray],
    spend_model: BaseModel | None,
    spend_params: dict[str, np.ndarray] | None,
    spend_arrays: dict[str, np.ndarray],
    margins: np.ndarray,
    times: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per period and draw (column 0: the estimates), totals over customers.

    Customers are taken in batches so that a batch times the draws stays below
    ``_BATCH_ELEMENTS`` values.
    """
    n = len(margins)
    # Sums do not depend on the order of customers: sorted by frequency and T, each batch
    # holds few distinct (frequency, T), the pairs whose terms the models compute once.
    keys = [arrays[c] for c in ("T", "frequency") if c in arrays]
    order = np.lexsort(keys) if keys else np.arange(n)
    arrays = subset(arrays, order)
    spend_arrays = subset(spend_arrays, order)
    margins = margins[order]
    width = next(iter(params.values())).shape[0]
    n_periods = len(times) - 1
    out = [np.zeros((n_periods, width)) for _ in range(3)]
    batch = max(1, _BATCH_ELEMENTS // width)
    # Models whose expectation is P(alive) x purchases-if-alive compute P(alive) once.
    if_alive = getattr(model, "_expected_purchases_if_alive", None)
    p_alive = getattr(model, "_p_alive", None)
    split = if_alive is not None and p_alive is not None
    for lo in range(0, n, batch):
        part = subset(arrays, slice(lo, lo + batch))
        shape = (width, min(batch, n - lo))
        rows = slice(lo, lo + shape[1])
        with np.errstate(all="ignore"):
            # P(alive) once per batch; without the split it is inside the expectation.
            alive = np.broadcast_to(p_alive(params, part), shape) if split else np.ones(shape)  # type: ignore[misc]
            if spend_model is None:
                per_order = np.broadcast_to(spend_arrays["__spend"][rows], shape)
            else:
                spend_part = subset(spend_arrays, rows)
                spend_fn = spend_model._conditional_expected_spend  # type: ignore[attr-defined]
                per_order = np.broadcast_to(spend_fn(spend_params, spend_part), shape)
            revenue_weight = alive * per_order
            margin_weight = revenue_weight * margins[rows]
            previous = _cumulative(model, params, part, float(times[0]), shape, split=split)
            for k in range(n_periods):
                current = _cumulative(model, params, part, float(times[k + 1]), shape, split=split)
                step = current - previous
                out[0][k] += (alive * step).sum(axis=1)
                out[1][k] += (revenue_weight * step).sum(axis=1)
                out[2][k] += (margin_weight * step).sum(axis=1)
                previous = current
    return out[0], out[1], out[2]


def _cumulative(
    model: BaseModel,
    params: dict[str, np.ndarray],
    part: dict[str, np.ndarray],
    t: float,
    shape: tuple[int, int],
    *,
    split: bool,
) -> np.ndarray:
    """Expected purchases in (T, T + t] per draw and customer (if alive, when ``split``)."""
    if t <= 0:
        return np.zeros(shape)
    if split:
        values = model._expected_purchases_if_alive(params, part, future_t=t)  # type: ignore[attr-defined]
    else:
        values = model._expected_purchases(params, part, future_t=t)  # type: ignore[attr-defined]
    return np.broadcast_to(values, shape)


def _with_estimate(model: BaseModel, draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Parameter draws as columns (n + 1, 1), the estimates first."""
    return {
        name: np.concatenate([[model.params_[name]], draws[name]])[:, None]
        for name in model.param_names
    }


def _spend(
    spend: SpendLike, summary: pd.DataFrame, labels: pd.Index
) -> tuple[BaseModel | None, dict[str, np.ndarray]]:
    """The spend model (or None) and the arrays the spend is computed from."""
    if isinstance(spend, BaseModel):
        if not hasattr(spend, "_conditional_expected_spend"):
            raise InputError(
                "The 'spend' parameter of revenue_forecast must be a fitted Gamma-Gamma model, "
                f"a Series per customer or a number. Got {type(spend).__name__} instead."
            )
        spend._check_fitted()
        arrays, spend_labels = spend._predict_arrays(summary)
        if not spend_labels.equals(labels):
            raise DataValidationError(
                "The spend model and the transaction model read different customers from the "
                "summary.",
                rule="customer_id",
            )
        return spend, arrays
    if spend is None:
        if "monetary_value" not in summary.columns:
            raise DataValidationError(
                "revenue_forecast needs each customer's spend per order: give spend= (a fitted "
                "Gamma-Gamma model, a Series or a number) or a 'monetary_value' column. "
                f"Found: {', '.join(map(str, summary.columns))}.",
                rule="columns",
            )
        values = observed_spend(
            pd.to_numeric(summary["frequency"], errors="coerce").to_numpy(float),
            pd.to_numeric(summary["monetary_value"], errors="coerce").to_numpy(float),
        )
    else:
        values = _per_customer(spend, labels, "spend")
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataValidationError(
            f"The spend per order is missing or not finite for {int(bad.sum()):,} customer(s), "
            f"e.g. {', '.join(map(str, labels[bad][:10]))}.",
            rule="spend_finite",
            rows=list(labels[bad][:10]),
        )
    return None, {"__spend": values}


def _margins(margin: float | pd.Series, labels: pd.Index) -> np.ndarray:
    if isinstance(margin, pd.Series):
        return _per_customer(margin, labels, "margin")
    if not (_is_number(margin) and 0 <= margin <= 1):
        raise InputError(
            "The 'margin' parameter of revenue_forecast must be between 0 and 1 (or a Series "
            f"per customer). Got {margin!r} instead."
        )
    return np.full(len(labels), float(margin))


def _per_customer(value: Any, labels: pd.Index, name: str) -> np.ndarray:
    if isinstance(value, pd.Series):
        aligned = pd.to_numeric(value.reindex(labels), errors="coerce")
        missing = ~np.isfinite(aligned.to_numpy(float))
        if missing.any():
            raise DataValidationError(
                f"The {name} Series has no finite value for {int(missing.sum()):,} customer(s), "
                f"e.g. {', '.join(map(str, labels[missing][:10]))}.",
                rule=f"{name}_missing",
                rows=list(labels[missing][:10]),
            )
        return aligned.to_numpy(float)
    if not _is_number(value):
        raise InputError(
            f"The {name!r} parameter of revenue_forecast must be a number or a Series per "
            f"customer. Got {value!r} instead."
        )
    return np.full(len(labels), float(value))


# ------------------------------------------------------------------------- calendar


def _as_of(summary: pd.DataFrame) -> pd.Timestamp:
    meta = getattr(summary, "attrs", {}).get(METADATA_KEY) or {}
    value = meta.get("calibration_end")
    if not value:
        raise DataValidationError(
            "revenue_forecast needs the summary's as-of date in "
            "attrs['lifevalue']['calibration_end'] (lifevalue's summaries carry it); this "
            "summary has none.",
            rule="calibration_end",
        )
    try:
        return pd.Timestamp(value).normalize()
    except (TypeError, ValueError):
        raise DataValidationError(
            f"The summary's calibration end {value!r} is not a date.", rule="calibration_end"
        ) from None


def _first_day(start: Any, as_of: pd.Timestamp) -> pd.Timestamp:
    after = as_of + pd.Timedelta(days=1)
    if start is None:
        return after
    try:
        day = pd.Timestamp(start)
    except (TypeError, ValueError):
        day = pd.NaT
    if day is pd.NaT or pd.isna(day):
        raise InputError(
            f"The 'start' parameter of revenue_forecast must be a date. Got {start!r} instead."
        )
    day = day.tz_localize(None).normalize() if day.tz else day.normalize()
    if day < after:
        raise InputError(
            "The 'start' parameter of revenue_forecast must be after the as-of date "
            f"{as_of.date()} (from {after.date()} on). Got {day.date()} instead."
        )
    return day


def _period_ends(first_day: pd.Timestamp, periods: int, period: str) -> list[pd.Timestamp]:
    """Last day of each period: calendar month ends, or every seventh day."""
    if period == "weeks":
        return [first_day + pd.Timedelta(days=7 * k - 1) for k in range(1, periods + 1)]
    month_end = first_day + pd.offsets.MonthEnd(0)
    return [month_end + pd.offsets.MonthEnd(k) for k in range(periods)]


def _period_name(period: Any) -> Any:
    """``"week"``, ``"weekly"``, ``"W"`` ... read as ``"weeks"``; anything else as given."""
    try:
        return TimeUnit.parse(period).value
    except ValueError:
        return period


def _check_options(periods: Any, period: Any, level: Any, n_draws: Any) -> None:
    checks = [
        ("periods", _is_int(periods) and periods >= 1, "an integer >= 1", periods),
        ("period", period in PERIODS, "'weeks' or 'months'", period),
        ("level", _is_number(level) and 0 < level < 1, "between 0 and 1", level),
        ("n_draws", _is_int(n_draws) and n_draws >= 2, "an integer >= 2", n_draws),
    ]
    for name, ok, expected, got in checks:
        if not ok:
            raise InputError(
                f"The {name!r} parameter of revenue_forecast must be {expected}. "
                f"Got {got!r} instead."
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )
