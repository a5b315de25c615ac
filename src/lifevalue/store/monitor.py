"""Monitoring: the figures watched from run to run, alerts when they move, tier migration.

Each run is reduced to a few figures per group (:func:`aggregates`): customers, probably
active customers, customer equity, predicted value, mean CLV and mean P(alive), for the
whole base and per value tier, RFM segment, lifecycle state, acquisition channel and
acquisition cohort. :func:`find_alerts` compares two runs' figures and names, for each
figure that moved beyond a threshold, the customers and groups behind the move;
:func:`tier_migration` counts how customers moved between value tiers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lifevalue.errors import InputError
from lifevalue.store.run import StoredRun

#: The dimension and group of the whole customer base.
ALL = "all"
#: Dimensions broken down, where the scores have them (``acquisition_cohort`` is the month
#: of the first purchase).
DIMENSIONS: tuple[str, ...] = (
    "value_tier",
    "segment",
    "lifecycle_state",
    "acquisition_channel",
    "acquisition_cohort",
)
#: Figures that raise alerts when they move.
FIGURES: tuple[str, ...] = ("customer_equity", "mean_clv", "mean_p_alive", "customers")
#: Columns of :func:`aggregates`.
AGGREGATE_COLUMNS: tuple[str, ...] = (
    "dimension",
    "group",
    "customers",
    "active_customers",
    "customer_equity",
    "predicted_value",
    "mean_clv",
    "mean_p_alive",
)
#: Columns of :func:`find_alerts`.
ALERT_COLUMNS: tuple[str, ...] = (
    "figure",
    "dimension",
    "group",
    "previous",
    "current",
    "change",
    "threshold",
    "drivers",
)
#: Row and column of :func:`tier_migration` for customers in one run only.
NEW_CUSTOMER = "new customer"
GONE = "gone"
#: Label of customers without a value in a dimension.
MISSING = "(none)"
#: Figures of :func:`compare_runs`.
HEADLINE_FIGURES: tuple[str, ...] = (
    "customers",
    "active_customers",
    "customer_equity",
    "predicted_value",
    "predicted_value_low",
    "predicted_value_high",
    "mean_predicted_clv",
    "top_20_percent_share",
)
_NEEDED = ("customer_id", "total_clv", "predicted_clv", "p_alive")


def aggregates(run: StoredRun | pd.DataFrame) -> pd.DataFrame:
    """A run's monitored figures per dimension and group.

    Parameters
    ----------
    run
        A stored run, or its scores (``customer_id``, ``total_clv``, ``predicted_clv``,
        ``p_alive`` and the dimension columns).

    Returns
    -------
    pandas.DataFrame
        :data:`AGGREGATE_COLUMNS`: one row for the whole base (dimension and group
        ``"all"``), then one per group of each dimension in :data:`DIMENSIONS` the scores
        have. ``customer_equity`` sums ``total_clv`` (profit so far plus predicted),
        ``predicted_value`` sums ``predicted_clv``; ``mean_clv`` is the mean
        ``predicted_clv``; ``active_customers`` counts P(alive) >= 0.5. Customers without
        a value in a dimension form the group ``"(none)"``.
    """
    scores = _scores(run)
    figures = pd.DataFrame(
        {
            "p_alive": scores["p_alive"].to_numpy(float),
            "active": scores["p_alive"].to_numpy(float) >= 0.5,
            "total_clv": scores["total_clv"].to_numpy(float),
            "predicted_clv": scores["predicted_clv"].to_numpy(float),
        }
    )
    frames = []
    for dimension in (ALL, *DIMENSIONS):
        groups = _groups(scores, dimension)
        if groups is None:
            continue
        table = (
            figures.groupby(groups.to_numpy(), sort=True)
            .agg(
                customers=("p_alive", "size"),
                active_customers=("active", "sum"),
                customer_equity=("total_clv", "sum"),
                predicted_value=("predicted_clv", "sum"),
                mean_clv=("predicted_clv", "mean"),
                mean_p_alive=("p_alive", "mean"),
            )
            .rename_axis("group")
            .reset_index()
            .assign(dimension=dimension)
        )
        frames.append(table)
    result = pd.concat(frames, ignore_index=True)[list(AGGREGATE_COLUMNS)]
    return result.astype({"customers": "int64", "active_customers": "int64", "group": str})


def find_alerts(
    previous: StoredRun | pd.DataFrame,
    current: StoredRun | pd.DataFrame,
    *,
    threshold: float = 0.10,
    min_customers: int = 30,
    n_customers: int = 5,
    n_groups: int = 3,
) -> pd.DataFrame:
    """The monitored figures that moved beyond ``threshold`` between two runs, and why.

    Parameters
    ----------
    previous, current
        The earlier and the later run (stored runs or their scores).
    threshold
        Relative change (0.10: 10%) of a figure beyond which it raises an alert.
    min_customers
        Groups with fewer customers than this in both runs raise no alert.
    n_customers, n_groups
        How many customers and groups each alert names as its drivers.

    Returns
    -------
    pandas.DataFrame
        :data:`ALERT_COLUMNS`, one row per figure (:data:`FIGURES`) and group that moved:
        its ``previous`` and ``current`` value and relative ``change``. ``drivers`` names
        the customers of the group whose ``total_clv`` changed most (a customer in one run
        only counts as 0 in the other) and the groups of the same dimension whose figure
        moved most (value tiers for the whole base). A group new in the current run has
        no previous figure and raises none.
    """
    if threshold <= 0:
        raise InputError(f"The 'threshold' of the alerts must be > 0. Got {threshold!r} instead.")
    old, new = _scores(previous), _scores(current)
    merged = aggregates(old).merge(
        aggregates(new), on=["dimension", "group"], how="outer", suffixes=("_old", "_new")
    )
    # A group gone from one run has no customers and no value there.
    for column in ("customers", "customer_equity"):
        merged[[f"{column}_old", f"{column}_new"]] = merged[
            [f"{column}_old", f"{column}_new"]
        ].fillna(0)
    large = np.maximum(merged["customers_old"], merged["customers_new"]) >= min_customers
    movers = _customer_changes(old, new)
    group_text: dict[tuple[str, str], str] = {}
    rows: list[dict[str, Any]] = []
    for figure in FIGURES:
        before = merged[f"{figure}_old"].astype(float)
        after = merged[f"{figure}_new"].astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            change = (after - before) / before.abs()
        flagged = large & np.isfinite(change) & (change.abs() > threshold)
        for i in np.flatnonzero(flagged.to_numpy()):
            dimension, group = merged["dimension"].iloc[i], merged["group"].iloc[i]
            # The whole base's movers are read in value tiers.
            by = "value_tier" if dimension == ALL else dimension
            if (figure, by) not in group_text:
                group_text[figure, by] = _group_drivers(merged, figure, by, n_groups)
            drivers = [_customer_drivers(movers, dimension, group, n_customers)]
            drivers.append(group_text[figure, by])
            rows.append(
                {
                    "figure": figure,
                    "dimension": dimension,
                    "group": group,
                    "previous": float(before.iloc[i]),
                    "current": float(after.iloc[i]),
                    "change": float(change.iloc[i]),
                    "threshold": float(threshold),
                    "drivers": "; ".join(d for d in drivers if d),
                }
            )
    return order_alerts(pd.DataFrame(rows, columns=list(ALERT_COLUMNS)))


def order_alerts(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alerts in reading order: the whole base first, then each dimension's, largest first."""
    if alerts.empty:
        return alerts.reset_index(drop=True)
    order = {name: i for i, name in enumerate((ALL, *DIMENSIONS))}
    keys = alerts.assign(
        _dim=alerts["dimension"].map(order).fillna(len(order)), _size=-alerts["change"].abs()
    )
    keys = keys.sort_values(["_dim", "_size", "figure", "group"], kind="stable")
    return alerts.loc[keys.index].reset_index(drop=True)


