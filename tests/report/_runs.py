"""Hand-made tables of the shapes the pipeline writes, and altered copies of a stored run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from lifevalue.store.run import StoredRun


def with_tables(run: StoredRun, drop: tuple[str, ...] = (), **tables: pd.DataFrame) -> StoredRun:
    """A copy of ``run`` with tables added or replaced and others dropped (``run`` unchanged)."""
    kept = {name: t for name, t in run.tables.items() if name not in drop}
    return dataclasses.replace(run, tables={**kept, **tables})


def holdout_by_frequency() -> pd.DataFrame:
    """Mean holdout purchases, actual and predicted, for four calibration frequencies."""
    return pd.DataFrame(
        {
            "frequency": [0, 1, 2, 3],
            "frequency_label": ["0", "1", "2", "3+"],
            "customers": [700, 400, 200, 150],
            "actual": [0.2, 0.6, 1.1, 2.4],
            "predicted": [0.25, 0.55, 1.0, 2.2],
        }
    )


def holdout_tracking() -> pd.DataFrame:
    """Twenty weeks of repeat purchases, the last six held out, the last week 3 days long."""
    starts = pd.date_range("2024-01-01", periods=20, freq="7D")
    actual = np.linspace(10.0, 29.0, 20)
    predicted = np.linspace(11.0, 27.0, 20)
    return pd.DataFrame(
        {
            "period_start": starts,
            "days": [7.0] * 19 + [3.0],
            "actual": actual,
            "predicted": predicted,
            "cumulative_actual": actual.cumsum(),
            "cumulative_predicted": predicted.cumsum(),
            "holdout": [False] * 14 + [True] * 6,
        }
    )


def cohort_value(cohorts: int = 3) -> pd.DataFrame:
    """Cumulative spend per customer of ``cohorts`` monthly cohorts up to the same month."""
    rows = []
    for i in range(cohorts):
        for m in range(cohorts - i):
            rows.append((f"2024-{i + 1:02d}", m, 100 + i, 50.0 + 20 * m + i, 20.0 + 8 * m))
    return pd.DataFrame(
        rows,
        columns=[
            "cohort",
            "months_since_acquisition",
            "customers",
            "revenue_per_customer",
            "margin_per_customer",
        ],
    )
