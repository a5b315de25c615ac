"""sBG: the published retention fits, identities of the curves, DEL/DERL against their series,
simulation, input checks and persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import betaln, hyp2f1, logsumexp

from lifevalue.errors import DataValidationError, InputError, NotFittedError
from lifevalue.models._special import log_discounted_beta_sum
from lifevalue.models.base import BaseModel, load_model
from lifevalue.models.sbg import ShiftedBetaGeometricModel
from lifevalue.units import period_discount_rate

# Fader & Hardie (2007), "How to project customer retention", Table 1: of 1,000 customers
# acquired at the start, the number still active after years 1..7, two segments.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]
# Their estimates from years 1-7 (section "Estimating model parameters").
PUBLISHED = {
    "regular": (REGULAR, {"alpha": 0.704, "beta": 1.182}),
    "high_end": (HIGH_END, {"alpha": 0.668, "beta": 3.806}),
}


@pytest.fixture(scope="module")
def regular() -> ShiftedBetaGeometricModel:
    return ShiftedBetaGeometricModel().fit_survival(REGULAR, time_unit="years")


def model_at(alpha: float, beta: float, unit: str = "years") -> ShiftedBetaGeometricModel:
    """A 'fitted' model at given parameters (small covariance), through the public loader."""
    payload = {
        "model": "sbg",
        "params": {"alpha": alpha, "beta": beta},
        "log_params": [math.log(alpha), math.log(beta)],
        "covariance_log": (np.eye(2) * 1e-4).tolist(),
        "log_likelihood": 0.0,
        "n_customers": 1.0,
        "time_unit": unit,
        "converged": True,
    }
    model = BaseModel.from_dict(payload)
    assert isinstance(model, ShiftedBetaGeometricModel)
    return model


def active(tenure: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"tenure": tenure})


# ------------------------------------------------------------------ published results


@pytest.mark.parametrize("segment", sorted(PUBLISHED))
def test_reproduces_the_published_segment_fits(segment: str) -> None:
    counts, expected = PUBLISHED[segment]
    model = ShiftedBetaGeometricModel().fit_survival(counts, time_unit="years")
    for name, value in expected.items():
        assert model.params_[name] == pytest.approx(value, abs=0.005), name
    assert model.converged_
    assert model.n_customers_ == 1000
    # The fitted curve tracks the observed one over the calibration years (their Figure 3),
    # within two percentage points.
    observed = np.array(counts) / 1000
    np.testing.assert_allclose(model.survival_function(range(8)), observed, atol=0.02)


def test_log_likelihood_follows_the_recursions_of_the_paper(
    regular: ShiftedBetaGeometricModel,
) -> None:
    # Fader & Hardie (2007): P(T=1) = alpha/(alpha+beta), P(T=t) = (beta+t-2)/(alpha+beta+t-1)
    # P(T=t-1), S(t) = S(t-1) - P(T=t); LL = sum of lost(t) log P(T=t) + active(7) log S(7).
    a, b = regular.params_["alpha"], regular.params_["beta"]
    p = a / (a + b)
    survival = 1 - p
    ll = (REGULAR[0] - REGULAR[1]) * math.log(p)
    for t in range(2, 8):
        p *= (b + t - 2) / (a + b + t - 1)
        survival -= p
        ll += (REGULAR[t - 1] - REGULAR[t]) * math.log(p)
    ll += REGULAR[7] * math.log(survival)
    assert regular.log_likelihood_ == pytest.approx(ll, rel=1e-12)


def test_survival_frame_turns_counts_into_tenures() -> None:
    table = ShiftedBetaGeometricModel.survival_frame([100, 60, 60, 25])
    expected = pd.DataFrame(
        {
            "tenure": [1, 3, 3],
            "churned": [True, True, False],
            "weights": [40.0, 35.0, 25.0],
        }
    )
    pd.testing.assert_frame_equal(table, expected)


@pytest.mark.parametrize(
    "counts",
    [[1000], [1000, 1200], [1000, -5], [1000, 600.5], [0, 0], [1000, float("nan")]],
)
def test_survival_frame_rejects_impossible_counts(counts: list[float]) -> None:
    with pytest.raises(DataValidationError) as info:
        ShiftedBetaGeometricModel.survival_frame(counts)
    assert info.value.rule == "survival_counts"


# ------------------------------------------------------------------ likelihood


def test_gradient_matches_finite_differences() -> None:
    data = {
        "tenure": np.array([1.0, 2.0, 7.0, 7.0, 40.0, 0.0]),
        "churned": np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]),
    }
    model = ShiftedBetaGeometricModel()
    for alpha, beta in ((0.704, 1.182), (5.0, 0.2), (0.05, 30.0)):
        params = {"alpha": alpha, "beta": beta}
        grad = model._log_likelihood_gradient(params, data)
        for j, name in enumerate(("alpha", "beta")):
            h = 1e-6 * params[name]
            up = model._log_likelihood({**params, name: params[name] + h}, data)
            down = model._log_likelihood({**params, name: params[name] - h}, data)
            np.testing.assert_allclose(grad[j], (up - down) / (2 * h), rtol=1e-6, atol=1e-9)


def test_individual_data_fit_equals_the_cohort_fit(regular: ShiftedBetaGeometricModel) -> None:
    table = ShiftedBetaGeometricModel.survival_frame(REGULAR)
    rows = table.loc[table.index.repeat(table["weights"].astype(int))].drop(columns="weights")
    rows["churned"] = rows["churned"].astype(int)  # 0/1 as well as bool
    model = ShiftedBetaGeometricModel().fit(rows.reset_index(drop=True), time_unit="years")
    assert model.params_["alpha"] == pytest.approx(regular.params_["alpha"], rel=1e-6)
    assert model.params_["beta"] == pytest.approx(regular.params_["beta"], rel=1e-6)
    assert model.log_likelihood_ == pytest.approx(regular.log_likelihood_, rel=1e-10)


def test_recovers_simulated_parameters_within_their_intervals() -> None:
    truth = {"alpha": 1.4, "beta": 3.0}
    rng = np.random.default_rng(7)
    n = 20_000
    theta = rng.beta(truth["alpha"], truth["beta"], n)
    lifetime = rng.geometric(theta)  # the period in which each customer churns
    observed = rng.integers(2, 13, n)  # cohorts acquired 2 to 12 periods ago
    data = pd.DataFrame({"tenure": np.minimum(lifetime, observed), "churned": lifetime <= observed})
    model = ShiftedBetaGeometricModel().fit(data, time_unit="months")
    intervals = model.confidence_intervals(0.95)
    for name, value in truth.items():
        assert intervals.loc[name, "lower"] <= value <= intervals.loc[name, "upper"], name


# ------------------------------------------------------------------ curves


@settings(max_examples=60, deadline=None)
@given(alpha=st.floats(0.05, 30.0), beta=st.floats(0.05, 30.0))
def test_curves_are_consistent_and_monotone(alpha: float, beta: float) -> None:
    model = model_at(alpha, beta)
    t = np.arange(0, 61)
    survival = model.survival_function(t).to_numpy()
    retention = model.retention_rate(t[1:]).to_numpy()
    churn = model.churn_probability(t[1:]).to_numpy()
    assert survival[0] == 1.0
    assert np.all((survival > 0) & (survival <= 1))
    assert np.all(np.diff(survival) < 0)
    assert np.all(np.diff(retention) >= 0)  # the riskiest customers leave first
    np.testing.assert_allclose(survival[1:], np.cumprod(retention), rtol=1e-10)
    np.testing.assert_allclose(churn, -np.diff(survival), rtol=1e-8, atol=1e-15)


def test_curves_are_indexed_by_period(regular: ShiftedBetaGeometricModel) -> None:
    curve = regular.survival_function([0, 1, 5])
    assert curve.index.name == "t"
    assert list(curve.index) == [0, 1, 5]
    assert curve.name == "survival"
    a, b = regular.params_["alpha"], regular.params_["beta"]
    assert regular.retention_rate(3).iloc[0] == pytest.approx((b + 2) / (a + b + 2))


def test_curve_intervals_contain_the_estimate(regular: ShiftedBetaGeometricModel) -> None:
    for method in ("normal", "delta"):
        band = regular.survival_function_interval(np.arange(0, 13), n_draws=400, method=method)
        assert list(band.columns) == ["survival", "survival_low", "survival_high"]
        assert np.all(band["survival_low"] <= band["survival"] + 1e-12)
        assert np.all(band["survival"] <= band["survival_high"] + 1e-12)
        # Relatively wider the further the projection reaches beyond the data.
        width = (band["survival_high"] - band["survival_low"]).to_numpy()
        relative = width / band["survival"].to_numpy()
        assert width[0] == 0.0 and relative[12] > relative[7] > relative[1] > 0
    retention = regular.retention_rate_interval([1, 10], n_draws=200, method="normal")
    assert np.all(retention["retention_rate_low"] <= retention["retention_rate_high"])


@pytest.mark.parametrize("bad", [[-1], [1.5], [float("nan")], [[1, 2]]])
def test_curves_need_whole_periods(regular: ShiftedBetaGeometricModel, bad: list[float]) -> None:
    with pytest.raises(InputError, match="whole numbers"):
        regular.survival_function(bad)
    with pytest.raises(InputError, match=">= 1"):
        regular.retention_rate([0])


# ------------------------------------------------------------------ lifetime values


def test_del_and_derl_are_their_discounted_series(regular: ShiftedBetaGeometricModel) -> None:
    a, b = regular.params_["alpha"], regular.params_["beta"]
    d = 0.1
    k = np.arange(0, 2000)
    series = np.exp(betaln(a, b + k) - betaln(a, b) - k * math.log1p(d))
    value = regular.discounted_expected_lifetime(annual_discount_rate=0.1)
    assert value == pytest.approx(series.sum(), rel=1e-10)
    # Fader & Hardie (2010): DEL = 2F1(1, beta; alpha + beta; 1 / (1 + d)).
    assert value == pytest.approx(hyp2f1(1, b, a + b, 1 / 1.1), rel=1e-12)
    renewals = [0, 1, 4, 7, 50]
    derl = regular.discounted_expected_residual_lifetime(active(renewals), annual_discount_rate=d)
    for n_minus_1, got in zip(renewals, derl, strict=True):
        # Survival beyond the n - 1 renewals made, payment at n undiscounted.
        s = np.arange(0, 2000)
        terms = betaln(a, b + n_minus_1 + 1 + s) - betaln(a, b + n_minus_1) - s * math.log1p(d)
        assert got == pytest.approx(math.exp(logsumexp(terms)), rel=1e-10), n_minus_1
    # A new customer pays now, and afterwards what a customer with no renewal yet would.
    assert value == pytest.approx(1 + derl.iloc[0] / (1 + d), rel=1e-12)


def test_derl_rises_with_tenure_and_falls_with_the_discount_rate(
    regular: ShiftedBetaGeometricModel,
) -> None:
    customers = active(list(range(0, 30)))
    low = regular.discounted_expected_residual_lifetime(customers, annual_discount_rate=0.05)
    high = regular.discounted_expected_residual_lifetime(customers, annual_discount_rate=0.2)
    assert np.all(np.diff(low) > 0)
    assert np.all(high < low)


def test_remaining_lifetime_is_the_undiscounted_derl() -> None:
    model = model_at(3.0, 5.0)
    customers = active([0, 2, 10])
    remaining = model.expected_remaining_lifetime(customers)
    np.testing.assert_allclose(remaining, (5.0 + np.array([0, 2, 10])) / 2.0)
    undiscounted = model.discounted_expected_residual_lifetime(customers, annual_discount_rate=0)
    np.testing.assert_allclose(undiscounted, remaining, rtol=1e-12)
    assert model.expected_lifetime() == pytest.approx((3.0 + 5.0 - 1) / 2.0)
    assert model.discounted_expected_lifetime(annual_discount_rate=0) == pytest.approx(3.5)
    # With alpha <= 1 the mean lifetime is infinite (Fader & Hardie 2007, regular segment).
    heavy = model_at(0.7, 1.2)
    assert heavy.expected_lifetime() == math.inf
    assert np.all(np.isinf(heavy.expected_remaining_lifetime(customers)))


def test_derl_uses_the_period_rate_of_the_models_unit() -> None:
    yearly = model_at(1.5, 4.0, unit="years")
    monthly = model_at(1.5, 4.0, unit="months")
    customers = active([3])
    d = period_discount_rate(0.1, "months")
    a, b = 1.5, 4.0
    s = np.arange(0, 20_000)
    terms = betaln(a, b + 4 + s) - betaln(a, b + 3) - s * math.log1p(d)
    got = monthly.discounted_expected_residual_lifetime(customers, annual_discount_rate=0.1)
    assert got.iloc[0] == pytest.approx(math.exp(logsumexp(terms)), rel=1e-10)
    assert (
        got.iloc[0]
        > yearly.discounted_expected_residual_lifetime(customers, annual_discount_rate=0.1).iloc[0]
    )


@pytest.mark.parametrize("a", [0.05, 0.7, 1.0, 2.5, 12.0])
@pytest.mark.parametrize("b", [0.1, 3.0, 600.0, 10_000.0])
@pytest.mark.parametrize("d", [1.8e-4, 1.8e-3, 0.1])
def test_discounted_beta_sum_matches_its_series(a: float, b: float, d: float) -> None:
    # Covers both the hyp2f1 path and its quadrature fallback (large b, small d).
    k = np.arange(0, int(50 / math.log1p(d)))
    expected = logsumexp(betaln(a, b + k) - k * math.log1p(d))
    assert float(log_discounted_beta_sum(a, b, d)) == pytest.approx(expected, abs=1e-8)


def test_discounted_beta_sum_broadcasts_parameter_draws() -> None:
    a = np.array([[0.5], [1.5], [3.0]])
    b = np.array([2.0, 800.0, 20_000.0])
    got = log_discounted_beta_sum(a, b, 1e-3)
    assert got.shape == (3, 3)
    for i in range(3):
        for j in range(3):
            single = float(log_discounted_beta_sum(a[i, 0], b[j], 1e-3))
            assert got[i, j] == pytest.approx(single, abs=1e-9)
    assert np.all(np.isinf(log_discounted_beta_sum(np.array([0.5, 1.0]), 3.0, 0.0)))


def test_derl_interval_contains_the_estimate(regular: ShiftedBetaGeometricModel) -> None:
    band = regular.discounted_expected_residual_lifetime_interval(
        active([0, 5, 20]), annual_discount_rate=0.1, n_draws=300, method="normal"
    )
    assert list(band.columns) == ["derl", "derl_low", "derl_high"]
    assert np.all(band["derl_low"] < band["derl"]) and np.all(band["derl"] < band["derl_high"])


# ------------------------------------------------------------------ input checks


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"tenure": np.nan}, "tenure_finite"),
        ({"tenure": -1.0}, "tenure_non_negative"),
        ({"tenure": 2.5}, "tenure_integer"),
        ({"churned": 2.0}, "churned_binary"),
        ({"tenure": 0.0, "churned": 1.0}, "tenure_positive_when_churned"),
    ],
)
def test_invalid_rows_are_rejected_with_their_rule(change: dict[str, float], rule: str) -> None:
    data = pd.DataFrame({"tenure": [1.0, 3.0, 4.0, 5.0], "churned": [1.0, 1.0, 0.0, 0.0]})
    for column, value in change.items():
        data.loc[2, column] = value
    with pytest.raises(DataValidationError) as info:
        ShiftedBetaGeometricModel().fit(data, time_unit="years")
    assert info.value.rule == rule
    assert info.value.rows == [2]


@pytest.mark.parametrize(
    ("tenure", "churned", "rule"),
    [([3, 5], [False, False], "no_churn"), ([1, 1, 1], [True, False, True], "one_period")],
)
def test_data_that_cannot_identify_the_model_are_rejected(
    tenure: list[int], churned: list[bool], rule: str
) -> None:
    data = pd.DataFrame({"tenure": tenure, "churned": churned})
    with pytest.raises(DataValidationError) as info:
        ShiftedBetaGeometricModel().fit(data, time_unit="years")
    assert info.value.rule == rule


def test_predictions_reject_bad_tenures(regular: ShiftedBetaGeometricModel) -> None:
    with pytest.raises(DataValidationError) as info:
        regular.discounted_expected_residual_lifetime(active([2, -1]), annual_discount_rate=0.1)
    assert info.value.rule == "tenure_non_negative"
    with pytest.raises(DataValidationError, match="tenure"):
        regular.expected_remaining_lifetime(pd.DataFrame({"renewals": [2]}))


def test_unfitted_model_refuses_to_predict() -> None:
    model = ShiftedBetaGeometricModel()
    with pytest.raises(NotFittedError):
        model.survival_function([1, 2])
    with pytest.raises(NotFittedError):
        model.discounted_expected_lifetime(annual_discount_rate=0.1)


# ------------------------------------------------------------------ persistence


def test_save_and_load_round_trip(regular: ShiftedBetaGeometricModel, tmp_path: object) -> None:
    restored = BaseModel.from_dict(json.loads(json.dumps(regular.to_dict())))
    assert isinstance(restored, ShiftedBetaGeometricModel)
    assert restored.params_ == regular.params_
    pd.testing.assert_series_equal(
        restored.survival_function(range(13)), regular.survival_function(range(13))
    )
    loaded = load_model(regular.save(tmp_path / "sbg.json"))  # type: ignore[operator]
    assert loaded.discounted_expected_lifetime(  # type: ignore[attr-defined]
        annual_discount_rate=0.1
    ) == regular.discounted_expected_lifetime(annual_discount_rate=0.1)
