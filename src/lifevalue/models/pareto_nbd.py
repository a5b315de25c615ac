"""Pareto/NBD: Poisson purchasing with exponential lifetimes, both rates gamma-mixed.

Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987), Counting your customers: who
are they and what will they do next? *Management Science* 33(1), 1-24.

Numerics follow Fader, P. S. & Hardie, B. G. S. (2005), "A note on deriving the
Pareto/NBD model and related expressions" (note 009), Fader & Hardie (2006), "Deriving
an expression for P(X(t) = x) under the Pareto/NBD model" (note 012), and Fader, P. S.,
Hardie, B. G. S. & Lee, K. L. (2005), RFM and CLV: using iso-value curves for customer
base analysis, *Journal of Marketing Research* 42(4), 415-430 (DERT).

While alive, a customer buys in a Poisson process with rate lambda ~ Gamma(r, alpha);
their unobserved lifetime is exponential with rate mu ~ Gamma(s, beta).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.special import (
    exp1,
    expit,
    gammaincc,
    gammaln,
    hyp2f1,
    hyperu,
    logsumexp,
    roots_legendre,
    xlogy,
)

from lifevalue.errors import InputError
from lifevalue.models._arrays import by_value, by_values
from lifevalue.models._repeat import RepeatPurchaseModel
from lifevalue.models.base import Arrays, Params
from lifevalue.units import continuous_discount_rate

_NAMES = ("r", "alpha", "s", "beta")
# Gauss-Legendre rule of the quadratures: their integrands are analytic within a strip of
# half-width pi around the real axis, so 400 nodes reach rounding level over intervals far
# longer than the ones used (at most about 120 units of log-time).
_GL_NODES, _GL_WEIGHTS = roots_legendre(400)
# A quadrature keeps the range where the log-integrand is within this of its maximum.
_DROP = 50.0


class ParetoNBDModel(RepeatPurchaseModel):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987) of non-contractual purchasing.

    Reads ``frequency`` (x, repeat purchases), ``recency`` (t_x, time of the last
    purchase since the first) and ``T`` (time since the first purchase), in the summary's
    time unit. Parameters ``r, alpha`` (gamma purchase rate, shape and rate) and
    ``s, beta`` (gamma dropout rate, shape and rate).

    The gradient of the likelihood is left to the base's central finite differences: the
    derivatives by ``r`` and ``s`` need derivatives of the Gauss hypergeometric function
    by its parameters, which scipy does not provide.
    """

    model_name = "pnbd"
    param_names = _NAMES

    def _initial_params(self, data: Arrays, weights: np.ndarray) -> dict[str, float]:
        rate = self._purchase_rate_start(data, weights)
        mean_t = float(weights @ data["T"]) / max(float(weights.sum()), 1e-9)
        return {"r": 1.0, "alpha": 1.0 / rate, "s": 1.0, "beta": max(mean_t, 1e-3)}

    @staticmethod
    def _log_likelihood(params: Params, data: Arrays) -> np.ndarray:
        """Log of the Pareto/NBD likelihood, per customer.

        Fader & Hardie (2005, note 009), section 3 (SMC 1987 did not state it): it is
        ``Gamma(r+x) alpha^r beta^s / Gamma(r)`` times the sum of a term for "alive at T",
        ``1 / ((alpha+T)^(r+x) (beta+T)^s)``, and a term for "died in (t_x, T]",
        ``s / (r+s+x) * A_0``, where ``A_0 / (r+s+x)`` is the integral of
        ``(alpha+tau)^-(r+x) (beta+tau)^-(s+1)`` over (t_x, T]. That integral is the
        difference of two tails (see :func:`_log_tail`), taken in log space.
        """
        r, alpha, s, beta = (params[k] for k in _NAMES)
        head = (
            by_value(data, "frequency", lambda u: gammaln(r + u))
            - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        )  # fmt: skip
        return head + np.logaddexp(*_log_terms(params, data))

    # ------------------------------------------------------------------ predictions

    @staticmethod
    def _p_alive(params: Params, data: Arrays, *, future_t: float = 0.0) -> np.ndarray:
        """P(alive at T + future_t | x, t_x, T).

        P(alive at T) is the "alive" term's share of the likelihood (note 009, section 5);
        a customer alive at T has the dropout rate's posterior Gamma(s, beta+T), so
        survives t more with probability ``((beta+T)/(beta+T+t))^s``.
        """
        s, beta = params["s"], params["beta"]
        T = data["T"]
        alive, died = _log_terms(params, data)
        log_p = alive - np.logaddexp(alive, died) - s * np.log1p(future_t / (beta + T))
        return np.clip(np.exp(log_p), 0.0, 1.0)

    @staticmethod
    def _expected_purchases(params: Params, data: Arrays, *, future_t: float) -> np.ndarray:
        """E[X(T, T+t] | x, t_x, T]: Fader & Hardie (2005, note 009), section 6.

        ``P(alive) (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]``,
        continuous through s = 1.
        """
        return ParetoNBDModel._expected_purchases_if_alive(
            params, data, future_t=future_t
        ) * ParetoNBDModel._p_alive(params, data)

    @staticmethod
    def _expected_purchases_if_alive(
        params: Params, data: Arrays, *, future_t: float
    ) -> np.ndarray:
        """Purchases in (T, T+t] of a customer alive at T (the expectation without P(alive))."""
        r, alpha, s, beta = (params[k] for k in _NAMES)
        x, T = data["frequency"], data["T"]
        scale = (r + x) * (beta + T) / (alpha + T)
        return scale * _one_minus_power(s - 1.0, np.log1p(future_t / (beta + T)))

    @staticmethod
    def _expected_purchases_new(params: Params, t: Any) -> np.ndarray:
        """E[X(t)] of a new customer (note 009, section 4).

        ``r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]``, continuous through s = 1.
        """
        r, alpha, s, beta = (params[k] for k in _NAMES)
        return r * beta / alpha * _one_minus_power(s - 1.0, np.log1p(np.asarray(t) / beta))

    @staticmethod
    def _probability_of_purchases(params: Params, k: Any, *, t: float) -> np.ndarray:
        """P(X(t) = k) for a new customer: Fader & Hardie (2006, note 012), sections 3-4.

        The first term is the NBD probability of k purchases times the probability of
        being alive at t; the second, the probability of k purchases and dying at some
        tau < t, is the note's integral
        ``s alpha^r beta^s Gamma(r+k) / (Gamma(r) k!) * int_0^t tau^k (alpha+tau)^-(r+k)
        (beta+tau)^-(s+1) dtau``. The note's closed form of it (B_1 - B_2) cancels
        badly for small t and needs hypergeometric functions that overflow for k beyond
        about 100, so the integral is taken by quadrature in log tau, where its
        integrand is log-concave (:func:`_log_integrate_concave`).
        """
        r, alpha, s, beta = (np.asarray(params[n], dtype=float) for n in _NAMES)
        k = np.asarray(k, dtype=float)
        first = (
            gammaln(r + k) - gammaln(r) - gammaln(k + 1)
            + r * np.log(alpha / (alpha + t)) + xlogy(k, t / (alpha + t))
            + s * np.log(beta / (beta + t))
        )  # fmt: skip
        if t <= 0:
            return np.exp(np.broadcast_to(first, np.broadcast(first, r, s).shape)).copy()
        # In y = log(tau / alpha) the integrand is exp(phi(y)), phi concave.
        k1, r1, s1 = k[..., None], r[..., None], s[..., None]
        shift = np.log(alpha / beta)[..., None]

        def phi(y: np.ndarray) -> np.ndarray:
            return (
                (k1 + 1) * y
                - (r1 + k1) * np.logaddexp(0.0, y)
                - (s1 + 1) * np.logaddexp(0.0, y + shift)
            )

        def slope(y: np.ndarray) -> np.ndarray:
            return (k1 + 1) - (r1 + k1) * expit(y) - (s1 + 1) * expit(y + shift)

        # The mode solves slope = 0; it lies where each logistic term brackets it.
        centre = np.log((k1 + 1) / (r1 + s1))
        lo, hi = centre - np.maximum(shift, 0.0), centre - np.minimum(shift, 0.0)
        mode = _bisect(slope, np.broadcast_to(lo, np.broadcast(lo, hi).shape), hi)
        y_t = np.log(t / alpha)[..., None]
        top = np.minimum(mode, y_t)
        log_int = _log_integrate_concave(phi, top, -np.inf, y_t)[..., 0]
        second = (
            gammaln(r + k) - gammaln(r) - gammaln(k + 1) + np.log(s) + s * np.log(beta)
            - (s + 1) * np.log(beta) + np.log(alpha) + log_int
        )  # fmt: skip
        return np.clip(np.exp(np.logaddexp(first, second)), 0.0, 1.0)

    @staticmethod
    def _dert(params: Params, data: Arrays, *, delta: float) -> np.ndarray:
        """Discounted expected residual transactions: Fader, Hardie & Lee (2005, JMR), eq. (2).

        ``alpha^r beta^s delta^(s-1) Gamma(r+x+1) Psi(s, s; delta(beta+T))
        / (Gamma(r) (alpha+T)^(r+x+1) L)``, with ``delta`` the continuous discount rate
        per time unit and Psi the confluent hypergeometric function of the second kind.
        Dividing by the likelihood L is the same as multiplying by P(alive) over its
        alive term, which is how it is computed here, in logs.
        """
        r, alpha, s, beta = (params[k] for k in _NAMES)
        x, T = data["frequency"], data["T"]
        alive, died = _log_terms(params, data)
        log_p_alive = alive - np.logaddexp(alive, died)
        log_dert = (
            log_p_alive + np.log(r + x) - np.log(alpha + T) + (s - 1.0) * np.log(delta)
            + s * np.log(beta + T) + _log_hyperu_ss(s, delta * (beta + T))
        )  # fmt: skip
        return np.exp(log_dert)

    @staticmethod
    def _discounted_expected_transactions(
        params: Params, data: Arrays, *, annual_discount_rate: float, unit: Any
    ) -> np.ndarray:
        """DERT at an annual rate, the form the CLV's infinite horizon asks for."""
        delta = continuous_discount_rate(annual_discount_rate, unit)
        return ParetoNBDModel._dert(params, data, delta=delta)

    def discounted_expected_transactions(
        self, summary: pd.DataFrame, *, annual_discount_rate: float
    ) -> pd.Series:
        """Discounted expected residual transactions (DERT) of each customer, in closed form.

        The expected number of future purchases after T, each discounted continuously to
        T at the rate equivalent to ``annual_discount_rate`` (0.1 for 10% a year). Times
        a margin per purchase, it is the residual lifetime value.

        Returns
        -------
        pandas.Series
            ``dert`` per customer, indexed by ``customer_id``.
        """
        self._check_fitted()
        delta = continuous_discount_rate(annual_discount_rate, self.time_unit_)
        if delta <= 0:
            raise InputError(
                "DERT needs a positive discount rate: undiscounted expected transactions "
                f"of a Pareto/NBD customer are infinite when s <= 1. Got {annual_discount_rate!r}."
            )
        return self._predict(self._dert, summary, name="dert", delta=delta)