def tier_migration(old: StoredRun | pd.DataFrame, new: StoredRun | pd.DataFrame) -> pd.DataFrame:
    """Customers by value tier in one run (rows) and in a later one (columns).

    Parameters
    ----------
    old, new
        The earlier and the later run (stored runs or their scores with ``customer_id``
        and ``value_tier``).

    Returns
    -------
    pandas.DataFrame
        Counts of customers; rows are the old run's tiers plus ``"new customer"`` (in the
        new run only), columns the new run's tiers plus ``"gone"`` (in the old run only).
        Tiers are ordered from the most valuable (highest mean ``predicted_clv``) down.
        All cells add up to the customers of either run.
    """
    before, after = _scores(old), _scores(new)
    for name, scores in (("old", before), ("new", after)):
        if "value_tier" not in scores.columns:
            raise InputError(f"The {name} run's scores have no value_tier column.")
    keep = ["customer_id", "value_tier", "predicted_clv"]
    both = before[keep].merge(after[keep], on="customer_id", how="outer", suffixes=("_old", "_new"))
    rows = both["value_tier_old"].astype(object).where(both["value_tier_old"].notna(), NEW_CUSTOMER)
    columns = both["value_tier_new"].astype(object).where(both["value_tier_new"].notna(), GONE)
    rows, columns = rows.astype(str), columns.astype(str)
    tiers = _tier_order(before, after)
    table = pd.crosstab(rows, columns)
    table = table.reindex(
        index=[*tiers, NEW_CUSTOMER], columns=[*tiers, GONE], fill_value=0
    ).astype("int64")
    table.index.name = "from"
    table.columns.name = "to"
    return table


