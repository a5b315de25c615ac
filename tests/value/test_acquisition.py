"""Acquisition economics: known answers, simulated truth, properties and errors."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifevalue.data.simulate import simulate_business
from lifevalue.errors import DataValidationError, InputError
from lifevalue.units import DAYS_PER_YEAR, METADATA_KEY
from lifevalue.value.acquisition import ACQUISITION_COLUMNS, acquisition_economics

MONTH = DAYS_PER_YEAR / 12.0


def _scores(rows: list[tuple]) -> pd.DataFrame:
    """Scores from (channel, campaign, first purchase, historic, predicted, tenure months)."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "acquisition_channel",
            "acquisition_campaign",
            "first_purchase_date",
            "historic_clv",
            "predicted_clv",
            "tenure_months",
        ],
    )
    frame.index = pd.Index(np.arange(1, len(frame) + 1), name="customer_id")
    frame["first_purchase_date"] = pd.to_datetime(frame["first_purchase_date"])
    frame["tenure_days"] = frame.pop("tenure_months") * MONTH
    frame["total_clv"] = frame["historic_clv"] + frame["predicted_clv"]
    frame.attrs[METADATA_KEY] = {"horizon_months": 12.0, "currency": "USD", "as_of": "2024-12-31"}
    return frame


def _spend(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["date", "channel", "campaign", "spend"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


@pytest.fixture
def scores() -> pd.DataFrame:
    return _scores(
        [
            # search: 10 a month for 6 months, then 120 / 12 = 10 a month; and a brand-new one.
            ("search", "brand", "2024-01-05", 60.0, 120.0, 6.0),
            ("search", "generic", "2024-02-01", 0.0, 120.0, 0.0),
            # social: 10 a month for 3 months, nothing predicted.
            ("social", "reels", "2024-01-10", 30.0, 0.0, 3.0),
            ("social", "reels", "2024-01-20", 30.0, 0.0, 3.0),
            # display: worth little.
            ("display", "banner", "2024-03-03", 5.0, 5.0, 1.0),
            ("organic", None, "2024-03-01", 10.0, 5.0, 1.0),
        ]
    )


@pytest.fixture
def spend() -> pd.DataFrame:
    return _spend(
        [
            ("2024-01-01", "search", "brand", 40.0),
            ("2024-02-01", "search", "generic", 40.0),
            ("2024-01-01", "social", "reels", 20.0),
            ("2024-01-15", "social", "reels", 10.0),
            ("2024-03-01", "display", "banner", 50.0),
            ("2024-05-01", "podcast", "ep1", 99.0),
        ]
    )


def _row(table: pd.DataFrame, **keys: object) -> pd.Series:
    mask = np.ones(len(table), bool)
    for key, value in keys.items():
        mask &= (table[key] == value).to_numpy()
    assert mask.sum() == 1, keys
    return table.loc[mask].iloc[0]


# --------------------------------------------------------------------------- known answers


def test_too_new_customers_take_the_lead_models_value(
    scores: pd.DataFrame, spend: pd.DataFrame
) -> None:
    # Customer 2 (search, tenure 0) and 5 (display, 1 month) are too new; customer 3
    # (tenure 3 months) is not, so its lead value is ignored.
    lead = pd.Series({2: 300.0, 3: 999.0, 5: 45.0})
    table = acquisition_economics(scores, spend, min_customers=1, new_customer_values=lead)
    search = _row(table, acquisition_channel="search")
    assert search["lead_valued_customers"] == 1
    assert search["mean_clv_12m"] == pytest.approx((120.0 + 300.0) / 2)
    assert search["mean_lifetime_clv"] == pytest.approx((180.0 + 300.0) / 2)
    assert search["rule"].endswith(
        "(1 of 2 customers valued by the lead model: too new for the purchase models)"
    )
    social = _row(table, acquisition_channel="social")
    assert social["lead_valued_customers"] == 0
    assert social["mean_clv_12m"] == pytest.approx(0.0)
    display = _row(table, acquisition_channel="display")
    assert display["mean_lifetime_clv"] == pytest.approx(5.0 + 45.0)
    # A shorter threshold leaves the one-month-old display customer to the models.
    table = acquisition_economics(
        scores, spend, min_customers=1, new_customer_values=lead, new_customer_days=20
    )
    assert _row(table, acquisition_channel="display")["lead_valued_customers"] == 0
    with pytest.raises(InputError, match="new_customer_values"):
        acquisition_economics(scores, spend, new_customer_values=[1.0, 2.0])


def test_per_channel_known_answers(scores: pd.DataFrame, spend: pd.DataFrame) -> None:
    table = acquisition_economics(scores, spend, min_customers=1)
    assert list(table.columns) == ["acquisition_channel", *ACQUISITION_COLUMNS]
    assert list(table["acquisition_channel"]) == [
        "display",
        "organic",
        "podcast",
        "search",
        "social",
    ]

    search = _row(table, acquisition_channel="search")
    assert search["new_customers"] == 2
    assert search["marketing_spend"] == pytest.approx(80.0)
    assert search["cac"] == pytest.approx(40.0)
    assert search["mean_clv_12m"] == pytest.approx(120.0)
    assert search["mean_lifetime_clv"] == pytest.approx(150.0)
    assert search["ltv_cac"] == pytest.approx(3.75)
    assert search["payback_months"] == pytest.approx(4.0)  # mean curve 10 a month
    assert search["max_allowable_cpa"] == pytest.approx(50.0)
    assert search["recommendation"] == "scale"
    assert search["rule"] == "scale: LTV:CAC 3.75 >= target 3 and payback 4.0 <= 12 months"
    assert search["flag"] == ""

    social = _row(table, acquisition_channel="social")
    assert social["cac"] == pytest.approx(15.0)
    assert social["ltv_cac"] == pytest.approx(2.0)
    assert social["payback_months"] == pytest.approx(1.5)
    assert social["recommendation"] == "hold"
    assert social["rule"] == "hold: LTV:CAC 2.00 between 1 and target 3"

    display = _row(table, acquisition_channel="display")
    assert display["ltv_cac"] == pytest.approx(0.2)
    assert math.isnan(display["payback_months"])  # 10 in all never covers 50
    assert display["recommendation"] == "cut"
    assert display["rule"] == "cut: LTV:CAC 0.20 < 1"
    assert display["flag"] == "not_paid_back"

    organic = _row(table, acquisition_channel="organic")
    assert organic["marketing_spend"] == 0.0
    assert math.isnan(organic["cac"]) and math.isnan(organic["ltv_cac"])
    assert math.isnan(organic["payback_months"])
    assert organic["max_allowable_cpa"] == pytest.approx(5.0)
    assert organic["recommendation"] == "hold"
    assert organic["flag"] == "no_spend"
    assert "no marketing spend" in organic["rule"]

    podcast = _row(table, acquisition_channel="podcast")
    assert podcast["new_customers"] == 0
    assert podcast["marketing_spend"] == pytest.approx(99.0)
    assert podcast["cac"] == math.inf
    assert podcast["recommendation"] == "cut"
    assert podcast["flag"] == "no_customers"
    assert podcast["rule"] == "cut: spent 99.00 and bought no new customer"

    meta = table.attrs[METADATA_KEY]
    assert meta["unmatched_spend"] == pytest.approx(99.0)
    assert meta["unmatched_groups"] == 1
    assert meta["total_spend"] == pytest.approx(259.0)
    assert meta["currency"] == "USD"


def test_unmatched_spend_is_logged(
    scores: pd.DataFrame, spend: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="lifevalue.value.acquisition"):
        acquisition_economics(scores, spend)
    assert "99.00 of marketing spend" in caplog.text


def test_by_campaign_and_month(scores: pd.DataFrame, spend: pd.DataFrame) -> None:
    table = acquisition_economics(
        scores,
        spend,
        by=("acquisition_channel", "acquisition_campaign", "acquisition_month"),
        min_customers=1,
    )
    # The month comes from first_purchase_date when acquisition_month is absent.
    brand = _row(table, acquisition_channel="search", acquisition_campaign="brand")
    assert brand["acquisition_month"] == pd.Period("2024-01", "M")
    assert brand["cac"] == pytest.approx(40.0)
    assert brand["ltv_cac"] == pytest.approx(180.0 / 40.0)
    assert brand["payback_months"] == pytest.approx(4.0)
    generic = _row(table, acquisition_campaign="generic")
    assert generic["payback_months"] == pytest.approx(4.0)  # 0 so far, then 10 a month
    assert generic["ltv_cac"] == pytest.approx(3.0)
    assert generic["recommendation"] == "scale"  # >= target is enough
    reels = _row(table, acquisition_campaign="reels")
    assert reels["marketing_spend"] == pytest.approx(30.0)  # both January rows
    assert reels["payback_months"] == pytest.approx(1.5)
    # The organic customer has no campaign, matched by nothing; it stays.
    organic = _row(table, acquisition_channel="organic")
    assert pd.isna(organic["acquisition_campaign"])
    assert organic["new_customers"] == 1


def test_spend_month_split_from_customers_month() -> None:
    scores = _scores(
        [
            ("search", "a", "2024-01-10", 10.0, 0.0, 1.0),
            ("search", "a", "2024-02-10", 10.0, 0.0, 1.0),
        ]
    )
    scores["acquisition_month"] = ["2024-01", "2024-02"]  # strings are read as months
    spend = _spend(
        [
            ("2024-01-03", "search", "a", 5.0),
            ("2024-02-28", "search", "a", 8.0),
            ("2024-03-01", "search", "a", 7.0),
        ]
    )
    table = acquisition_economics(scores, spend, by="acquisition_month", min_customers=1)
    assert list(table["acquisition_month"].astype(str)) == ["2024-01", "2024-02", "2024-03"]
    assert list(table["marketing_spend"]) == [5.0, 8.0, 7.0]
    assert list(table["cac"])[:2] == [5.0, 8.0]
    assert list(table["new_customers"]) == [1, 1, 0]


def test_payback_with_jump_breakpoints_and_not_paid_back() -> None:
    scores = _scores(
        [
            # Tenure 0: its 30 so far count at acquisition; then 24 / 12 = 2 a month.
            ("a", None, "2024-01-01", 30.0, 24.0, 0.0),
            # 4 a month for 10 months, then 12 / 12 = 1 a month for 12 months.
            ("b", None, "2024-01-01", 40.0, 12.0, 10.0),
            ("b", None, "2024-01-01", 40.0, 12.0, 10.0),
            # Never reaches 100: 20 + 30 in all.
            ("c", None, "2024-01-01", 20.0, 30.0, 2.0),
        ]
    )
    spend = _spend(
        [
            ("2024-01-01", "a", None, 20.0),  # covered by the jump: payback 0
            ("2024-01-01", "b", None, 88.0),  # 40 at month 10, then 1 a month: month 14 is 44
            ("2024-01-01", "c", None, 100.0),
        ]
    )
    table = acquisition_economics(scores, spend, min_customers=1)
    a = _row(table, acquisition_channel="a")
    b = _row(table, acquisition_channel="b")
    c = _row(table, acquisition_channel="c")
    assert a["payback_months"] == 0.0
    assert b["cac"] == pytest.approx(44.0)
    assert b["payback_months"] == pytest.approx(14.0)
    assert math.isnan(c["payback_months"])
    assert c["flag"] == "not_paid_back"
    # b: LTV:CAC 52 / 44 < 3: hold. A profitable group slow to pay back is held too:
    table = acquisition_economics(scores, spend, min_customers=1, target_ltv_cac=1.1)
    b = _row(table, acquisition_channel="b")
    assert b["recommendation"] == "hold"
    assert b["rule"] == "hold: LTV:CAC 1.18 >= target 1.1 but payback 14.0 > 12 months"


def test_payback_mixes_customers_of_different_tenure() -> None:
    # One customer earned 1 a month for 12 months and nothing is predicted; the other is
    # new and earns 36 / 12 = 3 a month. The mean curve: (1 + 3) / 2 = 2 a month up to
    # month 12 (24 in all), flat after.
    scores = _scores(
        [
            ("a", None, "2024-01-01", 12.0, 0.0, 12.0),
            ("a", None, "2024-01-01", 0.0, 36.0, 0.0),
        ]
    )
    spend = _spend([("2024-01-01", "a", None, 2 * 20.0)])
    row = acquisition_economics(scores, spend, min_customers=1).iloc[0]
    assert row["cac"] == pytest.approx(20.0)
    assert row["payback_months"] == pytest.approx(10.0)
    spend = _spend([("2024-01-01", "a", None, 2 * 25.0)])
    row = acquisition_economics(scores, spend, min_customers=1).iloc[0]
    assert math.isnan(row["payback_months"])


def test_horizon_from_option_changes_payback() -> None:
    scores = _scores([("a", None, "2024-01-01", 0.0, 120.0, 0.0)])
    spend = _spend([("2024-01-01", "a", None, 30.0)])
    assert acquisition_economics(scores, spend).iloc[0]["payback_months"] == pytest.approx(3.0)
    row = acquisition_economics(scores, spend, horizon_months=24).iloc[0]
    assert row["payback_months"] == pytest.approx(6.0)


def test_few_customers_are_held(scores: pd.DataFrame, spend: pd.DataFrame) -> None:
    table = acquisition_economics(scores, spend)  # default minimum: 20 customers
    search = _row(table, acquisition_channel="search")
    assert search["recommendation"] == "hold"
    assert search["rule"] == "hold: 2 new customers < minimum 20 to judge"
    assert search["flag"] == "few_customers"
    # Spending with no customer at all is cut whatever the minimum.
    assert _row(table, acquisition_channel="podcast")["recommendation"] == "cut"


def test_custom_value_columns_and_no_mutation(scores: pd.DataFrame, spend: pd.DataFrame) -> None:
    scores["clv_36m"] = scores["total_clv"] * 2
    before = scores.copy()
    table = acquisition_economics(scores, spend, lifetime_value="clv_36m", min_customers=1)
    pd.testing.assert_frame_equal(scores, before)
    search = _row(table, acquisition_channel="search")
    assert search["mean_lifetime_clv"] == pytest.approx(300.0)
    assert search["max_allowable_cpa"] == pytest.approx(100.0)


# --------------------------------------------------------------------------- simulated truth


def _simulated(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    business = simulate_business(n_customers=n, seed=seed)
    customers = business.customers.set_index("customer_id")
    end = pd.Timestamp(business.truth["end"])
    weeks_per_year = DAYS_PER_YEAR / 7.0  # the default unit is weeks
    tenure_days = (end - customers["acquired_at"]).dt.total_seconds() / 86_400.0
    value_rate = customers["mean_spend"] * customers["lam"]  # true value per week
    scores = pd.DataFrame(
        {
            "acquisition_channel": customers["acquisition_channel"],
            "acquisition_campaign": customers["acquisition_campaign"],
            "first_purchase_date": customers["acquired_at"],
            "tenure_days": tenure_days,
            "historic_clv": value_rate * tenure_days / 7.0,
            "predicted_clv": value_rate * weeks_per_year * customers["alive_at_end"],
        }
    )
    scores["total_clv"] = scores["historic_clv"] + scores["predicted_clv"]
    return scores, business.spend, business.truth


def test_simulated_better_channel_comes_out_ahead() -> None:
    scores, spend, truth = _simulated(20_000, seed=3)
    table = acquisition_economics(scores, spend).set_index("acquisition_channel")
    channels = {c["name"]: c for c in truth["channels"]}
    worth = {k: c["purchase_rate"] * c["spend"] for k, c in channels.items()}
    best, worst = max(worth, key=worth.get), min(worth, key=worth.get)
    assert (best, worst) == ("referral", "social")
    assert table.loc[best, "mean_lifetime_clv"] > 1.5 * table.loc[worst, "mean_lifetime_clv"]
    assert table.loc[best, "mean_clv_12m"] > table.loc[worst, "mean_clv_12m"]
    assert table.loc[best, "ltv_cac"] > table.loc[worst, "ltv_cac"]
    # CAC recovers each paid channel's true cost per customer (spend noise has mean 1).
    for name, channel in channels.items():
        if channel["cpa"] > 0:
            assert table.loc[name, "cac"] == pytest.approx(channel["cpa"], rel=0.05)
    assert table.loc["organic", "flag"] == "no_spend"
    # Ranking by true worth and by estimated lifetime value agree closely.
    order = pd.Series(worth)[table.index]
    assert order.corr(table["mean_lifetime_clv"], method="spearman") > 0.8


@pytest.mark.parametrize(
    "by",
    [
        ("acquisition_channel",),
        ("acquisition_channel", "acquisition_campaign"),
        ("acquisition_channel", "acquisition_month"),
        ("acquisition_campaign", "acquisition_month", "acquisition_channel"),
    ],
)
def test_simulated_totals_add_up(by: tuple[str, ...]) -> None:
    scores, spend, _ = _simulated(3_000, seed=5)
    table = acquisition_economics(scores, spend, by=by)
    assert table["new_customers"].sum() == len(scores)
    assert table["marketing_spend"].sum() == pytest.approx(spend["spend"].sum())
    assert list(table.columns[: len(by)]) == list(by)
    assert not table.duplicated(list(by)).any()


# --------------------------------------------------------------------------- properties

_CHANNELS = st.sampled_from(["a", "b", "c", "d"])
_CAMPAIGNS = st.sampled_from(["x", "y", None])
_DAYS = st.integers(0, 120).map(lambda d: pd.Timestamp("2024-01-01") + pd.Timedelta(days=d))


@settings(max_examples=40, deadline=None)
@given(
    customers=st.lists(
        st.tuples(
            _CHANNELS,
            _CAMPAIGNS,
            _DAYS,
            st.floats(-20, 200),
            st.floats(0, 300),
            st.floats(0, 24),
        ),
        min_size=1,
        max_size=30,
    ),
    rows=st.lists(
        st.tuples(_DAYS, _CHANNELS, _CAMPAIGNS, st.floats(0, 500)), min_size=0, max_size=20
    ),
    by=st.sampled_from(
        [
            ("acquisition_channel",),
            ("acquisition_channel", "acquisition_campaign"),
            ("acquisition_channel", "acquisition_month"),
            ("acquisition_channel", "acquisition_campaign", "acquisition_month"),
        ]
    ),
)
def test_nothing_is_lost_and_numbers_agree(
    customers: list[tuple], rows: list[tuple], by: tuple[str, ...]
) -> None:
    scores = _scores(customers)
    spend = _spend(rows)
    table = acquisition_economics(scores, spend, by=by, min_customers=1)
    assert table["new_customers"].sum() == len(scores)
    assert table["marketing_spend"].sum() == pytest.approx(spend["spend"].sum(), abs=1e-6)
    paid = table["marketing_spend"] > 0
    bought = table["new_customers"] > 0
    both = paid & bought
    np.testing.assert_allclose(
        table.loc[both, "cac"],
        table.loc[both, "marketing_spend"] / table.loc[both, "new_customers"],
    )
    assert table.loc[~paid, "cac"].isna().all()
    assert np.isinf(table.loc[paid & ~bought, "cac"]).all()
    assert set(table["recommendation"]) <= {"scale", "hold", "cut"}
    assert (table.loc[table["recommendation"] == "scale", "ltv_cac"] >= 3.0).all()
    assert (table.loc[table["recommendation"] == "cut", "ltv_cac"].fillna(0.0) < 1.0).all()
    payback = table["payback_months"]
    assert (payback.dropna() >= 0).all()
    # The payback bound: the curve is flat after the longest tenure plus the horizon.
    longest = scores["tenure_days"].max() / MONTH + 12.0
    assert (payback.dropna() <= longest + 1e-9).all()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"by": ("acquisition_channel", "region")},
            "The 'by' parameter of acquisition_economics must be a non-empty sequence of "
            "distinct keys among 'acquisition_channel', 'acquisition_campaign', "
            "'acquisition_month'. Got ('acquisition_channel', 'region') instead.",
        ),
        ({"by": ()}, "The 'by' parameter"),
        ({"by": ("acquisition_channel", "acquisition_channel")}, "The 'by' parameter"),
        (
            {"target_ltv_cac": 0},
            "The 'target_ltv_cac' parameter of acquisition_economics must be a number > 0. "
            "Got 0 instead.",
        ),
        ({"cut_below": 4.0}, "between 0 and target_ltv_cac (3)"),
        ({"max_payback_months": -1}, "'max_payback_months' parameter"),
        ({"min_customers": 2.5}, "'min_customers' parameter"),
        ({"horizon_months": float("nan")}, "'horizon_months' parameter"),
    ],
)
def test_bad_options(
    scores: pd.DataFrame, spend: pd.DataFrame, options: dict, message: str
) -> None:
    with pytest.raises(InputError) as info:
        acquisition_economics(scores, spend, **options)
    assert message in str(info.value)


