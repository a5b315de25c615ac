"""MBG/NBD: published CDNOW fit, gradient, predictions against integrals and simulation."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import betaln, gammaln, roots_genlaguerre, roots_jacobi
from tests.models._summaries import summary_arrays, summary_frame

from lifevalue.data.datasets import load_cdnow_reference_summary
from lifevalue.errors import DataValidationError, InputError, NotFittedError
from lifevalue.models import mbgnbd
from lifevalue.models.base import BaseModel, load_model
from lifevalue.models.mbgnbd import ModifiedBetaGeoModel

# Batislam, Denizel & Filiztekin (2007) on the CDNOW calibration summary in weeks.
PUBLISHED = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
NAMES = ("r", "alpha", "a", "b")


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_reference_summary()


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> ModifiedBetaGeoModel:
    return ModifiedBetaGeoModel().fit(cdnow, time_unit="weeks")


class _Mixture:
    """Expectations over lambda ~ Gamma(r, alpha) and p ~ Beta(a, b) by quadrature.

    Gauss-Jacobi in p absorbs p^(a-1) (1-p)^(b-1); generalised Gauss-Laguerre in lambda
    absorbs lambda^(r+x-1) e^-(alpha + tilt) lambda, so what is left is smooth.
    """

    def __init__(self, params: dict[str, float], x: float, tilt: float, n: int = 120) -> None:
        self.r, self.alpha, self.a, self.b = (params[k] for k in NAMES)
        self.x, self.tilt = x, tilt
        y, self.w_lam = roots_genlaguerre(n, self.r + x - 1)
        self.lam = y[:, None] / (self.alpha + tilt)
        z, self.w_p = roots_jacobi(n, self.b - 1, self.a - 1)
        self.p = ((1 + z) / 2)[None, :]
        self.log_const = (
            self.r * math.log(self.alpha) - gammaln(self.r)
            - (self.r + x) * math.log(self.alpha + tilt)
            - betaln(self.a, self.b) - (self.a + self.b - 1) * math.log(2)
        )  # fmt: skip

    def expect(self, f) -> float:
        """E[lambda^x e^(-lambda tilt) f(lambda, p)] over the mixing distributions."""
        return float(self.w_lam @ f(self.lam, self.p) @ self.w_p) * math.exp(self.log_const)


def _likelihood_parts(params, x, t_x, T):
    """Individual-level terms: alive at T, and gone right after the last purchase."""
    mix = _Mixture(params, x, tilt=t_x)
    alive = mix.expect(lambda lam, p: (1 - p) ** (x + 1) * np.exp(-lam * (T - t_x)))
    gone = mix.expect(lambda lam, p: p * (1 - p) ** x + 0 * lam)
    return mix, alive, gone


# ----------------------------------------------------------------- published fit


def test_cdnow_reference_fit(fitted: ModifiedBetaGeoModel) -> None:
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3), name
    assert fitted.converged_
    assert fitted.optimizer_["gradient_max"] < 1e-8
    # The MBG/NBD fits CDNOW a little better than the BG/NBD (-9582.43).
    assert -9582.43 < fitted.log_likelihood_ < -9582.0


# ---------------------------------------------------------------- likelihood


@pytest.mark.parametrize(
    "params",
    [
        PUBLISHED,
        {"r": 2.0, "alpha": 1.5, "a": 3.0, "b": 0.4},
        {"r": 0.2, "alpha": 30, "a": 0.3, "b": 9},
    ],
)
def test_likelihood_matches_integral(params) -> None:
    rows = [(0, 0.0, 38.86), (2, 30.43, 38.86), (7, 5.0, 39.0), (12, 35.2, 36.0)]
    ll = ModifiedBetaGeoModel._log_likelihood(params, summary_arrays(rows))
    for (x, t_x, T), value in zip(rows, ll, strict=True):
        _, alive, gone = _likelihood_parts(params, x, t_x, T)
        assert value == pytest.approx(math.log(alive + gone), abs=1e-8)


@pytest.mark.parametrize(
    "params",
    [
        PUBLISHED,
        {"r": 2.0, "alpha": 1.5, "a": 3.0, "b": 0.4},
        {"r": 0.2, "alpha": 30, "a": 0.3, "b": 9},
    ],
)
def test_gradient_matches_finite_differences(params) -> None:
    rows = [
        (0, 0.0, 38.86),
        (1, 1.7, 38.86),
        (2, 30.43, 38.86),
        (40, 38.0, 39.0),
        (221, 103.43, 103.57),
    ]
    data = summary_arrays(rows)
    grad = ModifiedBetaGeoModel()._log_likelihood_gradient(params, data)
    assert grad.shape == (4, len(rows))
    for i, name in enumerate(NAMES):
        h = 1e-6 * params[name]
        up = ModifiedBetaGeoModel._log_likelihood({**params, name: params[name] + h}, data)
        down = ModifiedBetaGeoModel._log_likelihood({**params, name: params[name] - h}, data)
        np.testing.assert_allclose(grad[i], (up - down) / (2 * h), rtol=1e-6, atol=1e-6)


def test_extreme_customers_are_finite(fitted: ModifiedBetaGeoModel) -> None:
    frame = summary_frame([(221, 103.43, 103.57), (0, 0.0, 10_000.0), (50, 9_999.0, 10_000.0)])
    assert np.isfinite(
        ModifiedBetaGeoModel._log_likelihood(
            fitted.params_, summary_arrays([(221, 103.43, 103.57)])
        )
    ).all()
    alive = fitted.probability_alive(frame)
    assert alive["c0"] > 0.99
    # Without purchases in 10,000 weeks: likely gone, or alive with a tiny purchase rate.
    assert alive["c1"] < 0.05
    assert np.isfinite(fitted.expected_purchases(frame, future_t=52)).all()


# -------------------------------------------------------------------- predictions


def test_probability_alive_below_one_without_repeat_purchases(fitted: ModifiedBetaGeoModel) -> None:
    frame = summary_frame([(0, 0.0, 1e-9), (0, 0.0, 38.86)])
    alive = fitted.probability_alive(frame)
    a, b = fitted.params_["a"], fitted.params_["b"]
    # Just after the first purchase only the first dropout chance has passed.
    assert alive["c0"] == pytest.approx(b / (a + b), rel=1e-6)
    assert alive["c1"] < alive["c0"] < 1


def test_probability_alive_matches_integral(fitted: ModifiedBetaGeoModel) -> None:
    rows = [(0, 0.0, 38.86), (2, 30.43, 38.86), (10, 12.0, 39.0)]
    alive = fitted.probability_alive(summary_frame(rows)).to_numpy()
    for (x, t_x, T), value in zip(rows, alive, strict=True):
        _, still, gone = _likelihood_parts(fitted.params_, x, t_x, T)
        assert value == pytest.approx(still / (still + gone), rel=1e-10)


def test_probability_alive_in_the_future_matches_integral(fitted: ModifiedBetaGeoModel) -> None:
    rows = [(0, 0.0, 38.86), (2, 30.43, 38.86), (10, 12.0, 39.0)]
    later = fitted.probability_alive(summary_frame(rows), future_t=26.0).to_numpy()
    for (x, t_x, T), value in zip(rows, later, strict=True):
        mix, still, gone = _likelihood_parts(fitted.params_, x, t_x, T)
        # Alive at T, then no dropout at the purchases of the next 26 weeks: exp(-lambda p t).
        survive = mix.expect(
            lambda lam, p, x=x, T=T, t_x=t_x: (
                (1 - p) ** (x + 1) * np.exp(-lam * (T - t_x) - lam * p * 26.0)
            )
        )
        assert value == pytest.approx(survive / (still + gone), rel=1e-9)
    assert (later < fitted.probability_alive(summary_frame(rows)).to_numpy()).all()


def test_conditional_expectation_matches_integral(fitted: ModifiedBetaGeoModel) -> None:
    rows = [(0, 0.0, 38.86), (2, 30.43, 38.86), (10, 12.0, 39.0), (1, 1.71, 38.86)]
    horizon = 39.0
    expected = fitted.expected_purchases(summary_frame(rows), future_t=horizon).to_numpy()
    for (x, t_x, T), value in zip(rows, expected, strict=True):
        mix, still, gone = _likelihood_parts(fitted.params_, x, t_x, T)

        def future(lam, p, x=x, T=T, t_x=t_x):
            # Alive at T, then purchases until the coin says stop: (1 - e^-lambda p t) / p.
            return (1 - p) ** (x + 1) * np.exp(-lam * (T - t_x)) * -np.expm1(-lam * p * horizon) / p

        assert value == pytest.approx(mix.expect(future) / (still + gone), rel=1e-9)


def _simulate_counts(params, t, n, seed):
    """Repeat purchases by t of n new customers, simulated from the model's story."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(params["r"], 1 / params["alpha"], n)
    p = rng.beta(params["a"], params["b"], n)
    # Purchases before the coin says stop: 0 if it does at the first purchase.
    allowed = rng.geometric(p) - 1
    return np.minimum(allowed, rng.poisson(lam * t))


