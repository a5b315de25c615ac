"""BG/NBD: the published CDNOW results, holdout behaviour, properties and robustness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lifevalue.data import datasets
from lifevalue.data.simulate import simulate_summary
from lifevalue.errors import DataValidationError, NotFittedError
from lifevalue.models import BaseModel, BetaGeoModel
from lifevalue.models.base import _numerical_gradient

# Fader, Hardie & Lee (2005), section 4: the CDNOW sample in weeks.
PUBLISHED = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return datasets.load_cdnow_reference_summary()


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> BetaGeoModel:
    return BetaGeoModel().fit(cdnow, time_unit="weeks")


@pytest.fixture(scope="module")
def holdout(cdnow_holdout) -> pd.DataFrame:
    return cdnow_holdout.to_pandas()


def test_reproduces_the_published_cdnow_fit(fitted: BetaGeoModel) -> None:
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-4), name
    assert fitted.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)
    assert fitted.converged_
    assert fitted.n_customers_ == 2357


def test_published_conditional_expectation(fitted: BetaGeoModel) -> None:
    one = pd.DataFrame({"frequency": [2], "recency": [30.43], "T": [38.86]})
    one.attrs["lifevalue"] = {"time_unit": "weeks"}
    assert fitted.expected_purchases(one, future_t=39).iloc[0] == pytest.approx(1.226, abs=5e-4)


def test_standard_errors_match_a_numerical_hessian_of_the_natural_parameters(
    fitted: BetaGeoModel, cdnow: pd.DataFrame
) -> None:
    data = {k: cdnow[k].to_numpy(float) for k in ("frequency", "recency", "T")}
    names = BetaGeoModel.param_names

    def nll(p: np.ndarray) -> float:
        return -float(BetaGeoModel._log_likelihood(dict(zip(names, p, strict=True)), data).sum())

    p0 = np.array([fitted.params_[n] for n in names])
    h = p0 * 1e-4
    k = len(p0)
    hess = np.empty((k, k))
    for i in range(k):
        for j in range(k):
            ei, ej = np.eye(k)[i] * h[i], np.eye(k)[j] * h[j]
            hess[i, j] = (
                nll(p0 + ei + ej) - nll(p0 + ei - ej) - nll(p0 - ei + ej) + nll(p0 - ei - ej)
            ) / (4 * h[i] * h[j])
    expected = np.sqrt(np.diag(np.linalg.inv(hess)))
    got = np.array([fitted.std_errors_[n] for n in names])
    np.testing.assert_allclose(got, expected, rtol=1e-3)


def test_analytic_gradient_matches_finite_differences(cdnow: pd.DataFrame) -> None:
    model = BetaGeoModel(penalizer=0.01)
    data = {k: cdnow[k].to_numpy(float) for k in ("frequency", "recency", "T")}
    value, both = model._objective(data, np.ones(len(cdnow)))
    for theta in (np.log([0.3, 5.0, 0.7, 2.0]), np.log([2.0, 0.5, 3.0, 0.2])):
        f, g = both(theta)
        assert f == pytest.approx(value(theta), rel=1e-12)
        np.testing.assert_allclose(g, _numerical_gradient(value, theta), rtol=1e-5)


@pytest.mark.parametrize("theta", [np.log([0.3, 5.0, 0.7, 2.0]), np.log([2.0, 0.5, 3.0, 0.2])])
def test_exact_hessian_matches_differences_of_the_gradient(
    cdnow: pd.DataFrame, theta: np.ndarray
) -> None:
    model = BetaGeoModel(penalizer=0.01)
    data = {k: cdnow[k].to_numpy(float) for k in ("frequency", "recency", "T")}
    counts = np.arange(len(cdnow)) % 3 + 1.0  # unequal weights
    fgh = model._derivatives(dict(data), counts)
    value, _ = model._objective(dict(data), counts)
    f, g, hess = fgh(theta, True)
    assert f == pytest.approx(value(theta), rel=1e-13)
    np.testing.assert_allclose(g, _numerical_gradient(value, theta), rtol=1e-6, atol=1e-9)
    h = 1e-5
    eye = np.eye(4) * h
    numerical = np.array(
        [(fgh(theta + e, False)[1] - fgh(theta - e, False)[1]) / (2 * h) for e in eye]
    )
    np.testing.assert_allclose(hess, numerical, rtol=1e-6, atol=1e-9)


def test_newton_and_quasi_newton_fits_agree_when_the_starts_use_a_sample() -> None:
    # 60,000 customers with continuous times: more patterns than the starts take, so they
    # explore a sample and the full data are reached from its optimum.
    truth = {"r": 0.8, "alpha": 6.0, "a": 0.6, "b": 3.0}
    data = simulate_summary(n_customers=60_000, model="bgnbd", params=truth, T=(20, 80), seed=3)

    class QuasiNewton(BetaGeoModel):
        def _has_analytic_hessian(self) -> bool:
            return False

    newton = BetaGeoModel().fit(data)
    quasi = QuasiNewton().fit(data)
    assert newton.n_patterns_ == 60_000
    assert newton.optimizer_["gradient_max"] < 1e-8
    for name in truth:
        assert newton.params_[name] == pytest.approx(quasi.params_[name], rel=1e-6), name
        assert newton.std_errors_[name] == pytest.approx(quasi.std_errors_[name], rel=1e-4), name
    assert newton.log_likelihood_ == pytest.approx(quasi.log_likelihood_, abs=1e-6)


def test_holdout_tracking_and_correlation_match_the_paper(holdout: pd.DataFrame) -> None:
    model = BetaGeoModel().fit(holdout)
    # Cumulative repeat purchases to week 78: each customer's expectation since their first.
    predicted = model.expected_purchases_new_customer(t=holdout["T"].to_numpy() + 39).sum()
    actual = holdout["frequency"].sum() + holdout["frequency_holdout"].sum()
    assert actual == 4339
    assert predicted == pytest.approx(4166, rel=0.005)
    assert predicted / actual - 1 == pytest.approx(-0.04, abs=0.005)
    expected = model.expected_purchases(holdout, future_t=39)
    correlation = np.corrcoef(expected, holdout["frequency_holdout"])[0, 1]
    assert correlation == pytest.approx(0.63, abs=0.01)


def test_pmf_sums_to_one_and_its_mean_is_the_expectation(fitted: BetaGeoModel) -> None:
    k = np.arange(400)
    for t in (1.0, 39.0, 78.0):
        pmf = fitted.probability_of_purchases(k, t=t)
        assert np.all((pmf >= 0) & (pmf <= 1))
        assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
        assert (k * pmf).sum() == pytest.approx(fitted.expected_purchases_new_customer(t=t))


customers = st.tuples(
    st.integers(0, 300),
    st.floats(0.0, 1.0),
    st.floats(0.01, 5000.0),
).map(lambda v: (v[0], 0.0 if v[0] == 0 else max(v[1], 1e-3) * v[2], v[2]))


@settings(max_examples=150, deadline=None)
@given(customer=customers, t1=st.floats(0.1, 500.0), extra=st.floats(0.1, 500.0))
def test_probabilities_bounded_and_expectations_increase_with_the_horizon(
    fitted: BetaGeoModel, customer: tuple[int, float, float], t1: float, extra: float
) -> None:
    frame = pd.DataFrame([customer], columns=["frequency", "recency", "T"])
    frame.attrs["lifevalue"] = {"time_unit": "weeks"}
    p_alive = fitted.probability_alive(frame).iloc[0]
    assert 0.0 <= p_alive <= 1.0
    near = fitted.expected_purchases(frame, future_t=t1).iloc[0]
    far = fitted.expected_purchases(frame, future_t=t1 + extra).iloc[0]
    assert np.isfinite(near) and 0.0 <= near <= far


def test_extreme_customers_give_finite_answers(fitted: BetaGeoModel) -> None:
    frame = pd.DataFrame(
        {
            "frequency": [221, 0, 50, 1],
            "recency": [103.43, 0, 1e4, 1e-6],
            "T": [103.57, 1e5, 1e4, 1e5],
        }
    )
    frame.attrs["lifevalue"] = {"time_unit": "weeks"}
    ll = BetaGeoModel._log_likelihood(fitted.params_, {k: frame[k].to_numpy(float) for k in frame})
    assert np.all(np.isfinite(ll))
    expected = fitted.expected_purchases(frame, future_t=52)
    alive = fitted.probability_alive(frame)
    assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    assert expected.iloc[0] > 50  # a heavy, recent buyer keeps buying
    assert alive.iloc[3] < 0.01  # one purchase long ago: almost surely gone


def test_recovers_simulated_parameters_within_their_intervals() -> None:
    truth = {"r": 0.8, "alpha": 6.0, "a": 0.6, "b": 3.0}
    data = simulate_summary(n_customers=30_000, model="bgnbd", params=truth, T=(20, 80), seed=7)
    model = BetaGeoModel().fit(data)
    intervals = model.confidence_intervals(0.95)
    for name, value in truth.items():
        assert intervals.loc[name, "lower"] <= value <= intervals.loc[name, "upper"], name
    assert model.n_patterns_ == len(data)  # continuous recency: every pattern is distinct


def test_weights_fit_equals_fit_on_repeated_rows(cdnow: pd.DataFrame) -> None:
    patterns = cdnow.groupby(["frequency", "recency", "T"]).size().rename("weights").reset_index()
    by_weight = BetaGeoModel().fit(patterns, time_unit="weeks")
    assert by_weight.n_customers_ == 2357
    assert by_weight.params_["r"] == pytest.approx(PUBLISHED["r"], rel=1e-4)


def test_intervals_contain_the_estimate_and_widen_with_the_level(
    fitted: BetaGeoModel, cdnow: pd.DataFrame
) -> None:
    narrow = fitted.expected_purchases_interval(cdnow, future_t=39, level=0.5, n_draws=300)
    wide = fitted.expected_purchases_interval(cdnow, future_t=39, level=0.95, n_draws=300)
    est = narrow["expected_purchases"]
    assert np.all(narrow["expected_purchases_low"] <= est + 1e-9)
    assert np.all(est <= narrow["expected_purchases_high"] + 1e-9)
    assert np.all(wide["expected_purchases_low"] <= narrow["expected_purchases_low"] + 1e-12)
    assert np.all(wide["expected_purchases_high"] >= narrow["expected_purchases_high"] - 1e-12)
    assert (wide["expected_purchases_high"] - wide["expected_purchases_low"]).min() > 0


def test_bootstrap_intervals_after_bootstrap(fitted: BetaGeoModel, cdnow: pd.DataFrame) -> None:
    model = BetaGeoModel().fit(cdnow, time_unit="weeks").bootstrap(cdnow, n_boot=20)
    assert model.bootstrap_log_params_.shape == (20, 4)
    band = model.expected_purchases_interval(
        cdnow.head(50), future_t=39, method="bootstrap", n_draws=200
    )
    assert np.all(band["expected_purchases_low"] <= band["expected_purchases_high"])
    restored = BaseModel.from_dict(model.to_dict())
    np.testing.assert_array_equal(restored.bootstrap_log_params_, model.bootstrap_log_params_)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"frequency": [np.nan]}, "frequency_finite"),
        ({"recency": [-1.0]}, "recency_non_negative"),
        ({"recency": [50.0]}, "recency_le_T"),
        ({"frequency": [1.5]}, "frequency_integer"),
    ],
)
def test_invalid_summaries_name_the_rule_and_rows(
    cdnow: pd.DataFrame, change: dict[str, list[float]], rule: str
) -> None:
    bad = cdnow.astype({"frequency": float})
    for column, values in change.items():
        bad.loc[[17], column] = values
    with pytest.raises(DataValidationError) as info:
        BetaGeoModel().fit(bad, time_unit="weeks")
    assert info.value.rule == rule
    assert info.value.rows == [17]
    assert "17" in str(info.value)


def test_every_broken_rule_is_reported_at_once(cdnow: pd.DataFrame) -> None:
    bad = cdnow.copy()
    bad.loc[3, "recency"] = 99.0
    bad.loc[5, "frequency"] = -2
    with pytest.raises(DataValidationError, match=r"(?s)frequency_non_negative.*recency_le_T"):
        BetaGeoModel().fit(bad, time_unit="weeks")


def test_no_repeat_buyers_is_an_error(cdnow: pd.DataFrame) -> None:
    none = cdnow.assign(frequency=0, recency=0.0)
    with pytest.raises(DataValidationError, match="repeat purchases") as info:
        BetaGeoModel().fit(none, time_unit="weeks")
    assert info.value.rule == "no_repeat_buyers"


def test_unknown_unit_and_unit_mismatch_are_errors(
    fitted: BetaGeoModel, cdnow: pd.DataFrame
) -> None:
    with pytest.raises(DataValidationError, match="time unit"):
        BetaGeoModel().fit(cdnow)
    in_days = cdnow.copy()
    in_days.attrs["lifevalue"] = {"time_unit": "days"}
    with pytest.raises(DataValidationError, match="fitted in weeks"):
        fitted.expected_purchases(in_days, future_t=1)


def test_unfitted_and_bad_settings(cdnow: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        BetaGeoModel().probability_alive(cdnow)
    with pytest.raises(ValueError, match=r"'penalizer' parameter of BetaGeoModel must be >= 0"):
        BetaGeoModel(penalizer=-1).fit(cdnow, time_unit="weeks")
