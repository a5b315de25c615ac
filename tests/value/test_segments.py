"""Segments of the scores table: tiers, RFM, lifecycle, breakdowns, concentration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifevalue.data.simulate import simulate_business
from lifevalue.errors import DataValidationError, InputError
from lifevalue.value.segments import (
    LIFECYCLE_STATES,
    RFM_SEGMENT_RULES,
    RFM_SEGMENTS,
    UNKNOWN,
    breakdown,
    concentration_curve,
    gini_coefficient,
    lifecycle_states,
    rfm_scores,
    rfm_segments,
    value_concentration,
    value_tiers,
)


def frame(values: object, **columns: object) -> pd.DataFrame:
    """A scores-like frame indexed by customer_id 1001, 1002, ..."""
    data = pd.DataFrame({"predicted_clv": np.asarray(values, dtype=float), **columns})
    data.index = pd.Index(np.arange(1001, 1001 + len(data)), name="customer_id")
    return data


@pytest.fixture
def hundred() -> pd.DataFrame:
    """100 customers worth 1..100, in shuffled row order."""
    rng = np.random.default_rng(7)
    data = frame(np.arange(1, 101))
    return data.iloc[rng.permutation(100)]


# --------------------------------------------------------------------------- value tiers


def test_tiers_default_cuts_on_distinct_values(hundred: pd.DataFrame) -> None:
    tiers = value_tiers(hundred)
    assert tiers.name == "value_tier"
    assert tiers.index.equals(hundred.index)
    assert list(tiers.cat.categories) == ["top", "high", "medium", "low"]
    assert tiers.value_counts(sort=False).to_dict() == {
        "top": 5,
        "high": 15,
        "medium": 30,
        "low": 50,
    }
    value = hundred["predicted_clv"]
    assert sorted(value[tiers == "top"]) == [96, 97, 98, 99, 100]
    assert value[tiers == "high"].min() == 81
    assert value[tiers == "medium"].min() == 51
    assert value[tiers == "low"].max() == 50


def test_tiers_do_not_depend_on_row_order(hundred: pd.DataFrame) -> None:
    once = value_tiers(hundred)
    again = value_tiers(hundred.sort_index(ascending=False))
    pd.testing.assert_series_equal(once.sort_index(), again.sort_index())


def test_tied_values_go_where_their_middle_customer_falls() -> None:
    # 20 customers, top 5% = 1 place. Three tie for places 0-2 (middle 1): not top.
    three = value_tiers(
        frame([10, 10, 10, *np.linspace(1, 9, 17)]), cuts=(0.05,), labels=("a", "b")
    )
    assert (three == "b").all()
    # Two tie for places 0-1 (middle 0.5): both top.
    two = value_tiers(frame([10, 10, *np.linspace(1, 9, 18)]), cuts=(0.05,), labels=("a", "b"))
    assert (two.iloc[:2] == "a").all() and (two.iloc[2:] == "b").all()
    # A block of seven customers worth nothing stays in the last tier.
    zeros = value_tiers(frame([0, 0, 0, 0, 0, 0, 0, 3, 2, 1]))
    assert zeros.tolist() == ["low"] * 7 + ["top", "high", "medium"]


def test_tiers_custom_cuts_and_column() -> None:
    data = frame(np.zeros(10), total_clv=np.arange(10.0))
    tiers = value_tiers(data, cuts=(0.2, 0.3), labels=("a", "b", "c"), by="total_clv")
    assert tiers.tolist() == ["c"] * 5 + ["b"] * 3 + ["a"] * 2


def test_tiers_empty_table() -> None:
    assert value_tiers(frame([])).empty


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"cuts": (0.05, 1.5)},
            "The 'cuts' parameter of value_tiers must be between 0 and 1. Got 1.5 instead.",
        ),
        ({"cuts": (0.5, 0.5)}, "shares adding up to less than 1"),
        ({"cuts": (0.0, 0.5)}, "strictly between 0 and 1"),
        ({"cuts": ()}, "non-empty sequence"),
        ({"cuts": 0.05}, "non-empty sequence"),
        ({"labels": ("a", "b")}, "a sequence of 4 names"),
        ({"labels": ("a", "a", "b", "c")}, "distinct names"),
    ],
)
def test_tier_options_are_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(".", r"\.")):
        value_tiers(frame([1, 2, 3]), **kwargs)


def test_tiers_report_missing_column_and_missing_values() -> None:
    with pytest.raises(DataValidationError, match="needs the columns 'total_clv'"):
        value_tiers(frame([1, 2]), by="total_clv")
    with pytest.raises(
        DataValidationError, match=r"Found 1 missing or infinite \(customers 1002\)"
    ):
        value_tiers(frame([1, np.nan, 3]))
    with pytest.raises(InputError, match="as a pandas DataFrame"):
        value_tiers([1, 2, 3])  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    values=st.lists(st.integers(-50, 50), min_size=1, max_size=200),
    cuts=st.lists(st.floats(0.01, 0.3), min_size=1, max_size=3),
)
def test_tiers_partition_and_follow_value(values: list[int], cuts: list[float]) -> None:
    data = frame(values)
    tiers = value_tiers(data, cuts=cuts, labels=[f"t{i}" for i in range(len(cuts) + 1)])
    assert tiers.notna().all() and len(tiers) == len(values)
    codes = tiers.cat.codes.to_numpy()
    value = data["predicted_clv"].to_numpy()
    # Worth more, never a lower tier; equal values, the same tier.
    order = np.argsort(-value, kind="stable")
    assert (np.diff(codes[order]) >= 0).all()
    same = value[:, None] == value[None, :]
    assert (codes[:, None] == codes[None, :])[same].all()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200, unique=True),
    cuts=st.lists(st.floats(0.01, 0.3), min_size=1, max_size=3),
)
def test_tiers_have_exact_sizes_without_ties(values: list[float], cuts: list[float]) -> None:
    tiers = value_tiers(frame(values), cuts=cuts, labels=[f"t{i}" for i in range(len(cuts) + 1)])
    codes = tiers.cat.codes.to_numpy()
    n = len(values)
    for k, cumulative in enumerate(np.cumsum(cuts)):
        assert (codes <= k).sum() == min(np.ceil(round(cumulative * n, 9)), n)


# --------------------------------------------------------------------------- RFM

RFM_GRID = """
R\\FM 1               2                    3                    4                5
5    new             potential loyalists  potential loyalists  champions        champions
4    promising       potential loyalists  potential loyalists  loyal            loyal
3    need attention  need attention       need attention       loyal            loyal
2    hibernating     hibernating          at risk              at risk          can't lose them
1    lost            lost                 at risk              at risk          can't lose them
"""


def expected_grid() -> dict[tuple[int, int], str]:
    lines = [line for line in RFM_GRID.strip().splitlines()[1:]]
    out = {}
    for line in lines:
        r, *cells = [c for c in line.split("  ") if c.strip()]
        for fm, name in enumerate(cells, start=1):
            out[(int(r), fm)] = name.strip()
    return out


def test_rule_table_covers_every_cell_once() -> None:
    grid = expected_grid()
    assert len(grid) == 25
    for (r, fm), name in grid.items():
        hits = [
            rule.segment
            for rule in RFM_SEGMENT_RULES
            if rule.r[0] <= r <= rule.r[1] and rule.fm[0] <= fm <= rule.fm[1]
        ]
        assert hits == [name], (r, fm)
    assert set(RFM_SEGMENTS) == set(grid.values())
    assert len(RFM_SEGMENTS) == 10
    assert pd.DataFrame(RFM_SEGMENT_RULES).columns.tolist() == [
        "segment",
        "r",
        "fm",
        "description",
    ]


@pytest.fixture
def rfm_grid_frame() -> pd.DataFrame:
    """25 customers, one per (R, F) cell; M equals F so that FM = F."""
    level_r, level_f = np.meshgrid(np.arange(5), np.arange(5), indexing="ij")
    level_r, level_f = level_r.ravel(), level_f.ravel()
    n_orders = level_f + 1
    return frame(
        np.zeros(25),
        days_since_last_order=400.0 - 80 * level_r,  # level 4 = most recent
        n_orders=n_orders,
        historic_revenue=n_orders * (20.0 + 10 * level_f),
    )


def test_rfm_scores_and_segments_on_the_grid(rfm_grid_frame: pd.DataFrame) -> None:
    scores = rfm_scores(rfm_grid_frame)
    assert scores["r_score"].value_counts().to_dict() == dict.fromkeys(range(1, 6), 5)
    assert (scores["f_score"] == scores["m_score"]).all()
    assert (scores["fm_score"] == scores["f_score"]).all()
    assert scores.loc[1001, "rfm_cell"] == "111"
    assert scores.loc[1025, "rfm_cell"] == "555"
    segments = rfm_segments(rfm_grid_frame)
    assert segments.name == "segment"
    grid = expected_grid()
    for customer in rfm_grid_frame.index:
        cell = (scores.loc[customer, "r_score"], scores.loc[customer, "fm_score"])
        assert segments.loc[customer] == grid[cell]
    shuffled = rfm_segments(rfm_grid_frame.iloc[::-1])
    pd.testing.assert_series_equal(segments, shuffled.sort_index())


def test_quintiles_share_scores_on_ties() -> None:
    # 60 one-order customers, 20 with two orders, 20 with three.
    orders = np.repeat([1, 2, 3], [60, 20, 20])
    data = frame(
        np.zeros(100),
        days_since_last_order=np.arange(100.0),
        n_orders=orders,
        historic_revenue=orders * 50.0,
    )
    scores = rfm_scores(data)
    assert scores.groupby(orders)["f_score"].unique().map(list).tolist() == [[1], [4], [5]]
    # Equal mean order value for everybody: everybody gets M = 1, FM rounds (F + 1) / 2 up.
    assert (scores["m_score"] == 1).all()
    assert scores.groupby(orders)["fm_score"].first().tolist() == [1, 3, 3]
    # Recency: the fewest days scores 5, the most 1, twenty customers each.
    assert scores["r_score"].iloc[0] == 5 and scores["r_score"].iloc[-1] == 1
    assert (scores["r_score"].value_counts() == 20).all()


def test_rfm_fallback_columns() -> None:
    data = frame(
        np.zeros(5),
        days_since_last_order=[10.0, 20, 30, 40, 50],
        frequency=[4, 3, 2, 1, 0],
        monetary_value=[50.0, 40, 30, 20, np.nan],
    )
    scores = rfm_scores(data)
    assert scores["f_score"].tolist() == [5, 4, 3, 2, 1]
    # A missing monetary value ranks below every known one.
    assert scores["m_score"].tolist() == [5, 4, 3, 2, 1]
    assert rfm_segments(data).tolist() == [
        "champions",
        "loyal",
        "need attention",
        "hibernating",
        "lost",
    ]


def test_rfm_missing_columns_listed_at_once() -> None:
    with pytest.raises(DataValidationError) as info:
        rfm_segments(frame([1.0]))
    message = str(info.value)
    assert "'days_since_last_order'" in message
    assert "'n_orders' (or 'frequency')" in message
    assert "'historic_revenue' (or 'monetary_value')" in message
    with pytest.raises(DataValidationError, match="finite 'days_since_last_order'"):
        rfm_segments(frame([1.0], days_since_last_order=[np.nan], n_orders=[1], monetary_value=[1]))


@settings(max_examples=50, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.integers(1, 12), st.integers(1, 500)),
        min_size=1,
        max_size=120,
    )
)
def test_rfm_scores_are_bounded_and_monotone(rows: list[tuple[int, int, int]]) -> None:
    days, orders, spend = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    data = frame(
        np.zeros(len(rows)),
        days_since_last_order=days,
        n_orders=orders,
        historic_revenue=orders * spend,
    )
    scores = rfm_scores(data)
    for column in ("r_score", "f_score", "m_score", "fm_score"):
        assert scores[column].between(1, 5).all()
    # More recent never scores lower; more orders never score lower.
    r = scores["r_score"].to_numpy()
    assert ((days[:, None] < days[None, :]) <= (r[:, None] >= r[None, :])).all()
    f = scores["f_score"].to_numpy()
    assert ((orders[:, None] > orders[None, :]) <= (f[:, None] >= f[None, :])).all()
    assert rfm_segments(data).isin(RFM_SEGMENTS).all()


# --------------------------------------------------------------------------- lifecycle


def lifecycle_frame() -> pd.DataFrame:
    return frame(
        np.zeros(8),
        p_alive=[0.05, 0.05, 0.3, 0.9, 0.9, 0.9, 0.5, 0.2],
        tenure_days=[30, 400, 400, 400, 400, 400, 400, 400],
        days_since_last_order=[30, 300, 20, 200, 200, 60, 20, 20],
        average_days_between_orders=[np.nan, 50, 50, 100, np.nan, 50, 50, 50],
    )


def test_lifecycle_rules_and_precedence() -> None:
    states = lifecycle_states(lifecycle_frame())
    assert states.name == "lifecycle_state"
    assert list(states.cat.categories) == list(LIFECYCLE_STATES)
    assert states.tolist() == [
        "new",  # first purchase 30 days ago: new, even with a low P(alive)
        "lapsed",  # P(alive) 0.05 < 0.2
        "at risk",  # P(alive) 0.3 < 0.5
        "at risk",  # overdue: 200 days > 1.5 x 100
        "active",  # one purchase only: no rhythm, never overdue
        "active",  # 60 days <= 1.5 x 50
        "active",  # P(alive) exactly 0.5 is not below 0.5
        "at risk",  # P(alive) exactly 0.2 is not below 0.2
    ]


def test_lifecycle_thresholds_move_customers() -> None:
    states = lifecycle_states(
        lifecycle_frame(),
        at_risk_below=0.95,
        lapsed_below=0.4,
        new_within_days=10,
        overdue_factor=5,
    )
    assert states.tolist() == [
        "lapsed", "lapsed", "lapsed", "at risk", "at risk", "at risk", "at risk", "lapsed",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"at_risk_below": 1.5},
            "The 'at_risk_below' parameter of lifecycle_states must be between 0 and 1. "
            "Got 1.5 instead.",
        ),
        (
            {"lapsed_below": 0.6},
            "The 'lapsed_below' parameter of lifecycle_states must be between 0 and 0.5. "
            "Got 0.6 instead.",
        ),
        ({"new_within_days": -1}, "must be >= 0. Got -1 instead."),
        ({"overdue_factor": 0}, "must be > 0. Got 0 instead."),
        ({"at_risk_below": "high"}, "must be a number between 0 and 1"),
    ],
)
def test_lifecycle_options_are_validated(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError) as info:
        lifecycle_states(lifecycle_frame(), **kwargs)
    assert message in str(info.value)


def test_lifecycle_data_errors() -> None:
    data = lifecycle_frame()
    with pytest.raises(DataValidationError, match="'tenure_days'"):
        lifecycle_states(data.drop(columns="tenure_days"))
    data.loc[1003, "p_alive"] = 1.2
    with pytest.raises(
        DataValidationError, match=r"between 0 and 1. Found 1 outside \(customers 1003\)"
    ):
        lifecycle_states(data)


# --------------------------------------------------------------------------- breakdown


def test_breakdown_by_attribute_keeps_unknown() -> None:
    data = frame(
        [10, 20, 30, 40, 0, 100],
        p_alive=[1.0, 0.5, 0.5, 0.0, 1.0, 0.9],
        region=["north", "south", "north", None, "south", np.nan],
    )
    table = breakdown(data, "region")
    assert table.index.name == "region"
    assert table.index.tolist() == [UNKNOWN, "north", "south"]  # by total: 140, 40, 20
    assert table["customers"].tolist() == [2, 2, 2]
    assert table["total_predicted_clv"].tolist() == [140, 40, 20]
    assert table["mean_predicted_clv"].tolist() == [70, 20, 10]
    assert table["share_of_predicted_clv"].tolist() == pytest.approx([0.7, 0.2, 0.1])
    assert table["share_of_customers"].tolist() == pytest.approx([1 / 3] * 3)
    assert table["mean_p_alive"].tolist() == pytest.approx([0.45, 0.75, 0.75])
    assert data["region"].isna().sum() == 2  # the input is untouched


def test_breakdown_by_series_and_categorical() -> None:
    data = frame(np.arange(1, 101), p_alive=np.full(100, 0.5))
    tiers = value_tiers(data)
    table = breakdown(data, tiers.iloc[::-1], value="predicted_clv")
    assert table.index.name == "value_tier"
    assert table.loc["top", "total_predicted_clv"] == 490
    assert table.loc["low", "customers"] == 50
    data["age_band"] = pd.Categorical([None, *["18-24"] * 99], categories=["18-24", "25-34"])
    table = breakdown(data, "age_band")
    assert table.index.tolist() == ["18-24", UNKNOWN]  # an empty category has no row
    assert table["customers"].sum() == 100


def test_breakdown_errors() -> None:
    data = frame([1, 2, 3], region=["a", "b", "c"])
    with pytest.raises(InputError, match="must name a column of the scores table"):
        breakdown(data, "country")
    with pytest.raises(InputError, match="indexed by the customers of the scores table"):
        breakdown(data, pd.Series(["a", "b"], index=[1001, 1002]))
    with pytest.raises(InputError, match="indexed by the customers"):
        breakdown(data, pd.Series(["a", "b", "c"], index=[1, 2, 3]))
    with pytest.raises(DataValidationError, match="'total_clv'"):
        breakdown(data, "region", value="total_clv")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", None]), st.floats(0, 1000)),
        min_size=1,
        max_size=100,
    )
)
def test_breakdown_adds_up(rows: list[tuple[str | None, float]]) -> None:
    groups, values = zip(*rows, strict=True)
    data = frame(values, channel=list(groups))
    table = breakdown(data, "channel")
    assert table["customers"].sum() == len(rows)
    assert table["share_of_customers"].sum() == pytest.approx(1)
    assert table["total_predicted_clv"].sum() == pytest.approx(sum(values))
    if sum(values) > 0:
        assert table["share_of_predicted_clv"].sum() == pytest.approx(1)
    assert (np.diff(table["total_predicted_clv"].to_numpy()) <= 0).all()
    assert "mean_p_alive" not in table.columns


# --------------------------------------------------------------------------- concentration


def test_concentration_known_answer(hundred: pd.DataFrame) -> None:
    table = value_concentration(hundred)
    assert table["customers"].tolist() == [1, 5, 10, 20, 50]
    assert table["value_held"].tolist() == [100, 490, 955, 1810, 3775]
    assert table.loc[1, "share_of_value"] == pytest.approx(490 / 5050)
    whole = value_concentration(hundred, shares=(1.0, 0.07))
    assert whole["share_of_value"].tolist() == pytest.approx([1.0, (100 + 94) * 7 / 2 / 5050])


def test_concentration_curve_and_gini(hundred: pd.DataFrame) -> None:
    curve = concentration_curve(hundred, points=101)
    assert len(curve) == 101
    assert curve["share_of_value"].iloc[0] == 0 and curve["share_of_value"].iloc[-1] == 1
    assert curve.loc[5, "share_of_value"] == pytest.approx(490 / 5050)
    assert (np.diff(curve["share_of_value"]) > 0).all()
    gini = gini_coefficient(hundred)
    assert gini == pytest.approx(99 / 300)  # (n - 1) / (3n) for 1..n
    area = np.trapezoid(curve["share_of_value"], curve["share_of_customers"])
    assert gini == pytest.approx(2 * area - 1)
    assert gini_coefficient(frame(np.full(10, 3.0))) == pytest.approx(0)
    assert gini_coefficient(frame([0, 0, 0, 5])) == pytest.approx(3 / 4)
    assert np.isnan(gini_coefficient(frame([0.0, 0.0])))


def test_concentration_errors() -> None:
    with pytest.raises(InputError, match="The 'shares' parameter of value_concentration"):
        value_concentration(frame([1, 2]), shares=(0.0,))
    with pytest.raises(InputError, match=r"must be between 0 and 1\. Got 2 instead"):
        value_concentration(frame([1, 2]), shares=(2,))
    with pytest.raises(InputError, match="'points' parameter of concentration_curve"):
        concentration_curve(frame([1, 2]), points=1)
    with pytest.raises(DataValidationError, match="at least one customer"):
        gini_coefficient(frame([]))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    st.lists(st.floats(0, 1e6, allow_subnormal=False), min_size=1, max_size=150).filter(
        lambda v: sum(v) > 0
    )
)
def test_concentration_properties(values: list[float]) -> None:
    data = frame(values)
    shares = value_concentration(data, shares=(0.1, 0.2, 0.5, 1.0))["share_of_value"]
    assert (np.diff(shares) >= -1e-12).all()
    assert shares.iloc[-1] == pytest.approx(1)
    assert (shares >= 0.1 - 1e-9).all()  # the top 10% hold at least 10%
    curve = concentration_curve(data, points=21)["share_of_value"].to_numpy()
    assert (curve >= np.linspace(0, 1, 21) - 1e-9).all()  # above the diagonal
    assert -1e-9 <= gini_coefficient(data) <= 1


# --------------------------------------------------------------------------- simulated business


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    """A scores-like frame from a simulated business, with the truth alongside."""
    business = simulate_business(n_customers=3000, seed=11)
    end = pd.Timestamp(business.truth["end"])
    tx = business.transactions
    orders = tx[tx["amount"] > 0]
    per = orders.groupby("customer_id").agg(
        n_orders=("order_id", "nunique"),
        historic_revenue=("amount", "sum"),
        first=("timestamp", "min"),
        last=("timestamp", "max"),
    )
    tenure = (end - per["first"]).dt.total_seconds() / 86400
    since = (end - per["last"]).dt.total_seconds() / 86400
    span = (per["last"] - per["first"]).dt.total_seconds() / 86400
    repeat = per["n_orders"] - 1
    # A crude prediction: the customer's own yearly run rate of revenue.
    run_rate = per["historic_revenue"] / np.maximum(tenure, 30) * 365
    truth = business.customers.set_index("customer_id")
    data = pd.DataFrame(
        {
            "predicted_clv": run_rate,
            "p_alive": 1.0,
            "tenure_days": tenure,
            "days_since_last_order": since,
            "average_days_between_orders": (span / repeat).where(repeat > 0),
            "n_orders": per["n_orders"],
            "historic_revenue": per["historic_revenue"],
            "region": truth["region"].reindex(per.index),
            "true_value": (truth["lam"] * truth["mean_spend"]).reindex(per.index),
            "alive": truth["alive_at_end"].reindex(per.index),
        }
    )
    data.index.name = "customer_id"
    return data


def test_truly_valuable_customers_land_in_higher_tiers(simulated: pd.DataFrame) -> None:
    tiers = value_tiers(simulated)
    means = simulated.groupby(tiers, observed=True)["true_value"].mean()
    assert means.index.tolist() == ["top", "high", "medium", "low"]
    assert (np.diff(means.to_numpy()) < 0).all()
    assert means["top"] > 3 * means["low"]


def test_rfm_segments_follow_the_truth(simulated: pd.DataFrame) -> None:
    segments = rfm_segments(simulated)
    alive = simulated.groupby(segments, observed=True)["alive"].mean()
    value = simulated.groupby(segments, observed=True)["true_value"].mean()
    # Under BG/NBD only repeat buyers can drop out: the frequent buyers not seen for long
    # are the ones really gone, while "lost" one-off buyers are mostly slow, not dead.
    assert alive["champions"] > alive["at risk"] + 0.3
    assert alive["champions"] > alive["can't lose them"] + 0.5
    assert value["champions"] > 3 * value["lost"]
    assert value["champions"] > 3 * value["hibernating"]
    assert value["can't lose them"] > value["need attention"]
    table = breakdown(simulated, segments)
    assert table["customers"].sum() == len(simulated)


def test_overdue_customers_are_gone_more_often(simulated: pd.DataFrame) -> None:
    states = lifecycle_states(simulated)  # P(alive) = 1: only overdue-ness decides
    assert set(states.unique()) == {"new", "active", "at risk"}
    alive = simulated.groupby(states, observed=True)["alive"].mean()
    assert alive["active"] > alive["at risk"] + 0.2
    table = breakdown(simulated, "region")
    assert table["customers"].sum() == len(simulated)
    assert table["share_of_predicted_clv"].sum() == pytest.approx(1)
    assert value_concentration(simulated, shares=(0.2,))["share_of_value"].iloc[0] > 0.2