# ---------------------------------------------------------------------- numerics


def _log_tail(r: Any, alpha: Any, s: Any, beta: Any, x: Any, t: Any) -> np.ndarray:
    """Log of the integral of ``(alpha+tau)^-(r+x) (beta+tau)^-(s+1)`` over tau > t.

    Writing u, v for the larger and smaller of alpha and beta and p, q for the
    exponents that go with them, the integral is
    ``(u+t)^(1-p-q) 2F1(q, p+q-1; p+q; z) / (p+q-1)`` with ``z = (u-v)/(u+t)`` in [0, 1)
    (note 009, eqs. 19-20, with the roles of alpha and beta swapped when alpha < beta).
    Near z = 1 that series converges only when q < 1; for q >= 1 its Euler transform,
    ``(u+t)^-p (v+t)^(1-q) 2F1(1, p; p+q; z) / (p+q-1)``, converges instead, so each row
    takes whichever of the two converges at z = 1.
    """
    a_ge_b = alpha >= beta
    u, v = np.maximum(alpha, beta), np.minimum(alpha, beta)
    p = np.where(a_ge_b, r + x, s + 1.0)
    q = np.where(a_ge_b, s + 1.0, r + x)
    log_u, log_v = np.log(u + t), np.log(v + t)
    z = (u - v) / (u + t)
    euler = q >= 1.0
    f = hyp2f1(np.where(euler, 1.0, q), np.where(euler, p, p + q - 1.0), p + q, z)
    head = np.where(euler, -p * log_u + (1.0 - q) * log_v, (1.0 - p - q) * log_u)
    out = head + np.log(f) - np.log(p + q - 1.0)
    bad = ~(np.isfinite(f) & (f > 0))
    if np.any(bad):
        # scipy's hyp2f1 overflows for p + q beyond about 100 with z above 0.9 (a customer
        # with very many purchases in a short time): integrate those rows instead.
        out = np.array(out, dtype=float, copy=True)
        sel = np.broadcast_arrays(p, q, u, v, t, bad)
        p_, q_, u_, v_, t_ = (np.asarray(a, dtype=float)[sel[-1]] for a in sel[:-1])
        out[bad] = _log_tail_quadrature(p_, q_, u_, v_, t_)
    return out


