"""Revenue forecast of the existing customer base: CDNOW holdout, calendar periods, intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifevalue.data import summarize
from lifevalue.data.simulate import simulate_business
from lifevalue.errors import DataValidationError, InputError, NotFittedError
from lifevalue.models import BetaGeoModel, GammaGammaModel, ParetoNBDModel
from lifevalue.models.clv import customer_lifetime_value
from lifevalue.value.forecast import FORECAST_COLUMNS, revenue_forecast


def _relative_width(frame: pd.DataFrame) -> pd.Series:
    high, low = frame["expected_revenue_high"], frame["expected_revenue_low"]
    return (high - low) / frame["expected_revenue"]


@pytest.fixture(scope="module")
def cdnow(cdnow_holdout) -> pd.DataFrame:
    return cdnow_holdout.to_pandas()


@pytest.fixture(scope="module")
def models(cdnow: pd.DataFrame) -> tuple[BetaGeoModel, GammaGammaModel]:
    return BetaGeoModel().fit(cdnow), GammaGammaModel().fit(cdnow)


@pytest.fixture(scope="module")
def weekly(cdnow, models) -> pd.DataFrame:
    bg, gg = models
    return revenue_forecast(cdnow, bg, gg, periods=39, period="weeks", n_draws=100)


def test_cdnow_holdout_orders(cdnow, models, weekly) -> None:
    bg, _ = models
    assert len(weekly) == 39 and list(weekly.columns[3:]) == list(FORECAST_COLUMNS)
    total = weekly["expected_orders"].sum()
    assert total == pytest.approx(bg.expected_purchases(cdnow, future_t=39).sum(), rel=1e-9)
    actual = cdnow["frequency_holdout"].sum()
    assert actual == 1882
    # BG/NBD under-forecasts CDNOW's holdout by about 12%.
    assert 0.8 * actual < total < actual
    assert weekly["period_start"].iloc[0] == pd.Timestamp("1997-10-01")
    assert weekly["period_end"].iloc[-1] == pd.Timestamp("1998-06-30")
    assert (weekly["days"] == 7).all()
    # An ageing base buys less every week.
    assert (np.diff(weekly["expected_orders"]) < 0).all()


def test_revenue_is_orders_times_gamma_gamma_spend(cdnow, models, weekly) -> None:
    bg, gg = models
    clv = customer_lifetime_value(
        bg, cdnow, spend=gg, horizon=39, horizon_unit="weeks", annual_discount_rate=0.0
    )
    assert weekly["expected_revenue"].sum() == pytest.approx(clv["clv"].sum(), rel=1e-9)
    # Margin 1 (the default): margin is revenue.
    assert np.allclose(weekly["expected_margin"], weekly["expected_revenue"])


def test_weeks_and_months_sum_to_the_same_long_period(cdnow, models, weekly) -> None:
    bg, gg = models
    # October 1997 to June 1998 is 273 days: the same 39 weeks.
    monthly = revenue_forecast(cdnow, bg, gg, periods=9, n_draws=20, margin=0.3)
    for name in ("orders", "revenue"):
        assert monthly[f"expected_{name}"].sum() == pytest.approx(
            weekly[f"expected_{name}"].sum(), rel=1e-9
        )
    assert np.allclose(monthly["expected_margin"], 0.3 * monthly["expected_revenue"])
    assert np.allclose(monthly["expected_margin_high"], 0.3 * monthly["expected_revenue_high"])


def test_monthly_periods_follow_calendar_months(cdnow, models) -> None:
    bg, _ = models
    monthly = revenue_forecast(cdnow, bg, periods=6, n_draws=20)
    assert list(monthly["period_start"].dt.strftime("%Y-%m-%d")) == [
        "1997-10-01", "1997-11-01", "1997-12-01", "1998-01-01", "1998-02-01", "1998-03-01",
    ]  # fmt: skip
    assert list(monthly["days"]) == [31, 30, 31, 31, 28, 31]
    # Each month is the difference of the cumulative curve at its real day boundaries.
    ends = np.cumsum(monthly["days"]) / 7.0
    cumulative = [bg.expected_purchases(cdnow, future_t=float(t)).sum() for t in ends]
    assert np.allclose(monthly["expected_orders"], np.diff(cumulative, prepend=0.0), rtol=1e-9)
    # A 31-day month brings more orders than the shorter February next to it.
    assert monthly["expected_orders"].iloc[4] < monthly["expected_orders"].iloc[5]


def test_a_later_start_leaves_out_the_earlier_periods(cdnow, models) -> None:
    bg, gg = models
    whole = revenue_forecast(cdnow, bg, gg, periods=4, n_draws=20)
    later = revenue_forecast(cdnow, bg, gg, periods=3, n_draws=20, start="1997-11-01")
    assert list(later["period_start"]) == list(whole["period_start"].iloc[1:])
    assert np.allclose(later["expected_orders"], whole["expected_orders"].iloc[1:], rtol=1e-12)


def test_mid_month_as_of_starts_with_the_rest_of_the_month(models) -> None:
    summary = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "frequency": [0, 2, 5, 1],
            "recency": [0.0, 10.0, 30.0, 3.0],
            "T": [20.0, 40.0, 35.0, 30.0],
            "monetary_value": [0.0, 20.0, 40.0, 10.0],
        }
    )
    summary.attrs["lifevalue"] = {"time_unit": "weeks", "calibration_end": "2024-01-15"}
    model = models[0]  # fitted on CDNOW, in weeks
    before = summary.copy()
    got = revenue_forecast(summary, model, periods=3, n_draws=10)
    pd.testing.assert_frame_equal(summary, before)  # the input is left alone
    assert list(got["period_start"].dt.day) == [16, 1, 1]
    assert list(got["days"]) == [16, 29, 31]  # the rest of January, leap February, March
    first = model.expected_purchases(summary, future_t=16 / 7)
    assert got["expected_orders"].iloc[0] == pytest.approx(first.sum(), rel=1e-9)
    # Without a spend model: monetary_value, and the repeat buyers' mean for customer a.
    spend = np.array([(20 + 40 + 10) / 3, 20.0, 40.0, 10.0])
    assert got["expected_revenue"].iloc[0] == pytest.approx(float(first.to_numpy() @ spend))
    margins = pd.Series([0.5, 0.1, 0.2, 0.0], index=["a", "b", "c", "d"])
    per_customer = revenue_forecast(summary, model, periods=1, n_draws=10, margin=margins)
    expected = float((first.to_numpy() * spend) @ margins.to_numpy())
    assert per_customer["expected_margin"].iloc[0] == pytest.approx(expected)


@pytest.mark.parametrize("level", [0.5, 0.8, 0.95])
def test_intervals_contain_the_estimate(cdnow, models, level) -> None:
    bg, gg = models
    got = revenue_forecast(cdnow, bg, gg, periods=3, level=level, n_draws=100)
    for name in ("orders", "revenue", "margin"):
        assert (got[f"expected_{name}_low"] < got[f"expected_{name}"]).all()
        assert (got[f"expected_{name}"] < got[f"expected_{name}_high"]).all()


def test_intervals_widen_with_level_and_are_reproducible(cdnow, models) -> None:
    bg, gg = models
    narrow = revenue_forecast(cdnow, bg, gg, periods=3, level=0.5, n_draws=100)
    wide = revenue_forecast(cdnow, bg, gg, periods=3, level=0.95, n_draws=100)
    again = revenue_forecast(cdnow, bg, gg, periods=3, level=0.95, n_draws=100)
    pd.testing.assert_frame_equal(wide, again)
    for name in ("orders", "revenue"):
        assert (wide[f"expected_{name}_low"] < narrow[f"expected_{name}_low"]).all()
        assert (wide[f"expected_{name}_high"] > narrow[f"expected_{name}_high"]).all()
    # The spend model's uncertainty widens the revenue interval beyond the orders' own.
    fixed = revenue_forecast(cdnow, bg, periods=3, level=0.95, n_draws=100)
    assert (_relative_width(wide) > _relative_width(fixed)).all()


def test_pareto_nbd_and_batches(cdnow, monkeypatch) -> None:
    import lifevalue.value.forecast as forecast

    pnbd = ParetoNBDModel().fit(cdnow)
    whole = revenue_forecast(cdnow, pnbd, periods=2, n_draws=20)
    monkeypatch.setattr(forecast, "_BATCH_ELEMENTS", 21 * 100)  # batches of 100 customers
    batched = revenue_forecast(cdnow, pnbd, periods=2, n_draws=20)
    pd.testing.assert_frame_equal(whole, batched, rtol=1e-10)
    total = pnbd.expected_purchases(cdnow, future_t=61 / 7).sum()
    assert whole["expected_orders"].sum() == pytest.approx(total, rel=1e-9)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"periods": 0}, "'periods' parameter of revenue_forecast must be an integer >= 1. Got 0"),
        ({"periods": 2.5}, "'periods' parameter .* Got 2.5 instead"),
        ({"period": "days"}, "'period' parameter of revenue_forecast must be 'weeks' or 'months'"),
        ({"level": 1.5}, "'level' parameter of revenue_forecast must be between 0 and 1. Got 1.5"),
        ({"n_draws": 1}, "'n_draws' parameter of revenue_forecast must be an integer >= 2"),
        ({"margin": 2.0}, "The 'margin' parameter of revenue_forecast must be between 0 and 1"),
        ({"start": "1997-09-15"}, "must be after the as-of date 1997-09-30 .* Got 1997-09-15"),
        ({"start": "soon"}, "The 'start' parameter of revenue_forecast must be a date"),
    ],
)  # fmt: skip
def test_bad_options(cdnow, models, options, message) -> None:
    with pytest.raises(InputError, match=message):
        revenue_forecast(cdnow, models[0], **options)


def test_period_aliases(cdnow, models) -> None:
    got = revenue_forecast(cdnow, models[0], periods=2, period="weekly", n_draws=10)
    assert list(got["days"]) == [7, 7] and got.attrs["lifevalue"]["period"] == "weeks"


def test_bad_models_and_data(cdnow, models) -> None:
    bg, gg = models
    with pytest.raises(NotFittedError):
        revenue_forecast(cdnow, BetaGeoModel())
    with pytest.raises(InputError, match="must be a fitted transaction model"):
        revenue_forecast(cdnow, gg)
    with pytest.raises(InputError, match="must be a fitted Gamma-Gamma model"):
        revenue_forecast(cdnow, bg, bg)
    bare = cdnow.copy()
    bare.attrs = {"lifevalue": {"time_unit": "weeks"}}
    with pytest.raises(DataValidationError, match="calibration_end"):
        revenue_forecast(bare, bg)
    with pytest.raises(DataValidationError, match="no finite value for 2,357"):
        revenue_forecast(cdnow, bg, pd.Series({"nobody": 1.0}))
    no_spend = cdnow.drop(columns="monetary_value")
    with pytest.raises(DataValidationError, match="'monetary_value' column"):
        revenue_forecast(no_spend, bg)
    in_days = cdnow.copy()
    in_days.attrs = {"lifevalue": {**cdnow.attrs["lifevalue"], "time_unit": "days"}}
    with pytest.raises(DataValidationError, match="fitted in weeks"):
        revenue_forecast(in_days, bg)


def test_simulated_business_forecast_meets_what_really_came_in() -> None:
    business = simulate_business(n_customers=3000, seed=5, seasonality=0.0, return_rate=0.0)
    summary = summarize(
        business.transactions, calibration_end="2024-06-30", observation_end="2024-12-31"
    ).to_pandas()
    bg, gg = BetaGeoModel().fit(summary), GammaGammaModel().fit(summary)
    got = revenue_forecast(summary, bg, gg, periods=6, n_draws=50)
    # What the existing customers really did, one order per customer and day (as summarised).
    tx = business.transactions
    tx = tx[tx["customer_id"].isin(summary["customer_id"])]
    days = tx.assign(day=tx["timestamp"].dt.normalize()).drop_duplicates(["customer_id", "day"])
    days = days[days["day"] >= "2024-07-01"]
    actual = days.groupby(days["day"].dt.to_period("M")).size()
    assert len(days) == summary["frequency_holdout"].sum()
    assert [str(p) for p in actual.index] == list(got["period_start"].dt.strftime("%Y-%m"))
    assert got["expected_orders"].sum() == pytest.approx(len(days), rel=0.1)
    assert got["expected_revenue"].sum() == pytest.approx(summary["revenue_holdout"].sum(), rel=0.1)
    assert np.allclose(got["expected_orders"], actual.to_numpy(), rtol=0.25)
