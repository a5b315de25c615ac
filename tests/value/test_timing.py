"""Contact timing: best times on simulated truth, peaks, churn triggers, contact plans."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifevalue.data import Engine, validate_transactions
from lifevalue.data.simulate import simulate_business
from lifevalue.data.timing import WEEKDAY_COLUMNS, purchase_timing
from lifevalue.errors import DataValidationError, InputError
from lifevalue.value.timing import best_contact_times, churn_triggers, contact_plan, peak_periods


@pytest.fixture(scope="module")
def simulated():
    sim = simulate_business(n_customers=2000, seed=1)
    validated = validate_transactions(
        sim.transactions, observation_end="2025-01-01", engine=Engine(threads=2)
    )
    timing = purchase_timing(validated)
    truth = sim.customers.set_index("customer_id")
    return sim, timing, truth


def _population(weekday, hour=None):
    rows = [("weekday", d, n) for d, n in enumerate(weekday)]
    if hour is not None:
        rows += [("hour", h, n) for h, n in enumerate(hour)]
    return pd.DataFrame(rows, columns=["period", "value", "purchases"])


def _counts(rows):
    frame = pd.DataFrame(rows, columns=list(WEEKDAY_COLUMNS))
    frame.index.name = "customer_id"
    return frame


# --------------------------------------------------------------------------- best times


def test_frequent_buyers_get_their_true_preferred_weekday_and_hour(simulated):
    _, timing, truth = simulated
    best = best_contact_times(timing.customers, timing.population)
    many = best["purchases_counted"] >= 8
    assert many.sum() > 100
    true = truth.loc[best.index]
    weekday_hit = (best["best_contact_weekday"] == true["preferred_weekday"])[many].mean()
    hour_hit = (best["best_contact_hour"] == true["preferred_hour"])[many].mean()
    assert weekday_hit > 0.9 and hour_hit > 0.9


def test_single_purchase_beats_the_store_peak_as_a_guess(simulated):
    # Why the default prior lets one purchase speak: it finds the habit far more often.
    sim, timing, truth = simulated
    best = best_contact_times(timing.customers, timing.population)
    one = best["purchases_counted"] == 1
    true = truth.loc[best.index][one]
    own_hit = (best["best_contact_weekday"][one] == true["preferred_weekday"]).mean()
    peak = int(np.argmax(sim.truth["weekday_profile"]))
    peak_hit = (true["preferred_weekday"] == peak).mean()
    assert own_hit > 2.5 * peak_hit


def test_single_purchase_customers_get_the_population_peak_under_a_strong_prior(simulated):
    _, timing, _ = simulated
    peaks = peak_periods(timing.population)
    # One purchase off the peak, on value d, gives way when k > 1 / (s_peak - s_d).
    pop = timing.population[timing.population["period"].isin(["weekday", "hour"])]
    top_two = pop.groupby("period")["share"].nlargest(2).groupby(level=0).agg(np.ptp)
    k = 1.01 / top_two.min()
    best = best_contact_times(timing.customers, timing.population, prior_strength=k)
    one = best[best["purchases_counted"] == 1]
    assert len(one) > 100
    assert (one["best_contact_weekday"] == peaks.loc["weekday", "peak"]).all()
    assert (one["best_contact_hour"] == peaks.loc["hour", "peak"]).all()


def test_shrinkage_by_hand():
    # Store: Saturday 50%, the other days about 8% each.
    pop = _population([1, 1, 1, 1, 1, 6, 1])
    counts = _counts([[1, 0, 0, 0, 0, 0, 0], [3, 0, 0, 0, 0, 0, 0], [0] * 7])
    best = best_contact_times(counts, pop, prior_strength=5.0)
    # Monday once: (1 + 5/12) / 6 = 0.236 < Saturday (5 x 0.5) / 6 = 0.417.
    assert best["best_contact_weekday"].tolist() == [5, 0, 5]
    assert best.loc[0, "weekday_weight"] == pytest.approx(2.5 / 6)
    # Three Mondays: (3 + 5/12) / 8 = 0.427 > 2.5 / 8.
    assert best.loc[1, "weekday_weight"] == pytest.approx((3 + 5 / 12) / 8)
    assert best["best_contact_weekday_name"].tolist() == ["Saturday", "Monday", "Saturday"]
    assert best["best_contact_hour"].isna().all()  # no hour counts: unknown, not midnight


def test_ties_go_to_the_store_favourite_then_the_earliest_day():
    pop = _population([2, 1, 1, 1, 1, 3, 3])
    counts = _counts([[0, 1, 0, 0, 0, 1, 0], [0, 0, 0, 0, 1, 0, 1], [0] * 7])
    best = best_contact_times(counts, pop, prior_strength=0.0)
    # Tuesday and Saturday tie: the store prefers Saturday. Friday/Sunday: Sunday.
    # No purchases and no prior: the store's peak, Saturday and Sunday tie: Saturday.
    assert best["best_contact_weekday"].tolist() == [5, 6, 5]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 20), min_size=7, max_size=7), min_size=1, max_size=10),
    st.lists(st.integers(0, 50), min_size=7, max_size=7).filter(lambda p: sum(p) > 0),
    st.floats(0, 100),
)
def test_best_weekday_maximises_the_posterior_and_ignores_row_order(rows, pop, k):
    counts, population = _counts(rows), _population(pop)
    best = best_contact_times(counts, population, prior_strength=k)
    share = np.asarray(pop) / sum(pop)
    own = np.asarray(rows, dtype=float)
    n = own.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.where(n + k > 0, (own + k * share) / (n + k), share)
    chosen = weights[np.arange(len(rows)), best["best_contact_weekday"].to_numpy(int)]
    assert np.all(chosen >= weights.max(axis=1) - 1e-9)
    reversed_best = best_contact_times(counts.iloc[::-1], population.iloc[::-1], prior_strength=k)
    assert reversed_best.loc[best.index, "best_contact_weekday"].equals(
        best["best_contact_weekday"]
    )


def test_best_contact_times_errors():
    pop = _population([1] * 7)
    with pytest.raises(InputError, match="The 'prior_strength' parameter of best_contact_times"):
        best_contact_times(_counts([[1] * 7]), pop, prior_strength=-1)
    with pytest.raises(DataValidationError, match="'weekday_6'"):
        best_contact_times(_counts([[1] * 7]).drop(columns="weekday_6"), pop)
    with pytest.raises(DataValidationError, match="non-negative weekday counts"):
        best_contact_times(_counts([[-1, 0, 0, 0, 0, 0, 0]]), pop)
    with pytest.raises(DataValidationError, match="has none"):
        best_contact_times(_counts([[1] * 7]), _population([0] * 7))


# --------------------------------------------------------------------------- peaks


def test_peak_periods_recover_the_simulated_profiles(simulated):
    sim, timing, _ = simulated
    peaks = peak_periods(timing.population)
    assert peaks.loc["weekday", "peak"] == int(np.argmax(sim.truth["weekday_profile"]))
    assert peaks.loc["weekday", "label"] == "Saturday"
    assert peaks.loc["hour", "peak"] in {19, 20, 21}  # the profile's evening top three
    assert peaks.loc["month", "label"] in {"November", "December"}  # the season's peak
    assert (peaks["share"] > peaks["share_if_even"]).all()


def test_peak_periods_of_a_date_only_log_have_no_hour():
    peaks = peak_periods(_population([4, 4, 1, 1, 1, 1, 1]))
    assert list(peaks.index) == ["weekday"]
    assert peaks.loc["weekday", "peak"] == 0  # Monday and Tuesday tie: the earliest
    assert peaks.loc["weekday", "share"] == pytest.approx(4 / 13)
    with pytest.raises(DataValidationError, match="needs rows of period"):
        peak_periods(pd.DataFrame({"period": ["year"], "value": [1], "purchases": [1]}))


# --------------------------------------------------------------------------- churn triggers


def _scores():
    return pd.DataFrame(
        {
            "p_alive": [0.9, 0.2, 0.9, 0.1, 0.3, 0.9],
            "days_since_last_order": [10.0, 10.0, 100.0, 100.0, 30.0, 60.0],
            "average_days_between_orders": [30.0, 30.0, 30.0, 30.0, np.nan, 40.0],
            "predicted_clv": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        },
        index=pd.Index(["a", "b", "c", "d", "e", "f"], name="customer_id"),
    )


def test_churn_triggers_fire_exactly_for_the_right_customers():
    scores = _scores()
    before = scores.copy()
    out = churn_triggers(scores)
    # a: fine. b: P(alive) low. c: 100 > 1.5 x 30. d: both. e: 0.3 is not below 0.3 and
    # one purchase cannot be overdue. f: 60 is not more than 1.5 x 40.
    assert list(out.index) == ["d", "b", "c"]
    assert out.loc["b", "low_p_alive"] and not out.loc["b", "overdue"]
    assert out.loc["c", "overdue"] and not out.loc["c", "low_p_alive"]
    assert out.loc["d", "reason"] == (
        "P(alive) 0.1 is below 0.3; 100 days since the last order, over 1.5 x the usual "
        "30 days between orders"
    )
    assert out.loc["b", "reason"] == "P(alive) 0.2 is below 0.3"
    assert out.loc["c", "overdue_ratio"] == pytest.approx(100 / 30)
    assert out.loc["c", "predicted_clv"] == 3.0
    pd.testing.assert_frame_equal(scores, before)


def test_churn_trigger_thresholds_move_the_list():
    out = churn_triggers(_scores(), p_alive_below=0.31, overdue_factor=1.4)
    assert set(out.index) == {"b", "c", "d", "e", "f"}


def test_churn_trigger_errors():
    with pytest.raises(
        InputError,
        match=r"The 'p_alive_below' parameter of churn_triggers must "
        r"be a finite number between 0 and 1. Got 1.5 instead.",
    ):
        churn_triggers(_scores(), p_alive_below=1.5)
    with pytest.raises(InputError, match="'overdue_factor'"):
        churn_triggers(_scores(), overdue_factor=0)
    with pytest.raises(DataValidationError, match="'days_since_last_order'"):
        churn_triggers(_scores().drop(columns="days_since_last_order"))


# --------------------------------------------------------------------------- contact plan


def test_contact_plan_rates_by_tier_with_a_cap():
    scores = _scores()
    tiers = pd.Series(["top", "high", "medium", "low", "low", "top"], index=scores.index)
    plan = contact_plan(scores, tiers)
    assert plan["messages_per_week"].tolist() == [2, 1, 0.5, 0.25, 0.25, 2]
    assert plan.loc["c", "days_between_messages"] == 14
    assert not plan["capped"].any()
    capped = contact_plan(scores, tiers, max_per_week=1)
    assert capped["messages_per_week"].tolist() == [1, 1, 0.5, 0.25, 0.25, 1]
    assert capped["capped"].tolist() == [True, False, False, False, False, True]
    none = contact_plan(scores, tiers, per_tier={"top": 1, "high": 1, "medium": 0, "low": 0})
    assert np.isnan(none.loc["d", "days_between_messages"])


def test_contact_plan_errors():
    scores = _scores()
    tiers = pd.Series(["top"] * 6, index=scores.index)
    with pytest.raises(InputError, match="The 'max_per_week' parameter of contact_plan"):
        contact_plan(scores, tiers, max_per_week=0)
    with pytest.raises(InputError, match="The 'per_tier' parameter"):
        contact_plan(scores, tiers, per_tier={"top": -1})
    with pytest.raises(DataValidationError, match="'top' have no rate"):
        contact_plan(scores, tiers, per_tier={"low": 1})
    with pytest.raises(DataValidationError, match="Found 1 without one"):
        contact_plan(scores, tiers.iloc[:5])