def compare_runs(a: StoredRun, b: StoredRun) -> pd.DataFrame:
    """Two runs' headline figures side by side.

    Returns
    -------
    pandas.DataFrame
        Indexed by figure (:data:`HEADLINE_FIGURES`): ``run_a``, ``run_b``, ``change``
        (b - a) and ``relative_change`` (change / |a|, NaN where a is 0).
    """
    first = [_number(a.headline.get(k)) for k in HEADLINE_FIGURES]
    second = [_number(b.headline.get(k)) for k in HEADLINE_FIGURES]
    table = pd.DataFrame({"run_a": first, "run_b": second}, index=list(HEADLINE_FIGURES))
    table.index.name = "figure"
    table["change"] = table["run_b"] - table["run_a"]
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = table["change"] / table["run_a"].abs()
    table["relative_change"] = relative.where(np.isfinite(relative))
    return table


def setting_changes(a: StoredRun, b: StoredRun) -> dict[str, tuple[Any, Any]]:
    """What differs between two runs' scoring dates, data and settings: ``{name: (a, b)}``."""
    changes: dict[str, tuple[Any, Any]] = {}
    if a.as_of != b.as_of:
        changes["as_of"] = (a.as_of, b.as_of)
    if a.fingerprint != b.fingerprint:
        changes["data fingerprint"] = (a.fingerprint, b.fingerprint)
    for key in sorted(set(a.settings) | set(b.settings)):
        first, second = a.settings.get(key), b.settings.get(key)
        if first != second:
            changes[key] = (first, second)
    return changes


# -- helpers ------------------------------------------------------------------------------


def _scores(run: StoredRun | pd.DataFrame) -> pd.DataFrame:
    scores = run.scores if isinstance(run, StoredRun) else run
    if "customer_id" not in scores.columns and scores.index.name == "customer_id":
        scores = scores.reset_index()
    missing = [c for c in _NEEDED if c not in scores.columns]
    if missing:
        raise InputError(
            f"Monitoring needs scores with {', '.join(_NEEDED)}; missing: {', '.join(missing)}."
        )
    return scores


