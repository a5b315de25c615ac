"""Monitoring: aggregates, alerts and their drivers, tier migration, run comparison."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from lifevalue.store import StoredRun, aggregates, compare_runs, find_alerts, tier_migration
from lifevalue.store.monitor import GONE, NEW_CUSTOMER, setting_changes


def _scores(n_a: int = 100, n_b: int = 10) -> pd.DataFrame:
    """Customers a0.. in tier "a" and b0.. in tier "b", every figure 1 (P(alive) 0.5)."""
    ids = [f"a{i}" for i in range(n_a)] + [f"b{i}" for i in range(n_b)]
    return pd.DataFrame(
        {
            "customer_id": ids,
            "total_clv": 1.0,
            "predicted_clv": 1.0,
            "p_alive": 0.5,
            "value_tier": ["a"] * n_a + ["b"] * n_b,
        }
    )


def test_aggregates_add_up_to_the_whole_base(stored: StoredRun) -> None:
    table = aggregates(stored)
    whole = table[table["dimension"] == "all"].iloc[0]
    head = stored.headline
    assert whole["customers"] == head["customers"]
    assert whole["active_customers"] == head["active_customers"]
    assert whole["customer_equity"] == pytest.approx(head["customer_equity"])
    assert whole["predicted_value"] == pytest.approx(head["predicted_value"])
    assert whole["mean_clv"] == pytest.approx(head["mean_predicted_clv"])
    for dimension, rows in table[table["dimension"] != "all"].groupby("dimension"):
        assert rows["customers"].sum() == head["customers"], dimension
        assert rows["customer_equity"].sum() == pytest.approx(head["customer_equity"])
    cohorts = table[table["dimension"] == "acquisition_cohort"]["group"]
    assert cohorts.str.fullmatch(r"\d{4}-\d{2}").all()
    # Customers without a value form their own group.
    unsegmented = aggregates(_scores().assign(segment=None)).query("dimension == 'segment'")
    assert unsegmented["group"].tolist() == ["(none)"] and unsegmented["customers"].sum() == 110


def test_an_alert_needs_a_move_beyond_the_threshold_in_a_group_large_enough() -> None:
    before = _scores()
    after = before.copy()
    after.loc[after["value_tier"] == "b", "total_clv"] = 3.0  # +200%, but only 10 customers
    after.loc[after["value_tier"] == "a", "p_alive"] = 0.54  # +8%: 7.3% for the whole base
    assert (
        find_alerts(before, after, threshold=0.10, min_customers=30)
        .query("figure == 'mean_p_alive'")
        .empty
    )
    alerts = find_alerts(before, after, threshold=0.05, min_customers=30)
    assert set(zip(alerts["figure"], alerts["dimension"], alerts["group"], strict=True)) == {
        ("mean_p_alive", "all", "all"),
        ("mean_p_alive", "value_tier", "a"),
        # 10 customers each 2 higher: 20 on 110.
        ("customer_equity", "all", "all"),
    }
    equity = alerts.set_index("figure").loc["customer_equity"]
    assert equity["change"] == pytest.approx(20 / 110)
    assert equity["previous"] == 110 and equity["current"] == 130
    assert equity["drivers"].startswith("customers b0 (+2), b1 (+2)")
    assert equity["drivers"].endswith("value_tier b (+20.00)")
    # With small groups allowed, tier b raises its own alert.
    small = find_alerts(before, after, threshold=0.05, min_customers=5)
    assert ("customer_equity", "b") in set(zip(small["figure"], small["group"], strict=True))


def test_customers_gone_or_new_count_in_the_alerts() -> None:
    before = _scores(n_a=100, n_b=0)
    after = before.iloc[:50]
    alerts = find_alerts(before, after).set_index(["figure", "dimension"])
    assert alerts.loc[("customers", "all"), "change"] == pytest.approx(-0.5)
    assert alerts.loc[("customer_equity", "value_tier"), "current"] == 50
    named = re.findall(r"a(\d+) \(-1\)", alerts.loc[("customers", "all"), "drivers"])
    assert len(named) == 5 and all(int(n) >= 50 for n in named)
    # Means did not move: no alert on them.
    assert "mean_clv" not in alerts.index.get_level_values("figure")
    assert find_alerts(before, before.copy()).empty


def test_tier_migration_counts_every_customer_once(stored: StoredRun, variant) -> None:
    old = stored.scores
    new = old.iloc[100:].copy()  # the first 100 customers are gone
    low = new.index[new["value_tier"] == "low"][:30]
    new.loc[low, "value_tier"] = "top"  # 30 customers climb from low to top
    arrivals = old.iloc[100:150].assign(customer_id=lambda f: "new-" + f["customer_id"].astype(str))
    new = pd.concat([new, arrivals], ignore_index=True)
    matrix = tier_migration(stored, variant("later", scores=new))
    assert matrix.index.tolist() == ["top", "high", "medium", "low", NEW_CUSTOMER]
    assert matrix.columns.tolist() == ["top", "high", "medium", "low", GONE]
    assert matrix.to_numpy().sum() == len(old) + len(arrivals)
    assert matrix[GONE].sum() == 100 and matrix.loc[NEW_CUSTOMER].sum() == len(arrivals)
    assert matrix.loc[NEW_CUSTOMER, GONE] == 0
    old_counts = old["value_tier"].value_counts()
    new_counts = new["value_tier"].value_counts()
    for tier in old_counts.index:
        assert matrix.loc[tier].sum() == old_counts[tier]
        assert matrix[tier].sum() == new_counts[tier]
    gone_low = (old.iloc[:100]["value_tier"] == "low").sum()
    assert matrix.loc["low", "top"] == 30
    assert matrix.loc["low", "low"] == old_counts["low"] - 30 - gone_low
    same = tier_migration(stored, stored)
    assert (np.diag(same.to_numpy())[:4] == old_counts[same.index[:4]].to_numpy()).all()
    assert same.to_numpy().sum() == len(old)


def test_compare_runs_sets_figures_side_by_side(stored: StoredRun, variant) -> None:
    headline = {**stored.headline, "customer_equity": stored.headline["customer_equity"] * 1.5}
    settings = {**stored.settings, "cost_to_serve": 4.0}
    later = variant("later", headline=headline, settings=settings, as_of="2025-01-31")
    table = compare_runs(stored, later)
    row = table.loc["customer_equity"]
    assert row["run_b"] == pytest.approx(row["run_a"] * 1.5)
    assert row["relative_change"] == pytest.approx(0.5)
    assert table.loc["customers", "change"] == 0
    assert setting_changes(stored, later) == {
        "as_of": (stored.as_of, "2025-01-31"),
        "cost_to_serve": (stored.settings["cost_to_serve"], 4.0),
    }