def test_missing_columns_are_listed(scores: pd.DataFrame, spend: pd.DataFrame) -> None:
    with pytest.raises(
        DataValidationError, match=r"lacks the column\(s\) 'total_clv', 'tenure_days'"
    ):
        acquisition_economics(scores.drop(columns=["total_clv", "tenure_days"]), spend)
    with pytest.raises(DataValidationError, match=r"spend table .* lacks the column.*'campaign'"):
        acquisition_economics(scores, spend.drop(columns="campaign"), by=("acquisition_campaign",))
    # Without campaigns in the grouping, the spend table needs no campaign column.
    table = acquisition_economics(scores, spend.drop(columns="campaign"))
    assert table["marketing_spend"].sum() == pytest.approx(spend["spend"].sum())
    with pytest.raises(DataValidationError, match=r"'first_purchase_date'"):
        acquisition_economics(
            scores.drop(columns="first_purchase_date"), spend, by="acquisition_month"
        )


def test_bad_spend_values(scores: pd.DataFrame, spend: pd.DataFrame) -> None:
    negative = spend.copy()
    negative.loc[[1, 3], "spend"] = -5.0
    with pytest.raises(
        DataValidationError, match=r"must be >= 0\. Found negative spend at rows 1, 3"
    ) as info:
        acquisition_economics(scores, negative)
    assert info.value.rows == [1, 3]
    text = spend.copy()
    text["spend"] = text["spend"].astype(str)
    with pytest.raises(DataValidationError, match=r"Column 'spend' .* must be numeric"):
        acquisition_economics(scores, text)
    missing = spend.copy()
    missing.loc[2, "spend"] = np.nan
    with pytest.raises(DataValidationError, match=r"finite numbers.*rows 2"):
        acquisition_economics(scores, missing)
    dates = spend.copy()
    dates["date"] = dates["date"].astype(str)
    dates.loc[4, "date"] = "not a date"
    with pytest.raises(DataValidationError, match=r"Column 'date' .* unreadable values at rows 4"):
        acquisition_economics(scores, dates)
    channel = spend.copy()
    channel.loc[0, "channel"] = None
    with pytest.raises(DataValidationError, match=r"'channel' .* missing at rows 0"):
        acquisition_economics(scores, channel)


