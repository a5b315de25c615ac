"""Gamma-Gamma: the published CDNOW fit, the density and posterior mean against independent
computations, simulation, input checks and persistence."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from lifevalue.data import datasets
from lifevalue.errors import DataValidationError, NotFittedError
from lifevalue.models.base import BaseModel, load_model
from lifevalue.models.gamma_gamma import GammaGammaModel

# Fader & Hardie (2013), "The Gamma-Gamma model of monetary value": the 946 CDNOW sample
# customers with repeat purchases in the 39-week calibration period. Parameters are
# published to two decimals; the log-likelihood includes every constant term.
PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}
PUBLISHED_LL = -4055.92
REPEAT_BUYERS = 946


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return datasets.load_cdnow_reference_summary().set_index("ID")


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> GammaGammaModel:
    return GammaGammaModel().fit(cdnow, time_unit="weeks")


def spend(x: list[float], z: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"frequency": x, "monetary_value": z}, dtype=float)


# ------------------------------------------------------------------ published results


def test_reproduces_the_published_cdnow_fit(fitted: GammaGammaModel) -> None:
    # q = 3.7446 is published as 3.74 and gamma = 15.448 as 15.44: relative gaps of
    # 1.2e-3 and 5e-4, from rounding and the spreadsheet solver's stopping point.
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1.5e-3), name
    assert fitted.log_likelihood_ == pytest.approx(PUBLISHED_LL, abs=0.01)
    assert fitted.n_customers_ == REPEAT_BUYERS
    assert fitted.converged_


def test_customers_without_repeat_purchases_are_left_out_and_logged(
    cdnow: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="lifevalue.models.gamma_gamma"):
        model = GammaGammaModel().fit(cdnow, time_unit="weeks")
    assert model.n_customers_ == REPEAT_BUYERS
    assert any("1411 of 2357 rows" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ likelihood


def test_density_is_the_scaled_beta_prime_of_the_mean() -> None:
    # Given nu, the mean of x Gamma(p, nu) values is Gamma(p x, nu x); over nu ~ Gamma(q,
    # gamma) that makes x zbar / gamma beta-prime(p x, q).
    params = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    x = np.array([1.0, 2.0, 5.0, 21.0, 1.0])
    z = np.array([22.35, 11.77, 0.5, 300.0, 1e-3])
    got = GammaGammaModel._log_likelihood(params, {"frequency": x, "monetary_value": z})
    expected = stats.betaprime(6.25 * x, 3.74, scale=15.44 / x).logpdf(z)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("x", [1, 3, 12])
def test_density_integrates_to_one(x: int) -> None:
    params = {"p": 2.5, "q": 4.0, "gamma": 30.0}

    def density(z: float) -> float:
        data = {"frequency": np.array([float(x)]), "monetary_value": np.array([z])}
        return float(np.exp(GammaGammaModel._log_likelihood(params, data))[0])

    total, _ = integrate.quad(density, 0, np.inf, limit=200)
    assert total == pytest.approx(1.0, abs=1e-8)


def test_gradient_matches_finite_differences(cdnow: pd.DataFrame) -> None:
    rows = cdnow[cdnow["frequency"] > 0]
    data = {k: rows[k].to_numpy(float) for k in ("frequency", "monetary_value")}
    model = GammaGammaModel()
    for values in ((6.25, 3.74, 15.44), (0.5, 1.5, 200.0), (30.0, 12.0, 2.0)):
        params = dict(zip(GammaGammaModel.param_names, values, strict=True))
        grad = model._log_likelihood_gradient(params, data)
        for j, name in enumerate(GammaGammaModel.param_names):
            h = 1e-6 * params[name]
            up = model._log_likelihood({**params, name: params[name] + h}, data)
            down = model._log_likelihood({**params, name: params[name] - h}, data)
            np.testing.assert_allclose(grad[j], (up - down) / (2 * h), rtol=1e-5, atol=1e-8)


def test_recovers_simulated_parameters_within_their_intervals() -> None:
    truth = {"p": 4.0, "q": 3.0, "gamma": 60.0}
    rng = np.random.default_rng(5)
    n = 8_000
    nu = rng.gamma(truth["q"], 1 / truth["gamma"], n)  # rate nu, across customers
    x = 1 + rng.poisson(2.0, n)
    # The mean of x Gamma(p, nu) values is Gamma(p x, rate nu x).
    zbar = rng.gamma(truth["p"] * x, 1 / (nu * x))
    data = pd.DataFrame({"frequency": x, "monetary_value": zbar})
    model = GammaGammaModel().fit(data, time_unit="weeks")
    intervals = model.confidence_intervals(0.95)
    for name, value in truth.items():
        assert intervals.loc[name, "lower"] <= value <= intervals.loc[name, "upper"], name


# ------------------------------------------------------------------ predictions


def test_conditional_spend_is_the_posterior_mean(fitted: GammaGammaModel) -> None:
    # E[p / nu | x, zbar], integrating nu against prior x likelihood numerically.
    p, q, g = (fitted.params_[k] for k in ("p", "q", "gamma"))
    customers = spend([2, 1, 7], [22.35, 11.77, 81.0])
    got = fitted.conditional_expected_spend(customers).to_numpy()
    for (x, z), value in zip(customers.to_numpy(), got, strict=True):
        assert value == pytest.approx(posterior_mean_spend(p, q, g, x, z), rel=1e-7)


def posterior_mean_spend(p: float, q: float, g: float, x: float, z: float) -> float:
    """E[p / nu | x, zbar] by numerical integration over nu, densities written out."""

    def log_weight(nu: float) -> float:
        prior = q * math.log(g) + (q - 1) * math.log(nu) - g * nu - math.lgamma(q)
        rate = nu * x
        own = p * x * math.log(rate) + (p * x - 1) * math.log(z) - rate * z
        return prior + own - math.lgamma(p * x)

    top = max(log_weight(nu) for nu in np.geomspace(1e-6, 1e3, 2000))
    evidence, _ = integrate.quad(lambda nu: math.exp(log_weight(nu) - top), 0, np.inf)
    mean, _ = integrate.quad(lambda nu: p / nu * math.exp(log_weight(nu) - top), 0, np.inf)
    return mean / evidence


def test_conditional_spend_of_published_customers(fitted: GammaGammaModel) -> None:
    p, q, g = (fitted.params_[k] for k in ("p", "q", "gamma"))
    mean = p * g / (q - 1)
    assert fitted.population_mean_spend() == pytest.approx(mean)
    assert mean == pytest.approx(35.17, abs=0.01)
    customers = spend([2, 0, 0], [22.35, 0.0, 55.0])
    got = fitted.conditional_expected_spend(customers)
    # A weighted mean of the population mean and the customer's own mean (Fader & Hardie 2013).
    w = (q - 1) / (p * 2 + q - 1)
    assert got.iloc[0] == pytest.approx(w * mean + (1 - w) * 22.35, rel=1e-12)
    assert got.iloc[0] == pytest.approx(24.66, abs=0.005)
    # Without repeat purchases: the population mean, whatever monetary_value says.
    assert got.iloc[1] == got.iloc[2] == pytest.approx(mean, rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(x=st.integers(1, 500), z=st.floats(0.01, 1e5), more=st.floats(0.01, 100.0))
def test_conditional_spend_lies_between_own_and_population_mean(
    fitted: GammaGammaModel, x: int, z: float, more: float
) -> None:
    mean = fitted.population_mean_spend()
    values = fitted.conditional_expected_spend(spend([x, x], [z, z + more])).to_numpy()
    assert min(z, mean) - 1e-9 <= values[0] <= max(z, mean) + 1e-9
    assert values[1] > values[0]


def test_interval_contains_the_estimate(fitted: GammaGammaModel, cdnow: pd.DataFrame) -> None:
    band = fitted.conditional_expected_spend_interval(cdnow, n_draws=300, method="normal")
    assert list(band.columns) == ["expected_spend", "expected_spend_low", "expected_spend_high"]
    assert band.index.equals(cdnow.index)
    est = band["expected_spend"]
    assert np.all(band["expected_spend_low"] < est) and np.all(est < band["expected_spend_high"])
    # Everyone without repeat purchases gets the population mean, with one shared interval.
    none = band[cdnow["frequency"] == 0]
    assert none.nunique().max() == 1


# ------------------------------------------------------------------ input checks


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"monetary_value": 0.0}, "monetary_value_positive"),
        ({"monetary_value": -3.0}, "monetary_value_positive"),
        ({"monetary_value": np.nan}, "monetary_value_finite"),
        ({"frequency": np.nan}, "frequency_finite"),
        ({"frequency": -1.0}, "frequency_non_negative"),
        ({"frequency": 2.5}, "frequency_integer"),
    ],
)
def test_invalid_rows_are_rejected_with_their_rule(change: dict[str, float], rule: str) -> None:
    data = spend([1, 2, 3, 0, 4], [10.0, 20.0, 15.0, 0.0, 12.0])
    for column, value in change.items():
        data.loc[2, column] = value
    with pytest.raises(DataValidationError) as info:
        GammaGammaModel().fit(data, time_unit="weeks")
    assert info.value.rule == rule
    assert info.value.rows == [2]


def test_needs_customers_with_repeat_purchases() -> None:
    with pytest.raises(DataValidationError) as info:
        GammaGammaModel().fit(spend([0, 0], [0.0, 0.0]), time_unit="weeks")
    assert info.value.rule == "no_repeat_buyers"
    with pytest.raises(DataValidationError) as info:
        GammaGammaModel().fit(pd.DataFrame({"frequency": [1, 2]}), time_unit="weeks")
    assert info.value.rule == "columns"


def test_unfitted_model_refuses_to_predict() -> None:
    with pytest.raises(NotFittedError):
        GammaGammaModel().conditional_expected_spend(spend([1], [10.0]))
    with pytest.raises(NotFittedError):
        GammaGammaModel().population_mean_spend()


# ------------------------------------------------------------------ persistence


def test_save_and_load_round_trip(
    fitted: GammaGammaModel, cdnow: pd.DataFrame, tmp_path: object
) -> None:
    restored = BaseModel.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert isinstance(restored, GammaGammaModel)
    assert restored.params_ == fitted.params_
    assert restored.n_customers_ == REPEAT_BUYERS
    pd.testing.assert_series_equal(
        restored.conditional_expected_spend(cdnow), fitted.conditional_expected_spend(cdnow)
    )
    loaded = load_model(fitted.save(tmp_path / "gg.json"))  # type: ignore[operator]
    assert math.isclose(loaded.population_mean_spend(), fitted.population_mean_spend())  # type: ignore[attr-defined]
