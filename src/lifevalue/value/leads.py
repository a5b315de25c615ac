"""Lead and new-customer scoring: value from attributes and a first window of behaviour.

The probabilistic models need a purchase history; a customer seen for a few weeks, or a
prospect seen not at all, has none. This module predicts their value with a gradient-
boosting model trained on earlier cohorts, whose later spend is known.

The road
--------
1. :func:`build_lead_features` makes one row per customer, indexed by ``customer_id``:

   * acquisition attributes (``acquisition_channel``, ``acquisition_campaign``,
     ``region``, ``age_band`` by default, from the customers table; without one, the
     channel and campaign of the first order), ``acquisition_month_of_year`` (1 to 12);
   * behaviour in the *first window* ``[first purchase, first purchase + window_days)``,
     cut at ``as_of``: ``first_order_value`` (positive amounts of the first purchase),
     ``first_order_category``, ``window_orders`` (distinct orders), ``window_revenue``
     (net of returns), ``window_returns`` (returned amount, positive), ``window_margin``
     (when a ``cost`` or ``margin`` column exists), ``days_to_second_order`` (missing
     when there was none in the window) and ``days_observed`` (days of the window seen by
     ``as_of``, at most ``window_days``);
   * ``first_purchase_date`` (kept for cohort splits; dates are never model inputs).

2. :func:`lead_target` gives what each customer spent *after* the window: revenue (net
   of returns) or margin in ``[first purchase + window_days, ... + horizon_days)``, only
   for customers whose whole period ended by ``as_of``.

3. :class:`LeadModel` fits scikit-learn's ``HistGradientBoostingRegressor`` (seeded):
   one model for the expected value (squared-error loss by default; ``"poisson"`` for
   non-negative targets) and two quantile-loss models for ``predicted_value_low`` and
   ``predicted_value_high`` (the 10% and 90% quantiles by default: an 80% interval of
   what *one* customer will spend, not of a mean). Text and category columns are used
   natively as categories; categories unseen in training count as missing.

4. :func:`validate_out_of_time` re-enacts the model's life: train on the customers
   acquired before a cut date with only what was known then, and test on the later
   cohorts whose spend is known by ``as_of``: MAE against a constant, normalised Gini,
   interval coverage and a decile calibration table.

5. :func:`rank_leads` turns predictions into a ranked lead list.

A new customer seen for less than ``window_days`` (``days_observed`` below it) is scored
with what was seen so far; the training cohorts all had full windows, so such scores lean
low. To score prospects (no orders at all), fit a model on attribute columns only:
``LeadModel(features=["acquisition_channel", "region", "age_band"])``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import ibis
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from lifevalue.data.sources import POS
from lifevalue.data.validate import ValidatedTransactions
from lifevalue.errors import DataValidationError, InputError, NotFittedError
from lifevalue.models.compare import normalised_gini

__all__ = [
    "DEFAULT_ATTRIBUTES",
    "LeadModel",
    "LeadValidation",
    "NewCustomerScores",
    "build_lead_features",
    "decile_calibration",
    "lead_target",
    "rank_leads",
    "score_new_customers",
    "validate_out_of_time",
]

logger = logging.getLogger(__name__)

#: Customer attributes used as features by default, when the customers table has them.
DEFAULT_ATTRIBUTES: tuple[str, ...] = (
    "acquisition_channel",
    "acquisition_campaign",
    "region",
    "age_band",
)
#: Columns of the first order copied as acquisition attributes when no customers table is given.
_FROM_FIRST_ORDER = {"channel": "acquisition_channel", "campaign": "acquisition_campaign"}
#: Most categories a column keeps (the most frequent); the others count as missing.
_MAX_CATEGORIES = 254
_DAY = pd.Timedelta(days=1)
#: Row-order column added to the log, so "the first order's category" is the first read.
_ROW = "_lv_row"
_PREDICTION_COLUMNS = ("predicted_value", "predicted_value_low", "predicted_value_high")
_LOSSES = ("squared_error", "poisson")
#: Training rows from which boosting uses every core.
_THREADED_ROWS = 100_000
_VALUES = ("revenue", "margin")


# --------------------------------------------------------------------------- validation


def _bad(name: str, func: str, expectation: str, value: Any) -> InputError:
    return InputError(
        f"The {name!r} parameter of {func} must be {expectation}. Got {value!r} instead."
    )


def _positive_int(value: Any, name: str, func: str) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise _bad(name, func, "an integer >= 1", value)
    return int(value)


def _date(value: Any, name: str, func: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = None
    if stamp is None or pd.isna(stamp) or stamp.tzinfo is not None:
        raise _bad(name, func, "a date or a datetime without time zone", value)
    return stamp


def _choice(value: Any, name: str, func: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _bad(name, func, f"one of {', '.join(map(repr, choices))}", value)
    return value


def _frame(data: Any, what: str, func: str, columns: Sequence[str]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise InputError(
            f"{func} expects {what} as a pandas DataFrame. Got {type(data).__name__} instead."
        )
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise DataValidationError(
            f"{func} needs the columns {', '.join(map(repr, missing))} in {what}; they are "
            f"missing (found: {', '.join(map(str, data.columns)) or 'none'}).",
            rule="required_columns",
        )


def _transactions(transactions: Any, func: str) -> pd.DataFrame:
    """The columns this module reads, with a datetime ``timestamp`` and a float ``amount``."""
    _frame(transactions, "the transactions", func, ("customer_id", "timestamp", "amount"))
    keep = [
        c
        for c in ("customer_id", "timestamp", "amount", "order_id", "cost", "margin", "category")
        if c in transactions.columns
    ]
    keep += [c for c in _FROM_FIRST_ORDER if c in transactions.columns]
    tx = transactions.loc[:, keep].copy()
    try:
        tx["timestamp"] = pd.to_datetime(tx["timestamp"])
        tx["amount"] = pd.to_numeric(tx["amount"]).astype(float)
    except (TypeError, ValueError) as exc:
        raise DataValidationError(
            f"{func} needs dates in 'timestamp' and numbers in 'amount' of the transactions. "
            f"Found {exc}.",
            rule="types",
        ) from exc
    bad = tx["timestamp"].isna().to_numpy() | ~np.isfinite(tx["amount"].to_numpy())
    bad |= tx["customer_id"].isna().to_numpy()
    if bad.any():
        rows = np.flatnonzero(bad)
        raise DataValidationError(
            f"{func} needs a customer_id, a timestamp and a finite amount on every "
            f"transaction. Found {rows.size} rows without (rows {', '.join(map(str, rows[:5]))}"
            f"{', ...' if rows.size > 5 else ''}).",
            rule="complete",
            rows=rows,
        )
    return tx


def _table(transactions: Any, func: str) -> ibis.Table:
    """The log as an engine table with a row-order column ``_ROW``."""
    if isinstance(transactions, ValidatedTransactions):
        table = transactions.accepted
        return table.mutate(**{_ROW: table[POS]})
    if isinstance(transactions, ibis.Table):
        missing = [
            c for c in ("customer_id", "timestamp", "amount") if c not in transactions.columns
        ]
        if missing:
            raise DataValidationError(
                f"{func} needs the columns {', '.join(map(repr, missing))} in the transactions; "
                f"they are missing (found: {', '.join(transactions.columns)}).",
                rule="required_columns",
            )
        return transactions.mutate(**{_ROW: ibis.row_number()})
    tx = _transactions(transactions, func)
    return ibis.memtable(tx.assign(**{_ROW: np.arange(len(tx))}))


def _firsts(t: ibis.Table, as_of: pd.Timestamp) -> ibis.Table:
    """Each customer's first positive-amount time before ``as_of`` (returns never start one)."""
    seen = t.filter((t.timestamp < ibis.literal(as_of)) & (t.amount > 0))
    return seen.group_by("customer_id").aggregate(first=seen.timestamp.min())