def test_new_customer_predictions_match_simulation(fitted: ModifiedBetaGeoModel) -> None:
    t = 39.0
    counts = _simulate_counts(fitted.params_, t, 400_000, seed=3)
    mean = fitted.expected_purchases_new_customer(t=t)
    assert mean == pytest.approx(counts.mean(), abs=4 * counts.std() / math.sqrt(len(counts)))
    pmf = fitted.probability_of_purchases(np.arange(6), t=t)
    observed = np.bincount(counts, minlength=6)[:6] / len(counts)
    assert np.all(np.abs(pmf - observed) <= 4 * np.sqrt(pmf * (1 - pmf) / len(counts)))


def test_new_customer_expectation_matches_integral_and_pmf(fitted: ModifiedBetaGeoModel) -> None:
    t = 52.0
    mix = _Mixture(fitted.params_, 0, tilt=0.0)
    direct = mix.expect(lambda lam, p: (1 - p) * -np.expm1(-lam * p * t) / p)
    assert fitted.expected_purchases_new_customer(t=t) == pytest.approx(direct, rel=1e-9)
    k = np.arange(5000)
    pmf = fitted.probability_of_purchases(k, t=t)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    assert float(pmf @ k) == pytest.approx(direct, rel=1e-8)
    np.testing.assert_array_equal(fitted.probability_of_purchases([0, 1, 3], t=0.0), [1, 0, 0])
    times = np.array([0.0, 1.0, 52.0])
    out = fitted.expected_purchases_new_customer(t=times)
    assert out.shape == (3,) and out[0] == 0.0 and np.all(np.diff(out) > 0)


