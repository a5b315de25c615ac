"""CLV as money: discounting in the data's unit, spend and margin, intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifevalue.data import datasets
from lifevalue.errors import DataValidationError, InputError
from lifevalue.models import BetaGeoModel
from lifevalue.models.clv import customer_lifetime_value
from lifevalue.units import continuous_discount_rate, period_discount_rate


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    frame = datasets.load_cdnow_reference_summary()
    frame.attrs["lifevalue"] = {"time_unit": "weeks"}
    return frame


@pytest.fixture(scope="module")
def model(cdnow: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow)


def test_annual_rates_convert_by_compounding_not_by_thirty_day_months() -> None:
    assert period_discount_rate(0.1, "months") == pytest.approx(1.1 ** (1 / 12) - 1)
    assert period_discount_rate(0.1, "years") == pytest.approx(0.1)
    weekly = continuous_discount_rate(0.1, "weeks")
    assert np.exp(-weekly * 365.2425 / 7) == pytest.approx(1 / 1.1)


def test_clv_is_the_discounted_sum_of_purchases_times_spend_and_margin(
    model: BetaGeoModel, cdnow: pd.DataFrame
) -> None:
    few = cdnow.head(5)
    got = customer_lifetime_value(
        model, few, horizon=12, horizon_unit="months", annual_discount_rate=0.1, margin=0.3
    )
    # Brute force: fine time steps, each step's purchases discounted at its midpoint.
    horizon = 365.2425 / 7  # 12 months in weeks
    rate = continuous_discount_rate(0.1, "weeks")
    grid = np.linspace(0, horizon, 4001)
    cumulative = np.array(
        [np.zeros(5)] + [model.expected_purchases(few, future_t=t).to_numpy() for t in grid[1:]]
    )
    middle = (grid[1:] + grid[:-1]) / 2
    discounted = (np.diff(cumulative, axis=0) * np.exp(-rate * middle)[:, None]).sum(axis=0)
    np.testing.assert_allclose(got["discounted_purchases"], discounted, rtol=1e-6)
    expected_clv = 0.3 * few["monetary_value"].to_numpy() * discounted
    np.testing.assert_allclose(got["clv"], expected_clv, rtol=1e-6)
    np.testing.assert_allclose(
        got["expected_purchases"], model.expected_purchases(few, future_t=horizon)
    )


def test_no_discount_means_the_expected_purchases(model: BetaGeoModel, cdnow: pd.DataFrame) -> None:
    got = customer_lifetime_value(model, cdnow.head(20), horizon=52, horizon_unit="weeks",
                                  annual_discount_rate=0.0)  # fmt: skip
    np.testing.assert_allclose(got["discounted_purchases"], got["expected_purchases"], rtol=1e-12)


def test_horizon_units_are_converted(model: BetaGeoModel, cdnow: pd.DataFrame) -> None:
    in_years = customer_lifetime_value(model, cdnow.head(10), horizon=1, horizon_unit="years")
    in_months = customer_lifetime_value(model, cdnow.head(10), horizon=12, horizon_unit="months")
    np.testing.assert_allclose(in_years["clv"], in_months["clv"], rtol=1e-12)


def test_intervals_by_draws_and_by_delta_method_agree(
    model: BetaGeoModel, cdnow: pd.DataFrame
) -> None:
    some = cdnow[cdnow["frequency"] > 0].head(200)
    draws = customer_lifetime_value(model, some, level=0.9, method="normal", n_draws=4000)
    delta = customer_lifetime_value(model, some, level=0.9, method="delta")
    assert np.all(draws["clv_low"] <= draws["clv"]) and np.all(draws["clv"] <= draws["clv_high"])
    width_draws = draws["clv_high"] - draws["clv_low"]
    width_delta = delta["clv_high"] - delta["clv_low"]
    np.testing.assert_allclose(width_delta, width_draws, rtol=0.12)


def test_per_customer_margin_and_spend_series(model: BetaGeoModel, cdnow: pd.DataFrame) -> None:
    few = cdnow.head(3)
    spend = pd.Series([10.0, 20.0, 30.0], index=few.index)
    margin = pd.Series([0.5, 0.5, 0.1], index=few.index)
    got = customer_lifetime_value(model, few, spend=spend, margin=margin)
    np.testing.assert_allclose(got["clv"], margin * spend * got["discounted_purchases"])
    with pytest.raises(DataValidationError, match="no value for 1 customer"):
        customer_lifetime_value(model, few, spend=spend.iloc[:2])


def test_infinite_horizon_needs_a_closed_form(model: BetaGeoModel, cdnow: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="finite horizon"):
        customer_lifetime_value(model, cdnow.head(3), horizon=None)
    with pytest.raises(InputError, match="horizon must be a number > 0"):
        customer_lifetime_value(model, cdnow.head(3), horizon=-1)


def test_infinite_horizon_is_the_pareto_nbd_dert(cdnow: pd.DataFrame) -> None:
    from lifevalue.models import ParetoNBDModel

    pnbd = ParetoNBDModel().fit(cdnow)
    few = cdnow.head(20)
    values = customer_lifetime_value(pnbd, few, spend=10.0, horizon=None, margin=0.5)
    dert = pnbd.discounted_expected_transactions(few, annual_discount_rate=0.1)
    np.testing.assert_allclose(values["clv"], 0.5 * 10.0 * dert.to_numpy(), rtol=1e-12)
    # Long finite horizons approach it from below: 20 years short of it, 200 years on it.
    short = customer_lifetime_value(pnbd, few, spend=10.0, horizon=20, horizon_unit="years",
                                    margin=0.5)  # fmt: skip
    assert (short["clv"] < values["clv"]).all()
    long = customer_lifetime_value(pnbd, few, spend=10.0, horizon=200, horizon_unit="years",
                                   margin=0.5)  # fmt: skip
    np.testing.assert_allclose(long["clv"], values["clv"], rtol=1e-6)
