"""BG/BB: the published donations results, exact identities of the model, simulation checks,
numerics at the extremes, input checks and persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import betaln, logsumexp

from lifevalue.data import datasets
from lifevalue.errors import DataValidationError, InputError, NotFittedError
from lifevalue.models.base import BaseModel, load_model
from lifevalue.models.bgbb import BetaGeoBetaBinomModel
from lifevalue.units import period_discount_rate

# Fader, Hardie & Shang (2010), section 4: the 11,104 first-time donors of 1995, six
# annual repeat opportunities.
PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
PUBLISHED_LL = -33225.6
DONORS = 11_104
# BTYD (R), documented example of bgbb.Expectation at (1.20, 0.75, 0.66, 2.78): E[X(n)],
# n = 1..10, computed there by its own summation.
BTYD_PARAMS = {"alpha": 1.20, "beta": 0.75, "gamma": 0.66, "delta": 2.78}
BTYD_EXPECTATION = [
    0.4973166, 0.9207078, 1.2927317, 1.6266289, 1.9309062,
    2.2113893, 2.4722624, 2.7166434, 2.9469256, 3.1649902,
]  # fmt: skip
NAMES = BetaGeoBetaBinomModel.param_names


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    return datasets.load_donations().rename(columns={"periods": "T"})


@pytest.fixture(scope="module")
def fitted(donations: pd.DataFrame) -> BetaGeoBetaBinomModel:
    return BetaGeoBetaBinomModel().fit(donations, time_unit="years")


def model_at(params: dict[str, float], unit: str = "years") -> BetaGeoBetaBinomModel:
    """A 'fitted' model at given parameters (small covariance), through the public loader."""
    payload = {
        "model": "bgbb",
        "params": params,
        "log_params": np.log([params[n] for n in NAMES]).tolist(),
        "covariance_log": (np.eye(4) * 1e-4).tolist(),
        "log_likelihood": 0.0,
        "n_customers": 1.0,
        "time_unit": unit,
        "converged": True,
    }
    model = BaseModel.from_dict(payload)
    assert isinstance(model, BetaGeoBetaBinomModel)
    return model


def frame(x: list[int], t_x: list[int], n: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"frequency": x, "recency": t_x, "T": n}, dtype=float)


def patterns(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (x, t_x) possible in n opportunities, with how many 0/1 sequences give it."""
    rows = [(0, 0, 1)] + [
        (x, t, math.comb(t - 1, x - 1)) for t in range(1, n + 1) for x in range(1, t + 1)
    ]
    x, t_x, count = (np.array(v, dtype=float) for v in zip(*rows, strict=True))
    return x, t_x, count


def direct_likelihood(p: dict[str, float], x: int, t_x: int, n: int) -> float:
    """Equation (5) of Fader, Hardie & Shang (2010), term by term in plain Python."""
    a, b, g, d = (p[k] for k in NAMES)

    def beta(u: float, v: float) -> float:
        return math.exp(math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v))

    total = beta(a + x, b + n - x) / beta(a, b) * beta(g, d + n) / beta(g, d)
    for i in range(n - t_x):
        total += beta(a + x, b + t_x - x + i) / beta(a, b) * beta(g + 1, d + t_x + i) / beta(g, d)
    return total


def simulate(
    rng: np.random.Generator, params: dict[str, float], periods: np.ndarray, extra: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """BG/BB customers: the summary over ``periods`` opportunities each, then what happens in
    ``extra`` more (transactions, and whether alive at the first of them)."""
    m = len(periods)
    p = rng.beta(params["alpha"], params["beta"], m)
    theta = rng.beta(params["gamma"], params["delta"], m)
    # A customer dies at the start of opportunity D ~ Geometric(theta) and is alive before.
    death = rng.geometric(theta)
    t = np.arange(1, int(periods.max()) + extra + 1)
    alive = t[None, :] < death[:, None]
    buys = alive & (rng.random((m, t.size)) < p[:, None])
    seen = t[None, :] <= periods[:, None]
    x = (buys & seen).sum(axis=1)
    t_x = np.where(buys & seen, t[None, :], 0).max(axis=1)
    later = (t[None, :] > periods[:, None]) & (t[None, :] <= periods[:, None] + extra)
    summary = pd.DataFrame({"frequency": x, "recency": t_x, "T": periods})
    return summary, (buys & later).sum(axis=1), death > periods + 1


# ------------------------------------------------------------------ published results


def test_reproduces_the_published_donations_fit(fitted: BetaGeoBetaBinomModel) -> None:
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3), name
    assert fitted.log_likelihood_ == pytest.approx(PUBLISHED_LL, abs=0.1)
    assert fitted.converged_
    assert fitted.n_customers_ == DONORS
    assert fitted.n_patterns_ == 22


