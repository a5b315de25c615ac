"""Pareto/NBD: published CDNOW fit, numerics against independent integrals, predictions."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import gammaln, hyperu, xlogy
from tests.models._summaries import summary_arrays, summary_frame

from lifevalue.data.datasets import load_cdnow_reference_summary
from lifevalue.errors import DataValidationError, InputError, NotFittedError
from lifevalue.models import pareto_nbd
from lifevalue.models.base import BaseModel
from lifevalue.models.pareto_nbd import ParetoNBDModel
from lifevalue.units import continuous_discount_rate

# Fader & Hardie (2005, note 009) and Fader, Hardie & Lee (2005, JMR): CDNOW in weeks.
PUBLISHED = {"r": 0.5533, "alpha": 10.578, "s": 0.6062, "beta": 11.668}
PUBLISHED_LL = -9594.97
PUBLISHED_SE = {"r": 0.0476, "alpha": 0.843, "s": 0.187, "beta": 6.21}
CDNOW = PUBLISHED


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return load_cdnow_reference_summary()


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> ParetoNBDModel:
    return ParetoNBDModel().fit(cdnow, time_unit="weeks")


class _Mixture:
    """Expectations over lambda ~ Gamma(r, alpha), mu ~ Gamma(s, beta), done independently.

    In rho = lambda + mu and w = mu / (lambda + mu) the gamma densities make the rho
    integrals elementary, ``int rho^(A-1) e^-(rho c) = Gamma(A) c^-A``, leaving one integral
    over w in (0, 1) with the algebraic end weights w^(s-1) (1-w)^(r+x-1), which quad
    handles exactly (``weight="alg"``). No hypergeometric function is involved.
    """

    def __init__(self, params: dict[str, float], x: float, t_x: float, T: float) -> None:
        self.r, self.alpha, self.s, self.beta = (
            params["r"],
            params["alpha"],
            params["s"],
            params["beta"],
        )
        self.x, self.t_x, self.T = x, t_x, T
        self.A = self.r + self.s + x
        # A reference scale above every c + tau keeps the powers near 1 for quad.
        self.ref = self.alpha + self.beta + T

    def power(self, tau, w, extra=0.0):
        """(c_w + tau)^-(A + extra) * ref^(A + extra), c_w = alpha (1-w) + beta w."""
        c = self.alpha * (1 - w) + self.beta * w
        return np.exp(-(self.A + extra) * np.log((c + tau) / self.ref))

    def integral(self, g) -> float:
        wvar = (self.s - 1, self.r + self.x - 1)
        return integrate.quad(g, 0, 1, weight="alg", wvar=wvar, epsabs=0, epsrel=1e-12, limit=400)[
            0
        ]

    def log_const(self, extra=0.0) -> float:
        return (
            self.r * math.log(self.alpha) + self.s * math.log(self.beta) - gammaln(self.r)
            - gammaln(self.s) + gammaln(self.A + extra) - (self.A + extra) * math.log(self.ref)
        )  # fmt: skip

    def alive(self) -> float:
        """E[lambda^x e^-(lambda+mu) T] (alive throughout), without the constant."""
        return self.integral(lambda w: self.power(self.T, w))

    def died(self) -> float:
        """E[lambda^x mu/(lambda+mu) (e^-(lambda+mu) t_x - e^-(lambda+mu) T)], likewise."""
        return self.integral(lambda w: w * (self.power(self.t_x, w) - self.power(self.T, w)))

    def likelihood(self) -> float:
        return math.exp(self.log_const()) * (self.alive() + self.died())

    def p_alive(self) -> float:
        alive = self.alive()
        return alive / (alive + self.died())

    def conditional_expectation(self, t: float) -> float:
        """E[lambda/mu (1 - e^-mu t) ; alive at T] / L: purchases in (T, T+t]."""

        def g(w):
            c = self.alpha * (1 - w) + self.beta * w
            # (1 - e^-mu t) / mu = (1 - ((c+T) / (c+T+wt))^A) / w in rho, w; A t/(c+T) at w = 0.
            rate = t / (c + self.T)
            gone = -np.expm1(-self.A * np.log1p(w * rate)) / w if w > 0 else self.A * rate
            return (1 - w) * self.power(self.T, w) * gone

        return self.integral(g) / (self.alive() + self.died())

    def dert(self, delta: float) -> float:
        """E[lambda / (mu + delta) ; alive at T] / L, with 1/(mu+delta) = int e^-(mu+delta)u."""

        def g(w):
            inner = integrate.quad(
                lambda u: math.exp(-delta * u) * self.power(self.T + w * u, w, extra=1.0),
                0, np.inf, epsabs=0, epsrel=1e-11, limit=400,
            )[0]  # fmt: skip
            return (1 - w) * inner

        ratio = math.exp(self.log_const(extra=1.0) - self.log_const())
        return ratio * self.integral(g) / (self.alive() + self.died())


# ----------------------------------------------------------------- published fit


def test_cdnow_reference_fit(fitted: ParetoNBDModel) -> None:
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, rel=1e-3), name
    assert fitted.log_likelihood_ == pytest.approx(PUBLISHED_LL, abs=0.01)
    for name, value in PUBLISHED_SE.items():
        assert fitted.std_errors_[name] == pytest.approx(value, rel=0.05), name
    assert fitted.converged_
    assert fitted.time_unit_.value == "weeks"


def test_the_fit_uses_exact_derivatives_and_reaches_the_optimum(
    fitted: ParetoNBDModel,
) -> None:
    assert fitted._has_analytic_hessian()
    assert fitted.optimizer_["gradient_max"] < 1e-8


def _derivatives_by_differences(model, data, counts, theta, h=1e-5):
    """Central differences: of the value for the gradient, of the exact gradient for the Hessian."""
    value, _ = model._objective(data, counts)
    fgh = model._derivatives(data, counts)
    eye = np.eye(len(theta)) * h
    grad = np.array([(value(theta + e) - value(theta - e)) / (2 * h) for e in eye])
    hess = np.array([(fgh(theta + e, False)[1] - fgh(theta - e, False)[1]) / (2 * h) for e in eye])
    return value(theta), grad, hess


EXTREME_ROWS = [
    (221, 103.43, 103.57),  # very many purchases, the last days before T
    (0, 0.0, 10_000.0),  # silent for a very long time
    (50, 9_999.0, 10_000.0),
    (3, 2.0, 2.0),  # last purchase at T: no "died" term
    (1, 0.5, 78.0),
]


@pytest.mark.parametrize(
    ("r", "alpha", "s", "beta"),
    [(0.5533, 10.578, 0.6062, 11.668), (1.2, 3.0, 2.5, 0.4), (0.3, 0.2, 0.15, 40.0)],
)
@pytest.mark.parametrize("rows", ["cdnow", "extreme"])
def test_exact_derivatives_match_finite_differences(cdnow, rows, r, alpha, s, beta) -> None:
    model = ParetoNBDModel(penalizer=0.01)
    if rows == "cdnow":
        data = {k: cdnow[k].to_numpy(float) for k in ("frequency", "recency", "T")}
    else:
        data = summary_arrays(EXTREME_ROWS)
    counts = np.arange(1.0, len(data["T"]) + 1.0) % 3 + 1.0  # unequal weights
    theta = np.log([r, alpha, s, beta])
    f, g, hess = model._derivatives(dict(data), counts)(theta, True)
    f_num, g_num, hess_num = _derivatives_by_differences(model, dict(data), counts, theta)
    assert f == pytest.approx(f_num, rel=1e-13)
    # Differences of the value are good to about 1e-9 here; the Hessian is checked
    # against differences of the exact gradient.
    np.testing.assert_allclose(g, g_num, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(hess, hess_num, rtol=1e-6, atol=1e-8 * np.abs(hess).max())
    np.testing.assert_allclose(hess, hess.T)


@pytest.mark.parametrize(
    ("r", "alpha", "s", "beta", "x", "t"),
    [
        (0.5533, 10.578, 0.6062, 11.668, 221, 103.43),
        (0.5533, 10.578, 0.6062, 11.668, 0, 10_000.0),
        (1.1, 12.7, 1.49, 70.6, 0, 0.0),  # zeta = 0.82
        (0.3, 0.2, 0.15, 40.0, 0, 0.0),  # zeta = 0.995: the finer rule
        (1.5, 20.0, 0.3, 2.0, 5, 1.0),
        (0.24, 142.0, 0.3, 0.05, 133, 150.5),
    ],
)
def test_tail_moments_match_quadrature(r, alpha, s, beta, x, t) -> None:
    # d log I / d(r, alpha, s, beta) and d2 I / I as means under the integrand, by quad.
    xs, ts = np.array([float(x)]), np.array([t])
    log_tail = pareto_nbd._log_tail(r, alpha, s, beta, xs, ts)
    first, second = pareto_nbd._tail_moments(r, alpha, s, beta, xs, ts, log_tail, second=True)
    p, q = r + x, s + 1.0
    log_c = -p * math.log(alpha + t) - q * math.log(beta + t)
    width = (min(alpha, beta) + t) / (p + q)

    def integral(f) -> float:
        def g(tau: float) -> float:
            return f(tau) * math.exp(-p * math.log(alpha + tau) - q * math.log(beta + tau) - log_c)

        return sum(
            integrate.quad(g, a, b, epsabs=0, epsrel=1e-12, limit=500)[0]
            for a, b in [(t, t + width), (t + width, np.inf)]
        )

    def la(tau: float) -> float:
        return math.log(alpha + tau)

    def lb(tau: float) -> float:
        return math.log(beta + tau)

    total = integral(lambda tau: 1.0)
    expected = [
        -integral(la),
        -p * integral(lambda tau: 1 / (alpha + tau)),
        -integral(lb),
        -q * integral(lambda tau: 1 / (beta + tau)),
    ]
    np.testing.assert_allclose(first[:, 0], np.array(expected) / total, rtol=1e-9)
    assert second[0, 0] == pytest.approx(integral(lambda tau: la(tau) ** 2) / total, rel=1e-9)
    assert second[2, 0] == pytest.approx(integral(lambda tau: la(tau) * lb(tau)) / total, rel=1e-9)
    expected_ab = p * q * integral(lambda tau: 1 / ((alpha + tau) * (beta + tau))) / total
    assert second[6, 0] == pytest.approx(expected_ab, rel=1e-9)


# ---------------------------------------------------------------- likelihood numerics


@pytest.mark.parametrize(
    ("r", "alpha", "s", "beta"),
    [(0.5533, 10.578, 0.6062, 11.668), (1.2, 3.0, 2.5, 0.4), (0.3, 0.2, 0.15, 40.0)],
)
def test_likelihood_matches_integral_over_the_mixing_distributions(r, alpha, s, beta) -> None:
    rows = [(0, 0.0, 38.86), (2, 30.43, 38.86), (7, 5.0, 39.0), (12, 35.2, 36.0)]
    ll = ParetoNBDModel._log_likelihood(
        {"r": r, "alpha": alpha, "s": s, "beta": beta}, summary_arrays(rows)
    )
    params = {"r": r, "alpha": alpha, "s": s, "beta": beta}
    for (x, t_x, T), value in zip(rows, ll, strict=True):
        expected = _Mixture(params, x, t_x, T).likelihood()
        assert value == pytest.approx(math.log(expected), abs=1e-9)


def _tail_by_quad(p, q, u, v, t):
    # Scaled by the integrand's value at t so that quad sees numbers near 1.
    log_c = -p * math.log(u + t) - q * math.log(v + t)

    def f(tau):
        return math.exp(-p * math.log(u + tau) - q * math.log(v + tau) - log_c)

    width = (v + t) / (p + q)
    near = integrate.quad(f, t, t + width, epsabs=0, epsrel=1e-12, limit=500)[0]
    far = integrate.quad(f, t + width, np.inf, epsabs=0, epsrel=1e-12, limit=500)[0]
    return math.log(near + far) + log_c


@pytest.mark.parametrize(
    ("r", "alpha", "s", "beta", "x", "t"),
    [
        (0.55, 10.6, 0.61, 11.7, 2, 30.4),  # alpha < beta, Euler form
        (0.55, 10.6, 0.61, 11.7, 0, 0.0),  # alpha < beta, r + x < 1: plain form
        (1.5, 20.0, 0.3, 2.0, 5, 1.0),  # alpha > beta
        (0.24, 142.0, 0.3, 0.05, 133, 150.5),  # z near 1, many purchases
        (0.5, 10.0, 0.6, 500.0, 120, 2.0),  # scipy's hyp2f1 overflows: quadrature
        (0.7, 348.0, 1.13, 0.034, 167, 0.09),  # the same with alpha > beta
        (0.5533, 10.578, 0.6062, 11.668, 221, 103.43),
        (0.5533, 10.578, 0.6062, 11.668, 0, 10_000.0),
    ],
)
def test_log_tail_matches_quadrature(r, alpha, s, beta, x, t) -> None:
    p, q, u, v = (r + x, s + 1, alpha, beta) if alpha >= beta else (s + 1, r + x, beta, alpha)
    value = pareto_nbd._log_tail(r, alpha, s, beta, np.array([x]), np.array([t]))[0]
    assert value == pytest.approx(_tail_by_quad(p, q, u, v, t), rel=1e-11, abs=1e-10)


def test_tail_quadrature_agrees_with_hypergeometric_form() -> None:
    rng = np.random.default_rng(5)
    n = 200
    r, s = np.exp(rng.uniform(-2, 2, n)), np.exp(rng.uniform(-2, 2, n))
    alpha, beta = np.exp(rng.uniform(-2, 5, n)), np.exp(rng.uniform(-2, 5, n))
    x, t = rng.integers(0, 60, n).astype(float), np.exp(rng.uniform(-3, 6, n))
    closed = pareto_nbd._log_tail(r, alpha, s, beta, x, t)
    swap = alpha >= beta
    p, q = np.where(swap, r + x, s + 1), np.where(swap, s + 1, r + x)
    quad = pareto_nbd._log_tail_quadrature(
        p, q, np.maximum(alpha, beta), np.minimum(alpha, beta), t
    )
    np.testing.assert_allclose(quad, closed, rtol=1e-12, atol=1e-10)


def test_extreme_customers_are_finite(fitted: ParetoNBDModel) -> None:
    frame = summary_frame([(221, 103.43, 103.57), (0, 0.0, 10_000.0), (50, 9_999.0, 10_000.0)])
    ll = ParetoNBDModel._log_likelihood(fitted.params_, summary_arrays([(221, 103.43, 103.57)]))
    assert np.isfinite(ll).all()
    alive = fitted.probability_alive(frame)
    assert alive.between(0, 1).all()
    # A customer who bought 221 times up to the last days is alive; one silent for 10,000
    # weeks is not.
    assert alive["c0"] > 0.99
    assert alive["c1"] < 0.05
    assert np.isfinite(fitted.expected_purchases(frame, future_t=52)).all()
    assert np.isfinite(
        fitted.discounted_expected_transactions(frame, annual_discount_rate=0.1)
    ).all()


def test_log_diff_is_exact_near_cancellation() -> None:
    a = np.log(1.0)
    b = np.log1p(-1e-12)
    assert pareto_nbd._log_diff(a, b) == pytest.approx(math.log(1e-12), rel=1e-9)
    assert pareto_nbd._log_diff(0.0, 0.0) == -np.inf
    assert pareto_nbd._log_diff(0.0, 1e-15) == -np.inf  # rounding: b above a


# -------------------------------------------------------------------- predictions


def test_probability_alive_matches_integral(fitted: ParetoNBDModel) -> None:
    rows = [(2, 30.43, 38.86), (0, 0.0, 38.86), (10, 12.0, 39.0)]
    p = fitted.params_
    alive = fitted.probability_alive(summary_frame(rows)).to_numpy()
    for (x, t_x, T), value in zip(rows, alive, strict=True):
        assert value == pytest.approx(_Mixture(p, x, t_x, T).p_alive(), rel=1e-9)


def test_probability_alive_in_the_future(fitted: ParetoNBDModel) -> None:
    frame = summary_frame([(2, 30.43, 38.86), (0, 0.0, 38.86)])
    now = fitted.probability_alive(frame)
    later = fitted.probability_alive(frame, future_t=26.0)
    s, beta = fitted.params_["s"], fitted.params_["beta"]
    factor = ((beta + frame["T"].to_numpy()) / (beta + frame["T"].to_numpy() + 26.0)) ** s
    np.testing.assert_allclose(later.to_numpy(), now.to_numpy() * factor, rtol=1e-12)
    assert (later < now).all()


def test_conditional_expectation_matches_integral(fitted: ParetoNBDModel) -> None:
    rows = [(2, 30.43, 38.86), (0, 0.0, 38.86), (10, 12.0, 39.0)]
    p = fitted.params_
    horizon = 39.0
    expected = fitted.expected_purchases(summary_frame(rows), future_t=horizon).to_numpy()
    for (x, t_x, T), value in zip(rows, expected, strict=True):
        exact = _Mixture(p, x, t_x, T).conditional_expectation(horizon)
        assert value == pytest.approx(exact, rel=1e-9)


def test_expected_purchases_is_continuous_through_s_equal_one() -> None:
    data = summary_arrays([(3, 20.0, 39.0)])
    values = [
        ParetoNBDModel._expected_purchases(
            {"r": 0.6, "alpha": 10.0, "s": s, "beta": 12.0}, data, future_t=52.0
        )[0]
        for s in (1 - 1e-6, 1.0, 1 + 1e-6)
    ]
    assert values[1] == pytest.approx(values[0], rel=1e-5)
    assert values[1] == pytest.approx(values[2], rel=1e-5)


def test_new_customer_expectation_matches_integral_and_pmf(fitted: ParetoNBDModel) -> None:
    t = 39.0
    direct = _Mixture(fitted.params_, 0, 0.0, 0.0).conditional_expectation(t)
    assert fitted.expected_purchases_new_customer(t=t) == pytest.approx(direct, rel=1e-8)
    k = np.arange(4000)
    pmf = fitted.probability_of_purchases(k, t=t)
    assert float(pmf @ k) == pytest.approx(direct, rel=1e-6)
    times = np.array([0.0, 1.0, 52.0])
    out = fitted.expected_purchases_new_customer(t=times)
    assert out.shape == (3,)
    assert out[0] == 0.0
    assert np.all(np.diff(out) > 0)


def _pmf_by_quad(r, alpha, s, beta, k, t):
    log_c = gammaln(r + k) - gammaln(r) - gammaln(k + 1)
    alive = math.exp(
        log_c + r * math.log(alpha / (alpha + t)) + xlogy(k, t / (alpha + t))
        + s * math.log(beta / (beta + t))
    )  # fmt: skip
    log_c += math.log(s) + r * math.log(alpha) + s * math.log(beta)

    def f(tau):
        return math.exp(
            log_c + xlogy(k, tau) - (r + k) * math.log(alpha + tau) - (s + 1) * math.log(beta + tau)
        )

    points = [p for p in (alpha * k / r, alpha, beta) if 0 < p < t]
    died = integrate.quad(f, 0, t, epsabs=1e-300, epsrel=1e-11, limit=1000, points=points or None)[
        0
    ]
    return alive + died


@pytest.mark.parametrize(
    ("params", "t"),
    [
        ((0.5533, 10.578, 0.6062, 11.668), 39.0),
        ((2.0, 1.0, 0.5, 20.0), 5.0),
        ((0.3, 50.0, 3.0, 0.5), 200.0),
    ],
)
def test_pmf_matches_quadrature(params, t) -> None:
    named = dict(zip(("r", "alpha", "s", "beta"), params, strict=True))
    k = np.array([0, 1, 2, 5, 17, 60, 150])
    values = ParetoNBDModel._probability_of_purchases(named, k, t=t)
    expected = [_pmf_by_quad(*params, int(kk), t) for kk in k]
    np.testing.assert_allclose(values, expected, rtol=1e-9)


def test_pmf_at_time_zero_and_sums_to_one(fitted: ParetoNBDModel) -> None:
    np.testing.assert_array_equal(fitted.probability_of_purchases([0, 1, 5], t=0.0), [1, 0, 0])
    for t in (0.5, 39.0, 78.0):
        total = fitted.probability_of_purchases(np.arange(3000), t=t).sum()
        assert total == pytest.approx(1.0, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(
    r=st.floats(0.05, 5), alpha=st.floats(0.1, 50), s=st.floats(0.05, 5),
    beta=st.floats(0.1, 50), t=st.floats(0.01, 100),
)  # fmt: skip
def test_pmf_is_a_distribution(r, alpha, s, beta, t) -> None:
    named = {"r": r, "alpha": alpha, "s": s, "beta": beta}
    pmf = ParetoNBDModel._probability_of_purchases(named, np.arange(400), t=t)
    assert np.all((pmf >= 0) & (pmf <= 1))
    assert pmf.sum() <= 1 + 1e-9
    # The tail beyond 400 purchases is at most the mean over 400 (Markov).
    mean = float(ParetoNBDModel._expected_purchases_new(named, t))
    assert pmf.sum() >= 1 - mean / 400 - 1e-9


@settings(max_examples=40, deadline=None)
@given(
    r=st.floats(0.05, 5), alpha=st.floats(0.1, 50), s=st.floats(0.05, 5),
    beta=st.floats(0.1, 50), x=st.integers(0, 300), gap=st.floats(0, 1),
    T=st.floats(0.5, 2000), t1=st.floats(0, 100), t2=st.floats(0, 100),
)  # fmt: skip
def test_predictions_are_probabilities_and_monotone(r, alpha, s, beta, x, gap, T, t1, t2):
    named = {"r": r, "alpha": alpha, "s": s, "beta": beta}
    t_x = 0.0 if x == 0 else T * gap
    data = summary_arrays([(x, t_x, T)])
    short, long = sorted((t1, t2))
    with np.errstate(all="ignore"):
        alive = ParetoNBDModel._p_alive(named, data)
        alive_later = ParetoNBDModel._p_alive(named, data, future_t=long)
        e_short = ParetoNBDModel._expected_purchases(named, data, future_t=short)
        e_long = ParetoNBDModel._expected_purchases(named, data, future_t=long)
        ll = ParetoNBDModel._log_likelihood(named, data)
    # A density in the purchase times, so above 1 at times; a probability when x = 0.
    assert np.isfinite(ll).all() and (x > 0 or ll[0] <= 1e-12)
    assert 0 <= alive[0] <= 1 and alive_later[0] <= alive[0] + 1e-15
    assert 0 <= e_short[0] <= e_long[0] * (1 + 1e-12) + 1e-300


def test_dert_matches_integral(fitted: ParetoNBDModel) -> None:
    rows = [(2, 30.43, 38.86), (0, 0.0, 38.86), (10, 12.0, 39.0)]
    annual = 0.15
    delta = continuous_discount_rate(annual, "weeks")
    dert = fitted.discounted_expected_transactions(summary_frame(rows), annual_discount_rate=annual)
    for (x, t_x, T), value in zip(rows, dert.to_numpy(), strict=True):
        assert value == pytest.approx(_Mixture(fitted.params_, x, t_x, T).dert(delta), rel=1e-8)
    assert dert.name == "dert"
    assert list(dert.index) == ["c0", "c1", "c2"]


def test_dert_uses_the_time_unit(cdnow: pd.DataFrame, fitted: ParetoNBDModel) -> None:
    # The same customers in days, fitted in days, have the same DERT.
    days = cdnow.assign(recency=cdnow["recency"] * 7, T=cdnow["T"] * 7)
    in_days = ParetoNBDModel().fit(days, time_unit="days")
    week_rows = summary_frame([(2, 30.43, 38.86)])
    day_rows = summary_frame([(2, 30.43 * 7, 38.86 * 7)])
    day_rows.attrs["lifevalue"] = {"time_unit": "days"}
    a = fitted.discounted_expected_transactions(week_rows, annual_discount_rate=0.1)
    b = in_days.discounted_expected_transactions(day_rows, annual_discount_rate=0.1)
    assert b.iloc[0] == pytest.approx(a.iloc[0], rel=1e-3)


@pytest.mark.parametrize(
    ("s", "z", "rtol"),
    [
        (0.6, 1e-6, 1e-12),  # s < 1: exact through the upper incomplete gamma function
        (0.6, 3.0, 1e-12),
        (0.6, 50.0, 1e-12),
        (3.0, 1e5, 1e-9),  # large z: z^-s (1 - s/z)
        (3.0, 1e-8, 1e-7),  # small z, s > 1: z^(1-s) / (s-1)
        (1.0, 1e-7, 1e-12),  # s = 1: e^z E1(z)
    ],
)
def test_log_hyperu_fallbacks_agree_with_hyperu(s, z, rtol) -> None:
    fallback = pareto_nbd._log_hyperu_fallback(np.array([s]), np.array([z]))[0]
    assert fallback == pytest.approx(math.log(hyperu(s, s, z)), rel=rtol)


def test_log_hyperu_where_scipy_over_or_underflows() -> None:
    for z in (1e-12, 1e300):
        scipy_value = hyperu(50.0, 50.0, z)
        assert not (np.isfinite(scipy_value) and scipy_value > 0)
    values = pareto_nbd._log_hyperu_ss(np.array([50.0, 50.0]), np.array([1e-12, 1e300]))
    assert values[0] == pytest.approx(-math.log(49) + 49 * 12 * math.log(10), rel=1e-12)
    assert values[1] == pytest.approx(-50 * 300 * math.log(10), rel=1e-12)


def test_expected_purchases_interval(fitted: ParetoNBDModel, cdnow: pd.DataFrame) -> None:
    head = cdnow.head(50)
    out = fitted.expected_purchases_interval(head, future_t=39.0, level=0.9, n_draws=200)
    assert list(out.columns) == [
        "expected_purchases", "expected_purchases_low", "expected_purchases_high",
    ]  # fmt: skip
    point = fitted.expected_purchases(head, future_t=39.0)
    np.testing.assert_allclose(out["expected_purchases"], point)
    assert (out["expected_purchases_low"] <= point + 1e-12).all()
    assert (out["expected_purchases_high"] >= point - 1e-12).all()
    assert (out["expected_purchases_high"] > out["expected_purchases_low"]).all()


def test_cdnow_holdout_total_is_close_to_the_published_forecast(
    fitted: ParetoNBDModel, cdnow: pd.DataFrame
) -> None:
    # FHL (2005) compare with 1,788 actual holdout purchases over 39 weeks (sample of 2,357).
    total = fitted.expected_purchases(cdnow, future_t=39.0).sum()
    assert 1600 < total < 1900


# ---------------------------------------------------------- parameter recovery


def _simulate(r, alpha, s, beta, n, seed):
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    mu = rng.gamma(s, 1 / beta, n)
    # Cohorts acquired every 13 weeks; times in whole weeks keep the patterns few.
    T = rng.choice([26.0, 39.0, 52.0, 65.0, 78.0], n)
    active = np.minimum(rng.exponential(1 / mu), T)
    x = rng.poisson(lam * active)
    # The last of x uniform purchase times in (0, active).
    t_x = np.where(x > 0, active * rng.random(n) ** (1 / np.maximum(x, 1)), 0.0)
    t_x = np.where(x > 0, np.clip(t_x.round(0), 1.0, T), 0.0)
    frame = pd.DataFrame({"frequency": x, "recency": t_x, "T": T})
    return frame.groupby(["frequency", "recency", "T"]).size().rename("weights").reset_index()


def test_parameter_recovery_on_simulated_data() -> None:
    truth = {"r": 0.8, "alpha": 8.0, "s": 0.7, "beta": 15.0}
    data = _simulate(*truth.values(), n=20_000, seed=11)
    model = ParetoNBDModel().fit(data, weights="weights", time_unit="weeks")
    ci = model.confidence_intervals(0.95)
    for name, value in truth.items():
        assert ci.loc[name, "lower"] < value < ci.loc[name, "upper"], (name, ci)
    assert model.n_customers_ == 20_000


# ------------------------------------------------------------ validation and I/O


@pytest.mark.parametrize(
    ("row", "rule"),
    [
        ((np.nan, 0.0, 10.0), "frequency_finite"),
        ((-1, 0.0, 10.0), "frequency_non_negative"),
        ((1.5, 2.0, 10.0), "frequency_integer"),
        ((2, 12.0, 10.0), "recency_le_T"),
        ((0, 3.0, 10.0), "recency_zero_when_frequency_zero"),
        ((1, -1.0, 10.0), "recency_non_negative"),
    ],
)
def test_invalid_rows_are_named(cdnow: pd.DataFrame, row, rule) -> None:
    frame = summary_frame([(1, 2.0, 10.0), row, (3, 4.0, 10.0)])
    with pytest.raises(DataValidationError) as info:
        ParetoNBDModel().fit(frame)
    assert info.value.rule == rule
    assert info.value.rows == ["c1"]
    assert "c1" in str(info.value)


def test_every_broken_rule_is_reported_at_once() -> None:
    frame = summary_frame([(1.5, 2.0, 10.0), (2, 12.0, 10.0)])
    with pytest.raises(DataValidationError) as info:
        ParetoNBDModel().fit(frame)
    assert "frequency_integer" in str(info.value) and "recency_le_T" in str(info.value)


def test_no_repeat_buyers_is_refused() -> None:
    with pytest.raises(DataValidationError) as info:
        ParetoNBDModel().fit(summary_frame([(0, 0.0, 10.0), (0, 0.0, 20.0)]))
    assert info.value.rule == "no_repeat_buyers"


def test_invalid_prediction_arguments(fitted: ParetoNBDModel) -> None:
    frame = summary_frame([(1, 2.0, 10.0)])
    with pytest.raises(InputError, match="future_t"):
        fitted.expected_purchases(frame, future_t=-1.0)
    with pytest.raises(InputError, match="future_t"):
        fitted.probability_alive(frame, future_t=float("nan"))
    with pytest.raises(InputError, match="'k'"):
        fitted.probability_of_purchases([1.5], t=10.0)
    with pytest.raises(InputError, match="'k'"):
        fitted.probability_of_purchases(-1, t=10.0)
    with pytest.raises(InputError):
        fitted.discounted_expected_transactions(frame, annual_discount_rate=0.0)
    with pytest.raises(ValueError):
        fitted.discounted_expected_transactions(frame, annual_discount_rate=-0.1)
    with pytest.raises(DataValidationError, match="recency"):
        fitted.expected_purchases(summary_frame([(1, 20.0, 10.0)]), future_t=1.0)


def test_unfitted_model_raises() -> None:
    with pytest.raises(NotFittedError):
        ParetoNBDModel().expected_purchases_new_customer(t=1.0)
    with pytest.raises(NotFittedError):
        ParetoNBDModel().probability_alive(summary_frame([(1, 2.0, 10.0)]))


def test_save_load_round_trip(fitted: ParetoNBDModel, tmp_path) -> None:
    payload = json.loads(json.dumps(fitted.to_dict()))
    assert payload["model"] == "pnbd"
    loaded = BaseModel.from_dict(payload)
    assert isinstance(loaded, ParetoNBDModel)
    assert loaded.params_ == fitted.params_
    frame = summary_frame([(2, 30.43, 38.86), (0, 0.0, 38.86)])
    pd.testing.assert_series_equal(
        loaded.expected_purchases(frame, future_t=10.0),
        fitted.expected_purchases(frame, future_t=10.0),
    )
    path = fitted.save(tmp_path / "pnbd.json")
    from lifevalue.models.base import load_model

    again = load_model(path)
    assert again.params_ == fitted.params_
    assert again.std_errors_ == pytest.approx(fitted.std_errors_)


def test_predictions_broadcast_over_parameter_draws(fitted: ParetoNBDModel) -> None:
    # Draws of shape (n_draws, 1) against customers (or counts) of shape (n,).
    draws = fitted.param_draws(3)
    stacked = {k: v[:, None] for k, v in draws.items()}
    k = np.array([0, 1, 4, 30])
    data = summary_arrays([(2, 30.43, 38.86), (0, 0.0, 38.86), (221, 103.43, 103.57)])
    pmf = ParetoNBDModel._probability_of_purchases(stacked, k, t=39.0)
    dert = ParetoNBDModel._dert(stacked, data, delta=0.002)
    assert pmf.shape == (3, 4) and dert.shape == (3, 3)
    for i in range(3):
        one = {n: float(v[i]) for n, v in draws.items()}
        np.testing.assert_allclose(
            pmf[i], ParetoNBDModel._probability_of_purchases(one, k, t=39.0), rtol=1e-12
        )
        np.testing.assert_allclose(
            dert[i], ParetoNBDModel._dert(one, data, delta=0.002), rtol=1e-12
        )
