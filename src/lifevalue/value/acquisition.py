"""Acquisition economics: what each channel, campaign and month paid for its customers.

:func:`acquisition_economics` joins the scores table (one row per customer, with its
acquisition channel, campaign and month) to a marketing-spend table (``date``,
``channel``, ``campaign``, ``spend``) and answers, per group: how many customers it bought,
at what cost each (CAC, also called CPA), what they are worth, how long they take to pay
their cost back, the most the group may pay per customer for a target LTV:CAC, and whether
to scale, hold or cut it, with the rule that said so.

Definitions (all per group)
---------------------------
``new_customers``
    Customers of the scores table whose acquisition keys are the group's.
``marketing_spend``
    Sum of the spend rows whose keys are the group's: ``channel`` matches
    ``acquisition_channel``, ``campaign`` matches ``acquisition_campaign`` (a missing
    campaign matches a missing campaign) and the calendar month of ``date`` matches
    ``acquisition_month``. 0 when the group has no spend row (organic).
``cac``
    ``marketing_spend / new_customers``; NaN, flagged ``no_spend``, when the group spent
    nothing; infinite, flagged ``no_customers``, when it spent money and bought nobody.
``mean_clv_12m``, ``mean_lifetime_clv``
    Means over the group's customers of the ``twelve_month_value`` column (default
    ``predicted_clv``: discounted net profit over the scoring horizon, 12 months by
    default) and of the ``lifetime_value`` column (default ``total_clv``: the net profit
    realised since acquisition plus the predicted profit over the horizon; pass a column
    scored over a longer horizon to value a longer lifetime).
``ltv_cac``
    ``mean_lifetime_clv / cac``.
``payback_months``
    Months after acquisition until the cumulative margin of the group's average customer
    covers ``cac``. Each customer's margin accrues as follows: ``historic_clv`` spread
    evenly over its observed tenure (``tenure_days``; all at acquisition for a tenure of
    0), then ``predicted_clv`` spread evenly over the ``horizon_months`` that follow. The
    group's curve is the mean of its customers' curves (piecewise linear, so the crossing
    is exact). NaN, flagged ``not_paid_back``, when the curve never reaches ``cac`` within
    the longest tenure plus the horizon; 0 when ``cac`` is 0.
``max_allowable_cpa``
    ``mean_lifetime_clv / target_ltv_cac``: the most the group may pay per new customer
    and still meet the target ratio.
``recommendation`` and ``rule``
    The first rule that applies, in this order (defaults in brackets):

    1. ``cut``: money was spent and no customer was bought;
    2. ``hold``: no money was spent (organic: nothing to scale or cut);
    3. ``hold``: fewer than ``min_customers`` (20) new customers, too few to judge;
    4. ``cut``: ``ltv_cac < cut_below`` (1): customers are worth less than they cost;
    5. ``scale``: ``ltv_cac >= target_ltv_cac`` (3) and ``payback_months <=
       max_payback_months`` (12);
    6. ``hold``: otherwise (profitable, but below the target or slow to pay back).

    ``rule`` states the rule with the group's own numbers, for the dashboard.
``flag``
    Semicolon-separated codes of what is missing or unusual: ``no_spend``,
    ``no_customers``, ``not_paid_back``, ``few_customers``; empty when none.

Nothing is lost: spend rows whose keys bought no customer stay in the table (with 0 new
customers) and are reported in the log and in ``attrs["lifevalue"]["unmatched_spend"]``;
the new customers of the groups add up to the customers of the scores table and their
spend to the spend table's total.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from lifevalue.errors import DataValidationError, InputError
from lifevalue.units import DAYS_PER_YEAR, METADATA_KEY

__all__ = ["ACQUISITION_COLUMNS", "ACQUISITION_KEYS", "acquisition_economics"]

logger = logging.getLogger(__name__)

#: Keys a table may be grouped by, and the spend-table column each one matches.
ACQUISITION_KEYS: dict[str, str] = {
    "acquisition_channel": "channel",
    "acquisition_campaign": "campaign",
    "acquisition_month": "date",
}

#: Columns of the result after the ``by`` keys, in order.
ACQUISITION_COLUMNS: tuple[str, ...] = (
    "new_customers",
    "marketing_spend",
    "cac",
    "mean_clv_12m",
    "mean_lifetime_clv",
    "ltv_cac",
    "payback_months",
    "max_allowable_cpa",
    "recommendation",
    "rule",
    "flag",
    "lead_valued_customers",
)

_FUNC = "acquisition_economics"
_DAYS_PER_MONTH = DAYS_PER_YEAR / 12.0
_SHOWN_ROWS = 10
_MISSING = "\x00missing"


def acquisition_economics(
    scores: pd.DataFrame,
    spend: pd.DataFrame,
    *,
    by: Sequence[str] | str = ("acquisition_channel",),
    target_ltv_cac: float = 3.0,
    lifetime_value: str = "total_clv",
    twelve_month_value: str = "predicted_clv",
    cut_below: float = 1.0,
    max_payback_months: float = 12.0,
    min_customers: int = 20,
    horizon_months: float | None = None,
    new_customer_values: pd.Series | None = None,
    new_customer_days: float = 90.0,
) -> pd.DataFrame:
    """CAC, value, LTV:CAC, payback and a scale / hold / cut call per acquisition group.

    The definitions and the decision rule are in the module documentation
    (:mod:`lifevalue.value.acquisition`); in short: CAC is spend over new customers,
    LTV:CAC is the mean lifetime CLV of the customers bought over CAC, payback is when the
    average customer's cumulative margin covers CAC, and the maximum allowable CPA is the
    mean lifetime CLV over the target ratio.

    Parameters
    ----------
    scores
        The scores table: one row per customer, with the ``by`` columns (for
        ``acquisition_month``, either that column, a Period or ``'YYYY-MM'`` string, or
        ``first_purchase_date``, whose month is taken), the two value columns,
        ``historic_clv``, ``predicted_clv`` and ``tenure_days``. ``attrs["lifevalue"]``
        may hold ``horizon_months`` and ``currency``. Not modified.
    spend
        Marketing spend, one row per date, channel and campaign: ``date`` (anything
        ``pandas.to_datetime`` reads), ``channel``, ``campaign`` (needed only when
        grouping by campaign; missing for spend not tied to a campaign) and ``spend`` (a
        number >= 0, in the scores' currency).
    by
        Grouping keys, any of ``acquisition_channel``, ``acquisition_campaign`` and
        ``acquisition_month``, in the order of the result's first columns. Default: per
        channel.
    target_ltv_cac
        LTV:CAC a group must reach to be scaled, and the ratio behind
        ``max_allowable_cpa``. Default 3.
    lifetime_value
        Column of each customer's lifetime value. Default ``total_clv`` (historic plus
        predicted over the horizon).
    twelve_month_value
        Column of each customer's value over the next 12 months. Default
        ``predicted_clv`` (which covers 12 months when scored with the default horizon).
    cut_below
        LTV:CAC under which a group is cut. Default 1 (customers cost more than they
        bring). Must not exceed ``target_ltv_cac``.
    max_payback_months
        Longest payback, in months, of a group to be scaled. Default 12.
    min_customers
        Fewest new customers on which a group is scaled or cut; fewer means hold. Default
        20.
    horizon_months
        Months over which ``predicted_clv`` is earned, for the payback curve. Default:
        ``attrs["lifevalue"]["horizon_months"]`` of ``scores``, else 12.
    new_customer_values
        Predicted profit over the horizon of customers too new for the purchase models,
        indexed like ``scores`` (``NewCustomerScores.values`` of
        :func:`lifevalue.value.leads.score_new_customers`). For the customers in it whose
        ``tenure_days`` is below ``new_customer_days``, it replaces ``predicted_clv`` and
        the 12-month value, and is added to ``historic_clv`` for the lifetime value; a
        campaign of last month is then valued by what its customers' channel, campaign
        and first orders say, not by one purchase each. ``lead_valued_customers`` counts
        them per group and the rule says so.
    new_customer_days
        Tenure, in days, under which a customer counts as too new (default 90).

    Returns
    -------
    pandas.DataFrame
        One row per group (sorted by the keys; missing keys last): the ``by`` columns,
        then :data:`ACQUISITION_COLUMNS`. ``attrs["lifevalue"]`` repeats the options and
        holds ``total_spend``, ``unmatched_spend`` (spend of groups without customers)
        and ``unmatched_groups``.

    Raises
    ------
    InputError
        An option is out of range, or ``by`` names an unknown key.
    DataValidationError
        ``scores`` or ``spend`` lacks a column, or holds a value that cannot be used
        (missing or non-numeric value, negative spend or tenure, unreadable date, missing
        channel); the message lists the rows.
    """
    keys = _by(by)
    target = _number(target_ltv_cac, "target_ltv_cac", "a number > 0", lambda v: v > 0)
    cut = _number(
        cut_below,
        "cut_below",
        f"between 0 and target_ltv_cac ({target:g})",
        lambda v: 0 <= v <= target,
    )
    max_payback = _number(max_payback_months, "max_payback_months", "a number > 0", lambda v: v > 0)
    if not isinstance(min_customers, int | np.integer) or isinstance(min_customers, bool):
        _fail("min_customers", "an integer >= 0", min_customers)
    if min_customers < 0:
        _fail("min_customers", "an integer >= 0", min_customers)
    for name, value in (
        ("lifetime_value", lifetime_value),
        ("twelve_month_value", twelve_month_value),
    ):
        if not isinstance(value, str) or not value:
            _fail(name, "a column name", value)
    if not isinstance(scores, pd.DataFrame):
        raise InputError(
            f"acquisition_economics needs the scores as a pandas DataFrame. "
            f"Got {type(scores).__name__} instead."
        )
    if not isinstance(spend, pd.DataFrame):
        raise InputError(
            f"acquisition_economics needs the spend table as a pandas DataFrame. "
            f"Got {type(spend).__name__} instead."
        )
    meta = dict(scores.attrs.get(METADATA_KEY) or {})
    if horizon_months is None:
        horizon = float(meta.get("horizon_months") or 12.0)
    else:
        horizon = _number(horizon_months, "horizon_months", "a number > 0", lambda v: v > 0)
    if twelve_month_value == "predicted_clv" and not math.isclose(horizon, 12.0):
        logger.warning(
            "mean_clv_12m is the mean predicted_clv, which covers %g months, not 12.", horizon
        )

    customers = _customer_frame(scores, keys, lifetime_value, twelve_month_value)
    customers["lead_valued"] = False
    if new_customer_values is not None:
        _lead_values(customers, scores, new_customer_values, float(new_customer_days))
    spent = _spend_frame(spend, keys)

    groups = customers.groupby(keys, dropna=False, sort=False, observed=True)
    bought = groups.agg(
        new_customers=("lifetime", "size"),
        mean_clv_12m=("twelve_month", "mean"),
        mean_lifetime_clv=("lifetime", "mean"),
        lead_valued_customers=("lead_valued", "sum"),
    ).reset_index()
    bought["_group"] = np.arange(len(bought))
    customers["_group"] = groups.ngroup().to_numpy()
    paid = (
        spent.groupby(keys, dropna=False, sort=False, observed=True)["spend"]
        .sum()
        .rename("marketing_spend")
        .reset_index()
    )
    table = bought.merge(paid, on=keys, how="outer", sort=False)
    table["new_customers"] = table["new_customers"].fillna(0).astype(np.int64)
    table["lead_valued_customers"] = table["lead_valued_customers"].fillna(0).astype(np.int64)
    table["marketing_spend"] = table["marketing_spend"].fillna(0.0)

    n = table["new_customers"].to_numpy(dtype=float)
    money = table["marketing_spend"].to_numpy(dtype=float)
    # No customers: infinite CAC; a CAC of a tiny fraction of a cent: an infinite ratio.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cac = np.where(money > 0, money / n, np.nan)
        ltv_cac = table["mean_lifetime_clv"].to_numpy(dtype=float) / cac
    table["cac"] = cac
    table["ltv_cac"] = ltv_cac
    table["payback_months"] = _payback(customers, table, horizon)
    table["max_allowable_cpa"] = table["mean_lifetime_clv"] / target
    _decide(table, target, cut, max_payback, int(min_customers))
    by_lead = table["lead_valued_customers"] > 0
    table.loc[by_lead, "rule"] = (
        table.loc[by_lead, "rule"]
        + " ("
        + table.loc[by_lead, "lead_valued_customers"].astype(str)
        + " of "
        + table.loc[by_lead, "new_customers"].astype(str)
        + " customers valued by the lead model: too new for the purchase models)"
    )

    for key in keys:
        if key != "acquisition_month":
            table[key] = table[key].where(table[key] != _MISSING, np.nan)
    table = table.sort_values(keys, na_position="last", kind="stable", ignore_index=True)
    table = table[[*keys, *ACQUISITION_COLUMNS]]

    unmatched = table["new_customers"].eq(0) & table["marketing_spend"].gt(0)
    unmatched_spend = float(table.loc[unmatched, "marketing_spend"].sum())
    if unmatched.any():
        logger.warning(
            "%.2f of marketing spend (%d of %d groups by %s) bought no customer in the scores.",
            unmatched_spend,
            int(unmatched.sum()),
            len(table),
            ", ".join(keys),
        )
    table.attrs[METADATA_KEY] = {
        **{k: v for k, v in meta.items() if k in ("as_of", "currency", "horizon_months")},
        "by": list(keys),
        "horizon_months": horizon,
        "target_ltv_cac": target,
        "cut_below": cut,
        "max_payback_months": max_payback,
        "min_customers": int(min_customers),
        "lifetime_value": lifetime_value,
        "twelve_month_value": twelve_month_value,
        "total_spend": float(spent["spend"].sum()),
        "unmatched_spend": unmatched_spend,
        "unmatched_groups": int(unmatched.sum()),
    }
    return table


# --------------------------------------------------------------------------- validation


def _fail(name: str, expectation: str, value: Any) -> Any:
    raise InputError(
        f"The {name!r} parameter of {_FUNC} must be {expectation}. Got {value!r} instead."
    )


def _number(value: Any, name: str, expectation: str, ok: Any) -> float:
    if (
        not isinstance(value, int | float | np.integer | np.floating)
        or isinstance(value, bool | np.bool_)
        or not math.isfinite(float(value))
        or not ok(float(value))
    ):
        _fail(name, expectation, value)
    return float(value)


def _by(by: Sequence[str] | str) -> list[str]:
    keys = [by] if isinstance(by, str) else list(by) if isinstance(by, Sequence) else None
    expectation = "a non-empty sequence of distinct keys among " + ", ".join(
        map(repr, ACQUISITION_KEYS)
    )
    if (
        not keys
        or not all(isinstance(k, str) and k in ACQUISITION_KEYS for k in keys)
        or len(set(keys)) < len(keys)
    ):
        _fail("by", expectation, by)
    return keys  # type: ignore[return-value]


def _rows(labels: pd.Index) -> str:
    shown = ", ".join(map(str, labels[:_SHOWN_ROWS]))
    more = f" and {len(labels) - _SHOWN_ROWS} more" if len(labels) > _SHOWN_ROWS else ""
    return shown + more


def _missing(frame: pd.DataFrame, needed: list[str], what: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"The {what} given to {_FUNC} lacks the column(s) {', '.join(map(repr, missing))}. "
            f"Found: {', '.join(map(repr, map(str, frame.columns))) or 'no columns'}.",
            rule="missing_columns",
        )


def _numeric(frame: pd.DataFrame, column: str, what: str) -> pd.Series:
    values = frame[column]
    if values.empty:
        return values.astype(float)
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise DataValidationError(
            f"Column {column!r} of the {what} given to {_FUNC} must be numeric. "
            f"Found dtype {values.dtype}.",
            rule="numeric",
        )
    values = values.astype(float)
    bad = ~np.isfinite(values.to_numpy())
    if bad.any():
        raise DataValidationError(
            f"Column {column!r} of the {what} given to {_FUNC} must hold finite numbers. "
            f"Found missing or infinite values at rows {_rows(frame.index[bad])}.",
            rule="finite",
            rows=frame.index[bad],
        )
    return values


def _labels(values: pd.Series) -> pd.Series:
    """Channel or campaign labels as strings, a missing label as :data:`_MISSING`.

    Missing labels are grouped and joined through a sentinel, not NaN, so that the join
    works whatever the pandas version or the input dtype (categorical, all missing).
    """
    out = values.astype(str).astype(object)
    out[values.isna().to_numpy()] = _MISSING
    return out


def _month(values: pd.Series, column: str, what: str) -> pd.Series:
    if isinstance(values.dtype, pd.PeriodDtype):
        return values.dt.asfreq("M")
    try:
        stamps = pd.to_datetime(values, errors="coerce")
    except (TypeError, ValueError):
        stamps = pd.Series(pd.NaT, index=values.index)
    bad = stamps.isna() & values.notna()
    if bad.any():
        raise DataValidationError(
            f"Column {column!r} of the {what} given to {_FUNC} must hold dates or 'YYYY-MM' "
            f"months. Found unreadable values at rows {_rows(values.index[bad])}.",
            rule="date",
            rows=values.index[bad],
        )
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    return stamps.dt.to_period("M")


def _customer_frame(
    scores: pd.DataFrame, keys: list[str], lifetime: str, twelve: str
) -> pd.DataFrame:
    """The columns the computation needs, one row per customer, validated."""
    month_source = "acquisition_month"
    if "acquisition_month" in keys and "acquisition_month" not in scores.columns:
        month_source = "first_purchase_date"
    needed = [month_source if k == "acquisition_month" else k for k in keys]
    needed += [lifetime, twelve, "historic_clv", "predicted_clv", "tenure_days"]
    _missing(scores, list(dict.fromkeys(needed)), "scores table")
    what = "scores table"
    out = pd.DataFrame(index=scores.index)
    for key in keys:
        if key == "acquisition_month":
            out[key] = _month(scores[month_source], month_source, what)
        else:
            out[key] = _labels(scores[key])
    out["lifetime"] = _numeric(scores, lifetime, what)
    out["twelve_month"] = _numeric(scores, twelve, what)
    out["historic"] = _numeric(scores, "historic_clv", what)
    out["predicted"] = _numeric(scores, "predicted_clv", what)
    tenure = _numeric(scores, "tenure_days", what)
    negative = tenure.to_numpy() < 0
    if negative.any():
        raise DataValidationError(
            f"Column 'tenure_days' of the scores table given to {_FUNC} must be >= 0. "
            f"Found negative values at rows {_rows(scores.index[negative])}.",
            rule="tenure_non_negative",
            rows=scores.index[negative],
        )
    out["tenure_months"] = tenure / _DAYS_PER_MONTH
    return out.reset_index(drop=True)


def _lead_values(
    customers: pd.DataFrame, scores: pd.DataFrame, values: pd.Series, days: float
) -> None:
    """Value the too-new customers by the lead model (in place, on our own frame)."""
    if not isinstance(values, pd.Series):
        _fail("new_customer_values", "a pandas Series indexed like the scores", values)
    if not days > 0:
        _fail("new_customer_days", "a number > 0", days)
    lead = values.reindex(scores.index).to_numpy(dtype=float)
    new = (customers["tenure_months"].to_numpy() * _DAYS_PER_MONTH < days) & np.isfinite(lead)
    customers["lead_valued"] = new
    customers.loc[new, "predicted"] = lead[new]
    customers.loc[new, "twelve_month"] = lead[new]
    customers.loc[new, "lifetime"] = customers.loc[new, "historic"] + lead[new]


def _spend_frame(spend: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The spend table with its columns renamed to the keys, validated."""
    what = "spend table"
    needed = ["date", "channel", "spend"]
    if "acquisition_campaign" in keys:
        needed.insert(2, "campaign")
    _missing(spend, needed, what)
    amount = _numeric(spend, "spend", what)
    negative = amount.to_numpy() < 0
    if negative.any():
        raise DataValidationError(
            f"Column 'spend' of the spend table given to {_FUNC} must be >= 0. Found negative "
            f"spend at rows {_rows(spend.index[negative])}.",
            rule="spend_non_negative",
            rows=spend.index[negative],
        )
    no_channel = spend["channel"].isna().to_numpy()
    if no_channel.any():
        raise DataValidationError(
            f"Column 'channel' of the spend table given to {_FUNC} must name a channel on "
            f"every row. Found it missing at rows {_rows(spend.index[no_channel])}.",
            rule="channel_missing",
            rows=spend.index[no_channel],
        )
    month = _month(spend["date"], "date", what)
    no_date = month.isna().to_numpy()
    if no_date.any():
        raise DataValidationError(
            f"Column 'date' of the spend table given to {_FUNC} must hold a date on every "
            f"row. Found it missing at rows {_rows(spend.index[no_date])}.",
            rule="date_missing",
            rows=spend.index[no_date],
        )
    out = pd.DataFrame(index=spend.index)
    for key in keys:
        source = ACQUISITION_KEYS[key]
        out[key] = month if key == "acquisition_month" else _labels(spend[source])
    out["spend"] = amount
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- payback