def _log_tail_quadrature(
    p: np.ndarray, q: np.ndarray, u: np.ndarray, v: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Log of the integral of ``(u+tau)^-p (v+tau)^-q`` over tau > t (u >= v), by quadrature.

    In y = log(v + tau) the integrand is ``exp((1-q) y - p log(e^y + u - v))``, whose
    logarithm is concave with its maximum at y = log(v+t) when q >= 1 and at
    ``log(u-v) + logit((1-q)/p)`` otherwise.
    """
    p1, q1 = p[:, None], q[:, None]
    log_gap = np.log(u - v)[:, None]

    def phi(y: np.ndarray) -> np.ndarray:
        return (1.0 - q1) * y - p1 * np.logaddexp(y, log_gap)

    start = np.log(v + t)[:, None]
    ratio = np.clip((1.0 - q1) / p1, 1e-300, 1.0 - 1e-16)
    inner = np.where(q1 < 1.0, log_gap + np.log(ratio) - np.log1p(-ratio), -np.inf)
    top = np.maximum(start, inner)
    return _log_integrate_concave(phi, top, start, np.inf)[:, 0]


def _log_terms(params: Params, data: Arrays) -> tuple[np.ndarray, np.ndarray]:
    """Logs of the "alive at T" and "died in (t_x, T]" terms of the likelihood.

    Both lack the common factor ``Gamma(r+x) alpha^r beta^s / Gamma(r)``.
    """
    r, alpha, s, beta = (params[k] for k in _NAMES)
    x = data["frequency"]
    log_t = by_value(data, "T", lambda u: np.log(alpha + u))
    alive = -(r + x) * log_t - s * by_value(data, "T", lambda u: np.log(beta + u))
    # The tails depend on (x, t_x) and (x, T) only: far fewer combinations than patterns.
    died = np.log(s) + _log_diff(
        by_values(data, ("frequency", "recency"), lambda u, w: _log_tail(r, alpha, s, beta, u, w)),
        by_values(data, ("frequency", "T"), lambda u, w: _log_tail(r, alpha, s, beta, u, w)),
    )
    return alive, died


def _log_diff(log_a: Any, log_b: Any) -> np.ndarray:
    """``log(a - b)`` from ``log a`` and ``log b``; -inf where rounding makes b >= a."""
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.minimum(np.asarray(log_b) - log_a, 0.0)
        # log(1 - e^d): expm1 keeps full relative precision near d = 0 (b close to a);
        # far from it the log of a number near 1 is exact to ~1e-16 in absolute terms,
        # which is all a log-likelihood needs.
        return log_a + np.log(-np.expm1(d))


def _one_minus_power(k: Any, log_ratio: Any) -> np.ndarray:
    """``(1 - exp(-k L)) / k`` with ``L = log_ratio >= 0``, continuous through k = 0 (= L)."""
    kl = k * log_ratio
    small = np.abs(kl) < 1e-8
    safe_k = np.where(small, 1.0, k)
    return np.where(small, log_ratio * (1.0 - kl / 2.0), -np.expm1(-kl) / safe_k)


def _log_hyperu_ss(s: Any, z: Any) -> np.ndarray:
    """``log U(s, s, z)`` (confluent hypergeometric function of the second kind).

    scipy's ``hyperu`` where it returns a finite positive value, else
    :func:`_log_hyperu_fallback`.
    """
    s, z = np.broadcast_arrays(np.asarray(s, dtype=float), np.asarray(z, dtype=float))
    with np.errstate(all="ignore"):
        value = hyperu(s, s, z)
        ok = np.isfinite(value) & (value > 0)
        if np.all(ok):
            return np.log(value)
        return np.where(ok, np.log(np.where(ok, value, 1.0)), _log_hyperu_fallback(s, z))


def _log_hyperu_fallback(s: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``log U(s, s, z)`` where ``hyperu`` over- or underflows.

    ``U(s, s, z) = e^z Gamma(1-s, z)``: exact through the regularised upper incomplete
    gamma function for s < 1, and ``e^z E_1(z)`` at s = 1. Otherwise the leading terms of
    the expansions: ``z^-s (1 - s/z)`` for large z, ``z^(1-s) / (s-1)`` for small z.
    """
    with np.errstate(all="ignore"):
        below = s < 1.0
        exact = (
            z
            + gammaln(np.where(below, 1.0 - s, 1.0))
            + np.log(gammaincc(np.where(below, 1.0 - s, 1.0), z))
        )
        at_one = z + np.log(exp1(z))
        large = -s * np.log(z) + np.log1p(-np.minimum(s / z, 0.5))
        small = -np.log(np.abs(s - 1.0)) + (1.0 - s) * np.log(z)
        out = np.where(z > 1.0, large, small)
        out = np.where((s == 1.0) & np.isfinite(at_one), at_one, out)
        return np.where(below & np.isfinite(exact), exact, out)


def _bisect(slope: Any, lo: np.ndarray, hi: np.ndarray, *, iterations: int = 80) -> np.ndarray:
    """Root of a decreasing function bracketed by ``lo`` (>= 0 there) and ``hi`` (<= 0)."""
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        up = slope(mid) > 0
        lo, hi = np.where(up, mid, lo), np.where(up, hi, mid)
    return (lo + hi) / 2


def _log_integrate_concave(phi: Any, top: np.ndarray, lo: Any, hi: Any) -> np.ndarray:
    """``log`` of the integral of ``exp(phi(y))`` over [lo, hi] for a concave ``phi``.

    ``top`` (arrays with a trailing axis of length 1, like everything ``phi`` closes
    over) is where ``phi`` peaks within [lo, hi]. The range is cut where ``phi`` has
    fallen ``_DROP`` below its peak, which by concavity leaves out a relative mass below
    ``exp(-_DROP)`` times the range's length, and the rest is integrated with a
    Gauss-Legendre rule summed in log space.
    """
    target = phi(top) - _DROP
    left = _fall_point(phi, top, np.broadcast_to(lo, top.shape), target, -1.0)
    right = _fall_point(phi, top, np.broadcast_to(hi, top.shape), target, 1.0)
    half = (right - left) / 2
    y = (right + left) / 2 + half * _GL_NODES
    with np.errstate(divide="ignore"):
        log_sum = logsumexp(phi(y) + np.log(_GL_WEIGHTS), axis=-1, keepdims=True)
        return np.where(half > 0, log_sum + np.log(np.where(half > 0, half, 1.0)), -np.inf)


def _fall_point(
    phi: Any, top: np.ndarray, bound: np.ndarray, target: np.ndarray, sign: float
) -> np.ndarray:
    """Where ``phi`` falls to ``target`` going from ``top`` towards ``bound`` (or ``bound``)."""
    near = np.array(top, dtype=float)
    step = np.ones_like(near)
    far = _clip_towards(top + sign * step, bound, sign)
    for _ in range(64):
        grow = (phi(far) >= target) & (far != bound)
        if not np.any(grow):
            break
        near = np.where(grow, far, near)
        step = np.where(grow, 2 * step, step)
        far = np.where(grow, _clip_towards(top + sign * step, bound, sign), far)
    reached = phi(far) >= target
    for _ in range(60):
        mid = (near + far) / 2
        above = phi(mid) >= target
        near, far = np.where(above, mid, near), np.where(above, far, mid)
    return np.where(reached, bound, far)


def _clip_towards(y: np.ndarray, bound: np.ndarray, sign: float) -> np.ndarray:
    return np.minimum(y, bound) if sign > 0 else np.maximum(y, bound)