def test_expected_donors_by_number_of_repeat_donations(fitted: BetaGeoBetaBinomModel) -> None:
    # Fader, Hardie & Shang (2010), the calibration-period fit: of 11,104 donors about
    # 3,454.9 are expected to give in none of the 6 years and 1,253.1 in all of them.
    counts = DONORS * fitted.probability_of_purchases(np.arange(7), t=6)
    assert counts[0] == pytest.approx(3454.9, abs=0.5)
    assert counts[6] == pytest.approx(1253.1, abs=0.5)
    assert counts.sum() == pytest.approx(DONORS, rel=1e-12)


def test_expected_transactions_of_a_new_customer_match_btyd() -> None:
    model = model_at(BTYD_PARAMS)
    got = model.expected_purchases_new_customer(t=np.arange(1, 11))
    np.testing.assert_allclose(got, BTYD_EXPECTATION, atol=1e-7)
    assert model.expected_purchases_new_customer(t=10) == pytest.approx(3.1649902, abs=1e-7)
    assert model.expected_purchases_new_customer(t=0) == 0.0


# ------------------------------------------------------------------ the likelihood


def test_likelihood_matches_equation_5_term_by_term() -> None:
    params = {"alpha": 0.7, "beta": 2.5, "gamma": 1.6, "delta": 0.4}
    rows = [(0, 0, 0), (0, 0, 6), (1, 1, 6), (3, 5, 6), (6, 6, 6), (2, 2, 30), (7, 19, 30)]
    data = {
        k: np.array(v, dtype=float)
        for k, v in zip(("frequency", "recency", "T"), zip(*rows, strict=True), strict=True)
    }
    got = BetaGeoBetaBinomModel._log_likelihood(params, data)
    expected = [math.log(direct_likelihood(params, *row)) for row in rows]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


positive = st.floats(0.05, 20.0)


@settings(max_examples=60, deadline=None)
@given(a=positive, b=positive, g=positive, d=positive, n=st.integers(0, 9))
def test_probabilities_of_all_sequences_sum_to_one(
    a: float, b: float, g: float, d: float, n: int
) -> None:
    # L(x, t_x, n) is the probability of one 0/1 sequence; C(t_x - 1, x - 1) share it.
    x, t_x, count = patterns(n)
    params = dict(zip(NAMES, (a, b, g, d), strict=True))
    ll = BetaGeoBetaBinomModel._log_likelihood(
        params, {"frequency": x, "recency": t_x, "T": n + 0 * x}
    )
    assert count @ np.exp(ll) == pytest.approx(1.0, abs=1e-10)


@settings(max_examples=40, deadline=None)
@given(a=positive, b=positive, g=positive, d=positive, n=st.integers(0, 12))
def test_pmf_is_the_sum_over_sequences_and_sums_to_one(
    a: float, b: float, g: float, d: float, n: int
) -> None:
    params = dict(zip(NAMES, (a, b, g, d), strict=True))
    model = model_at(params)
    pmf = model.probability_of_purchases(np.arange(n + 2), t=n)
    assert np.all((pmf >= 0) & (pmf <= 1))
    assert pmf[n + 1] == 0.0
    assert pmf.sum() == pytest.approx(1.0, abs=1e-10)
    x, t_x, count = patterns(n)
    ll = BetaGeoBetaBinomModel._log_likelihood(
        params, {"frequency": x, "recency": t_x, "T": n + 0 * x}
    )
    by_x = np.bincount(x.astype(int), weights=count * np.exp(ll), minlength=n + 1)
    np.testing.assert_allclose(pmf[: n + 1], by_x, atol=1e-12)
    assert (np.arange(n + 2) @ pmf) == pytest.approx(
        model.expected_purchases_new_customer(t=n), abs=1e-10
    )