def test_expectations_are_smooth_through_a_equal_one() -> None:
    data = summary_arrays([(3, 20.0, 39.0), (0, 0.0, 39.0)])
    values = np.array(
        [
            ModifiedBetaGeoModel._expected_purchases(
                {"r": 0.6, "alpha": 6.0, "a": a, "b": 1.6}, data, future_t=52.0
            )
            for a in (1 - 2e-4, 1 - 1e-7, 1.0, 1 + 1e-7, 1 + 2e-4)
        ]
    )
    assert np.isfinite(values).all()
    # Nearly linear in a around 1: the middle values sit on the chord of the outer ones.
    chord = (
        values[0]
        + (values[4] - values[0]) * np.array([0.5 - 1e-7 / 4e-4, 0.5, 0.5 + 1e-7 / 4e-4])[:, None]
    )
    np.testing.assert_allclose(values[1:4], chord, rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    r=st.floats(0.05, 5), alpha=st.floats(0.1, 50), a=st.floats(0.05, 5), b=st.floats(0.05, 5),
    x=st.integers(0, 300), gap=st.floats(0, 1), T=st.floats(0.5, 2000),
    t1=st.floats(0, 100), t2=st.floats(0, 100),
)  # fmt: skip
def test_predictions_are_probabilities_and_monotone(r, alpha, a, b, x, gap, T, t1, t2):
    named = {"r": r, "alpha": alpha, "a": a, "b": b}
    data = summary_arrays([(x, 0.0 if x == 0 else T * gap, T)])
    short, long = sorted((t1, t2))
    with np.errstate(all="ignore"):
        alive = ModifiedBetaGeoModel._p_alive(named, data)[0]
        later = ModifiedBetaGeoModel._p_alive(named, data, future_t=long)[0]
        e_short = ModifiedBetaGeoModel._expected_purchases(named, data, future_t=short)[0]
        e_long = ModifiedBetaGeoModel._expected_purchases(named, data, future_t=long)[0]
        grad = ModifiedBetaGeoModel()._log_likelihood_gradient(named, data)
    assert 0 <= later <= alive * (1 + 1e-12) <= 1
    assert 0 <= e_short <= e_long * (1 + 1e-9) + 1e-300
    assert np.isfinite(grad).all()


@settings(max_examples=30, deadline=None)
@given(
    r=st.floats(0.05, 5), alpha=st.floats(0.1, 50), a=st.floats(0.05, 5), b=st.floats(0.05, 5),
    t=st.floats(0.01, 100),
)  # fmt: skip
def test_pmf_is_a_distribution(r, alpha, a, b, t) -> None:
    named = {"r": r, "alpha": alpha, "a": a, "b": b}
    pmf = ModifiedBetaGeoModel._probability_of_purchases(named, np.arange(2000), t=t)
    assert np.all((pmf >= 0) & (pmf <= 1))
    # The tail beyond 2000 holds at most P(lambda t > 1000) + P(Poisson >= 2000 | lambda t <= 1000).
    assert pmf.sum() <= 1 + 1e-9
    assert (
        pmf.sum() >= 1 - float(ModifiedBetaGeoModel._expected_purchases_new(named, t)) / 2000 - 1e-9
    )


