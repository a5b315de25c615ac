"""Drivers of value: which attributes and behaviours go with higher customer value.

Two views, both as tidy tables:

* :func:`group_differences`: per attribute and group (region, channel, age band, or a
  behaviour cut into quantile bands), the group's mean value and its difference from the
  overall mean (or from a reference group), with a Welch t confidence interval.
* :func:`permutation_importance_table`: how much a fitted
  :class:`~lifevalue.value.leads.LeadModel` loses when one feature is shuffled
  (scikit-learn's ``permutation_importance``, seeded).

Differences are associations, not causes: a channel whose customers are worth more may
attract richer regions.

The interval (Welch)
--------------------
Against the overall mean, group *g* (``n_g`` customers, mean ``m_g``, variance ``s_g^2``)
is compared with the rest (``n_r``, ``m_r``, ``s_r^2``): with ``w = n_g / N``,
``m_g - m = (1 - w) (m_g - m_r)``, so the difference is ``(1 - w)(m_g - m_r)`` with
standard error ``(1 - w) sqrt(s_g^2 / n_g + s_r^2 / n_r)`` and Welch-Satterthwaite
degrees of freedom. Against a reference group, the difference is ``m_g - m_ref`` with
standard error ``sqrt(s_g^2 / n_g + s_ref^2 / n_ref)``. The interval is
``difference +- t_{(1 + level) / 2, df} x standard error``; groups of fewer than two
customers (or with no one left to compare) get no interval. ``significant`` is true when
the interval excludes 0. Welch's t does not assume equal variances, and with the sizes
of customer groups (tens and more) its normal approximation holds even for skewed value.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.inspection import permutation_importance

from lifevalue.errors import DataValidationError, InputError
from lifevalue.value.leads import LeadModel

__all__ = ["MISSING_GROUP", "group_differences", "permutation_importance_table"]

logger = logging.getLogger(__name__)

#: Label of the group of customers whose attribute is missing.
MISSING_GROUP = "(missing)"

_COLUMNS = (
    "attribute",
    "group",
    "customers",
    "share",
    "mean_value",
    "difference",
    "difference_low",
    "difference_high",
    "p_value",
    "significant",
    "rank",
)


def _bad(name: str, func: str, expectation: str, value: Any) -> InputError:
    return InputError(
        f"The {name!r} parameter of {func} must be {expectation}. Got {value!r} instead."
    )


def _groups(column: pd.Series, bins: int) -> pd.Series:
    """Group labels: the values, or quantile bands for a numeric column with many values."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique() > bins:
        bands = pd.qcut(column, bins, duplicates="drop")
        labels = bands.astype(object).map(
            lambda b: f"{b.left:g} to {b.right:g}", na_action="ignore"
        )
        return labels.where(bands.notna(), MISSING_GROUP)
    return column.astype(object).where(column.notna(), MISSING_GROUP)


