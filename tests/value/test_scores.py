"""The scores table: net-profit CLV on CDNOW and on a simulated business."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifevalue.data import summarize
from lifevalue.data.simulate import simulate_business
from lifevalue.errors import DataValidationError, InputError, NotFittedError
from lifevalue.models import BetaGeoModel, GammaGammaModel
from lifevalue.models.clv import customer_lifetime_value
from lifevalue.value import SCORE_COLUMNS, Profit, score_customers


@pytest.fixture(scope="module")
def cdnow(cdnow_calibration) -> pd.DataFrame:
    return cdnow_calibration.to_pandas()


@pytest.fixture(scope="module")
def models(cdnow: pd.DataFrame) -> tuple[BetaGeoModel, GammaGammaModel]:
    return BetaGeoModel().fit(cdnow), GammaGammaModel().fit(cdnow)


def test_scores_are_net_profit_with_intervals(cdnow, models) -> None:
    bg, gg = models
    profit = Profit(margin_rate=0.3, cost_to_serve=2.0)
    scores = score_customers(cdnow, bg, gg, profit=profit, horizon=12)
    assert list(scores.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    assert len(scores) == 2357 and scores.index.name == "customer_id"
    gross = customer_lifetime_value(bg, cdnow, spend=gg, horizon=12, margin=0.3)
    served = 2.0 * gross["discounted_purchases"].to_numpy()
    np.testing.assert_allclose(scores["predicted_clv"], gross["clv"].to_numpy() - served)
    expected_historic = 0.3 * cdnow["historic_revenue"].to_numpy() - 2.0 * cdnow["n_orders"]
    np.testing.assert_allclose(scores["historic_clv"], expected_historic)
    np.testing.assert_allclose(
        scores["total_clv"], scores["historic_clv"] + scores["predicted_clv"]
    )
    assert (scores["predicted_clv_low"] <= scores["predicted_clv"]).all()
    assert (scores["predicted_clv"] <= scores["predicted_clv_high"]).all()
    np.testing.assert_allclose(scores["churn_probability"], 1 - scores["p_alive"])
    assert scores.attrs["lifevalue"]["as_of"] == "1997-09-30"


def test_single_purchase_customers_get_honest_values(cdnow, models) -> None:
    scores = score_customers(cdnow, *models, profit=Profit(margin_rate=0.3))
    single = scores[scores["frequency"] == 0]
    assert len(single) > 1000
    assert np.isfinite(single["predicted_clv"]).all() and (single["predicted_clv"] > 0).all()
    assert (single["p_alive"] == 1.0).all()  # BG/NBD: no repeat purchase, no evidence of leaving
    # The spend of a customer without repeat purchases is the population's mean.
    assert single["expected_spend"].nunique() == 1
    assert single["average_days_between_orders"].isna().all()


def test_rhythm_and_next_order_date(cdnow, models) -> None:
    scores = score_customers(cdnow, *models)
    repeat = scores[scores["frequency"] > 0]
    expected = repeat["recency_days"] / repeat["frequency"]
    np.testing.assert_allclose(repeat["average_days_between_orders"], expected)
    likely = scores[scores["p_alive"] >= 0.5]
    assert (likely["expected_next_order_date"] > pd.Timestamp("1997-09-30")).all()
    assert scores.loc[scores["p_alive"] < 0.5, "expected_next_order_date"].isna().all()
    # A heavier buyer (more purchases in the same time) waits less for the next one.
    bg = models[0]
    frame = pd.DataFrame({"frequency": [1, 10], "recency": [30.0, 30.0], "T": [39.0, 39.0]})
    wait = bg.params_["alpha"] + frame["T"]
    medians = wait * np.expm1(np.log(2) / (bg.params_["r"] + frame["frequency"]))
    assert medians[1] < medians[0]


def test_the_logged_margin_wins_over_the_rate() -> None:
    business = simulate_business(n_customers=800, seed=4)
    summary = summarize(business.transactions, calibration_end="2024-10-31", unit="weeks")
    frame = summary.to_pandas()
    assert "historic_margin" in frame.columns
    bg = BetaGeoModel().fit(frame)
    scores = score_customers(frame, bg, profit=Profit(margin_rate=0.99))
    known = frame.set_index("customer_id")
    share = (known["historic_margin"] / known["historic_revenue"]).where(
        known["historic_revenue"] > 0
    )
    aligned = scores["margin_share"].where(share.notna())
    np.testing.assert_allclose(aligned.dropna(), share.dropna().clip(-1, 1))
    np.testing.assert_allclose(
        scores["historic_clv"], known["historic_revenue"] * scores["margin_share"]
    )


def test_bad_options_and_data() -> None:
    with pytest.raises(InputError, match="'margin_rate' parameter of Profit must be between 0"):
        Profit(margin_rate=1.5)
    with pytest.raises(InputError, match="'cost_to_serve' parameter of Profit must be >= 0"):
        Profit(cost_to_serve=-1)
    frame = pd.DataFrame({"customer_id": [1], "frequency": [1]})
    bg = BetaGeoModel()
    with pytest.raises(DataValidationError, match="missing: recency, T, monetary_value"):
        score_customers(frame, bg)
    full = frame.assign(recency=0.0, T=5.0, monetary_value=0.0)
    with pytest.raises(NotFittedError):
        score_customers(full, bg)
