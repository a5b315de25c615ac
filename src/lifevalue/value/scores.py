"""Net-profit customer lifetime value per customer: the scores table.

From a customer summary (in any time unit) and fitted models, each customer gets the
score fields marketers know:

- ``historic_clv``: net profit so far: revenue net of returns times the gross-margin rate
  (or the log's own margin or cost), less a cost to serve per order;
- ``predicted_clv`` (with ``predicted_clv_low`` and ``predicted_clv_high``): the
  discounted net profit of the purchases expected over the horizon: margin x expected
  spend x discounted expected orders, less the discounted cost to serve them; the interval
  comes from the models' parameter uncertainty;
- ``total_clv`` = historic + predicted;
- ``predicted_orders`` (undiscounted, over the horizon), ``p_alive``,
  ``churn_probability`` = 1 - P(alive);
- ``average_days_between_orders``: first to last purchase over the repeat purchases (NaN
  with no repeat purchase: there is no rhythm to measure);
- ``expected_next_order_date``: the as-of date plus the median waiting time to the next
  purchase of a customer still alive (the purchase rate's posterior is Gamma(r + x,
  alpha + T), so the wait is Lomax: median (alpha + T)(2^(1 / (r + x)) - 1)); NaT when
  the customer is more likely gone than alive (P(alive) < 0.5), or when the model has no
  gamma purchase rate.

Customers with a single purchase get honest values: the models give them a P(alive) and
expected orders from the population, and the spend model the population's mean spend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lifevalue.errors import DataValidationError, InputError
from lifevalue.models import BaseModel
from lifevalue.models.clv import customer_lifetime_value, observed_spend
from lifevalue.units import METADATA_KEY, TimeUnit, continuous_discount_rate

#: Score columns, in the order the table has them.
SCORE_COLUMNS: tuple[str, ...] = (
    "historic_clv",
    "predicted_clv",
    "predicted_clv_low",
    "predicted_clv_high",
    "total_clv",
    "predicted_orders",
    "p_alive",
    "churn_probability",
    "expected_next_order_date",
    "average_days_between_orders",
)


@dataclass(frozen=True)
class Profit:
    """How revenue becomes profit.

    Parameters
    ----------
    margin_rate
        Gross margin as a share of revenue, used where the log has no cost or margin
        column (the summary's ``historic_margin``). Default 1: revenue counts as profit.
    cost_to_serve
        Cost of handling one order (shipping, support), in the currency, taken from the
        margin of every order, past and predicted. Default 0.
    use_logged_margin
        Use each customer's own margin share (``historic_margin / historic_revenue``) where
        the summary has it; ``margin_rate`` then covers customers without revenue.
    """

    margin_rate: float = 1.0
    cost_to_serve: float = 0.0
    use_logged_margin: bool = True

    def __post_init__(self) -> None:
        if not (_finite(self.margin_rate) and 0 <= self.margin_rate <= 1):
            raise InputError(
                f"The 'margin_rate' parameter of Profit must be between 0 and 1. "
                f"Got {self.margin_rate!r} instead."
            )
        if not (_finite(self.cost_to_serve) and self.cost_to_serve >= 0):
            raise InputError(
                f"The 'cost_to_serve' parameter of Profit must be >= 0. "
                f"Got {self.cost_to_serve!r} instead."
            )


def score_customers(
    summary: pd.DataFrame,
    transactions: BaseModel,
    spend: BaseModel | None = None,
    *,
    profit: Profit | None = None,
    horizon: float = 12.0,
    horizon_unit: TimeUnit | str = TimeUnit.MONTHS,
    annual_discount_rate: float = 0.1,
    level: float = 0.9,
    currency: str | None = None,
) -> pd.DataFrame:
    """The scores table: net-profit CLV and its companions, one row per customer.

    Parameters
    ----------
    summary
        A customer summary (:meth:`lifevalue.data.CustomerSummary.to_pandas`), its time
        unit and calibration end in ``attrs["lifevalue"]``; the calibration end is the
        as-of date of the scores.
    transactions
        A fitted transaction model (BG/NBD, MBG/NBD, Pareto/NBD).
    spend
        A fitted Gamma-Gamma model; without it each customer's expected spend is their
        ``monetary_value`` (the mean over repeat buyers for those without repeat purchases).
    profit
        Margin and cost to serve; default: revenue is profit.
    horizon, horizon_unit
        The future valued by ``predicted_clv`` (default 12 months).
    annual_discount_rate
        Yearly discount rate, converted to the summary's unit exactly.
    level
        Coverage of the ``predicted_clv`` interval.
    currency
        Currency of the amounts, recorded in the result's metadata.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: :data:`SCORE_COLUMNS`, then ``margin_share``,
        ``expected_spend``, the history (``frequency``, ``recency_days``, ``tenure_days``,
        ``days_since_last_order``, ``n_orders``, ``historic_revenue``, ``monetary_value``,
        ``first_purchase_date``, ``last_purchase_date``) and any other summary columns
        (acquisition channel and campaign, ...). ``attrs["lifevalue"]`` holds ``as_of``,
        ``horizon_months``, ``currency``, ``annual_discount_rate`` and the models.
    """
    profit = profit or Profit()
    _require(summary, ("customer_id", "frequency", "recency", "T", "monetary_value"))
    transactions._check_fitted()
    meta = dict(summary.attrs.get(METADATA_KEY) or {})
    unit = transactions.time_unit_
    as_of = _as_of(meta)
    frame = summary.set_index("customer_id", drop=False)
    frame.attrs = summary.attrs
    margin_share = _margin_share(frame, profit)
    spend_values: Any = spend if spend is not None else _observed_spend(frame)
    clv = customer_lifetime_value(
        transactions,
        frame,
        spend=spend_values,
        horizon=horizon,
        horizon_unit=horizon_unit,
        annual_discount_rate=annual_discount_rate,
        margin=pd.Series(margin_share, index=frame.index),
        level=level,
    )
    serve = profit.cost_to_serve
    revenue = _column(frame, "historic_revenue", fallback=None)
    if revenue is None:
        # Without the history columns: the calibration purchases at their mean value.
        revenue = frame["monetary_value"].to_numpy(float) * (frame["frequency"].to_numpy() + 1)
    n_orders = _column(frame, "n_orders", fallback=frame["frequency"].to_numpy(float) + 1)
    historic = revenue * margin_share - serve * n_orders
    served = serve * clv["discounted_purchases"].to_numpy()
    predicted = clv["clv"].to_numpy() - served
    p_alive = transactions.probability_alive(frame).to_numpy()  # type: ignore[attr-defined]
    days_per_unit = unit.days
    recency_days = frame["recency"].to_numpy(float) * days_per_unit
    tenure_days = frame["T"].to_numpy(float) * days_per_unit
    frequency = frame["frequency"].to_numpy(float)
    scores = pd.DataFrame(
        {
            "historic_clv": historic,
            "predicted_clv": predicted,
            "predicted_clv_low": clv["clv_low"].to_numpy() - served,
            "predicted_clv_high": clv["clv_high"].to_numpy() - served,
            "total_clv": historic + predicted,
            "predicted_orders": clv["expected_purchases"].to_numpy(),
            "p_alive": p_alive,
            "churn_probability": 1.0 - p_alive,
            "expected_next_order_date": _next_order(transactions, frame, p_alive, as_of),
            "average_days_between_orders": np.where(
                frequency > 0, recency_days / np.maximum(frequency, 1), np.nan
            ),
            "margin_share": margin_share,
            "expected_spend": clv["expected_spend"].to_numpy(),
            "frequency": frequency,
            "recency_days": recency_days,
            "tenure_days": tenure_days,
            "days_since_last_order": tenure_days - recency_days,
            "n_orders": n_orders,
            "historic_revenue": revenue,
        },
        index=frame.index,
    )
    rest = [c for c in frame.columns if c not in scores.columns and c != "customer_id"]
    scores = scores.join(frame[rest].drop(columns=["recency", "T"], errors="ignore"))
    scores.attrs[METADATA_KEY] = {
        "as_of": None if as_of is None else str(as_of.date()),
        "horizon": float(horizon),
        "horizon_unit": TimeUnit.parse(horizon_unit).value,
        "horizon_months": TimeUnit.parse(horizon_unit).convert(float(horizon), "months"),
        "annual_discount_rate": annual_discount_rate,
        "continuous_discount_rate_per_unit": continuous_discount_rate(annual_discount_rate, unit),
        "time_unit": unit.value,
        "currency": currency,
        "transaction_model": transactions.model_name,
        "spend_model": None if spend is None else spend.model_name,
        "margin_rate": profit.margin_rate,
        "cost_to_serve": serve,
        "level": level,
    }
    return scores


def _next_order(
    model: BaseModel, frame: pd.DataFrame, p_alive: np.ndarray, as_of: pd.Timestamp | None
) -> pd.Series:
    params = model.params_
    if as_of is None or not {"r", "alpha"} <= set(params):
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    shape = params["r"] + frame["frequency"].to_numpy(float)
    rate = params["alpha"] + frame["T"].to_numpy(float)
    wait_units = rate * np.expm1(math.log(2.0) / shape)
    wait = pd.to_timedelta(wait_units * model.time_unit_.days, unit="D")
    dates = pd.Series(as_of + wait, index=frame.index)
    return dates.where(p_alive >= 0.5)


def _margin_share(frame: pd.DataFrame, profit: Profit) -> np.ndarray:
    share = np.full(len(frame), profit.margin_rate)
    if profit.use_logged_margin and {"historic_margin", "historic_revenue"} <= set(frame.columns):
        revenue = frame["historic_revenue"].to_numpy(float)
        margin = frame["historic_margin"].to_numpy(float)
        known = np.isfinite(margin) & (revenue > 0)
        share[known] = np.clip(margin[known] / revenue[known], -1.0, 1.0)
    return share


def _observed_spend(frame: pd.DataFrame) -> pd.Series:
    values = observed_spend(frame["frequency"].to_numpy(float), frame["monetary_value"])
    return pd.Series(values, index=frame.index)


def _column(frame: pd.DataFrame, name: str, *, fallback: Any) -> Any:
    if name in frame.columns:
        return frame[name].to_numpy(float)
    return fallback


def _as_of(meta: dict[str, Any]) -> pd.Timestamp | None:
    value = meta.get("calibration_end")
    return pd.Timestamp(value).normalize() if value else None


def _require(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"Scoring needs a customer summary with {', '.join(columns)}; missing: "
            f"{', '.join(missing)}. Found: {', '.join(map(str, frame.columns))}.",
            rule="columns",
        )


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