def test_gradient_matches_finite_differences() -> None:
    x = np.array([0, 1, 3, 6, 2, 7, 0, 40])
    t_x = np.array([0, 1, 5, 6, 2, 19, 0, 48])
    n = np.array([6, 6, 6, 6, 30, 30, 60, 60])
    data = {"frequency": x * 1.0, "recency": t_x * 1.0, "T": n * 1.0}
    model = BetaGeoBetaBinomModel()
    for values in ((1.2, 0.75, 0.66, 2.78), (0.3, 4.0, 2.5, 0.2), (8.0, 1.1, 0.9, 30.0)):
        params = dict(zip(NAMES, values, strict=True))
        ll, grad = model._log_likelihood_and_gradient(params, data)
        np.testing.assert_allclose(ll, BetaGeoBetaBinomModel._log_likelihood(params, data))
        np.testing.assert_array_equal(grad, model._log_likelihood_gradient(params, data))
        for j, name in enumerate(NAMES):
            h = 1e-6 * params[name]
            up = BetaGeoBetaBinomModel._log_likelihood({**params, name: params[name] + h}, data)
            down = BetaGeoBetaBinomModel._log_likelihood({**params, name: params[name] - h}, data)
            np.testing.assert_allclose(grad[j], (up - down) / (2 * h), rtol=1e-6, atol=1e-8)


def test_long_histories_split_the_sum_into_bounded_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # The ragged sum is cut into chunks of bounded size; the answer must not depend on it.
    import lifevalue.models.bgbb as bgbb

    rng = np.random.default_rng(3)
    n = rng.integers(1, 400, 300).astype(float)
    t_x = np.floor(rng.random(300) * n)
    x = np.where(t_x > 0, np.ceil(rng.random(300) * t_x), 0.0)
    data = {"frequency": x, "recency": t_x, "T": n}
    whole = BetaGeoBetaBinomModel._log_likelihood(BTYD_PARAMS, data)
    monkeypatch.setattr(bgbb, "_CHUNK_ELEMENTS", 500)
    chunked = BetaGeoBetaBinomModel._log_likelihood(BTYD_PARAMS, data)
    _, grad = BetaGeoBetaBinomModel()._log_likelihood_and_gradient(BTYD_PARAMS, data)
    np.testing.assert_allclose(chunked, whole, rtol=1e-13)
    assert np.all(np.isfinite(grad))


# ------------------------------------------------------------------ predictions


def test_conditional_predictions_average_to_the_unconditional_ones() -> None:
    # Over all histories of n opportunities, weighted by their probabilities, the
    # conditional predictions (eqs. 11, 13, 14) must give back the unconditional ones.
    params = {"alpha": 1.3, "beta": 2.2, "gamma": 0.8, "delta": 3.5}
    model = model_at(params)
    n, horizon, d = 5, 4, 0.1
    x, t_x, count = patterns(n)
    history = frame(list(x), list(t_x), [n] * len(x))
    data = {k: history[k].to_numpy(float) for k in history}
    prob = count * np.exp(BetaGeoBetaBinomModel._log_likelihood(params, data))
    alive = model.probability_alive(history).to_numpy()
    assert prob @ alive == pytest.approx(
        math.exp(betaln(0.8, 3.5 + n + 1) - betaln(0.8, 3.5)), rel=1e-12
    )
    later = model.expected_purchases(history, future_t=horizon).to_numpy()
    assert prob @ (x + later) == pytest.approx(
        model.expected_purchases_new_customer(t=n + horizon), rel=1e-12
    )
    dert = model.discounted_expected_transactions(history, annual_discount_rate=d).to_numpy()
    s = np.arange(1, 3000)
    brute = np.exp(
        np.log(1.3 / 3.5) + betaln(0.8, 3.5 + n + s) - betaln(0.8, 3.5) - s * np.log1p(d)
    )
    assert prob @ dert == pytest.approx(brute.sum(), rel=1e-10)


