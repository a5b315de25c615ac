"""Lead and new-customer scoring: features, target, model, out-of-time validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from lifevalue.data import validate_transactions
from lifevalue.data.simulate import simulate_business
from lifevalue.errors import DataValidationError, InputError, NotFittedError
from lifevalue.value.leads import (
    LeadModel,
    build_lead_features,
    decile_calibration,
    lead_target,
    rank_leads,
    score_new_customers,
    validate_out_of_time,
)


@pytest.fixture(autouse=True)
def one_thread():
    """One OpenMP thread: boosting on small data is slower, not faster, with more."""
    with threadpool_limits(1):
        yield


def tx(rows: list[tuple]) -> pd.DataFrame:
    """Transactions from (order_id, customer_id, timestamp, amount, cost, category) rows."""
    cols = ["order_id", "customer_id", "timestamp", "amount", "cost", "category"]
    data = pd.DataFrame(rows, columns=cols)
    data["timestamp"] = pd.to_datetime(data["timestamp"], format="ISO8601")
    return data


@pytest.fixture
def small() -> pd.DataFrame:
    return tx(
        [
            (1, 1, "2024-01-01 10:00", 50.0, 30.0, "home"),
            (1, 1, "2024-01-01 10:00", 20.0, 10.0, "home"),  # second line of order 1
            (2, 1, "2024-01-11", 40.0, 20.0, "apparel"),
            (2, 1, "2024-01-20", -40.0, -20.0, "apparel"),  # return of order 2
            (3, 1, "2024-02-15", 100.0, 60.0, "home"),  # after the 30-day window
            (4, 2, "2024-01-05", 80.0, 40.0, "beauty"),
            (5, 3, "2024-03-25", 30.0, 15.0, "grocery"),
            (6, 2, "2024-09-01", 10.0, 5.0, "beauty"),  # after a 120-day horizon
        ]
    )


def test_features_known_answers(small: pd.DataFrame) -> None:
    f = build_lead_features(small, as_of="2024-04-01", window_days=30)
    assert list(f.index) == [1, 2, 3]
    assert f.index.name == "customer_id"
    assert f.loc[1, "first_order_value"] == 70.0
    assert f.loc[1, "first_order_category"] == "home"
    assert f.loc[1, "window_orders"] == 2
    assert f.loc[1, "window_revenue"] == pytest.approx(70.0)  # 70 + 40 - 40
    assert f.loc[1, "window_returns"] == pytest.approx(40.0)
    assert f.loc[1, "window_margin"] == pytest.approx(30.0)  # 30 + 20 - 20
    assert f.loc[1, "days_to_second_order"] == pytest.approx(10 - 10 / 24)
    assert np.isnan(f.loc[2, "days_to_second_order"])
    assert f.loc[2, "window_orders"] == 1
    assert f.loc[1, "days_observed"] == 30.0
    assert f.loc[3, "days_observed"] == pytest.approx(7.0)  # acquired 7 days before as_of
    assert f.loc[1, "acquisition_month_of_year"] == 1.0
    assert f.attrs["lifevalue"]["window_days"] == 30


def test_features_ignore_the_future_and_do_not_mutate(small: pd.DataFrame) -> None:
    before = small.copy()
    f = build_lead_features(small, as_of="2024-01-15")
    pd.testing.assert_frame_equal(small, before)
    assert list(f.index) == [1, 2]
    assert f.loc[1, "window_revenue"] == pytest.approx(110.0)  # the return is later
    assert f.loc[1, "days_observed"] == pytest.approx(14 - 10 / 24)


def test_features_attributes_from_customers_or_first_order(small: pd.DataFrame) -> None:
    customers = pd.DataFrame(
        {"customer_id": [1, 2, 3], "region": ["west", "east", "west"], "age_band": ["18-24"] * 3}
    )
    f = build_lead_features(small, customers, as_of="2024-04-01")
    assert f["region"].tolist() == ["west", "east", "west"]
    assert "acquisition_channel" not in f.columns
    with_channel = small.assign(channel=["ads"] * 2 + ["email"] * 3 + ["tv", "ads", "tv"])
    g = build_lead_features(with_channel, as_of="2024-04-01")
    assert g["acquisition_channel"].tolist() == ["ads", "tv", "ads"]


def test_target_known_answers(small: pd.DataFrame) -> None:
    y = lead_target(small, as_of="2024-06-01", window_days=30, horizon_days=60)
    # customer 3: 2024-03-25 + 90 days is after as_of, unknown yet
    assert y.name == "future_revenue"
    assert y.to_dict() == {1: 100.0, 2: 0.0}
    m = lead_target(small, as_of="2024-06-01", window_days=30, horizon_days=60, value="margin")
    assert m.to_dict() == {1: 40.0, 2: 0.0}
    late = lead_target(small, as_of="2026-01-01", window_days=30, horizon_days=365)
    assert late.to_dict() == {1: 100.0, 2: 10.0, 3: 0.0}
    assert lead_target(small, as_of="2024-02-01", horizon_days=60).empty


def test_errors_name_the_problem(small: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="'window_days' parameter of build_lead_features"):
        build_lead_features(small, as_of="2024-04-01", window_days=0)
    with pytest.raises(DataValidationError, match="'amount'"):
        build_lead_features(small.drop(columns="amount"), as_of="2024-04-01")
    with pytest.raises(InputError, match="'value' parameter of lead_target"):
        lead_target(small, as_of="2024-04-01", value="profit")
    with pytest.raises(DataValidationError, match="'cost' or 'margin'"):
        lead_target(small.drop(columns="cost"), as_of="2025-01-01", value="margin")
    dup = pd.DataFrame({"customer_id": [1, 1], "region": ["a", "b"]})
    with pytest.raises(DataValidationError, match="one row per customer"):
        build_lead_features(small, dup, as_of="2024-04-01")
    with pytest.raises(InputError, match="lacks: 'nope'"):
        build_lead_features(small, dup.iloc[:1], as_of="2024-04-01", attributes=["nope"])
    with pytest.raises(NotFittedError):
        LeadModel().predict(pd.DataFrame({"a": [1.0]}))
    with pytest.raises(InputError, match="'quantiles' parameter of LeadModel"):
        LeadModel(quantiles=(0.9, 0.1)).fit(pd.DataFrame({"a": [1.0]}), pd.Series([1.0]))
    with pytest.raises(InputError, match="'cut_date' parameter of validate_out_of_time"):
        validate_out_of_time(small, cut_date="2025-01-01", as_of="2024-01-01")


# --------------------------------------------------------------------------- the model


def toy(n: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(
        {
            "channel": rng.choice(["a", "b", "c"], n),
            "first_order_value": rng.gamma(2.0, 40.0, n),
        },
        index=pd.Index(np.arange(n), name="customer_id"),
    )
    effect = x["channel"].map({"a": 0.0, "b": 50.0, "c": 150.0})
    y = effect + x["first_order_value"] + rng.normal(0, 20, n)
    return x, y.rename("future_revenue")


def test_model_learns_categories_and_intervals_hold() -> None:
    x, y = toy()
    model = LeadModel(max_iter=150)
    assert model.fit(x, y) is model
    assert model.categories_["channel"].tolist() == ["a", "b", "c"]
    xt, yt = toy(seed=1)
    pred = model.predict(xt)
    assert list(pred.columns) == ["predicted_value", "predicted_value_low", "predicted_value_high"]
    assert pred.index.equals(xt.index)
    assert np.mean(np.abs(pred["predicted_value"] - yt)) < 25
    assert (pred["predicted_value_low"] <= pred["predicted_value"]).all()
    assert (pred["predicted_value"] <= pred["predicted_value_high"]).all()
    covered = ((yt >= pred["predicted_value_low"]) & (yt <= pred["predicted_value_high"])).mean()
    assert 0.7 < covered < 0.9  # an 80% interval
    # an unseen category counts as missing, not as an error
    odd = model.predict(xt.assign(channel="z").iloc[:3])
    assert odd["predicted_value"].notna().all()
    # deterministic
    again = LeadModel(max_iter=150).fit(x, y).predict(xt)
    pd.testing.assert_frame_equal(pred, again)


def test_model_for_prospects_uses_attributes_only() -> None:
    x, y = toy()
    model = LeadModel(features=["channel"], quantiles=None, max_iter=50).fit(x, y)
    prospects = pd.DataFrame({"channel": ["c", "a", "b"]}, index=["p1", "p2", "p3"])
    leads = rank_leads(model, prospects)
    assert list(leads.index) == ["p1", "p3", "p2"]
    assert leads["rank"].tolist() == [1, 2, 3]
    assert leads["predicted_value_low"].isna().all()
    assert leads["channel"].tolist() == ["c", "b", "a"]
    assert len(rank_leads(model, prospects, top=2)) == 2
    with pytest.raises(DataValidationError, match="'channel'"):
        model.predict(pd.DataFrame({"region": ["x"]}))


def test_decile_calibration_known_answer() -> None:
    p = np.arange(20, dtype=float)
    table = decile_calibration(p, 2 * p, bins=4)
    assert table["customers"].tolist() == [5, 5, 5, 5]
    assert table["mean_predicted"].tolist() == [2.0, 7.0, 12.0, 17.0]
    assert table["mean_actual"].tolist() == [4.0, 14.0, 24.0, 34.0]
    assert table["share_of_actual"].sum() == pytest.approx(1.0)


# --------------------------------------------------------------------------- simulated truth


@pytest.fixture(scope="module")
def business():
    return simulate_business(n_customers=10000, seed=3)


@pytest.fixture(scope="module")
def validation(business):
    return validate_out_of_time(
        business.transactions,
        business.customers,
        cut_date="2024-01-01",
        as_of="2025-01-01",
        horizon_days=180,
    )


def test_out_of_time_beats_a_constant_and_ranks(validation) -> None:
    m = validation.metrics
    assert m["n_train"] > 1500 and m["n_test"] > 1500
    assert m["mae"] < 0.97 * m["mae_constant"]
    assert m["gini"] > 0.3
    assert 0.7 < m["interval_coverage"] < 0.95
    assert m["mean_predicted"] == pytest.approx(m["mean_actual"], rel=0.15)
    # test cohorts are all acquired after the cut date
    assert (validation.predictions["first_purchase_date"] >= "2024-01-01").all()


def test_out_of_time_deciles_are_monotone_ish(validation) -> None:
    table = validation.calibration
    assert len(table) == 10
    actual = table["mean_actual"].to_numpy()
    assert actual[-1] > 3 * actual[0]
    rho = pd.Series(actual).corr(pd.Series(np.arange(10)), method="spearman")
    assert rho > 0.85
    assert table["share_of_actual"].iloc[-1] > 0.2  # the top tenth holds over a fifth


def test_prospect_model_prefers_the_better_channels(business) -> None:
    # Truth: referral (rate x1.3, dropout x0.7, spend x1.15) and email customers are
    # worth more than social (x0.7, x1.5, x0.85) and affiliate (x0.8, x1.3, x0.9) ones.
    as_of = "2025-01-01"
    x = build_lead_features(business.transactions, business.customers, as_of=as_of)
    y = lead_target(business.transactions, as_of=as_of, horizon_days=180)
    model = LeadModel(features=["acquisition_channel", "region"], quantiles=None).fit(x, y)
    prospects = pd.DataFrame(
        {
            "acquisition_channel": ["referral", "email", "organic", "social", "affiliate"],
            "region": "midwest",
        },
        index=pd.Index(["referral", "email", "organic", "social", "affiliate"], name="lead"),
    )
    leads = rank_leads(model, prospects)
    assert set(leads.index[:2]) == {"referral", "email"}
    assert set(leads.index[-2:]) == {"social", "affiliate"}


def test_dates_are_not_model_inputs_and_deciles_of_a_lead_list() -> None:
    x, y = toy(n=400)
    with_date = x.assign(first_purchase_date=pd.Timestamp("2024-01-01"))
    model = LeadModel(quantiles=None, max_iter=30).fit(with_date, y)
    assert model.feature_names_in_ == ["channel", "first_order_value"]
    with pytest.raises(InputError, match="date column 'first_purchase_date'"):
        LeadModel(features=["first_purchase_date"]).fit(with_date, y)
    leads = rank_leads(model, x.iloc[:20], bins=4)
    assert leads["value_decile"].tolist() == [1] * 5 + [2] * 5 + [3] * 5 + [4] * 5
    assert leads["predicted_value"].is_monotonic_decreasing


def test_validated_log_gives_the_same_features_in_the_engine(small: pd.DataFrame) -> None:
    validated = validate_transactions(
        small.drop(columns="order_id"), observation_end="2024-12-31", returns="keep"
    )
    from_engine = build_lead_features(validated, as_of="2024-04-01")
    from_frame = build_lead_features(small.drop(columns="order_id"), as_of="2024-04-01")
    pd.testing.assert_frame_equal(from_engine, from_frame, check_dtype=False)
    target = lead_target(validated, as_of="2024-12-31", horizon_days=120, value="margin")
    assert target.to_dict() == pytest.approx({1: 40.0, 2: 0.0, 3: 0.0})


def test_new_customers_are_valued_by_what_their_channel_is_worth(business) -> None:
    # Customers acquired in the last 90 days: the lead model must rank the channels whose
    # simulated customers are worth more (referral, email) above the weaker ones.
    found = score_new_customers(
        business.transactions, business.customers, as_of="2025-01-01", margin_rate=0.5
    )
    assert found is not None
    leads = found.leads
    first = business.transactions.groupby("customer_id")["timestamp"].min().loc[leads.index]
    assert (first >= pd.Timestamp("2025-01-01") - pd.Timedelta(days=90)).all()
    assert leads["rank"].tolist() == list(range(1, len(leads) + 1))
    by_channel = leads.groupby("acquisition_channel")["predicted_value"].mean()
    assert min(by_channel["referral"], by_channel["email"]) > max(
        by_channel["social"], by_channel["affiliate"]
    )
    metrics = found.validation
    assert metrics is not None and metrics["gini"] > 0.3
    assert metrics["horizon_days"] in (180.0, 365.0)


def test_prospects_are_ranked_by_their_attributes(business) -> None:
    prospects = pd.DataFrame(
        {"acquisition_channel": ["social", "referral", "affiliate", "email"]},
        index=pd.Index(["p1", "p2", "p3", "p4"], name="prospect_id"),
    )
    found = score_new_customers(
        business.transactions, business.customers, as_of="2025-01-01", prospects=prospects
    )
    assert found is not None and found.prospects is not None
    ranked = found.prospects
    assert set(ranked.index[:2]) == {"p2", "p4"}  # referral and email are worth more
    assert ranked["rank"].tolist() == [1, 2, 3, 4]
    with pytest.raises(DataValidationError, match="they share with the customers"):
        score_new_customers(
            business.transactions,
            business.customers,
            as_of="2025-01-01",
            prospects=pd.DataFrame({"favourite_colour": ["red"]}),
        )
