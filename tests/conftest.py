"""Shared fixtures: a private engine and small helpers to write inputs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from lifevalue.config import Config
from lifevalue.data import CustomerSummary, Engine, datasets, summarize
from lifevalue.data.simulate import SimulatedBusiness, simulate_business
from lifevalue.pipeline import AnalysisResult, run_analysis

BUSINESS_CONFIG = """
[data]
source = "transactions.csv"
[summary]
calibration_end = "2024-12-31"
[value]
margin_rate = 0.4
cost_to_serve = 1.5
spend = "marketing_spend.csv"
customers = "customers.csv"
prospects = "prospects.csv"
"""


@pytest.fixture(scope="session")
def engine() -> Engine:
    """One DuckDB engine for the whole session (every staged table has its own name)."""
    return Engine(threads=2)


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented text to a file in the test's folder and return its path."""

    def write(text: str, name: str = "transactions.csv") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture(scope="session")
def business(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SimulatedBusiness]:
    """A simulated shop's files (log, spend, customers, lifevalue.toml) and its truth."""
    folder = tmp_path_factory.mktemp("business")
    simulated = simulate_business(n_customers=2500, seed=11)
    simulated.transactions.to_csv(folder / "transactions.csv", index=False)
    simulated.spend.to_csv(folder / "marketing_spend.csv", index=False)
    customers = simulated.customers[["customer_id", "region", "age_band"]]
    # An attribute of the business's own, which the segments table breaks down too.
    plans = customers["customer_id"].astype(int).mod(3).map({0: "basic", 1: "plus", 2: "premium"})
    customers.assign(plan=plans).to_csv(folder / "customers.csv", index=False)
    pd.DataFrame(
        {
            "prospect_id": ["p1", "p2", "p3", "p4"],
            "acquisition_channel": ["social", "referral", "affiliate", "email"],
            "region": "midwest",
        }
    ).to_csv(folder / "prospects.csv", index=False)
    (folder / "lifevalue.toml").write_text(BUSINESS_CONFIG)
    return folder, simulated


@pytest.fixture(scope="session")
def business_result(business: tuple[Path, SimulatedBusiness]) -> AnalysisResult:
    """The pipeline's result on the simulated shop (shared: do not modify it)."""
    folder, _ = business
    return run_analysis(Config.from_toml(folder / "lifevalue.toml"))


def _cdnow(observation_end: str) -> CustomerSummary:
    return summarize(
        datasets.cdnow_sample_path(),
        calibration_end=datasets.CDNOW_CALIBRATION_END,
        observation_end=observation_end,
        unit="weeks",
        columns=datasets.CDNOW_SAMPLE_COLUMNS,
        duplicates=datasets.CDNOW_DUPLICATES,
    )


@pytest.fixture(scope="session")
def cdnow_holdout() -> CustomerSummary:
    """The CDNOW sample summarised in weeks: 39 calibration weeks and the 39-week holdout."""
    return _cdnow(datasets.CDNOW_OBSERVATION_END)


@pytest.fixture(scope="session")
def cdnow_calibration() -> CustomerSummary:
    """The CDNOW sample summarised in weeks as of the calibration end, without a holdout."""
    return _cdnow(datasets.CDNOW_CALIBRATION_END)