def test_expected_purchases_interval(fitted: ModifiedBetaGeoModel, cdnow: pd.DataFrame) -> None:
    head = cdnow.head(50)
    out = fitted.expected_purchases_interval(head, future_t=39.0, n_draws=200)
    point = fitted.expected_purchases(head, future_t=39.0)
    np.testing.assert_allclose(out["expected_purchases"], point)
    assert (out["expected_purchases_low"] <= point + 1e-12).all()
    assert (out["expected_purchases_high"] >= point - 1e-12).all()
    assert (out["expected_purchases_high"] > out["expected_purchases_low"]).all()


def test_cdnow_holdout_total_is_plausible(
    fitted: ModifiedBetaGeoModel, cdnow: pd.DataFrame
) -> None:
    # 1,788 actual purchases in the 39-week holdout (Fader, Hardie & Lee 2005); the BG/NBD
    # forecasts 1,653 from this summary, and the MBG/NBD, with P(alive) < 1 at x = 0, less.
    total = fitted.expected_purchases(cdnow, future_t=39.0).sum()
    assert 1500 < total < 1653


# ---------------------------------------------------------- parameter recovery


def _simulate(r, alpha, a, b, n, seed):
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.choice([26.0, 39.0, 52.0, 65.0, 78.0], n)
    n_purchases = rng.poisson(lam * T)
    allowed = rng.geometric(p) - 1
    x = np.minimum(allowed, n_purchases)
    # The x-th of n_purchases sorted uniform times on (0, T) is T * Beta(x, n - x + 1).
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), n_purchases - x + 1), 0.0)
    t_x = np.where(x > 0, np.clip(t_x.round(0), 1.0, T), 0.0)
    frame = pd.DataFrame({"frequency": x, "recency": t_x, "T": T})
    return frame.groupby(["frequency", "recency", "T"]).size().rename("weights").reset_index()


def test_parameter_recovery_on_simulated_data() -> None:
    truth = {"r": 0.6, "alpha": 5.0, "a": 0.9, "b": 2.0}
    data = _simulate(*truth.values(), n=20_000, seed=21)
    model = ModifiedBetaGeoModel().fit(data, weights="weights", time_unit="weeks")
    ci = model.confidence_intervals(0.95)
    for name, value in truth.items():
        assert ci.loc[name, "lower"] < value < ci.loc[name, "upper"], (name, ci)


# ------------------------------------------------------------ validation and I/O


@pytest.mark.parametrize(
    ("row", "rule"),
    [
        ((np.nan, 0.0, 10.0), "frequency_finite"),
        ((1, 2.0, np.inf), "T_finite"),
        ((-1, 0.0, 10.0), "frequency_non_negative"),
        ((1.5, 2.0, 10.0), "frequency_integer"),
        ((2, 12.0, 10.0), "recency_le_T"),
        ((0, 3.0, 10.0), "recency_zero_when_frequency_zero"),
    ],
)
def test_invalid_rows_are_named(row, rule) -> None:
    frame = summary_frame([(1, 2.0, 10.0), row, (3, 4.0, 10.0)])
    with pytest.raises(DataValidationError) as info:
        ModifiedBetaGeoModel().fit(frame)
    assert info.value.rule == rule
    assert info.value.rows == ["c1"]


def test_missing_column_and_no_repeat_buyers() -> None:
    with pytest.raises(DataValidationError, match="recency") as info:
        ModifiedBetaGeoModel().fit(summary_frame([(1, 2.0, 10.0)]).drop(columns="recency"))
    assert info.value.rule == "columns"
    with pytest.raises(DataValidationError) as info:
        ModifiedBetaGeoModel().fit(summary_frame([(0, 0.0, 10.0), (0, 0.0, 20.0)]))
    assert info.value.rule == "no_repeat_buyers"


def test_invalid_prediction_arguments(fitted: ModifiedBetaGeoModel) -> None:
    frame = summary_frame([(1, 2.0, 10.0)])
    with pytest.raises(InputError, match="future_t"):
        fitted.expected_purchases(frame, future_t=-1.0)
    with pytest.raises(InputError, match="'t'"):
        fitted.expected_purchases_new_customer(t=np.array([1.0, -2.0]))
    with pytest.raises(InputError, match="'k'"):
        fitted.probability_of_purchases([0.5], t=10.0)
    with pytest.raises(NotFittedError):
        ModifiedBetaGeoModel().probability_of_purchases(1, t=1.0)


