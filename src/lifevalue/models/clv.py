"""Customer lifetime value as money, from a transaction model and a spend model.

CLV over a horizon H is margin x expected spend per purchase x the discounted expected
purchases. The annual discount rate d becomes a continuous rate per unit of the data,
``delta = ln(1 + d) / units_per_year``, so a purchase at time t is worth
``(1 + d) ** (-t / units_per_year)`` of one today: exact at every t, no 30-day month.
For continuous-time models the discounted purchases

    D(H) = int_0^H exp(-delta t) dE(t)
         = exp(-delta H) E(H) + delta int_0^H exp(-delta t) E(t) dt

(integration by parts of the expected cumulative purchases E(t)) are computed with
composite Gauss-Legendre quadrature, six nodes per year of horizon, which is exact to
many digits for the smooth E(t) of these models at a handful of evaluations.
Discrete-time models discount each period's expected purchases at the period's end.
Without a horizon, the model's closed-form discounted expected residual transactions
(DERT) are used, where the model has them.

Intervals come from the estimation uncertainty of both models' parameters (independent
estimates), see :mod:`lifevalue.models._uncertainty`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from lifevalue.errors import DataValidationError, InputError
from lifevalue.models._uncertainty import Factor, interval
from lifevalue.models.base import Arrays, BaseModel, Params, _check_level
from lifevalue.units import TimeUnit, continuous_discount_rate

SpendLike = BaseModel | pd.Series | float | None
#: Gauss-Legendre nodes per panel of the discounting integral.
QUADRATURE_NODES = 6
#: Most panels (a panel covers a year of horizon, or more beyond this many years).
MAX_PANELS = 60


def customer_lifetime_value(
    transactions: BaseModel,
    summary: pd.DataFrame,
    *,
    spend: SpendLike = None,
    horizon: float | None = 12.0,
    horizon_unit: TimeUnit | str = TimeUnit.MONTHS,
    annual_discount_rate: float = 0.1,
    margin: float | pd.Series = 1.0,
    level: float | None = None,
    n_draws: int = 500,
    method: str = "auto",
) -> pd.DataFrame:
    """Discounted value of each customer's future purchases.

    Parameters
    ----------
    transactions
        A fitted transaction model (BG/NBD, MBG/NBD, Pareto/NBD, BG/BB).
    summary
        Customers with the columns the models read, in the transaction model's unit.
    spend
        Expected value of a future purchase: a fitted Gamma-Gamma model (its conditional
        expected spend), a Series per customer (aligned on ``customer_id``), or one number.
        Default: the summary's ``monetary_value`` column as it is.
    horizon
        Length of the future to value, in ``horizon_unit`` (default 12 months). ``None``
        values the whole residual lifetime (the model's DERT, where it has one).
    horizon_unit
        Unit of ``horizon``; converted to the model's unit exactly.
    annual_discount_rate
        Yearly discount rate (0.1 for 10%), converted to the model's unit.
    margin
        Share of the spend that is profit: one rate, or a Series per customer.
    level
        When given (e.g. 0.9), add ``clv_low`` and ``clv_high``: the equal-tailed interval
        from the parameters' estimation uncertainty.
    n_draws, method
        Number of parameter draws and the interval method (``"auto"``, ``"normal"``,
        ``"delta"``, ``"bootstrap"``; see :mod:`lifevalue.models._uncertainty`).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``: ``expected_purchases`` (undiscounted, over the horizon;
        NaN for the infinite horizon), ``discounted_purchases``, ``expected_spend``,
        ``margin``, ``clv`` and, with ``level``, ``clv_low`` and ``clv_high``.
    """
    transactions._check_fitted()
    arrays, labels = transactions._predict_arrays(summary)
    discounted = discounted_purchases_function(
        transactions, horizon=horizon, horizon_unit=horizon_unit,
        annual_discount_rate=annual_discount_rate,
    )  # fmt: skip
    spend_factor, spend_arrays = _spend_factor(spend, summary, labels)
    arrays = {**arrays, **spend_arrays}
    margins = _per_customer(margin, labels, "margin")
    with np.errstate(all="ignore"):
        purchases = (
            transactions._expected_purchases(
                transactions.params_,
                arrays,
                future_t=_horizon_length(transactions, horizon, horizon_unit),
            )
            if horizon is not None
            else np.nan
        )
    frame = pd.DataFrame(
        {
            "expected_purchases": np.broadcast_to(purchases, len(labels)),
            "discounted_purchases": np.broadcast_to(
                _at_estimate(transactions, discounted, arrays), len(labels)
            ),
            "expected_spend": np.broadcast_to(
                spend_factor.at(spend_factor.theta, arrays), len(labels)
            ),
            "margin": margins,
        },
        index=labels,
    )
    frame["clv"] = frame["margin"] * frame["expected_spend"] * frame["discounted_purchases"]
    if level is None:
        return frame
    _check_level(level)
    band = interval(
        [transactions._factor(discounted), spend_factor],
        arrays,
        labels,
        name="clv",
        level=level,
        method=method,
        n_draws=n_draws,
        constant=margins,
    )
    return frame.join(band.drop(columns="clv"))


def discounted_purchases_function(
    model: BaseModel,
    *,
    horizon: float | None,
    horizon_unit: TimeUnit | str = TimeUnit.MONTHS,
    annual_discount_rate: float = 0.1,
) -> Callable[[Params, Arrays], np.ndarray]:
    """The discounted expected purchases of each customer, as a function of the parameters.

    Raises
    ------
    InputError
        For a bad horizon, or an infinite horizon on a model without closed-form DERT.
    """
    unit = model.time_unit_
    rate = continuous_discount_rate(annual_discount_rate, unit)
    if horizon is None:
        if not hasattr(model, "_discounted_expected_transactions"):
            raise InputError(
                f"{type(model).__name__} has no closed-form discounted expected residual "
                "transactions; give a finite horizon (for example horizon=120, "
                "horizon_unit='months')."
            )
        dert = model._discounted_expected_transactions  # type: ignore[attr-defined]
        return lambda params, data: dert(
            params, data, annual_discount_rate=annual_discount_rate, unit=unit
        )
    length = _horizon_length(model, horizon, horizon_unit)
    expected_at = model._expected_purchases  # type: ignore[attr-defined]
    if model.discrete_time:
        periods = np.arange(1, round(length) + 1, dtype=float)
        factors = np.exp(-rate * periods)

        def by_period(params: Params, data: Arrays) -> np.ndarray:
            previous: Any = 0.0
            total: Any = 0.0
            for t, factor in zip(periods, factors, strict=True):
                cumulative = expected_at(params, data, future_t=float(t))
                total = total + (cumulative - previous) * factor
                previous = cumulative
            return total

        return by_period
    # Composite Gauss-Legendre: one panel per year of horizon (at most MAX_PANELS), so
    # long horizons are integrated as accurately as short ones.
    years = TimeUnit.parse(unit).convert(length, TimeUnit.YEARS)
    panels = int(min(MAX_PANELS, max(1, math.ceil(years - 1e-9))))
    nodes, unit_weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    edges = np.linspace(0.0, length, panels + 1)
    half = np.diff(edges) / 2
    times = ((nodes[None, :] + 1) * half[:, None] + edges[:-1, None]).ravel()
    weights = (unit_weights[None, :] * half[:, None]).ravel() * rate * np.exp(-rate * times)
    end_factor = math.exp(-rate * length)

    # Models whose expectation is P(alive) x purchases-if-alive compute P(alive) once.
    if_alive = getattr(model, "_expected_purchases_if_alive", None)
    p_alive = getattr(model, "_p_alive", None)
    inner = if_alive if if_alive is not None and p_alive is not None else expected_at

    def by_parts(params: Params, data: Arrays) -> np.ndarray:
        total: Any = end_factor * inner(params, data, future_t=length)
        if rate > 0:
            for t, w in zip(times, weights, strict=True):
                total = total + w * inner(params, data, future_t=float(t))
        return total * p_alive(params, data) if inner is if_alive else total  # type: ignore[misc]

    return by_parts


def _at_estimate(
    model: BaseModel, function: Callable[[Params, Arrays], np.ndarray], arrays: Arrays
) -> np.ndarray:
    with np.errstate(all="ignore"):
        return function(model.params_, arrays)


def _horizon_length(model: BaseModel, horizon: float, horizon_unit: TimeUnit | str) -> float:
    if not (isinstance(horizon, int | float) and math.isfinite(horizon) and horizon > 0):
        raise InputError(f"The CLV horizon must be a number > 0 (or None). Got {horizon!r}.")
    length = TimeUnit.parse(horizon_unit).convert(float(horizon), model.time_unit_)
    if model.discrete_time and (round(length) < 1 or abs(round(length) - length) > 1e-6):
        raise InputError(
            f"{type(model).__name__} counts whole periods of one {model.time_unit_.value[:-1]}; "
            f"a horizon of {horizon} {TimeUnit.parse(horizon_unit).value} is {length:g} "
            "periods. Give a whole number of periods."
        )
    return length


def _spend_factor(
    spend: SpendLike, summary: pd.DataFrame, labels: pd.Index
) -> tuple[Factor, Arrays]:
    """Each customer's expected spend as an interval factor, and the arrays it reads."""
    if isinstance(spend, BaseModel):
        arrays, spend_labels = spend._predict_arrays(summary)
        if not spend_labels.equals(labels):
            raise DataValidationError(
                "The spend model and the transaction model read different customers from the "
                "summary.",
                rule="customer_id",
            )
        return spend._factor(spend._conditional_expected_spend), arrays  # type: ignore[attr-defined]
    if spend is None:
        if "monetary_value" not in summary.columns:
            raise DataValidationError(
                "CLV needs each customer's expected spend: give spend= (a fitted Gamma-Gamma "
                "model, a Series or a number) or a 'monetary_value' column.",
                rule="columns",
            )
        values = pd.to_numeric(summary["monetary_value"], errors="coerce").to_numpy(float)
    else:
        values = _per_customer(spend, labels, "spend")
    fixed = Factor(
        compute=lambda params, data: data["__spend"],
        names=(),
        theta=np.empty(0),
        covariance=np.empty((0, 0)),
        draws=lambda n, method: {},
    )
    return fixed, {"__spend": values}


def observed_spend(frequency: np.ndarray, monetary_value: np.ndarray) -> np.ndarray:
    """Each customer's spend per order without a spend model.

    The mean value of their repeat purchases, and for customers without one (whose
    ``monetary_value`` is 0 by convention) the mean over the repeat buyers: a single
    purchase says little about the next one, the population says more.
    """
    value = np.asarray(monetary_value, dtype=float)
    repeat = np.asarray(frequency, dtype=float) > 0
    fallback = float(np.nanmean(value[repeat])) if repeat.any() else 0.0
    return np.where(repeat, value, fallback)


def _per_customer(value: float | pd.Series, labels: pd.Index, name: str) -> np.ndarray:
    if isinstance(value, pd.Series):
        aligned = value.reindex(labels)
        missing = aligned.isna()
        if missing.any():
            raise DataValidationError(
                f"The {name} Series has no value for {int(missing.sum()):,} customer(s), e.g. "
                f"{', '.join(map(str, labels[missing.to_numpy()][:10]))}.",
                rule=f"{name}_missing",
                rows=list(labels[missing.to_numpy()][:10]),
            )
        return aligned.to_numpy(float)
    if not (isinstance(value, int | float) and math.isfinite(value)):
        raise InputError(f"The {name} must be a number or a Series per customer. Got {value!r}.")
    return np.full(len(labels), float(value))