def _with_first(t: ibis.Table, as_of: pd.Timestamp) -> ibis.Table:
    """The rows before ``as_of`` of customers who bought, with their ``first`` purchase time."""
    before = t.filter(t.timestamp < ibis.literal(as_of))
    return before.inner_join(_firsts(t, as_of), "customer_id")


def _has_margin(t: ibis.Table) -> bool:
    return "margin" in t.columns or "cost" in t.columns


def _margin_expr(t: ibis.Table, func: str) -> ibis.Value:
    if "margin" in t.columns:
        return t.margin.cast("float64")
    if "cost" in t.columns:
        return t.amount - t.cost.cast("float64")
    raise DataValidationError(
        f"{func} needs a 'cost' or 'margin' column in the transactions to measure margin; "
        f"found neither (found: {', '.join(c for c in t.columns if c != _ROW)}).",
        rule="required_columns",
    )


# --------------------------------------------------------------------------- features


def build_lead_features(
    transactions: Any,
    customers: pd.DataFrame | None = None,
    *,
    as_of: Any,
    window_days: int = 30,
    attributes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per customer: acquisition attributes and behaviour in the first ``window_days``.

    The per-transaction work runs in the SQL engine (DuckDB by default); only one row per
    customer comes back.

    Parameters
    ----------
    transactions
        The transaction log: validated transactions
        (:class:`~lifevalue.data.validate.ValidatedTransactions`), an Ibis table or a
        pandas DataFrame, with ``customer_id``, ``timestamp``, ``amount`` (negative for
        returns); ``order_id``, ``cost`` or ``margin``, ``category``, ``channel`` and
        ``campaign`` are used when present. Rows at or after ``as_of`` are ignored.
    customers
        Optional customers table (``customer_id`` as a column or as the index) with the
        attribute columns. Without it, ``acquisition_channel`` and
        ``acquisition_campaign`` come from the first order's ``channel`` and ``campaign``.
    as_of
        The moment of scoring: only what happened before it is used.
    window_days
        Length of the first window in days (default 30).
    attributes
        Columns of ``customers`` to copy as features. Default: those of
        :data:`DEFAULT_ATTRIBUTES` the table has.

    Returns
    -------
    pandas.DataFrame
        One row per customer with a positive-amount purchase before ``as_of``, indexed
        by ``customer_id`` and sorted by it; the columns are described in the module's
        docstring. ``attrs["lifevalue"]`` holds ``as_of`` and ``window_days``.

    Raises
    ------
    InputError
        A bad option, or an attribute asked for that the customers table lacks.
    DataValidationError
        Missing columns, unreadable values, or a customer twice in the customers table.
    """
    func = "build_lead_features"
    as_of = _date(as_of, "as_of", func)
    window_days = _positive_int(window_days, "window_days", func)
    t = _table(transactions, func)
    w = _with_first(t, as_of)
    end = ibis.least(w.first + ibis.interval(days=window_days), ibis.literal(as_of))
    w = w.filter((w.timestamp >= w.first) & (w.timestamp < end))
    positive = w.amount > 0
    is_first = positive & (w.timestamp == w.first)
    later = positive & (w.timestamp > w.first)
    order_key = w.order_id if "order_id" in w.columns else w.timestamp
    # The first order's text columns: the earliest row's value, as a log is read.
    firsts = {
        name: w[column].first(where=is_first & w[column].notnull(), order_by=w[_ROW])
        for column, name in (("category", "first_order_category"), *_FROM_FIRST_ORDER.items())
        if column in w.columns
    }
    margin = _margin_expr(w, func) if _has_margin(w) else None
    figures = w.group_by("customer_id").aggregate(
        first_purchase_date=w.first.min(),
        first_order_value=w.amount.sum(where=is_first),
        window_orders=order_key.nunique(where=positive),
        window_revenue=w.amount.sum(),
        window_returns=(-ibis.least(w.amount, 0)).sum(),
        second=w.timestamp.min(where=later),
        **({"window_margin": margin.sum()} if margin is not None else {}),
        **firsts,
    )
    out = figures.to_pandas().set_index("customer_id")
    first = pd.to_datetime(out["first_purchase_date"])
    out["first_purchase_date"] = first
    out["acquisition_month_of_year"] = first.dt.month.astype(float)
    out["days_to_second_order"] = (pd.to_datetime(out.pop("second")) - first) / _DAY
    out["days_observed"] = ((((first + window_days * _DAY).clip(upper=as_of)) - first) / _DAY).clip(
        lower=0.0
    )
    fill = ["first_order_value", "window_orders", "window_revenue", "window_returns"]
    fill += ["window_margin"] if "window_margin" in out.columns else []
    out[fill] = out[fill].astype(float).fillna(0.0)
    out["window_orders"] = out["window_orders"].astype(int)
    from_order = out[[c for c in _FROM_FIRST_ORDER.values() if c in out.columns]]
    out = out.drop(columns=from_order.columns)
    columns = [
        "first_purchase_date",
        "acquisition_month_of_year",
        "first_order_value",
        *(["first_order_category"] if "first_order_category" in out.columns else []),
        "window_orders",
        "window_revenue",
        "window_returns",
        *(["window_margin"] if "window_margin" in out.columns else []),
        "days_to_second_order",
        "days_observed",
    ]
    out = out[columns]
    if "first_order_category" in out.columns:
        out["first_order_category"] = out["first_order_category"].astype(object)
    attrs = _attributes(customers, from_order, attributes, func)
    if attrs is not None:
        out = out.join(attrs, how="left")
    out = out.sort_index()
    out.index.name = "customer_id"
    out.attrs["lifevalue"] = {"as_of": as_of, "window_days": window_days}
    logger.info("Lead features for %d customers as of %s.", len(out), as_of)
    return out


def _attributes(
    customers: pd.DataFrame | None,
    from_order: pd.DataFrame,
    attributes: Sequence[str] | None,
    func: str,
) -> pd.DataFrame | None:
    """The attribute columns: from the customers table, else the first order's."""
    if customers is None:
        if attributes:
            raise _bad("attributes", func, "empty without a customers table", list(attributes))
        return from_order if len(from_order.columns) else None
    if not isinstance(customers, pd.DataFrame):
        raise InputError(
            f"{func} expects the customers table as a pandas DataFrame. "
            f"Got {type(customers).__name__} instead."
        )
    table = customers if "customer_id" in customers.columns else customers.reset_index()
    _frame(table, "the customers table", func, ("customer_id",))
    if attributes is None:
        cols = [c for c in DEFAULT_ATTRIBUTES if c in table.columns]
    else:
        if isinstance(attributes, str):
            raise _bad("attributes", func, "a sequence of column names", attributes)
        cols = list(attributes)
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise InputError(
                f"The 'attributes' parameter of {func} names columns the customers table "
                f"lacks: {', '.join(map(repr, missing))} (found: "
                f"{', '.join(map(str, table.columns))})."
            )
    dup = table["customer_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        ids = table["customer_id"].to_numpy()[dup]
        raise DataValidationError(
            f"{func} needs one row per customer in the customers table. Found "
            f"{dup.sum()} rows sharing a customer_id (customers "
            f"{', '.join(map(str, pd.unique(ids)[:5]))}).",
            rule="unique_customer",
            rows=list(pd.unique(ids)),
        )
    return table.set_index("customer_id")[cols]


def lead_target(
    transactions: pd.DataFrame,
    *,
    as_of: Any,
    window_days: int = 30,
    horizon_days: int = 365,
    value: str = "revenue",
) -> pd.Series:
    """What each customer spent in the ``horizon_days`` after its first window.

    Parameters
    ----------
    transactions
        Transaction log, as for :func:`build_lead_features`.
    as_of
        End of observation: only customers whose period
        ``[first purchase + window_days, first purchase + window_days + horizon_days)``
        ended by ``as_of`` get a value (the others' spend is not known yet).
    window_days
        Length of the first window in days (default 30).
    horizon_days
        Length of the period measured after it, in days (default 365).
    value
        ``"revenue"`` (amounts, net of returns; default) or ``"margin"`` (the
        ``margin`` column, else ``amount - cost``).

    Returns
    -------
    pandas.Series
        Named ``future_revenue`` or ``future_margin``, indexed by ``customer_id``
        (sorted); 0 for customers who bought nothing in the period. Can be negative
        when returns of window orders fall in the period.
    """
    func = "lead_target"
    as_of = _date(as_of, "as_of", func)
    window_days = _positive_int(window_days, "window_days", func)
    horizon_days = _positive_int(horizon_days, "horizon_days", func)
    value = _choice(value, "value", func, _VALUES)
    t = _table(transactions, func)
    w = _with_first(t, as_of)
    start = w.first + ibis.interval(days=window_days)
    end = start + ibis.interval(days=horizon_days)
    amount = _margin_expr(w, func) if value == "margin" else w.amount
    inside = (w.timestamp >= start) & (w.timestamp < end)
    figures = (
        w.filter(end <= ibis.literal(as_of))
        .group_by("customer_id")
        .aggregate(total=amount.sum(where=inside))
        .to_pandas()
    )
    n_customers = int(_firsts(t, as_of).count().to_pandas())
    out = figures.set_index("customer_id")["total"].astype(float).fillna(0.0).sort_index()
    out.index.name = "customer_id"
    out.name = f"future_{value}"
    logger.info(
        "Lead target for %d customers (%d too recent to know) as of %s.",
        len(out),
        n_customers - len(out),
        as_of,
    )
    return out


# --------------------------------------------------------------------------- model


class LeadModel(BaseEstimator):  # type: ignore[misc]
    """Gradient-boosted value of new customers and leads, with an interval.

    Parameters
    ----------
    features
        Columns of the feature frame to use. Default: every column except dates.
    loss
        Loss of the point model: ``"squared_error"`` (default; predicts the mean) or
        ``"poisson"`` (mean of a non-negative target, multiplicative effects).
    quantiles
        Quantiles ``(low, high)`` of the interval models, ``0 < low < high < 1``
        (default ``(0.1, 0.9)``: an 80% interval for one customer's value); ``None``
        fits no interval models and leaves ``_low``/``_high`` missing.
    learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to each ``HistGradientBoostingRegressor`` (defaults 0.05, 200, 15, 40,
        1.0: a slow, small-tree ensemble that suits thousands of noisy customers).
    random_state
        Seed of the boosting models (default 0).

    Attributes
    ----------
    feature_names_in_
        The columns used, in order.
    categories_
        Per categorical column, the categories learned (at most 254, the most frequent).
    estimator_, low_estimator_, high_estimator_
        The fitted scikit-learn models (the last two ``None`` without quantiles).
    target_name_, n_train_, train_mean_
        Name of the target, customers trained on and their mean value.
    """

    def __init__(
        self,
        *,
        features: Sequence[str] | None = None,
        loss: str = "squared_error",
        quantiles: tuple[float, float] | None = (0.1, 0.9),
        learning_rate: float = 0.05,
        max_iter: int = 200,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 40,
        l2_regularization: float = 1.0,
        random_state: int = 0,
    ) -> None:
        self.features = features
        self.loss = loss
        self.quantiles = quantiles
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.random_state = random_state

    # ---------------------------------------------------------------- fitting

    def _check_params(self) -> None:
        name = type(self).__name__
        _choice(self.loss, "loss", name, _LOSSES)
        q = self.quantiles
        if q is not None:
            ok = (
                isinstance(q, tuple | list)
                and len(q) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in q)
                and 0 < q[0] < q[1] < 1
            )
            if not ok:
                raise _bad(
                    "quantiles", name, "None or a pair (low, high) with 0 < low < high < 1", q
                )
        if self.features is not None and (
            isinstance(self.features, str) or not all(isinstance(c, str) for c in self.features)
        ):
            raise _bad("features", name, "None or a sequence of column names", self.features)
        lr = self.learning_rate
        if not isinstance(lr, int | float) or isinstance(lr, bool) or not 0 < lr <= 1:
            raise _bad("learning_rate", name, "> 0 and <= 1", lr)
        for p in ("max_iter", "min_samples_leaf"):
            _positive_int(getattr(self, p), p, name)
        if not isinstance(self.max_leaf_nodes, int) or self.max_leaf_nodes < 2:
            raise _bad("max_leaf_nodes", name, "an integer >= 2", self.max_leaf_nodes)
        l2 = self.l2_regularization
        if not isinstance(l2, int | float) or isinstance(l2, bool) or not l2 >= 0:
            raise _bad("l2_regularization", name, ">= 0", l2)
        if not isinstance(self.random_state, int | np.integer) or self.random_state < 0:
            raise _bad("random_state", name, "an integer >= 0", self.random_state)

    def _regressor(self, loss: str, quantile: float | None = None) -> HistGradientBoostingRegressor:
        return HistGradientBoostingRegressor(
            loss=loss,
            quantile=quantile,
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            categorical_features="from_dtype",
            early_stopping=False,
            random_state=int(self.random_state),
        )

    def fit(self, features: pd.DataFrame, target: pd.Series) -> Self:
        """Fit the point and interval models.

        Parameters
        ----------
        features
            Feature frame, as made by :func:`build_lead_features` (any columns will do).
        target
            Value per customer (for example :func:`lead_target`), a Series labelled like
            ``features``. Customers present in only one of them, or with a missing
            target, are left out (logged).

        Returns
        -------
        LeadModel
            ``self``, fitted.
        """
        name = type(self).__name__
        self._check_params()
        _frame(features, "the features", f"{name}.fit", self.features or ())
        if not isinstance(target, pd.Series):
            raise InputError(
                f"{name}.fit expects the target as a pandas Series labelled by customer_id. "
                f"Got {type(target).__name__} instead."
            )
        y = pd.to_numeric(target, errors="coerce").astype(float)
        y = y.loc[y.index.isin(features.index) & y.notna().to_numpy()]
        if np.isinf(y.to_numpy()).any():
            raise DataValidationError(
                f"{name}.fit needs a finite target. Found infinite values for customers "
                f"{', '.join(map(str, y.index[np.isinf(y.to_numpy())][:5]))}.",
                rule="finite",
            )
        if self.loss == "poisson" and (y < 0).any():
            raise DataValidationError(
                f"{name}.fit with loss 'poisson' needs a target >= 0. Found "
                f"{int((y < 0).sum())} negative values (customers "
                f"{', '.join(map(str, y.index[(y < 0).to_numpy()][:5]))}).",
                rule="non_negative",
            )
        if len(y) < 2 * self.min_samples_leaf:
            raise DataValidationError(
                f"{name}.fit needs at least {2 * self.min_samples_leaf} customers with both "
                f"features and a target (2 x min_samples_leaf). Found {len(y)}.",
                rule="enough_rows",
            )
        dropped = len(features) - len(y)
        if dropped:
            logger.info("%s.fit: %d customers without a target left out.", name, dropped)
        x = features.loc[y.index]
        columns = (
            list(self.features)
            if self.features is not None
            else [c for c in x.columns if not pd.api.types.is_datetime64_any_dtype(x[c])]
        )
        self.categories_: dict[str, pd.Index] = {}
        for c in columns:
            col = x[c]
            if pd.api.types.is_datetime64_any_dtype(col) or isinstance(col.dtype, pd.PeriodDtype):
                raise InputError(
                    f"The 'features' parameter of {name} names the date column {c!r}; dates "
                    f"cannot be model inputs (derive a number from them first)."
                )
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                counts = col.astype(object).value_counts()
                self.categories_[c] = pd.Index(sorted(counts.index[:_MAX_CATEGORIES], key=str))
        self.feature_names_in_ = columns
        xt = self._prepare(x)
        self.low_estimator_: HistGradientBoostingRegressor | None = None
        self.high_estimator_: HistGradientBoostingRegressor | None = None
        # OpenMP threads cost more than they save on the small tables of new customers
        # (tens of thousands of rows): the per-split synchronisation dominates.
        with threadpool_limits(1 if len(y) < _THREADED_ROWS else None):
            self.estimator_ = self._regressor(self.loss).fit(xt, y.to_numpy())
            if self.quantiles is not None:
                lo, hi = self.quantiles
                self.low_estimator_ = self._regressor("quantile", float(lo)).fit(xt, y.to_numpy())
                self.high_estimator_ = self._regressor("quantile", float(hi)).fit(xt, y.to_numpy())
        self.target_name_ = str(target.name) if target.name is not None else "value"
        self.n_train_ = len(y)
        self.train_mean_ = float(y.mean())
        self.train_median_ = float(y.median())
        logger.info("%s fitted on %d customers, %d features.", name, len(y), len(columns))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet; call fit(features, target) first."
            )

    def _prepare(self, features: pd.DataFrame) -> pd.DataFrame:
        """The model's input: the chosen columns, categories fixed to the training ones."""
        missing = [c for c in self.feature_names_in_ if c not in features.columns]
        if missing:
            raise DataValidationError(
                f"{type(self).__name__} needs the feature columns "
                f"{', '.join(map(repr, missing))}; they are missing (found: "
                f"{', '.join(map(str, features.columns)) or 'none'}).",
                rule="required_columns",
            )
        out = {}
        for c in self.feature_names_in_:
            col = features[c]
            if c in self.categories_:
                known = self.categories_[c]
                values = col.astype(object)
                values = values.where(values.isin(known) & col.notna(), None)
                out[c] = pd.Categorical(values, categories=known)
            else:
                try:
                    out[c] = pd.to_numeric(col).astype(float).to_numpy()
                except (TypeError, ValueError) as exc:
                    raise DataValidationError(
                        f"{type(self).__name__} was fitted with numbers in feature {c!r}. "
                        f"Got {col.dtype} values instead.",
                        rule="numeric",
                    ) from exc
        return pd.DataFrame(out, index=features.index)

    # ---------------------------------------------------------------- predicting

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Predicted value of each customer or lead, with an interval.

        Parameters
        ----------
        features
            Feature frame with the columns the model was fitted on.

        Returns
        -------
        pandas.DataFrame
            Indexed like ``features``: ``predicted_value`` (expected value of the
            target), ``predicted_value_low`` and ``predicted_value_high`` (the quantile
            models' predictions, widened when needed so that ``low <= predicted_value
            <= high``; missing without quantiles).
        """
        self._check_fitted()
        if not isinstance(features, pd.DataFrame):
            raise InputError(
                f"{type(self).__name__}.predict expects the features as a pandas DataFrame. "
                f"Got {type(features).__name__} instead."
            )
        xt = self._prepare(features)
        point = self.estimator_.predict(xt) if len(xt) else np.empty(0)
        if self.low_estimator_ is not None and self.high_estimator_ is not None and len(xt):
            low = np.minimum(self.low_estimator_.predict(xt), point)
            high = np.maximum(self.high_estimator_.predict(xt), point)
        else:
            low = high = np.full(len(xt), np.nan)
        out = pd.DataFrame(dict(zip(_PREDICTION_COLUMNS, (point, low, high), strict=True)))
        out.index = features.index
        out.attrs["lifevalue"] = {"target": self.target_name_, "quantiles": self.quantiles}
        return out


# --------------------------------------------------------------------------- validation


@dataclass
class LeadValidation:
    """What :func:`validate_out_of_time` found.

    Attributes
    ----------
    metrics
        Named figures: ``n_train``, ``n_test``, ``mae`` (mean absolute error of the
        model on the test cohorts), ``mae_constant`` (of the training mean used as the
        prediction for everyone: the fair baseline of a mean predictor),
        ``mae_median_constant`` (of the training median; with skewed spend, mostly small
        values, a median beats any mean predictor on MAE, so read it as a floor, not a
        target),
        ``rmse``, ``gini`` (normalised Gini of actual value ordered by prediction: 1
        perfect, 0 random), ``interval_coverage`` (share of test customers whose actual
        value fell in ``[low, high]``), ``mean_predicted``, ``mean_actual``.
    calibration
        The decile table of :func:`decile_calibration` on the test cohorts.
    predictions
        Per test customer: the predictions, ``actual`` and ``first_purchase_date``.
    model
        The model fitted on the training cohorts.
    """

    metrics: pd.Series
    calibration: pd.DataFrame
    predictions: pd.DataFrame
    model: LeadModel = field(repr=False)


def decile_calibration(predicted: Any, actual: Any, *, bins: int = 10) -> pd.DataFrame:
    """Mean predicted against mean actual value in ``bins`` groups of equal size.

    Customers are ranked by prediction (ties in row order) and cut into ``bins`` groups
    of (nearly) equal size; group 1 holds the lowest predictions, group ``bins`` the
    highest. A well-calibrated model has ``mean_actual`` close to ``mean_predicted`` in
    every group, and both rising with the group.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``decile`` (1 to ``bins``): ``customers``, ``mean_predicted``,
        ``mean_actual``, ``min_predicted``, ``max_predicted``, ``share_of_actual``
        (the group's share of the total actual value).
    """
    func = "decile_calibration"
    bins = _positive_int(bins, "bins", func)
    p = np.asarray(predicted, dtype=float)
    a = np.asarray(actual, dtype=float)
    if p.shape != a.shape or p.ndim != 1:
        raise InputError(
            f"{func} expects predicted and actual values of the same length. "
            f"Got shapes {p.shape} and {a.shape} instead."
        )
    if len(p) < bins:
        raise DataValidationError(
            f"{func} needs at least {bins} customers for {bins} groups. Found {len(p)}.",
            rule="enough_rows",
        )
    ranks = stats.rankdata(p, method="ordinal")
    group = np.minimum((ranks - 1) * bins // len(p), bins - 1) + 1
    frame = pd.DataFrame({"decile": group, "predicted": p, "actual": a})
    table = frame.groupby("decile").agg(
        customers=("predicted", "size"),
        mean_predicted=("predicted", "mean"),
        mean_actual=("actual", "mean"),
        min_predicted=("predicted", "min"),
        max_predicted=("predicted", "max"),
        total_actual=("actual", "sum"),
    )
    total = a.sum()
    table["share_of_actual"] = table.pop("total_actual") / total if total else np.nan
    return table


def validate_out_of_time(
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None = None,
    *,
    cut_date: Any,
    as_of: Any,
    window_days: int = 30,
    horizon_days: int = 180,
    value: str = "revenue",
    model: LeadModel | None = None,
    bins: int = 10,
    features: pd.DataFrame | None = None,
) -> LeadValidation:
    """Train on earlier cohorts, test on later ones, as the model would have lived.

    Training uses only what was known at ``cut_date``: the customers whose first window
    and following ``horizon_days`` ended by then, with features and target measured from
    transactions before ``cut_date``. Testing uses the customers acquired on or after
    ``cut_date`` whose window and horizon ended by ``as_of``: their features come from
    their own first window, their actual value from what they spent afterwards.

    Parameters
    ----------
    transactions, customers
        As for :func:`build_lead_features`.
    cut_date
        The moment the model is trained.
    as_of
        End of observation (for example the last day of the log, plus one).
    window_days, horizon_days, value
        As for :func:`build_lead_features` and :func:`lead_target` (horizon default 180
        days, so that recent cohorts can be tested).
    model
        An unfitted :class:`LeadModel` whose parameters to use (it is copied, not
        changed). Default ``LeadModel()``.
    bins
        Groups of the calibration table (default 10, deciles).
    features
        :func:`build_lead_features` of the same log and customers as of ``as_of`` with the
        same ``window_days``, when the caller has them already (they are not built again).

    Returns
    -------
    LeadValidation
        Metrics, calibration table, test predictions and the fitted model.

    Raises
    ------
    InputError
        ``cut_date`` not before ``as_of``, or another bad option.
    DataValidationError
        No training or no test customer (the message gives the dates that would help).
    """
    func = "validate_out_of_time"
    cut = _date(cut_date, "cut_date", func)
    end = _date(as_of, "as_of", func)
    if not cut < end:
        raise _bad("cut_date", func, f"before as_of ({end})", cut_date)
    if model is not None and not isinstance(model, LeadModel):
        raise _bad("model", func, "None or a LeadModel", model)
    span = dict(window_days=window_days, horizon_days=horizon_days)
    train_x = build_lead_features(transactions, customers, as_of=cut, window_days=window_days)
    train_y = lead_target(transactions, as_of=cut, value=value, **span)
    made = (features.attrs.get("lifevalue") or {}) if features is not None else {}
    if made.get("as_of") == end and made.get("window_days") == window_days:
        test_x = features
    else:
        test_x = build_lead_features(transactions, customers, as_of=end, window_days=window_days)
    test_y = lead_target(transactions, as_of=end, value=value, **span)
    test_y = test_y.loc[test_x.loc[test_y.index, "first_purchase_date"] >= cut]
    need = (window_days + horizon_days) * _DAY
    if len(train_y) == 0 or len(test_y) == 0:
        raise DataValidationError(
            f"{func} found {len(train_y)} training and {len(test_y)} test customers: "
            f"training customers must be acquired by {cut - need} and test customers "
            f"between {cut} and {end - need} (window {window_days} + horizon "
            f"{horizon_days} days). Move cut_date or shorten the horizon.",
            rule="enough_rows",
        )
    fitted = LeadModel(**(model.get_params() if model is not None else {}))
    fitted.fit(train_x, train_y)
    x = test_x.loc[test_y.index]
    pred = fitted.predict(x)
    actual = test_y.to_numpy()
    p = pred["predicted_value"].to_numpy()
    inside = (actual >= pred["predicted_value_low"].to_numpy()) & (
        actual <= pred["predicted_value_high"].to_numpy()
    )
    metrics = pd.Series(
        {
            "n_train": float(fitted.n_train_),
            "n_test": float(len(actual)),
            "mae": float(np.mean(np.abs(actual - p))),
            "mae_constant": float(np.mean(np.abs(actual - fitted.train_mean_))),
            "mae_median_constant": float(np.mean(np.abs(actual - fitted.train_median_))),
            "rmse": float(math.sqrt(np.mean((actual - p) ** 2))),
            "gini": normalised_gini(actual, p),
            "interval_coverage": float(inside.mean()) if fitted.quantiles else np.nan,
            "mean_predicted": float(p.mean()),
            "mean_actual": float(actual.mean()),
        },
        name="value",
    )
    metrics.index.name = "metric"
    predictions = pred.assign(actual=actual, first_purchase_date=x["first_purchase_date"])
    calibration = decile_calibration(p, actual, bins=bins)
    logger.info(
        "Out-of-time validation: MAE %.2f (constant %.2f), Gini %.3f on %d customers.",
        metrics["mae"],
        metrics["mae_constant"],
        metrics["gini"],
        len(actual),
    )
    return LeadValidation(metrics, calibration, predictions, fitted)


# --------------------------------------------------------------------------- lead lists


def rank_leads(
    model: LeadModel,
    features: pd.DataFrame,
    *,
    top: int | None = None,
    bins: int = 10,
) -> pd.DataFrame:
    """Customers or prospects ranked by predicted value, best first.

    Parameters
    ----------
    model
        A fitted :class:`LeadModel`.
    features
        Feature frame of the leads (the model's columns; others are carried along).
    top
        Keep only the best ``top`` leads (default: all).
    bins
        Value bands: ``value_decile`` is 1 for the best tenth of the leads scored, up to
        ``bins`` for the lowest (default 10).

    Returns
    -------
    pandas.DataFrame
        Indexed by the leads' labels, sorted by ``predicted_value`` (descending; ties by
        label): ``rank`` (1 is best), ``value_decile``, the three prediction columns,
        then the feature columns the model used, for reading.
    """
    func = "rank_leads"
    if not isinstance(model, LeadModel):
        raise _bad("model", func, "a fitted LeadModel", model)
    if top is not None:
        top = _positive_int(top, "top", func)
    bins = _positive_int(bins, "bins", func)
    pred = model.predict(features)
    label = pred.index.name or "customer_id"
    ordered = pred.rename_axis(label).reset_index()
    ordered = ordered.sort_values(
        ["predicted_value", label], ascending=[False, True], kind="stable"
    )
    n = len(ordered)
    position = np.arange(1, n + 1)
    ordered.insert(0, "rank", position)
    ordered.insert(1, "value_decile", ((position - 1) * bins // max(n, 1)) + 1)
    ordered = ordered.set_index(label)
    carried = [c for c in model.feature_names_in_ if c not in ordered.columns]
    out = ordered.join(features[carried])
    if top is not None:
        out = out.iloc[:top]
    return out


# --------------------------------------------------------------------------- new customers


@dataclass
class NewCustomerScores:
    """What :func:`score_new_customers` found.

    Attributes
    ----------
    leads
        The ranked lead list of the new customers (:func:`rank_leads`), with
        ``predicted_value`` (and ``_low``/``_high``) in profit over the horizon.
    validation
        The out-of-time metrics (:attr:`LeadValidation.metrics`, in the log's revenue or
        margin before ``margin_rate``) with a ``horizon_days`` row, or ``None`` when the
        history is too short to hold back a test cohort.
    values
        ``predicted_value`` per new customer, indexed by ``customer_id``.
    model
        The model fitted on every customer whose value after the window is known.
    prospects
        With a prospects table: the prospects ranked by a model of the same target on the
        attribute columns alone (nothing else is known of a prospect); else ``None``.
    out_of_time
        The whole out-of-time check behind ``validation`` (its model and test cohorts).
    features
        The lead features of every customer as of the scoring date.
    """

    leads: pd.DataFrame
    validation: pd.Series | None
    values: pd.Series
    model: LeadModel = field(repr=False)
    prospects: pd.DataFrame | None = None
    out_of_time: LeadValidation | None = field(default=None, repr=False)
    features: pd.DataFrame | None = field(default=None, repr=False)


def score_new_customers(
    transactions: Any,
    attributes: pd.DataFrame | None,
    *,
    as_of: Any,
    new_days: int = 90,
    window_days: int = 30,
    horizon_days: int = 365,
    value: str = "revenue",
    margin_rate: float = 1.0,
    min_training: int = 200,
    prospects: pd.DataFrame | None = None,
) -> NewCustomerScores | None:
    """Value the customers acquired in the last ``new_days`` with a lead model.

    The model learns, from every customer acquired early enough for it to be known, what a
    customer earns in the ``horizon_days`` after its first ``window_days`` given its
    attributes and its first window; it then scores the customers whose first purchase is
    less than ``new_days`` before ``as_of``. The probabilistic models see such customers as
    one or two purchases and little else; the lead model also knows their channel,
    campaign and first order.

    Parameters
    ----------
    transactions
        The log, as for :func:`build_lead_features`.
    attributes
        Per customer (index ``customer_id``) attribute columns (channel, campaign,
        region...), or ``None`` for the first order's channel and campaign.
    as_of
        The scoring date.
    new_days
        Customers acquired less than this many days before ``as_of`` are new (default
        90).
    window_days, horizon_days
        The first window and the period valued after it (defaults 30 and 365).
    value
        ``"revenue"`` (times ``margin_rate``) or ``"margin"`` (the log's margin).
    margin_rate
        Gross margin applied to revenue (ignored for ``value="margin"``).
    min_training
        Fewest customers with a known value to train on; fewer returns ``None``.
    prospects
        Optional prospects (people who have not bought yet), one row each, indexed by
        their id, with some of the attribute columns (channel, campaign, region...).

    Returns
    -------
    NewCustomerScores or None
        ``None`` (and a log message) when there is no new customer or too few to train on.
    """
    func = "score_new_customers"
    as_of = _date(as_of, "as_of", func)
    new_days = _positive_int(new_days, "new_days", func)
    features = build_lead_features(transactions, attributes, as_of=as_of, window_days=window_days)
    target = lead_target(
        transactions, as_of=as_of, window_days=window_days, horizon_days=horizon_days, value=value
    )
    scale = 1.0 if value == "margin" else float(margin_rate)
    new = features.index[features["first_purchase_date"] > as_of - new_days * _DAY]
    if len(new) == 0 or len(target) < min_training:
        logger.warning(
            "No lead scoring: %d new customers, %d with a known value to learn from (at least "
            "%d needed: customers acquired %d days or more before the scoring date).",
            len(new),
            len(target),
            min_training,
            window_days + horizon_days,
        )
        return None
    model = LeadModel().fit(features.loc[target.index], target * scale)
    leads = rank_leads(model, features.loc[new])
    checked, found = None, None
    for days in dict.fromkeys((horizon_days, min(horizon_days, 180))):
        # Test cohorts are acquired in the half-span [cut, as_of - span] and training ones
        # before cut - span: 2.5 spans of history. Shorter histories are validated on a
        # 180-day horizon.
        span = (window_days + days) * _DAY
        try:
            found = validate_out_of_time(
                transactions,
                attributes,
                cut_date=as_of - 1.5 * span,
                features=features,
                as_of=as_of,
                window_days=window_days,
                horizon_days=days,
                value=value,
            )
        except DataValidationError as exc:
            logger.info("Lead validation with a %d-day horizon skipped: %s", days, exc)
            continue
        checked = pd.concat([found.metrics, pd.Series({"horizon_days": float(days)})])
        checked.index.name = "metric"
        break
    ranked = None
    if prospects is not None:
        ranked = _rank_prospects(prospects, features, target * scale, func)
    return NewCustomerScores(
        leads=leads,
        validation=checked,
        values=leads["predicted_value"],
        model=model,
        prospects=ranked,
        out_of_time=found,
        features=features,
    )


def _rank_prospects(
    prospects: pd.DataFrame, features: pd.DataFrame, target: pd.Series, func: str
) -> pd.DataFrame:
    """Prospects ranked by a model on the attributes they share with the customers."""
    if not isinstance(prospects, pd.DataFrame):
        raise InputError(
            f"{func} expects the prospects as a pandas DataFrame. "
            f"Got {type(prospects).__name__} instead."
        )
    shared = [c for c in DEFAULT_ATTRIBUTES if c in prospects.columns and c in features.columns]
    if not shared:
        raise DataValidationError(
            f"{func} values prospects by the attributes they share with the customers "
            f"({', '.join(c for c in DEFAULT_ATTRIBUTES if c in features.columns) or 'none'}); "
            f"the prospects table has none of them (found: "
            f"{', '.join(map(str, prospects.columns))}).",
            rule="required_columns",
        )
    model = LeadModel(features=shared).fit(features.loc[target.index], target)
    return rank_leads(model, prospects)