def test_conditional_predictions_match_simulated_customers() -> None:
    params = {"alpha": 1.5, "beta": 1.0, "gamma": 0.7, "delta": 2.0}
    rng = np.random.default_rng(11)
    summary, holdout, alive_next = simulate(rng, params, np.full(300_000, 5), extra=3)
    model = model_at(params)
    expected = model.expected_purchases(summary, future_t=3).to_numpy()
    p_alive = model.probability_alive(summary).to_numpy()
    groups = summary.groupby(["frequency", "recency"]).indices
    checked = 0
    for rows in groups.values():
        if len(rows) < 3000:
            continue
        checked += 1
        se = holdout[rows].std() / math.sqrt(len(rows))
        assert abs(holdout[rows].mean() - expected[rows[0]]) < 4 * se
        se_alive = math.sqrt(p_alive[rows[0]] * (1 - p_alive[rows[0]]) / len(rows))
        assert abs(alive_next[rows].mean() - p_alive[rows[0]]) < 4 * se_alive + 1e-12
    assert checked >= 10


def test_dert_is_the_discounted_sum_of_period_expectations(
    fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame
) -> None:
    # Annual rate 10% on annual opportunities: d = 0.1 per period.
    dert = fitted.discounted_expected_transactions(donations, annual_discount_rate=0.1)
    previous = np.zeros(len(donations))
    total = np.zeros(len(donations))
    for s in range(1, 401):
        cumulative = fitted.expected_purchases(donations, future_t=s).to_numpy()
        total += (cumulative - previous) / 1.1**s
        previous = cumulative
    np.testing.assert_allclose(dert, total, rtol=1e-10)
    assert period_discount_rate(0.1, "years") == pytest.approx(0.1)
    # The hook CLV calls for the whole residual lifetime gives the same numbers.
    data = {k: donations[k].to_numpy(float) for k in ("frequency", "recency", "T")}
    hook = BetaGeoBetaBinomModel._discounted_expected_transactions(
        fitted.params_, data, annual_discount_rate=0.1, unit="years"
    )
    np.testing.assert_allclose(hook, dert, rtol=1e-14)


def test_dert_of_long_weekly_histories_matches_the_series() -> None:
    # Weekly discounting of customers with thousands of opportunities: scipy's hyp2f1
    # gives NaN there and the discounted beta sum falls back to its quadrature.
    params = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.78}
    model = model_at(params, unit="weeks")
    rows = [(5000, 9000, 10000), (9999, 10000, 10000), (3, 520, 520), (40, 52, 60), (0, 0, 6)]
    history = frame(*(list(v) for v in zip(*rows, strict=True)))
    got = model.discounted_expected_transactions(history, annual_discount_rate=0.1).to_numpy()
    d = period_discount_rate(0.1, "weeks")
    s = np.arange(1, int(60 / math.log1p(d)))
    a, b, g, dl = (params[k] for k in NAMES)
    for (x, t_x, n), value in zip(rows, got, strict=True):
        data = {
            "frequency": np.array([x * 1.0]),
            "recency": np.array([t_x * 1.0]),
            "T": np.array([n * 1.0]),
        }
        log_l = BetaGeoBetaBinomModel._log_likelihood(params, data)[0]
        terms = betaln(a + x + 1, b + n - x) - betaln(a, b) + betaln(g, dl + n + s) - betaln(g, dl)
        expected = math.exp(logsumexp(terms - s * math.log1p(d)) - log_l)
        assert value == pytest.approx(expected, rel=1e-8), (x, t_x, n)


def test_expected_purchases_are_continuous_through_gamma_one() -> None:
    # The closed form of sum B(gamma, delta + t) divides by gamma - 1; near 1 it switches
    # to a Taylor expansion. Both must agree with the plain sum.
    history = frame([3, 0, 40], [5, 0, 52], [6, 6, 60])
    for gamma in (
        1 - 1.01e-3,
        1 - 0.99e-3,
        1 - 1e-4,
        1 - 1e-7,
        1.0,
        1 + 1e-7,
        1 + 0.99e-3,
        1 + 1.01e-3,
        1.01,
    ):
        params = {"alpha": 1.2, "beta": 0.75, "gamma": gamma, "delta": 2.78}
        got = model_at(params).expected_purchases(history, future_t=500).to_numpy()
        data = {k: history[k].to_numpy(float) for k in history}
        log_l = BetaGeoBetaBinomModel._log_likelihood(params, data)
        x, n = data["frequency"], data["T"]
        t = n[:, None] + np.arange(1, 501)
        survival = np.exp(betaln(gamma, 2.78 + t) - betaln(gamma, 2.78)).sum(axis=1)
        lead = np.exp(betaln(1.2 + x + 1, 0.75 + n - x) - betaln(1.2, 0.75) - log_l)
        np.testing.assert_allclose(got, lead * survival, rtol=1e-8, err_msg=str(gamma))


