"""Run history: every run kept, compared and watched over time.

:class:`RunStore` keeps runs in a DuckDB file or a PostgreSQL database;
:mod:`~lifevalue.store.monitor` turns them into trends, alerts and tier migration;
:mod:`~lifevalue.store.backtest` replays the models at past cutoffs.
"""

from __future__ import annotations

from lifevalue.store.backtest import Backtest, default_cutoffs, run_backtest
from lifevalue.store.monitor import aggregates, compare_runs, find_alerts, tier_migration
from lifevalue.store.run import MODEL_ROLES, StoredRun
from lifevalue.store.store import DEFAULT_STORE, STORE_ENV, RunStore, resolve_store_url

__all__ = [
    "DEFAULT_STORE",
    "MODEL_ROLES",
    "STORE_ENV",
    "Backtest",
    "RunStore",
    "StoredRun",
    "aggregates",
    "compare_runs",
    "default_cutoffs",
    "find_alerts",
    "resolve_store_url",
    "run_backtest",
    "tier_migration",
]
