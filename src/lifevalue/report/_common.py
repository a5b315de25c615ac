"""What the plots, the dashboard and the HTML report share: reading a run's tables."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lifevalue.errors import InputError
from lifevalue.store.run import StoredRun

#: Symbols of the commonest currencies; any other code is written before the amount.
CURRENCY_SYMBOLS: dict[str, str] = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}


def table(run: StoredRun, name: str) -> pd.DataFrame | None:
    """The run's table ``name``, or ``None`` when the run has none or it is empty."""
    frame = run.tables.get(name)
    return None if frame is None or frame.empty else frame


def need_table(run: StoredRun, name: str, why: str) -> pd.DataFrame:
    """The run's table ``name``.

    Raises
    ------
    InputError
        When the run has no such table (or it is empty); ``why`` says what needed it.
    """
    frame = table(run, name)
    if frame is None:
        raise InputError(
            f"{why} needs the run's '{name}' table, which run {run.run_id} does not have "
            f"(its tables: {', '.join(sorted(run.tables)) or 'none'})."
        )
    return frame


def need_frame(frame: pd.DataFrame | None, what: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """``frame`` after checking it is given, not empty and has ``columns``.

    Raises
    ------
    InputError
        When the frame is missing, empty or lacks a column; ``what`` names it.
    """
    if frame is None or frame.empty:
        raise InputError(f"No {what} was given (or it has no rows).")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"The {what} lacks the column(s) {', '.join(missing)}; found "
            f"{', '.join(map(str, frame.columns))}."
        )
    return frame


def currency(run: StoredRun) -> str | None:
    """The run's currency code (``None`` when validation did not settle one)."""
    code = (run.validation or {}).get("currency")
    return str(code) if code else None


def money(value: Any, code: str | None, digits: int = 0) -> str:
    """An amount with thousands separators and its currency: ``$130,161``, ``CHF 1,234``."""
    if value is None or pd.isna(value):
        return "-"
    sign = "-" if value < 0 else ""
    number = f"{abs(float(value)):,.{digits}f}"
    if not code:
        return sign + number
    symbol = CURRENCY_SYMBOLS.get(code.upper())
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{code} {number}"


def tier_rows(run: StoredRun) -> pd.DataFrame | None:
    """The value-tier rows of the segments table, most valuable tier first."""
    segments = table(run, "segments")
    if segments is None or "attribute" not in segments.columns:
        return None
    tiers = segments[segments["attribute"] == "value_tier"]
    if tiers.empty:
        return None
    return tiers.sort_values("mean_predicted_clv", ascending=False).reset_index(drop=True)


def chosen_comparison(run: StoredRun) -> pd.Series | None:
    """The model-comparison row of the model the run used, when the run compared models."""
    comparison = table(run, "model_comparison")
    if comparison is None or "model" not in comparison.columns:
        return None
    chosen = run.settings.get("transaction_model") or run.headline.get("transaction_model")
    rows = comparison[comparison["model"] == chosen]
    return None if rows.empty else rows.iloc[0]


def latest_per_as_of(trends: pd.DataFrame) -> pd.DataFrame:
    """The whole-base rows of a trends table, one per scoring date (the latest run's).

    Re-running the same month keeps only the newest run of that date.
    """
    rows = trends[(trends["dimension"] == "all") & (trends["group"] == "all")]
    if "created_at" in rows.columns:
        rows = rows.sort_values("created_at")
    rows = rows.drop_duplicates("as_of", keep="last")
    return rows.assign(as_of=pd.to_datetime(rows["as_of"])).sort_values("as_of")