def _groups(scores: pd.DataFrame, dimension: str) -> pd.Series | None:
    """Each customer's group in a dimension (as text), or ``None`` when the scores lack it."""
    if dimension == ALL:
        return pd.Series(ALL, index=scores.index)
    if dimension == "acquisition_cohort":
        if "acquisition_month" in scores.columns:
            values = scores["acquisition_month"]
        elif "first_purchase_date" in scores.columns:
            values = pd.to_datetime(scores["first_purchase_date"]).dt.to_period("M")
        else:
            return None
    elif dimension in scores.columns:
        values = scores[dimension]
    else:
        return None
    text = values.astype(object).where(values.notna(), MISSING).astype(str)
    return text.replace({"nan": MISSING, "NaT": MISSING, "": MISSING})


def _customer_changes(old: pd.DataFrame, new: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per customer (in either run): id, change of ``total_clv`` and each dimension's group
    in the old and the new run, as arrays."""
    frames = []
    for scores in (old, new):
        part = pd.DataFrame(
            {"customer_id": scores["customer_id"].to_numpy(), "total_clv": scores["total_clv"]}
        )
        for dimension in DIMENSIONS:
            groups = _groups(scores, dimension)
            if groups is not None:
                part[dimension] = groups.to_numpy()
        frames.append(part.reset_index(drop=True))
    both = frames[0].merge(frames[1], on="customer_id", how="outer", suffixes=("_old", "_new"))
    delta = both["total_clv_new"].fillna(0) - both["total_clv_old"].fillna(0)
    arrays = {
        "customer_id": both["customer_id"].astype(str).to_numpy(),
        "delta": delta.to_numpy(float),
    }
    for column in both.columns:
        if column.endswith(("_old", "_new")) and not column.startswith("total_clv"):
            arrays[column] = both[column].astype(object).to_numpy()
    return arrays


def _customer_drivers(
    movers: dict[str, np.ndarray], dimension: str, group: str, n_customers: int
) -> str:
    """The customers of a group whose ``total_clv`` changed most, as text."""
    delta = movers["delta"]
    member = delta != 0
    if dimension != ALL:
        in_group = np.zeros(len(delta), dtype=bool)
        for side in ("_old", "_new"):
            column = movers.get(f"{dimension}{side}")
            if column is not None:
                in_group |= column == group
        member &= in_group
    chosen = np.flatnonzero(member)
    top = chosen[np.argsort(-np.abs(delta[chosen]), kind="stable")[:n_customers]]
    if not len(top):
        return ""
    return "customers " + ", ".join(f"{movers['customer_id'][i]} ({delta[i]:+,.0f})" for i in top)


def _group_drivers(merged: pd.DataFrame, figure: str, by: str, n_groups: int) -> str:
    """The groups of a dimension whose figure moved most, as text."""
    groups = merged[merged["dimension"] == by]
    moved = (groups[f"{figure}_new"] - groups[f"{figure}_old"]).dropna()
    moved = moved[moved != 0]
    if not len(moved):
        return ""
    biggest = moved.abs().sort_values(ascending=False, kind="stable").index[:n_groups]
    return f"{by} " + ", ".join(
        f"{groups.loc[i, 'group']} ({_format_change(figure, moved[i])})" for i in biggest
    )


def _format_change(figure: str, value: float) -> str:
    if figure == "customers":
        return f"{value:+,.0f}"
    if figure == "mean_p_alive":
        return f"{value:+.3f}"
    return f"{value:+,.0f}" if abs(value) >= 100 else f"{value:+,.2f}"


def _tier_order(*runs: pd.DataFrame) -> list[str]:
    """Value tiers from the most valuable down (by mean predicted CLV over both runs)."""
    both = pd.concat([r[["value_tier", "predicted_clv"]] for r in runs], ignore_index=True)
    both = both.dropna(subset=["value_tier"])
    means = both.groupby(both["value_tier"].astype(str))["predicted_clv"].mean()
    return [str(t) for t in means.sort_values(ascending=False).index]


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")