def group_differences(
    scores: pd.DataFrame,
    by: str | Sequence[str],
    *,
    value: str = "predicted_clv",
    level: float = 0.95,
    reference: Any = None,
    bins: int = 4,
) -> pd.DataFrame:
    """Mean value per group of each attribute, and its difference with a confidence interval.

    Parameters
    ----------
    scores
        The scores table (one row per customer); not changed.
    by
        Column or columns to group by: attributes (``region``, ``acquisition_channel``,
        ...) or behaviours. A numeric column with more than ``bins`` distinct values is
        cut into ``bins`` quantile bands (labelled ``"low to high"``); missing values form
        the group ``"(missing)"``.
    value
        Column of value to compare (default ``predicted_clv``).
    level
        Confidence level of the intervals, strictly between 0 and 1 (default 0.95).
    reference
        ``None`` (default): compare each group with the overall mean of its attribute.
        Otherwise a group label: compare each group with that group (which gets a
        difference of 0 and no interval); it must exist in every attribute of ``by``.
    bins
        Quantile bands of numeric columns with many values (default 4).

    Returns
    -------
    pandas.DataFrame
        One row per attribute and group: ``attribute``, ``group``, ``customers``,
        ``share`` (of the customers), ``mean_value``, ``difference``,
        ``difference_low``, ``difference_high`` (the Welch interval of the module's
        docstring), ``p_value`` (two-sided Welch test of no difference),
        ``significant`` (interval excludes 0) and ``rank`` (1 is the group of highest
        mean value within its attribute; ties keep the order in which the groups first
        appear). Sorted by attribute (in the order of ``by``) then rank.
        ``attrs["lifevalue"]`` holds ``value``, ``level`` and ``compared_to``.

    Raises
    ------
    InputError
        Bad options, or a reference group an attribute does not have.
    DataValidationError
        Columns missing from the scores table, or a missing or infinite value.
    """
    func = "group_differences"
    if not isinstance(scores, pd.DataFrame):
        raise InputError(
            f"{func} expects the scores table as a pandas DataFrame. "
            f"Got {type(scores).__name__} instead."
        )
    columns = [by] if isinstance(by, str) else list(by)
    if not columns or not all(isinstance(c, str) for c in columns):
        raise _bad("by", func, "a column name or a non-empty sequence of them", by)
    if not isinstance(value, str):
        raise _bad("value", func, "a column name", value)
    if not isinstance(level, float | int) or isinstance(level, bool) or not 0 < level < 1:
        raise _bad("level", func, "between 0 and 1 (exclusive)", level)
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
        raise _bad("bins", func, "an integer >= 2", bins)
    missing = [c for c in [value, *columns] if c not in scores.columns]
    if missing:
        raise DataValidationError(
            f"{func} needs the columns {', '.join(map(repr, missing))} of the scores table; "
            f"they are missing (the table has: {', '.join(map(str, scores.columns)) or 'none'}).",
            rule="required_columns",
        )
    try:
        y = pd.to_numeric(scores[value]).astype(float)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{func} needs numbers in column {value!r} of the scores table. "
            f"Got {scores[value].dtype} values instead.",
            rule="numeric",
        ) from exc
    bad = ~np.isfinite(y.to_numpy())
    if bad.any():
        rows = scores.index[bad]
        raise DataValidationError(
            f"{func} needs a finite {value!r} for every customer. Found {int(bad.sum())} "
            f"missing or infinite (customers {', '.join(map(str, rows[:5]))}"
            f"{', ...' if len(rows) > 5 else ''}).",
            rule="finite",
            rows=rows,
        )
    tables = [
        _one_attribute(y, _groups(scores[c], bins), c, level, reference, func) for c in columns
    ]
    out = pd.concat(tables, ignore_index=True).loc[:, list(_COLUMNS)]
    out.attrs["lifevalue"] = {
        "value": value,
        "level": float(level),
        "compared_to": "overall mean" if reference is None else f"group {reference!r}",
    }
    return out


