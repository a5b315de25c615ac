"""Compare transaction models on a calibration/holdout split and pick the best.

Each model is fitted on the calibration columns (``frequency``, ``recency``, ``T``) and
judged on what the customers really did in the holdout period (``frequency_holdout``
repeat purchases over ``duration_holdout``, ``revenue_holdout`` when present):

- fit: log-likelihood, AIC, BIC;
- per customer: mean absolute error and root mean squared error of the predicted
  holdout purchases;
- in aggregate: the relative tracking error of total holdout purchases;
- P(alive) calibration: customers in ten P(alive) bins, mean P(alive) against the share
  with any repeat purchase in the holdout (``calibration_error`` is their mean absolute
  gap, weighted by customers; ``p_alive_auc`` how well P(alive) ranks the active above
  the inactive). An alive customer need not buy within the holdout, so a gap remains
  even for a perfect model: compare models on it, do not read it as an absolute error;
- value ranking: the normalised Gini of holdout revenue ordered by predicted holdout
  value (expected purchases x expected spend): 1 is a perfect ranking, 0 a random one.

The best model is the one with the lowest holdout MAE by default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from lifevalue.errors import DataValidationError, InputError
from lifevalue.models.base import BaseModel, model_class
from lifevalue.models.clv import observed_spend

#: Models compared by default: the continuous-time, non-contractual ones.
DEFAULT_MODELS: tuple[str, ...] = ("bgnbd", "mbgnbd", "pnbd")
#: Criteria a best model can be chosen by, and whether lower is better.
CRITERIA: dict[str, bool] = {
    "mae": True,
    "rmse": True,
    "abs_tracking_error": True,
    "calibration_error": True,
    "aic": True,
    "bic": True,
    "log_likelihood": False,
    "gini": False,
}


@dataclass
class ModelComparison:
    """What :func:`compare_models` found.

    Attributes
    ----------
    table
        One row per model: the metrics named in the module's description.
    calibration
        Per model, the P(alive) calibration table (bin, customers, mean P(alive), share
        active in the holdout).
    best
        Name of the best model by ``criterion``.
    criterion
        The metric the best model was chosen by.
    models
        The fitted models, by name.
    """

    table: pd.DataFrame
    calibration: dict[str, pd.DataFrame]
    best: str
    criterion: str
    models: dict[str, BaseModel] = field(repr=False)


def compare_models(
    summary: pd.DataFrame,
    *,
    models: Sequence[str | BaseModel] = DEFAULT_MODELS,
    criterion: str = "mae",
    spend: BaseModel | None = None,
) -> ModelComparison:
    """Fit each model on the calibration period and score it on the holdout.

    Parameters
    ----------
    summary
        A summary with a holdout period (``frequency_holdout``, ``duration_holdout``;
        ``revenue_holdout`` for the value ranking), its time unit in the metadata.
    models
        Model names (``"bgnbd"``, ``"mbgnbd"``, ``"pnbd"``...) or unfitted model objects.
    criterion
        Metric the best model is chosen by (see :data:`CRITERIA`); default holdout MAE.
    spend
        A fitted spend model (Gamma-Gamma) for the value ranking; without it each
        customer's expected spend is their calibration ``monetary_value``, or the mean
        over repeat buyers for those without repeat purchases.

    Raises
    ------
    DataValidationError
        If the summary has no holdout columns.
    InputError
        For an unknown model or criterion.
    """
    if criterion not in CRITERIA:
        raise InputError(
            f"Unknown comparison criterion {criterion!r}: expected one of {', '.join(CRITERIA)}."
        )
    _check_holdout(summary)
    actual = summary["frequency_holdout"].to_numpy(float)
    duration = summary["duration_holdout"].to_numpy(float)
    revenue = (
        summary["revenue_holdout"].to_numpy(float)
        if "revenue_holdout" in summary.columns
        else actual
    )
    spend_values = _expected_spend(summary, spend)
    rows: dict[str, dict[str, float]] = {}
    calibration: dict[str, pd.DataFrame] = {}
    fitted: dict[str, BaseModel] = {}
    for item in models:
        model = model_class(item)() if isinstance(item, str) else item
        model.fit(summary)
        arrays, _ = model._predict_arrays(summary)
        with np.errstate(all="ignore"):
            predicted = np.broadcast_to(
                model._expected_purchases(model.params_, arrays, future_t=duration),  # type: ignore[attr-defined]
                len(actual),
            )
            p_alive = np.broadcast_to(model._p_alive(model.params_, arrays), len(actual))  # type: ignore[attr-defined]
        name = model.model_name
        fitted[name] = model
        calibration[name] = _calibration_table(p_alive, actual > 0)
        errors = predicted - actual
        rows[name] = {
            "log_likelihood": model.log_likelihood_,
            "aic": model.aic_,
            "bic": model.bic_,
            "mae": float(np.mean(np.abs(errors))),
            "rmse": float(np.sqrt(np.mean(errors**2))),
            "predicted_total": float(predicted.sum()),
            "actual_total": float(actual.sum()),
            "tracking_error": float(predicted.sum() / actual.sum() - 1),
            "abs_tracking_error": float(abs(predicted.sum() / actual.sum() - 1)),
            "calibration_error": _calibration_error(calibration[name]),
            "p_alive_auc": _auc(p_alive, actual > 0),
            "gini": normalised_gini(revenue, predicted * spend_values),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "model"
    lower = CRITERIA[criterion]
    best = str(table[criterion].idxmin() if lower else table[criterion].idxmax())
    return ModelComparison(table, calibration, best, criterion, fitted)


def normalised_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of ``actual`` ordered by ``predicted``, divided by its best possible value.

    1 means the prediction ranks customers exactly as their actual values do, 0 no better
    than chance. Ties in the prediction are broken against the ranking (conservative).
    """
    actual = np.asarray(actual, dtype=float)
    predicted = np.asarray(predicted, dtype=float)

    def gini(order_by: np.ndarray) -> float:
        # Descending by the score; among ties, the smaller actual values first.
        order = np.lexsort((actual, -order_by))
        cumulative = np.cumsum(actual[order]) / actual.sum()
        n = len(actual)
        return float(cumulative.sum() / n - (n + 1) / (2 * n))

    if actual.sum() <= 0:
        return float("nan")
    return gini(predicted) / gini(actual)


