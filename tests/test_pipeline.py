"""The one road on a simulated business whose truth is known."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest
from tests.test_cli import run

from lifevalue.config import Config
from lifevalue.errors import InputError
from lifevalue.pipeline import run_analysis, tier_labels
from lifevalue.store import RunStore


def test_run_analysis_scores_segments_and_values_channels(business, business_result) -> None:
    _, simulated = business
    result = business_result
    scores = result.scores
    report = result.validation
    assert report.rows_read == len(simulated.transactions)
    assert report.accepted + report.quarantined_total == report.rows_read
    assert {"value_tier", "segment", "lifecycle_state", "offers", "region"} <= set(scores.columns)
    assert scores["predicted_clv"].notna().all()
    assert scores["best_contact_weekday"].notna().all()
    assert {"churn_triggers", "contact_plan", "peak_periods", "forecast", "drivers"} <= set(
        result.tables
    )
    forecast = result.tables["forecast"]
    assert len(forecast) == 12 and (forecast["expected_orders"] > 0).all()
    # The channel whose simulated customers are worth most per head comes out on top.
    truth = simulated.customers.assign(value=lambda c: c["lam"] * c["mean_spend"])
    best_true = truth.groupby("acquisition_channel")["value"].mean().idxmax()
    acquisition = result.tables["acquisition"].set_index("acquisition_channel")
    assert acquisition["mean_clv_12m"].idxmax() == best_true
    assert acquisition["new_customers"].sum() == len(scores)
    # Any attribute of the customers table with few values is broken down as well.
    segments = result.tables["segments"]
    plans = segments[segments["attribute"] == "plan"]
    assert set(plans["group"]) == {"basic", "plus", "premium"}
    assert plans["customers"].sum() == len(scores)
    # Per channel and month acquired: every customer and every unit of spend, once.
    months = result.tables["acquisition_months"]
    assert months["new_customers"].sum() == len(scores)
    assert months["marketing_spend"].sum() == pytest.approx(simulated.spend["spend"].sum())
    assert months["acquisition_month"].nunique() > 12
    # The blended LTV:CAC is a spend-weighted mean of the paid channels' ratios.
    paid = acquisition.loc[acquisition["marketing_spend"] > 0, "ltv_cac"]
    assert paid.min() < result.headline()["ltv_cac"] < paid.max()
    # Customers the simulation knows are gone score lower P(alive) than those alive.
    truth_ids = simulated.customers.assign(customer_id=lambda c: c["customer_id"].astype(str))
    alive = truth_ids.set_index("customer_id")["alive_at_end"].reindex(scores.index)
    assert scores.loc[alive, "p_alive"].mean() > scores.loc[~alive, "p_alive"].mean() + 0.2
    assert result.headline()["customers"] == len(scores)


def test_run_checks_the_model_and_values_new_customers(business, business_result) -> None:
    _, simulated = business
    tables = business_result.tables
    # The chosen model's holdout checks: every customer of the cut grouped once, weeks
    # tracked through the holdout.
    by_frequency = tables["holdout_by_frequency"]
    tracked = tables["holdout_tracking"]
    assert tracked["holdout"].any() and (~tracked["holdout"]).any()
    assert tracked["cumulative_actual"].iloc[-1] == tracked["actual"].sum() > 0
    assert by_frequency["customers"].sum() < len(business_result.scores)
    # Cohort curves: every customer who ever bought in exactly one acquisition month
    # (the scores leave out the few whose every purchase was returned).
    cohorts = tables["cohort_value"].groupby("cohort")["customers"].first()
    bought = simulated.transactions.loc[lambda t: t["amount"] > 0, "customer_id"].nunique()
    assert cohorts.sum() == bought >= len(business_result.scores)
    # New customers (last 90 days) get a lead-model value, and the acquisition table
    # uses it for them.
    leads = tables["leads"]
    tenure = business_result.scores.loc[leads.index, "tenure_days"]
    assert (tenure < 90).all() and len(leads) > 100
    assert leads["predicted_value"].notna().all()
    metrics = tables["lead_validation"].set_index("metric")["value"]
    assert metrics["gini"] > 0.2
    # What drives a new customer's value, measured on the cohorts the model did not see:
    # the first window's revenue matters more than the month of acquisition.
    drivers = tables["lead_drivers"].set_index("feature")
    assert drivers["rank"].min() == 1
    assert drivers.loc["window_revenue", "importance"] > max(
        drivers.loc["acquisition_month_of_year", "importance"], 0.0
    )
    acquisition = tables["acquisition"]
    assert acquisition["lead_valued_customers"].sum() == len(leads)
    # Prospects (no purchase yet) ranked on the attributes they share with customers.
    prospects = tables["prospects"]
    assert set(prospects.index) == {"p1", "p2", "p3", "p4"}
    assert prospects["rank"].tolist() == [1, 2, 3, 4]
    assert prospects["predicted_value"].is_monotonic_decreasing


def test_run_command_writes_every_table(capsys, business, tmp_path: Path) -> None:
    folder, _ = business
    store = tmp_path / "runs.duckdb"
    code, out, _ = run(
        capsys, "run", "--config", folder / "lifevalue.toml", "--out", tmp_path, "--store", store
    )
    assert code == 0, out
    flat = " ".join(out.split())  # the console wraps long lines
    assert "Stored as run" in flat and "(its first run)" in flat
    assert "valued by the lead model, out-of-time Gini" in flat
    assert "Prospects ranked: 4" in flat
    with RunStore(store) as runs:
        assert len(runs.list()) == 1
    for name in ("scores", "segments", "offers", "acquisition", "concentration"):
        assert (tmp_path / f"{name}.parquet").is_file() and (tmp_path / f"{name}.csv").is_file()
    with duckdb.connect(str(tmp_path / "lifevalue.duckdb"), read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM scores").fetchone()[0]
    assert stored == len(pd.read_parquet(tmp_path / "scores.parquet"))
    assert "Acquisition channels" in out and "Value tiers" in out


def test_a_prospects_table_without_ids_fails_before_the_work(tmp_path: Path) -> None:
    (tmp_path / "prospects.csv").write_text("channel\nemail\n")
    config = Config.from_dict(
        {
            "data": {"source": str(tmp_path / "missing.csv")},
            "summary": {"calibration_end": "2024-12-31"},
            "value": {"prospects": str(tmp_path / "prospects.csv")},
        }
    )
    with pytest.raises(InputError, match="needs an id column, one of prospect_id"):
        run_analysis(config)


def test_missing_pieces_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no \\[data\\] source"):
        run_analysis(Config())
    config = Config.from_dict({"data": {"source": str(tmp_path / "x.csv")}})
    with pytest.raises(InputError, match="No scoring date"):
        run_analysis(config)


def test_tier_names_fit_the_default_policy_for_any_number_of_cuts() -> None:
    assert tier_labels((0.05, 0.15, 0.30)) == ("top", "high", "medium", "low")
    assert tier_labels((0.2,)) == ("top", "low")
    assert tier_labels((0.1, 0.3)) == ("top", "high", "low")
    five = tier_labels((0.05, 0.1, 0.2, 0.4))
    assert five == ("top", "high", "medium", "medium-low", "low")
    six = tier_labels((0.05, 0.1, 0.2, 0.3, 0.5))
    assert six[0] == "top" and six[-1] == "low" and len(set(six)) == 6