def _payback(customers: pd.DataFrame, table: pd.DataFrame, horizon: float) -> np.ndarray:
    """Months until the mean cumulative margin of each group's customers covers its CAC.

    Each customer's margin curve is piecewise linear: slope ``historic / tenure`` on
    ``[0, tenure]`` (a jump of ``historic`` at 0 when the tenure is 0), slope
    ``predicted / horizon`` on ``[tenure, tenure + horizon]``, flat afterwards. The mean
    curve of a group is piecewise linear with breakpoints at those times; it is built from
    the jumps and slope changes at each breakpoint, sorted in time, and the first crossing
    of CAC is found exactly.
    """
    out = np.full(len(table), np.nan)
    has = table["_group"].notna().to_numpy()
    group_cac = np.full(int(has.sum()), np.nan)
    group_cac[table.loc[has, "_group"].to_numpy(dtype=np.int64)] = table.loc[has, "cac"]
    size = customers.groupby("_group")["_group"].transform("size").to_numpy(dtype=float)

    gid = customers["_group"].to_numpy(dtype=np.int64)
    tenure = customers["tenure_months"].to_numpy()
    historic = customers["historic"].to_numpy() / size
    predicted = customers["predicted"].to_numpy() / size
    instant = tenure < 1e-6  # about 2.6 seconds: no time to spread over
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rate = np.where(instant, 0.0, historic / tenure)
    flow = predicted / horizon
    n = gid.size
    events = pd.DataFrame(
        {
            "group": np.concatenate([gid, gid, gid]),
            "time": np.concatenate([np.zeros(n), tenure, tenure + horizon]),
            "order": np.repeat([0, 1, 2], n),
            "jump": np.concatenate([np.where(instant, historic, 0.0), np.zeros(2 * n)]),
            "dslope": np.concatenate([rate, flow - rate, -flow]),
        }
    ).sort_values(["group", "time", "order"], kind="stable", ignore_index=True)
    # Events at the same time act together.
    events = events.groupby(["group", "time"], sort=False, as_index=False)[["jump", "dslope"]].sum()
    by_group = events.groupby("group", sort=False)
    step = by_group["time"].diff().fillna(0.0).to_numpy()
    slope_before = (by_group["dslope"].cumsum() - events["dslope"]).to_numpy()
    events["gain"] = slope_before * step + events["jump"].to_numpy()
    value = events.groupby("group", sort=False)["gain"].cumsum().to_numpy()
    first = by_group.cumcount().to_numpy() == 0
    target = group_cac[events["group"].to_numpy()]
    scale = np.maximum(np.abs(target), 1.0)
    reached = value >= target - 1e-9 * scale
    events["reached"] = reached
    hits = events.loc[reached].groupby("group", sort=False).head(1)
    if not hits.empty:
        at = hits.index.to_numpy()
        before = value[at] - events["jump"].to_numpy()[at]
        time = events["time"].to_numpy()
        start = np.where(first[at], time[at], time[np.maximum(at - 1, 0)])
        by_slope = (before >= target[at] - 1e-9 * scale[at]) & ~first[at]
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = start + (target[at] - value[np.maximum(at - 1, 0)]) / slope_before[at]
        months = np.where(by_slope, cross, time[at])
        per_group = np.full(group_cac.size, np.nan)
        per_group[events["group"].to_numpy()[at]] = months
        out[has] = per_group[table.loc[has, "_group"].to_numpy(dtype=np.int64)]
    cac = table["cac"].to_numpy(dtype=float)
    out[has & (cac == 0)] = 0.0
    out[~np.isfinite(cac)] = np.nan
    return out


