"""Drivers of value: group differences with intervals, permutation importance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from threadpoolctl import threadpool_limits

from lifevalue.data.simulate import simulate_business
from lifevalue.errors import DataValidationError, InputError
from lifevalue.value.drivers import MISSING_GROUP, group_differences, permutation_importance_table
from lifevalue.value.leads import LeadModel


def frame(values: object, **columns: object) -> pd.DataFrame:
    data = pd.DataFrame({"predicted_clv": np.asarray(values, dtype=float), **columns})
    data.index = pd.Index(np.arange(1001, 1001 + len(data)), name="customer_id")
    return data


@pytest.fixture
def hand() -> pd.DataFrame:
    values = [10, 12, 14, 11, 13, 20, 25, 30, 22, 1, 2, 3, 2.5]
    groups = ["a"] * 5 + ["b"] * 4 + ["c"] * 4
    return frame(values, region=groups)


def test_overall_difference_matches_welch_against_the_rest(hand: pd.DataFrame) -> None:
    table = group_differences(hand, "region").set_index("group")
    y = hand["predicted_clv"]
    for g in "abc":
        inside, rest = y[hand["region"] == g], y[hand["region"] != g]
        w = len(inside) / len(y)
        test = stats.ttest_ind(inside, rest, equal_var=False)
        ci = test.confidence_interval(0.95)
        row = table.loc[g]
        assert row["customers"] == len(inside)
        assert row["mean_value"] == pytest.approx(inside.mean())
        assert row["difference"] == pytest.approx(inside.mean() - y.mean())
        assert row["difference_low"] == pytest.approx((1 - w) * ci.low)
        assert row["difference_high"] == pytest.approx((1 - w) * ci.high)
        assert row["p_value"] == pytest.approx(test.pvalue)
    assert table["rank"].to_dict() == {"b": 1, "a": 2, "c": 3}
    assert table["share"].sum() == pytest.approx(1.0)


def test_reference_difference_matches_welch(hand: pd.DataFrame) -> None:
    before = hand.copy()
    table = group_differences(hand, "region", reference="a", level=0.9).set_index("group")
    pd.testing.assert_frame_equal(hand, before)
    y, r = hand["predicted_clv"], hand["region"]
    test = stats.ttest_ind(y[r == "b"], y[r == "a"], equal_var=False)
    ci = test.confidence_interval(0.9)
    assert table.loc["b", "difference"] == pytest.approx(y[r == "b"].mean() - y[r == "a"].mean())
    assert table.loc["b", "difference_low"] == pytest.approx(ci.low)
    assert table.loc["b", "difference_high"] == pytest.approx(ci.high)
    assert table.loc["a", "difference"] == 0.0
    assert np.isnan(table.loc["a", "difference_low"])
    assert not table.loc["a", "significant"]
    assert bool(table.loc["b", "significant"]) and bool(table.loc["c", "significant"])


def test_numeric_behaviour_is_banded_and_missing_is_a_group() -> None:
    data = frame(np.arange(1, 41), n_orders=np.arange(1, 41), region=[None] * 4 + ["x"] * 36)
    table = group_differences(data, ["n_orders", "region"], bins=4)
    bands = table[table["attribute"] == "n_orders"]
    assert len(bands) == 4
    assert bands["customers"].tolist() == [10, 10, 10, 10]
    assert bands["rank"].tolist() == [1, 2, 3, 4]
    assert bands["mean_value"].is_monotonic_decreasing
    regions = table[table["attribute"] == "region"].set_index("group")
    assert regions.loc[MISSING_GROUP, "customers"] == 4
    assert table.attrs["lifevalue"]["compared_to"] == "overall mean"


def test_one_customer_group_has_no_interval() -> None:
    table = group_differences(frame([1, 2, 3, 50], g=["a", "a", "a", "b"]), "g").set_index("group")
    assert np.isnan(table.loc["b", "difference_low"])
    assert table.loc["b", "difference"] == pytest.approx(50 - 14)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3), min_size=6, max_size=40),
    st.floats(0.5, 0.99),
)
def test_intervals_contain_the_difference_and_widen_with_level(
    values: list[float], level: float
) -> None:
    groups = np.resize(["a", "b", "c"], len(values))
    data = frame(values, g=groups)
    narrow = group_differences(data, "g", level=level)
    wide = group_differences(data, "g", level=min(level + 0.009, 0.999))
    ok = narrow["difference_low"].notna()
    assert (narrow.loc[ok, "difference_low"] <= narrow.loc[ok, "difference"] + 1e-9).all()
    assert (narrow.loc[ok, "difference"] <= narrow.loc[ok, "difference_high"] + 1e-9).all()
    assert (wide.loc[ok, "difference_low"] <= narrow.loc[ok, "difference_low"] + 1e-9).all()
    # the customer-weighted differences from the overall mean add up to zero
    assert np.dot(narrow["customers"], narrow["difference"]) == pytest.approx(0.0, abs=1e-6)


def test_errors(hand: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="'nope'"):
        group_differences(hand, "nope")
    with pytest.raises(InputError, match="'level' parameter of group_differences"):
        group_differences(hand, "region", level=1.5)
    with pytest.raises(InputError, match="has no group 'z'"):
        group_differences(hand, "region", reference="z")
    with pytest.raises(DataValidationError, match="finite 'predicted_clv'"):
        group_differences(hand.assign(predicted_clv=np.nan), "region")
    with pytest.raises(InputError, match="'lead_model' parameter"):
        permutation_importance_table(LeadModel(), hand, hand["predicted_clv"])


# --------------------------------------------------------------------------- simulated truth


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    """Scores whose value is each customer's true spend rate (a year of it)."""
    business = simulate_business(n_customers=20000, seed=5)
    c = business.customers.set_index("customer_id")
    scores = pd.DataFrame(
        {
            "predicted_clv": c["lam"] * c["mean_spend"] * 52,
            "region": c["region"],
            "acquisition_channel": c["acquisition_channel"],
        }
    )
    rng = np.random.default_rng(11)
    scores["coin"] = rng.choice(["heads", "tails", "edge"], len(scores))  # no effect
    return scores