def test_extreme_customers_give_finite_answers() -> None:
    model = model_at(BTYD_PARAMS, unit="weeks")
    history = frame([0, 5000, 1, 9999, 221], [0, 9000, 1, 10000, 9000], [10000] * 5)
    data = {k: history[k].to_numpy(float) for k in history}
    assert np.all(np.isfinite(BetaGeoBetaBinomModel._log_likelihood(BTYD_PARAMS, data)))
    alive = model.probability_alive(history)
    expected = model.expected_purchases(history, future_t=52)
    dert = model.discounted_expected_transactions(history, annual_discount_rate=0.1)
    for values in (alive, expected, dert):
        assert np.all(np.isfinite(values)) and np.all(values >= 0)
    assert np.all(alive <= 1)
    assert alive.iloc[3] > 0.99  # transacts at nearly every opportunity, up to the last
    assert alive.iloc[2] < 1e-6  # one transaction 10,000 weeks ago
    assert expected.iloc[3] == pytest.approx(52 * alive.iloc[3], rel=0.01)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(0, 200),
    share=st.floats(0.0, 1.0),
    last=st.floats(0.0, 1.0),
    horizon=st.integers(0, 60),
    extra=st.integers(1, 60),
)
def test_predictions_are_bounded_and_monotone(
    fitted: BetaGeoBetaBinomModel, n: int, share: float, last: float, horizon: int, extra: int
) -> None:
    t_x = round(last * n)
    x = min(t_x, max(1, round(share * t_x))) if t_x > 0 else 0
    one = frame([x], [t_x], [n])
    alive = [
        fitted.probability_alive(one, future_t=k).iloc[0] for k in (0, horizon, horizon + extra)
    ]
    assert all(0.0 <= p <= 1.0 for p in alive)
    assert alive[0] >= alive[1] >= alive[2]
    near = fitted.expected_purchases(one, future_t=horizon).iloc[0]
    far = fitted.expected_purchases(one, future_t=horizon + extra).iloc[0]
    assert 0.0 <= near <= far <= (horizon + extra) * alive[0] + 1e-12
    low = fitted.discounted_expected_transactions(one, annual_discount_rate=0.05).iloc[0]
    high = fitted.discounted_expected_transactions(one, annual_discount_rate=0.2).iloc[0]
    assert 0.0 <= high <= low


def test_intervals_contain_the_estimate(
    fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame
) -> None:
    for method in ("normal", "delta"):
        band = fitted.expected_purchases_interval(
            donations, future_t=5, level=0.9, n_draws=300, method=method
        )
        assert list(band.columns) == [
            "expected_purchases", "expected_purchases_low", "expected_purchases_high",
        ]  # fmt: skip
        est = band["expected_purchases"]
        np.testing.assert_allclose(est, fitted.expected_purchases(donations, future_t=5))
        assert np.all(band["expected_purchases_low"] <= est + 1e-12)
        assert np.all(est <= band["expected_purchases_high"] + 1e-12)
        assert (band["expected_purchases_high"] - band["expected_purchases_low"]).min() > 0


def test_bootstrap_intervals(donations: pd.DataFrame) -> None:
    model = BetaGeoBetaBinomModel().fit(donations, time_unit="years").bootstrap(donations, n_boot=8)
    assert model.bootstrap_log_params_ is not None
    assert model.bootstrap_log_params_.shape == (8, 4)
    band = model.expected_purchases_interval(donations, future_t=5, method="bootstrap", n_draws=100)
    assert np.all(band["expected_purchases_low"] <= band["expected_purchases_high"])
    assert np.all(band["expected_purchases_high"] - band["expected_purchases_low"] > 0)


# ------------------------------------------------------------------ estimation


def test_recovers_simulated_parameters_within_their_intervals() -> None:
    truth = {"alpha": 1.2, "beta": 0.8, "gamma": 0.6, "delta": 2.5}
    rng = np.random.default_rng(2024)
    # Cohorts of different ages: 4 to 10 opportunities.
    summary, _, _ = simulate(rng, truth, rng.integers(4, 11, 30_000))
    model = BetaGeoBetaBinomModel().fit(summary, time_unit="years")
    intervals = model.confidence_intervals(0.95)
    for name, value in truth.items():
        assert intervals.loc[name, "lower"] <= value <= intervals.loc[name, "upper"], name
    assert model.converged_


