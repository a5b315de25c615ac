"""Report fixtures: the simulated shop's stored run, hand-made history, external tools."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pandas as pd
import pytest
from tests.report._runs import cohort_value, holdout_by_frequency, holdout_tracking, with_tables

from lifevalue.pipeline import AnalysisResult
from lifevalue.store.run import StoredRun

#: Set to 1 (CI does) to turn a missing external tool into a failure instead of a skip.
REQUIRE_TOOLS = "LIFEVALUE_REQUIRE_TOOLS"


def require_tool(*names: str) -> str:
    """The path of the first of ``names`` on PATH.

    Without any of them the test is skipped, or fails when ``LIFEVALUE_REQUIRE_TOOLS=1``
    (CI installs the tools with ``.ci/system-packages``).
    """
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    message = f"{' or '.join(names)} is not installed (.ci/system-packages installs it)"
    if os.environ.get(REQUIRE_TOOLS) == "1":
        pytest.fail(f"{message}; {REQUIRE_TOOLS}=1 requires it.")
    pytest.skip(message)


@pytest.fixture
def tool() -> Callable[..., str]:
    """:func:`require_tool`, for tests that drive an external program."""
    return require_tool


@pytest.fixture(scope="session")
def stored_run(business_result: AnalysisResult) -> StoredRun:
    """The simulated shop's run as stored, with the holdout and cohort tables it may lack."""
    run = StoredRun.from_result(business_result, run_id="0123456789ab")
    extra = {
        "holdout_by_frequency": holdout_by_frequency(),
        "holdout_tracking": holdout_tracking(),
        "cohort_value": cohort_value(),
    }
    return with_tables(run, **{k: v for k, v in extra.items() if k not in run.tables})


@pytest.fixture(scope="session")
def bare_run(stored_run: StoredRun) -> StoredRun:
    """The same run without a spend table, holdout checks, cohorts or model comparison."""
    return with_tables(
        stored_run,
        drop=(
            "acquisition",
            "acquisition_campaigns",
            "holdout_by_frequency",
            "holdout_tracking",
            "cohort_value",
            "model_comparison",
        ),
    )


@pytest.fixture(scope="session")
def trends(stored_run: StoredRun) -> pd.DataFrame:
    """Three monthly runs (the last one the stored run), whole base and value tiers."""
    head = stored_run.headline
    rows = []
    for i, as_of in enumerate(["2024-10-31", "2024-11-30", "2024-12-31"]):
        scale = 0.9 + 0.05 * i
        run_id = stored_run.run_id if i == 2 else f"run{i}"
        base = {"run_id": run_id, "created_at": f"2025-01-0{i + 1}T00:00:00+00:00", "as_of": as_of}
        rows.append(
            base
            | {
                "dimension": "all",
                "group": "all",
                "customers": head["customers"],
                "active_customers": round(head["active_customers"] * scale),
                "customer_equity": head["customer_equity"] * scale,
                "predicted_value": head["predicted_value"] * scale,
                "mean_clv": head["mean_predicted_clv"] * scale,
                "mean_p_alive": 0.5,
            }
        )
        for tier in ("top", "low"):
            rows.append(
                base
                | {
                    "dimension": "value_tier",
                    "group": tier,
                    "customers": 100,
                    "active_customers": 50,
                    "customer_equity": 1000.0 * scale,
                    "predicted_value": 500.0 * scale,
                    "mean_clv": 5.0,
                    "mean_p_alive": 0.5,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def backtests() -> pd.DataFrame:
    """Two models backtested at three cutoffs."""
    rows = []
    for j, model in enumerate(["bgnbd", "pnbd"]):
        for i, cutoff in enumerate(["2024-03-31", "2024-06-30", "2024-09-30"]):
            rows.append(
                {
                    "cutoff": cutoff,
                    "model": model,
                    "n_customers": 2000,
                    "mae": 0.8 + 0.1 * i + 0.05 * j,
                    "rmse": 1.2,
                    "predicted_total": 1500.0 + 10 * i,
                    "actual_total": 1600.0,
                    "tracking_error": -0.06 + 0.01 * i,
                    "calibration_error": 0.2,
                    "p_alive_auc": 0.74,
                    "gini": 0.6,
                    "backtest_id": "bt1",
                    "created_at": "2025-01-05T00:00:00+00:00",
                }
            )
    return pd.DataFrame(rows)