# --------------------------------------------------------------------------- decision


def _fmt(values: pd.Series, digits: int = 2) -> pd.Series:
    return values.map(lambda v: f"{v:,.{digits}f}" if np.isfinite(v) else str(v))


def _decide(table: pd.DataFrame, target: float, cut: float, max_payback: float, least: int) -> None:
    """Add ``recommendation``, ``rule`` and ``flag`` to ``table`` (in place, our own frame)."""
    n = table["new_customers"]
    money = table["marketing_spend"]
    ratio = table["ltv_cac"]
    payback = table["payback_months"]
    no_customers = n.eq(0) & money.gt(0)
    no_spend = money.le(0)
    few = n.lt(least) & n.gt(0)
    not_paid = n.gt(0) & ~no_spend & payback.isna()
    flags = pd.DataFrame(
        {
            "no_spend": no_spend,
            "no_customers": no_customers,
            "not_paid_back": not_paid,
            "few_customers": few & ~no_spend,
        }
    )
    text = pd.Series("", index=table.index)
    for name in flags.columns:  # four flags, not customers
        text = text + np.where(flags[name], name + ";", "")
    table["flag"] = text.str.rstrip(";")

    ratio_s = _fmt(ratio)
    payback_s = _fmt(payback, 1)
    fast = payback.le(max_payback)
    slow_text = np.where(
        payback.isna(),
        "not paid back within tenure + horizon",
        "payback " + payback_s + f" > {max_payback:g} months",
    )
    conditions = [
        no_customers,
        no_spend,
        few,
        ratio.lt(cut),
        ratio.ge(target) & fast,
        ratio.ge(target),
    ]
    recommendations = ["cut", "hold", "hold", "cut", "scale", "hold"]
    rules = [
        "cut: spent " + _fmt(money) + " and bought no new customer",
        pd.Series("hold: no marketing spend (organic); nothing to scale or cut", index=table.index),
        "hold: " + n.astype(str) + f" new customers < minimum {least} to judge",
        "cut: LTV:CAC " + ratio_s + f" < {cut:g}",
        "scale: LTV:CAC "
        + ratio_s
        + f" >= target {target:g} and payback "
        + payback_s
        + f" <= {max_payback:g} months",
        "hold: LTV:CAC " + ratio_s + f" >= target {target:g} but " + slow_text,
    ]
    table["recommendation"] = np.select(conditions, recommendations, default="hold")
    default_rule = "hold: LTV:CAC " + ratio_s + f" between {cut:g} and target {target:g}"
    table["rule"] = np.select(conditions, rules, default=default_rule)
