"""Purchase timing counts: hand-built logs, date-only logs, simulated businesses."""

from __future__ import annotations

import pandas as pd
import pytest

from lifevalue.data import validate_transactions
from lifevalue.data.simulate import simulate_business
from lifevalue.data.timing import HOUR_COLUMNS, WEEKDAY_COLUMNS, purchase_timing
from lifevalue.errors import InputError


def _validated(rows, engine, **kwargs):
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return validate_transactions(frame, observation_end="2025-01-01", engine=engine, **kwargs)


def test_counts_by_weekday_and_hour_by_hand(engine):
    rows = [
        (1, "2024-01-01 09:30", 10.0),  # Monday 9h
        (1, "2024-01-08 09:10", 12.0),  # Monday 9h
        (1, "2024-01-13 20:00", 5.0),  # Saturday 20h
        (1, "2024-01-14 20:00", -5.0),  # a return, not a purchase
        (2, "2024-03-03 23:59", 7.0),  # Sunday 23h
        (2, "2024-03-03 23:59", 3.0),  # second line of the same purchase: counted once
    ]
    timing = purchase_timing(_validated(rows, engine, duplicates="keep"))
    c = timing.customers
    assert timing.has_time_of_day and timing.notes == ()
    assert c.loc[1, "purchases"] == 3 and c.loc[2, "purchases"] == 1
    assert c.loc[1, "weekday_0"] == 2 and c.loc[1, "weekday_5"] == 1
    assert c.loc[1, "hour_9"] == 2 and c.loc[1, "hour_20"] == 1
    assert c.loc[2, "weekday_6"] == 1 and c.loc[2, "hour_23"] == 1
    assert (c[list(WEEKDAY_COLUMNS)].sum(axis=1) == c["purchases"]).all()
    assert (c[list(HOUR_COLUMNS)].sum(axis=1) == c["purchases"]).all()
    pop = timing.population.set_index(["period", "value"])
    assert pop.loc[("month", 1), "purchases"] == 3 and pop.loc[("month", 3), "purchases"] == 1
    assert pop.loc[("weekday", 0), "purchases"] == 2
    assert pop.loc[("hour", 9), "label"] == "09:00"
    assert timing.population.groupby("period")["share"].sum().round(12).eq(1).all()
    assert len(timing.population) == 12 + 7 + 24


def test_date_only_log_is_reported_and_has_no_hours(engine):
    rows = [(1, "2024-01-01", 10.0), (1, "2024-01-06", 12.0), (2, "2024-01-07", 3.0)]
    timing = purchase_timing(_validated(rows, engine))
    assert not timing.has_time_of_day
    assert any("dates only" in note for note in timing.notes)
    assert not any(c.startswith("hour_") for c in timing.customers.columns)
    assert "hour" not in set(timing.population["period"])
    assert timing.customers.loc[1, "weekday_0"] == 1 and timing.customers.loc[1, "weekday_5"] == 1


def test_until_leaves_out_later_purchases(engine):
    rows = [(1, "2024-01-01 10:00", 10.0), (1, "2024-02-01 10:00", 12.0)]
    timing = purchase_timing(_validated(rows, engine), until="2024-01-15")
    assert timing.total_purchases == 1
    assert any("not counted" in note for note in timing.notes)


def test_no_purchase_and_wrong_input_fail_clearly(engine):
    with pytest.raises(InputError, match="No purchase"):
        purchase_timing(_validated([(1, "2024-01-01 10:00", 10.0)], engine), until="2023-01-01")
    with pytest.raises(InputError, match=r"expects validated transactions .*Got DataFrame"):
        purchase_timing(pd.DataFrame())  # type: ignore[arg-type]


def test_simulated_counts_add_up_to_the_purchases(engine):
    sim = simulate_business(n_customers=300, seed=3)
    tx = sim.transactions
    timing = purchase_timing(validate_transactions(tx, observation_end="2025-01-01", engine=engine))
    purchases = tx[tx["amount"] > 0].drop_duplicates(["customer_id", "timestamp"])
    assert timing.total_purchases == len(purchases)
    expected = purchases["timestamp"].dt.day_of_week.value_counts().sort_index()
    got = timing.population.query("period == 'weekday'").set_index("value")["purchases"]
    assert got.reindex(expected.index).tolist() == expected.tolist()