def test_bad_scores_values(scores: pd.DataFrame, spend: pd.DataFrame) -> None:
    bad = scores.copy()
    bad.loc[3, "total_clv"] = np.nan
    with pytest.raises(DataValidationError, match=r"'total_clv' .* rows 3"):
        acquisition_economics(bad, spend)
    bad = scores.copy()
    bad.loc[2, "tenure_days"] = -1.0
    with pytest.raises(DataValidationError, match=r"'tenure_days' .* negative values at rows 2"):
        acquisition_economics(bad, spend)
    with pytest.raises(InputError, match=r"needs the spend table as a pandas DataFrame"):
        acquisition_economics(scores, spend.to_dict())  # type: ignore[arg-type]


def _mean_curve(scores: pd.DataFrame, t: np.ndarray, horizon: float = 12.0) -> np.ndarray:
    """The documented margin curve, evaluated directly: mean over customers at months t."""
    tenure = scores["tenure_days"].to_numpy()[:, None] / MONTH
    historic = scores["historic_clv"].to_numpy()[:, None]
    predicted = scores["predicted_clv"].to_numpy()[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        so_far = np.where(tenure > 1e-6, historic * np.minimum(t / tenure, 1.0), historic)
    later = predicted * np.clip(t - tenure, 0.0, horizon) / horizon
    return (so_far + later).mean(axis=0)


@settings(max_examples=60, deadline=None)
@given(
    customers=st.lists(
        st.tuples(
            st.just("a"),
            st.just(None),
            st.just(pd.Timestamp("2024-01-01")),
            st.floats(-20, 200),
            st.floats(0, 300),
            st.sampled_from([0.0, 0.5, 3.0, 7.25, 12.0, 30.0]),
        ),
        min_size=1,
        max_size=8,
    ),
    cac=st.floats(0.5, 300),
)
def test_payback_is_the_first_crossing_of_the_mean_curve(
    customers: list[tuple], cac: float
) -> None:
    scores = _scores(customers)
    spend = _spend([("2024-01-01", "a", None, cac * len(scores))])
    payback = acquisition_economics(scores, spend, min_customers=1).iloc[0]["payback_months"]
    grid = np.linspace(0.0, 42.0, 4201)
    curve = _mean_curve(scores, grid)
    if math.isnan(payback):
        assert curve.max() < cac * (1 + 1e-9)
    else:
        assert _mean_curve(scores, np.array([payback]))[0] >= cac * (1 - 1e-6)
        assert (curve[grid < payback - 1e-6] < cac * (1 + 1e-9)).all()