def _one_attribute(
    y: pd.Series, groups: pd.Series, name: str, level: float, reference: Any, func: str
) -> pd.DataFrame:
    g = y.groupby(groups.to_numpy(), sort=False)
    table = pd.DataFrame({"customers": g.size(), "mean_value": g.mean(), "var": g.var(ddof=1)})
    table.index.name = "group"
    total_n = float(len(y))
    mean_all = float(y.mean())
    n = table["customers"].to_numpy(dtype=float)
    m = table["mean_value"].to_numpy()
    var = table["var"].to_numpy()
    if reference is None:
        # The rest of the customers: sizes, means and variances from the totals.
        ss_total = float(((y - mean_all) ** 2).sum())
        n_r = total_n - n
        with np.errstate(invalid="ignore", divide="ignore"):
            m_r = (total_n * mean_all - n * m) / n_r
            ss_g = np.nan_to_num(var) * (n - 1)
            ss_r = ss_total - ss_g - n * (m - mean_all) ** 2 - n_r * (m_r - mean_all) ** 2
            var_r = np.clip(ss_r, 0.0, None) / (n_r - 1)
            scale = 1.0 - n / total_n
            diff = m - mean_all
        ref_n, ref_var = n_r, var_r
        raw = m - m_r
    else:
        if reference not in table.index:
            raise InputError(
                f"The 'reference' parameter of {func} must be a group of every attribute; "
                f"{name!r} has no group {reference!r} (groups: "
                f"{', '.join(map(str, table.index))})."
            )
        ref = table.loc[reference]
        ref_n = np.full_like(n, float(ref["customers"]))
        ref_var = np.full_like(n, float(ref["var"]))
        scale = np.ones_like(n)
        diff = raw = m - float(ref["mean_value"])
    with np.errstate(invalid="ignore", divide="ignore"):
        a, b = var / n, ref_var / ref_n
        se_raw = np.sqrt(a + b)
        df = (a + b) ** 2 / (a**2 / (n - 1) + b**2 / (ref_n - 1))
        usable = (n >= 2) & (ref_n >= 2) & (se_raw > 0)
        if reference is not None:
            usable &= table.index.to_numpy() != reference
        t = np.where(usable, stats.t.ppf(0.5 + level / 2.0, np.where(usable, df, 1.0)), np.nan)
        half = scale * t * se_raw
        p = np.where(
            usable, 2.0 * stats.t.sf(np.abs(raw) / se_raw, np.where(usable, df, 1.0)), np.nan
        )
    half = np.where(usable, half, np.nan)
    out = pd.DataFrame(
        {
            "attribute": name,
            "group": table.index.to_numpy(),
            "customers": table["customers"].to_numpy(),
            "share": n / total_n,
            "mean_value": m,
            "difference": diff,
            "difference_low": diff - half,
            "difference_high": diff + half,
            "p_value": p,
        }
    )
    out["significant"] = (out["difference_low"] > 0) | (out["difference_high"] < 0)
    out = out.sort_values("mean_value", ascending=False, kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def permutation_importance_table(
    lead_model: LeadModel,
    features: pd.DataFrame,
    target: pd.Series,
    *,
    n_repeats: int = 10,
    random_state: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """How much each feature of a fitted lead model matters, by shuffling it.

    Uses :func:`sklearn.inspection.permutation_importance` on the model's point
    estimator, scored by mean absolute error: the importance of a feature is how much
    the MAE (in the target's currency) rises when that feature's column is shuffled
    across customers, averaged over ``n_repeats`` shuffles (seeded by
    ``random_state``). Evaluate on customers the model was not trained on (for
    example the test cohorts of :func:`~lifevalue.value.leads.validate_out_of_time`);
    on the training set it also measures overfitting.

    Parameters
    ----------
    lead_model
        A fitted :class:`~lifevalue.value.leads.LeadModel`.
    features, target
        Features and actual values, labelled by customer; customers in only one of them,
        or with a missing target, are left out.
    n_repeats
        Shuffles per feature (default 10).
    random_state
        Seed of the shuffles (default 0).
    level
        Level of the normal interval of the mean importance over shuffles (default 0.95;
        it shows shuffle noise, not sampling uncertainty of the customers).

    Returns
    -------
    pandas.DataFrame
        One row per feature, most important first: ``feature``, ``importance`` (mean
        rise in MAE), ``importance_std`` (over shuffles), ``importance_low``,
        ``importance_high``, ``share`` (of the sum of positive importances) and
        ``rank``.
    """
    func = "permutation_importance_table"
    if not isinstance(lead_model, LeadModel) or not hasattr(lead_model, "estimator_"):
        raise _bad("lead_model", func, "a fitted LeadModel", lead_model)
    if not isinstance(n_repeats, int) or isinstance(n_repeats, bool) or n_repeats < 2:
        raise _bad("n_repeats", func, "an integer >= 2", n_repeats)
    if not isinstance(random_state, int) or isinstance(random_state, bool) or random_state < 0:
        raise _bad("random_state", func, "an integer >= 0", random_state)
    if not isinstance(level, float | int) or isinstance(level, bool) or not 0 < level < 1:
        raise _bad("level", func, "between 0 and 1 (exclusive)", level)
    if not isinstance(features, pd.DataFrame) or not isinstance(target, pd.Series):
        raise InputError(
            f"{func} expects the features as a DataFrame and the target as a Series. "
            f"Got {type(features).__name__} and {type(target).__name__} instead."
        )
    y = pd.to_numeric(target, errors="coerce").astype(float)
    y = y.loc[y.index.isin(features.index) & y.notna().to_numpy()]
    if len(y) < 2:
        raise DataValidationError(
            f"{func} needs at least 2 customers with both features and a target. Found {len(y)}.",
            rule="enough_rows",
        )
    x = lead_model._prepare(features.loc[y.index])
    result = permutation_importance(
        lead_model.estimator_,
        x,
        y.to_numpy(),
        scoring="neg_mean_absolute_error",
        n_repeats=n_repeats,
        random_state=random_state,
    )
    mean = result.importances_mean
    std = result.importances_std
    half = stats.norm.ppf(0.5 + level / 2.0) * std / np.sqrt(n_repeats)
    positive = np.clip(mean, 0.0, None).sum()
    out = pd.DataFrame(
        {
            "feature": list(x.columns),
            "importance": mean,
            "importance_std": std,
            "importance_low": mean - half,
            "importance_high": mean + half,
            "share": np.clip(mean, 0.0, None) / positive if positive > 0 else np.nan,
        }
    )
    out = out.sort_values(["importance", "feature"], ascending=[False, True], kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    out = out.reset_index(drop=True)
    out.attrs["lifevalue"] = {"scoring": "mean absolute error", "n_repeats": n_repeats}
    return out
