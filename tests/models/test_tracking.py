"""Holdout checks of a fitted model: by calibration frequency and week by week (CDNOW)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifevalue.data import datasets, summarize, validate_transactions
from lifevalue.data.tracking import cohort_value, daily_occasions
from lifevalue.errors import DataValidationError
from lifevalue.models import BetaGeoModel
from lifevalue.models.compare import holdout_by_frequency, tracking


@pytest.fixture(scope="module")
def cdnow(engine):
    validated = validate_transactions(
        datasets.cdnow_sample_path(),
        columns=datasets.CDNOW_SAMPLE_COLUMNS,
        observation_end=datasets.CDNOW_OBSERVATION_END,
        duplicates=datasets.CDNOW_DUPLICATES,
        engine=engine,
    )
    summary = summarize(
        validated, calibration_end=datasets.CDNOW_CALIBRATION_END, unit="weeks"
    ).to_pandas()
    return validated, summary, BetaGeoModel().fit(summary)


def test_daily_occasions_count_births_and_repeats(cdnow) -> None:
    validated, summary, _ = cdnow
    daily = daily_occasions(validated)
    assert daily["first_purchases"].sum() == len(summary) == 2357
    # 2,457 repeat purchases in the 39 calibration weeks, 4,339 by week 78 (the paper's).
    assert daily.loc[:"1997-09-30", "repeat_purchases"].sum() == summary["frequency"].sum()
    assert daily["repeat_purchases"].sum() == 4339
    later = daily_occasions(validated, born_by="1997-01-31")
    assert later["first_purchases"].sum() < 2357
    assert later.index.max() <= pd.Timestamp("1998-06-30")


def test_tracking_reproduces_the_published_cumulative_curve(cdnow) -> None:
    validated, _, model = cdnow
    daily = daily_occasions(validated, born_by=datasets.CDNOW_CALIBRATION_END)
    table = tracking(model, daily, calibration_end=datasets.CDNOW_CALIBRATION_END)
    assert len(table) == 78  # weeks from 1997-01-01 to 1998-06-30
    assert table["days"].iloc[:-1].eq(7).all() and 0 < table["days"].iloc[-1] <= 7
    end = table.iloc[-1]
    assert end["cumulative_actual"] == 4339
    # The BG/NBD under-forecasts week 78 by about 4% (4,166 in the paper's own plot).
    assert end["cumulative_predicted"] == pytest.approx(4166, rel=0.005)
    assert table["holdout"].sum() == 39
    assert (np.diff(table["cumulative_predicted"]) >= 0).all()


def test_holdout_by_frequency_groups_every_customer(cdnow) -> None:
    _, summary, model = cdnow
    table = holdout_by_frequency(model, summary)
    assert table["frequency"].tolist() == list(range(8))
    assert table["frequency_label"].iloc[-1] == "7+"
    assert table["customers"].sum() == len(summary)
    assert table["customers"].iloc[0] == (summary["frequency"] == 0).sum()
    weighted = (table["actual"] * table["customers"]).sum()
    assert weighted == pytest.approx(summary["frequency_holdout"].sum())
    # More purchases before, more after, in the data and in the model.
    assert table["predicted"].is_monotonic_increasing
    assert table["actual"].iloc[-1] > 5 * table["actual"].iloc[0]
    with pytest.raises(DataValidationError, match="holdout"):
        holdout_by_frequency(model, summary.drop(columns="frequency_holdout"))


def test_cohort_value_curves_add_up(cdnow) -> None:
    validated, summary, _ = cdnow
    table = cohort_value(validated, until="1998-06-30", margin_rate=0.3)
    assert set(table["cohort"]) == {"1997-01", "1997-02", "1997-03"}
    sizes = table.groupby("cohort")["customers"].first()
    assert sizes.sum() == len(summary)
    # Month 0 to June 1998 for each cohort, curves never fall (CDNOW has no returns).
    assert table.groupby("cohort").size().to_dict() == {"1997-01": 18, "1997-02": 17, "1997-03": 16}
    assert (
        table.groupby("cohort")["revenue_per_customer"]
        .apply(lambda s: s.is_monotonic_increasing)
        .all()
    )
    last = table.groupby("cohort").tail(1)
    revenue = (last["revenue_per_customer"] * last["customers"]).sum()
    total = validated.accepted.amount.sum().to_pandas()
    assert revenue == pytest.approx(total)
    assert table["margin_per_customer"].to_numpy() == pytest.approx(
        0.3 * table["revenue_per_customer"].to_numpy()
    )