# ------------------------------------------------------------------ input checks


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"frequency": np.nan}, "frequency_finite"),
        ({"recency": -1.0}, "recency_non_negative"),
        ({"frequency": 1.5}, "frequency_integer"),
        ({"T": 6.5}, "T_integer"),
        ({"recency": 7.0}, "recency_le_T"),
        ({"frequency": 4.0, "recency": 3.0}, "frequency_le_recency"),
        ({"frequency": 0.0, "recency": 2.0}, "recency_zero_when_frequency_zero"),
    ],
)
def test_invalid_rows_are_rejected_with_their_rule(change: dict[str, float], rule: str) -> None:
    data = frame([0, 2, 3, 6], [0, 4, 3, 6], [6, 6, 6, 6])
    for column, value in change.items():
        data.loc[2, column] = value
    with pytest.raises(DataValidationError) as info:
        BetaGeoBetaBinomModel().fit(data, time_unit="years")
    assert info.value.rule == rule
    assert info.value.rows == [2]


def test_every_broken_rule_is_reported_at_once() -> None:
    data = frame([0, 2, 1, 6], [0, 7, 0, 6], [6, 6, 6, 6])
    with pytest.raises(DataValidationError) as info:
        BetaGeoBetaBinomModel().fit(data, time_unit="years")
    message = str(info.value)
    assert "recency_le_T" in message and "frequency_zero_when_recency_zero" in message
    assert "3 rule(s) broken" in message  # and x > t_x on row 2


@pytest.mark.parametrize(
    ("x", "t_x", "rule"),
    [([0, 0], [0, 0], "no_repeat_buyers"), ([6, 6], [6, 6], "no_missed_opportunity")],
)
def test_data_that_cannot_identify_the_model_are_rejected(
    x: list[int], t_x: list[int], rule: str
) -> None:
    with pytest.raises(DataValidationError) as info:
        BetaGeoBetaBinomModel().fit(frame(x, t_x, [6, 6]), time_unit="years")
    assert info.value.rule == rule


def test_horizons_must_be_whole_periods(fitted: BetaGeoBetaBinomModel) -> None:
    one = frame([2], [4], [6])
    for bad in (1.5, -1, float("nan"), True):
        with pytest.raises(InputError, match="whole number"):
            fitted.expected_purchases(one, future_t=bad)
    with pytest.raises(InputError):
        fitted.probability_of_purchases([0.5], t=6)
    with pytest.raises(InputError):
        fitted.expected_purchases_new_customer(t=[1, 2.5])
    assert fitted.expected_purchases(one, future_t=np.int64(3)).iloc[0] > 0


def test_predictions_check_the_time_unit(fitted: BetaGeoBetaBinomModel) -> None:
    one = frame([2], [4], [6])
    one.attrs["lifevalue"] = {"time_unit": "weeks"}
    with pytest.raises(DataValidationError, match="years"):
        fitted.probability_alive(one)


def test_unfitted_model_refuses_to_predict() -> None:
    model = BetaGeoBetaBinomModel()
    with pytest.raises(NotFittedError):
        model.probability_alive(frame([1], [1], [6]))
    with pytest.raises(NotFittedError):
        model.probability_of_purchases(0, t=6)
    with pytest.raises(NotFittedError):
        model.discounted_expected_transactions(frame([1], [1], [6]), annual_discount_rate=0.1)


# ------------------------------------------------------------------ persistence


def test_save_and_load_round_trip(
    fitted: BetaGeoBetaBinomModel, donations: pd.DataFrame, tmp_path: object
) -> None:
    payload = json.loads(json.dumps(fitted.to_dict()))
    restored = BaseModel.from_dict(payload)
    assert isinstance(restored, BetaGeoBetaBinomModel)
    assert restored.params_ == fitted.params_
    assert restored.time_unit_ is fitted.time_unit_
    pd.testing.assert_series_equal(
        restored.expected_purchases(donations, future_t=5),
        fitted.expected_purchases(donations, future_t=5),
    )
    path = fitted.save(tmp_path / "bgbb.json")  # type: ignore[operator]
    loaded = load_model(path)
    assert loaded.params_ == fitted.params_
    assert loaded.discrete_time