def test_save_load_round_trip(fitted: ModifiedBetaGeoModel, tmp_path) -> None:
    payload = json.loads(json.dumps(fitted.to_dict()))
    assert payload["model"] == "mbgnbd"
    loaded = BaseModel.from_dict(payload)
    assert isinstance(loaded, ModifiedBetaGeoModel)
    assert loaded.params_ == fitted.params_
    frame = summary_frame([(2, 30.43, 38.86), (0, 0.0, 38.86)])
    pd.testing.assert_series_equal(loaded.probability_alive(frame), fitted.probability_alive(frame))
    again = load_model(fitted.save(tmp_path / "mbg.json"))
    assert again.params_ == fitted.params_
    assert again.std_errors_ == pytest.approx(fitted.std_errors_)


@pytest.mark.parametrize(
    ("a", "b", "c", "z"),
    [(0.7, 1.3, 90.5, 0.95), (0.7, 1.3, 150.5, 0.97), (2.2, 0.4, 400.0, 0.999)],
)
def test_hypergeometric_series_where_scipy_overflows(a, b, c, z) -> None:
    # Euler's integral, by quad with the algebraic end weights.
    log_norm = gammaln(c) - gammaln(b) - gammaln(c - b)
    integral = integrate.quad(
        lambda u: (1 - z * u) ** -a, 0, 1, weight="alg", wvar=(b - 1, c - b - 1),
        epsabs=0, epsrel=1e-13, limit=400,
    )[0]  # fmt: skip
    expected = integral * math.exp(log_norm)
    assert mbgnbd._hyp2f1(a, b, c, z)[()] == pytest.approx(expected, rel=1e-11)
    assert mbgnbd._hyp2f1_series(*(np.array([v]) for v in (a, b, c, z)))[0] == pytest.approx(
        expected, rel=1e-11
    )


def test_heavy_buyer_over_a_long_horizon_matches_integral(fitted: ModifiedBetaGeoModel) -> None:
    # Far beyond where scipy's hyp2f1 overflows (c = a+b+x+1 > 100, z > 0.9).
    x, t_x, T, horizon = 150, 19.0, 20.0, 520.0
    frame = summary_frame([(x, t_x, T)])
    value = fitted.expected_purchases(frame, future_t=horizon).iloc[0]
    later = fitted.probability_alive(frame, future_t=horizon).iloc[0]
    now = fitted.probability_alive(frame).iloc[0]
    r, alpha, a, b = (fitted.params_[k] for k in NAMES)
    # Given alive at T: lambda ~ Gamma(r+x, alpha+T) integrates out of e^(-lambda p t),
    # leaving (1 + p w)^-(r+x) with w = t / (alpha+T), and p ~ Beta(a, b+x+1).
    w, shape, b_post = horizon / (alpha + T), r + x, b + x + 1

    def over_p(g):
        return integrate.quad(
            g, 0, 1, weight="alg", wvar=(a - 1, b_post - 1), epsabs=0, epsrel=1e-12, limit=400
        )[0] / math.exp(betaln(a, b_post))

    survive = over_p(lambda p: (1 + p * w) ** -shape)
    purchases = over_p(lambda p: -np.expm1(-shape * np.log1p(p * w)) / p if p > 0 else shape * w)
    assert later == pytest.approx(now * survive, rel=1e-9)
    assert value == pytest.approx(now * purchases, rel=1e-9)


def test_predictions_broadcast_over_parameter_draws(fitted: ModifiedBetaGeoModel) -> None:
    draws = fitted.param_draws(3)
    stacked = {k: v[:, None] for k, v in draws.items()}
    k = np.array([0, 1, 4, 30])
    data = summary_arrays([(2, 30.43, 38.86), (0, 0.0, 38.86), (221, 103.43, 103.57)])
    pmf = ModifiedBetaGeoModel._probability_of_purchases(stacked, k, t=39.0)
    later = ModifiedBetaGeoModel._p_alive(stacked, data, future_t=10.0)
    assert pmf.shape == (3, 4) and later.shape == (3, 3)
    for i in range(3):
        one = {n: float(v[i]) for n, v in draws.items()}
        np.testing.assert_allclose(
            pmf[i], ModifiedBetaGeoModel._probability_of_purchases(one, k, t=39.0), rtol=1e-12
        )
        np.testing.assert_allclose(
            later[i], ModifiedBetaGeoModel._p_alive(one, data, future_t=10.0), rtol=1e-12
        )