def _calibration_table(p_alive: np.ndarray, active: np.ndarray, bins: int = 10) -> pd.DataFrame:
    ranks = stats.rankdata(p_alive, method="ordinal")
    group = np.minimum((ranks - 1) * bins // len(p_alive), bins - 1)
    frame = pd.DataFrame({"bin": group + 1, "p_alive": p_alive, "active": active})
    table = frame.groupby("bin").agg(
        customers=("p_alive", "size"),
        mean_p_alive=("p_alive", "mean"),
        share_active=("active", "mean"),
    )
    return table


def _calibration_error(table: pd.DataFrame) -> float:
    gap = (table["mean_p_alive"] - table["share_active"]).abs()
    return float(np.average(gap, weights=table["customers"]))


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _expected_spend(summary: pd.DataFrame, spend: BaseModel | None) -> np.ndarray:
    if spend is not None:
        return spend.conditional_expected_spend(summary).to_numpy(float)  # type: ignore[attr-defined]
    if "monetary_value" not in summary.columns:
        return np.ones(len(summary))
    return observed_spend(summary["frequency"].to_numpy(float), summary["monetary_value"])


def holdout_by_frequency(
    model: BaseModel, summary: pd.DataFrame, *, max_frequency: int = 7
) -> pd.DataFrame:
    """Mean holdout purchases, real and predicted, by calibration frequency.

    The classic check of a fitted model: customers grouped by how many repeat purchases
    they made in the calibration period (the last group holds ``max_frequency`` or more),
    and in each group the mean number they really made in the holdout against the mean
    the model expected given each customer's history.

    Parameters
    ----------
    model
        A repeat-purchase model fitted on the calibration columns of ``summary``.
    summary
        A summary with a holdout (``frequency_holdout``, ``duration_holdout``).
    max_frequency
        The last group's lower bound (default 7).

    Returns
    -------
    pandas.DataFrame
        ``frequency``, ``frequency_label`` (``"7+"`` for the last group), ``customers``,
        ``actual``, ``predicted``.
    """
    _check_holdout(summary)
    predicted = model.expected_purchases(  # type: ignore[attr-defined]
        summary, future_t=summary["duration_holdout"].to_numpy(float)
    )
    group = summary["frequency"].clip(upper=max_frequency).astype(int).to_numpy()
    frame = pd.DataFrame(
        {
            "frequency": group,
            "actual": summary["frequency_holdout"].to_numpy(float),
            "predicted": np.asarray(predicted, dtype=float),
        }
    )
    table = frame.groupby("frequency").agg(
        customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")
    )
    table = table.reset_index()
    label = table["frequency"].astype(str)
    table.insert(1, "frequency_label", label.where(table["frequency"] < max_frequency, label + "+"))
    return table


def tracking(
    model: BaseModel,
    daily: pd.DataFrame,
    *,
    calibration_end: object,
    period_days: int = 7,
) -> pd.DataFrame:
    """Repeat purchases of the whole base per period, real and expected by the model.

    The expected count of a period sums, over the customers born by the calibration end,
    the model's expected repeat purchases of a new customer over the time since its first
    purchase (:meth:`expected_purchases_new_customer`): the model knows when each customer
    arrived and nothing else, so the curve tests the model, not the customers' histories.

    Parameters
    ----------
    model
        A repeat-purchase model fitted on the calibration period.
    daily
        :func:`lifevalue.data.tracking.daily_occasions` of the calibration period's
        customers (``born_by`` = the calibration end), through the holdout.
    calibration_end
        The last day of the calibration period.
    period_days
        Length of a period in days (default 7: weeks from the first purchase day).

    Returns
    -------
    pandas.DataFrame
        One row per period (the last one ends with the last day seen, so it may be
        shorter): ``period_start``, ``days``, ``actual``, ``predicted``,
        ``cumulative_actual``, ``cumulative_predicted``, ``holdout`` (the period starts
        after the calibration end).
    """
    if daily.empty:
        raise DataValidationError("Tracking needs purchases; the daily counts are empty.")
    unit_days = model.time_unit_.days
    start = daily.index.min()
    offsets = ((daily.index - start) / pd.Timedelta(days=1)).to_numpy(float)
    births = daily["first_purchases"].to_numpy(float)
    last = offsets.max() + 1  # the end of the last day seen; the last period may be short
    edges = np.append(np.arange(0.0, last, period_days), last)
    # Cumulative expected repeat purchases at each edge, summed over the birth days.
    age = np.clip(edges[:, None] - offsets[None, births > 0] - 1.0, 0.0, None) / unit_days
    curve = np.asarray(
        model.expected_purchases_new_customer(t=age.ravel()),  # type: ignore[attr-defined]
        dtype=float,
    ).reshape(age.shape)
    cumulative_predicted = curve @ births[births > 0]
    period = np.searchsorted(edges, offsets, side="right") - 1
    actual = np.bincount(
        period, weights=daily["repeat_purchases"].to_numpy(float), minlength=len(edges) - 1
    )[: len(edges) - 1]
    table = pd.DataFrame(
        {
            "period_start": start + pd.to_timedelta(edges[:-1], unit="D"),
            "days": np.diff(edges),
            "actual": actual,
            "predicted": np.diff(cumulative_predicted),
        }
    )
    table["cumulative_actual"] = table["actual"].cumsum()
    table["cumulative_predicted"] = table["predicted"].cumsum()
    table["holdout"] = table["period_start"] > pd.Timestamp(calibration_end)
    return table


def _check_holdout(summary: pd.DataFrame) -> None:
    missing = [c for c in ("frequency_holdout", "duration_holdout") if c not in summary.columns]
    if missing:
        raise DataValidationError(
            "Comparing models needs a summary with a holdout period (summarise with an "
            f"observation end after the calibration end); missing: {', '.join(missing)}.",
            rule="columns",
        )