def test_drivers_rank_the_true_channels_and_regions(simulated: pd.DataFrame) -> None:
    table = group_differences(simulated, ["acquisition_channel", "region", "coin"])
    channels = table[table["attribute"] == "acquisition_channel"]
    # truth (rate x spend): referral 1.50, email 1.19, organic 1, paid_search 0.9,
    # affiliate 0.72, social 0.60
    assert channels["group"].tolist() == [
        "referral", "email", "organic", "paid_search", "affiliate", "social",
    ]  # fmt: skip
    assert channels.set_index("group").loc[["referral", "social"], "significant"].all()
    regions = table[table["attribute"] == "region"].set_index("group")
    # truth (spend): northeast 1.10, west 1.08, southwest 0.97, southeast 0.95, midwest 0.92
    assert set(regions.index[:2]) == {"northeast", "west"}
    assert regions.index[-1] == "midwest"
    assert (regions.loc[["northeast", "west"], "difference_low"] > 0).all()
    assert regions.loc["midwest", "difference_high"] < 0
    coin = table[table["attribute"] == "coin"]
    assert ((coin["difference_low"] < 0) & (coin["difference_high"] > 0)).all()
    assert not coin["significant"].any()


def test_permutation_importance_finds_the_real_feature() -> None:
    rng = np.random.default_rng(0)
    n = 1500
    x = pd.DataFrame(
        {
            "channel": rng.choice(["a", "b", "c"], n),
            "noise": rng.normal(size=n),
            "first_order_value": rng.gamma(2.0, 20.0, n),
        }
    )
    y = pd.Series(
        x["channel"].map({"a": 0.0, "b": 60.0, "c": 200.0}) + 0.5 * x["first_order_value"]
    )
    y = y + rng.normal(0, 10, n)
    with threadpool_limits(1):
        model = LeadModel(quantiles=None, max_iter=100).fit(x.iloc[:1000], y.iloc[:1000])
        table = permutation_importance_table(model, x.iloc[1000:], y.iloc[1000:], n_repeats=5)
        again = permutation_importance_table(model, x.iloc[1000:], y.iloc[1000:], n_repeats=5)
    pd.testing.assert_frame_equal(table, again)
    assert table["feature"].tolist() == ["channel", "first_order_value", "noise"]
    assert table["rank"].tolist() == [1, 2, 3]
    assert table.loc[0, "importance"] > 30  # MAE rises by tens of currency units
    assert abs(table.loc[2, "importance"]) < 1
    assert table["share"].sum() == pytest.approx(1.0)


def test_mixed_labels_periods_and_missing_group() -> None:
    months = pd.Series([pd.Period("2024-01", "M")] * 3 + [pd.Period("2024-02", "M")] * 3 + [None])
    data = frame([1, 2, 3, 7, 8, 9, 5], acquisition_month=months.to_numpy())
    table = group_differences(data, "acquisition_month")
    assert table["group"].tolist() == [
        pd.Period("2024-02", "M"),
        MISSING_GROUP,
        pd.Period("2024-01", "M"),
    ]
    few = group_differences(frame([1, 2, 3, 4], n=[1.0, 1.0, np.nan, 2.0]), "n")
    assert set(few["group"]) == {1.0, 2.0, MISSING_GROUP}
