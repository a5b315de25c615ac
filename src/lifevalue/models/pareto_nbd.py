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
    polygamma,
    psi,
    roots_legendre,
    xlogy,
)

from lifevalue.errors import InputError
from lifevalue.models._arrays import by_value, by_values, dot, value_codes, value_combinations
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


def _exp_sinh(step: float, low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and log-weights of the exp-sinh rule for integrals over (0, inf)."""
    k = np.arange(low, high + step / 2, step)
    nodes = np.exp(np.pi / 2 * np.sinh(k))
    return nodes, np.log(step * np.pi / 2 * np.cosh(k) * nodes)


# The tail moments' rule in w = (p+q-1) z: nodes from 2e-19 (where a bounded integrand
# leaves nothing) to 74 (where e^-w does).
_DE_NODES, _DE_LOG_WEIGHTS = _exp_sinh(0.1, -4.0, 1.7)
_DE_FINE_NODES, _DE_FINE_LOG_WEIGHTS = _exp_sinh(0.05, -4.5, 1.8)


class ParetoNBDModel(RepeatPurchaseModel):
    """Pareto/NBD model (Schmittlein, Morrison & Colombo 1987) of non-contractual purchasing.

    Reads ``frequency`` (x, repeat purchases), ``recency`` (t_x, time of the last
    purchase since the first) and ``T`` (time since the first purchase), in the summary's
    time unit. Parameters ``r, alpha`` (gamma purchase rate, shape and rate) and
    ``s, beta`` (gamma dropout rate, shape and rate).

    The fit uses the likelihood's exact gradient and Hessian. Those of the "died" term
    need derivatives of its integral by the exponents ``r + x`` and ``s + 1``, which the
    hypergeometric form does not give: they are moments of the integrand, taken by
    quadrature (:func:`_tail_moments`), while the likelihood itself keeps its
    hypergeometric form.
    """

    model_name = "pnbd"
    param_names = _NAMES
    # The derivatives' cost lies in the tails, shared by many customers.
    rows_in_parallel = False

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

    def _log_likelihood_derivatives(
        self, params: Params, data: Arrays, counts: np.ndarray, *, hessian: bool
    ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Weighted log-likelihood with its exact gradient and Hessian.

        Per customer the log-likelihood is ``head + log(e^alive + e^died)`` (see
        :meth:`_log_likelihood`), with ``died = log s + log(I(t_x) - I(T))`` and I the
        tail integral. With ``w`` the died term's share, the derivatives are those of
        ``head`` plus ``(1-w)`` times those of ``alive`` plus ``w`` times those of
        ``died`` (and, for the Hessian, ``w (1-w)`` times the outer product of the
        difference of the two gradients). The tails and their derivatives depend on
        (x, t_x) or (x, T) only: they are computed once per distinct pair, and the
        per-customer weights are summed per pair before they meet them.
        """
        r, alpha, s, beta = (float(params[k]) for k in _NAMES)
        c = counts
        n = float(c.sum())
        rx = r + data["frequency"]
        ux, ix = value_codes(data, "frequency")
        per_x = np.bincount(ix, weights=c, minlength=len(ux))
        uT, iT = value_codes(data, "T")
        log_ta, log_tb = np.log(alpha + uT), np.log(beta + uT)
        inv_ta, inv_tb = 1.0 / (alpha + uT), 1.0 / (beta + uT)
        (x_a, t_a), i_a = _combinations(data, ("frequency", "recency"))
        (x_b, t_b), i_b = _combinations(data, ("frequency", "T"))
        # Both sets of tails at once, cut in halves that run in parallel.
        x_ab, t_ab = np.concatenate([x_a, x_b]), np.concatenate([t_a, t_b])
        half = (len(x_ab) + 1) // 2
        parts = self._map(
            lambda sl: _tail_derivatives(r, alpha, s, beta, x_ab[sl], t_ab[sl], second=hessian),
            [slice(0, half), slice(half, None)],
        )
        tail = np.concatenate([p[0] for p in parts])
        first = np.concatenate([p[1] for p in parts], axis=1)
        tail_a, tail_b = tail[: len(x_a)], tail[len(x_a) :]
        # Per customer: the two terms, the died term's share w and rho = I(T) / I(t_x).
        lt_a = np.take(tail_a, i_a)
        gone = -np.expm1(np.minimum(np.take(tail_b, i_b) - lt_a, 0.0))  # 1 - rho
        alive = -rx * np.take(log_ta, iT) - s * np.take(log_tb, iT)
        died = np.log(s) + lt_a + np.log(gone)  # -inf where t_x = T
        gap = died - alive
        e = np.exp(-np.abs(gap))
        one_e = 1.0 + e
        above = gap > 0
        head = dot(per_x, gammaln(r + ux)) + n * (r * np.log(alpha) + s * np.log(beta) - gammaln(r))
        ll = head + dot(c, np.maximum(alive, died) + np.log(one_e))
        c_one_e = c / one_e
        cw2 = np.where(above, c_one_e, e * c_one_e)  # c w
        cw1 = c - cw2  # c (1 - w)
        # d log(I(t_x) - I(T)) = (G(t_x) - rho G(T)) / (1 - rho), G = d log I.
        scale = np.where(gone > 0, 1.0 / gone, 0.0)
        rho = 1.0 - gone
        to_a = np.bincount(i_a, weights=cw2 * scale, minlength=len(tail_a))
        to_b = np.bincount(i_b, weights=cw2 * scale * rho, minlength=len(tail_b))
        to_ab = np.concatenate([to_a, -to_b])
        w1_t = np.bincount(iT, weights=cw1, minlength=len(uT))
        w1x_t = np.bincount(iT, weights=cw1 * rx, minlength=len(uT))
        sum_w2 = float(cw2.sum())
        grad = np.array(
            [
                dot(per_x, psi(r + ux)) + n * (np.log(alpha) - psi(r)) - dot(w1_t, log_ta),
                n * r / alpha - dot(w1x_t, inv_ta),
                n * np.log(beta) - dot(w1_t, log_tb) + sum_w2 / s,
                n * s / beta - s * dot(w1_t, inv_tb),
            ]
        ) + np.array([dot(row, to_ab) for row in first])
        if not hessian:
            return float(ll), grad, None
        second = np.concatenate([p[2] for p in parts], axis=1)
        h = np.zeros((4, 4))
        h[np.triu_indices(4)] = [dot(row, to_ab) for row in second]
        h[0, 0] += dot(per_x, polygamma(1, r + ux)) - n * polygamma(1, r)
        h[0, 1] += n / alpha - dot(w1_t, inv_ta)
        h[1, 1] += -n * r / alpha**2 + dot(w1x_t, inv_ta * inv_ta)
        h[2, 2] += -sum_w2 / s**2
        h[2, 3] += n / beta - dot(w1_t, inv_tb)
        h[3, 3] += -n * s / beta**2 + s * dot(w1_t, inv_tb * inv_tb)
        h = h + np.triu(h, 1).T
        # Outer products, per customer: of d log(I(t_x) - I(T)) (weight c w, subtracted)
        # and of d died - d alive (weight c w (1-w)).
        first_a, first_b = first[:, : len(x_a)], first[:, len(x_a) :]
        # Rows filled in place: at millions of customers, copies cost as much as sums.
        delta = np.empty((4, len(c)))
        for row, fa, fb in zip(delta, first_a, first_b, strict=True):
            np.take(fa, i_a, out=row)
            row -= rho * np.take(fb, i_b)
            row *= scale
        spread = np.empty((4, len(c)))
        np.take(log_ta, iT, out=spread[0])
        np.multiply(rx, np.take(inv_ta, iT), out=spread[1])
        np.take(log_tb, iT, out=spread[2])
        spread[2] += 1.0 / s
        np.take(inv_tb, iT, out=spread[3])
        spread[3] *= s
        spread += delta
        v = cw2 * np.where(above, e, 1.0) / one_e  # c w (1 - w)
        h += (spread * v) @ spread.T - (delta * cw2) @ delta.T
        return float(ll), grad, h

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


def _combinations(
    data: Arrays, columns: tuple[str, str]
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Distinct pairs of ``columns`` and each row's pair (each row its own without codes)."""
    found = value_combinations(data, columns)
    if found is None:
        values = tuple(np.asarray(data[c], dtype=float) for c in columns)
        return values, np.arange(len(values[0]))
    return found


def _tail_derivatives(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    x: np.ndarray,
    t: np.ndarray,
    *,
    second: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The log tail (:func:`_log_tail`) with :func:`_tail_moments` of it."""
    log_tail = _log_tail(r, alpha, s, beta, x, t)
    first, second_ = _tail_moments(r, alpha, s, beta, x, t, log_tail, second=second)
    return log_tail, first, second_


def _tail_moments(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    x: np.ndarray,
    t: np.ndarray,
    log_tail: np.ndarray,
    *,
    second: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """First and second derivatives of the tail integral I by (r, alpha, s, beta).

    ``I = int_t^inf (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau`` (see :func:`_log_tail`).
    Differentiated under the integral sign, ``d log I`` is minus the integrand's mean of
    ``(log(alpha+tau), (r+x) / (alpha+tau), log(beta+tau), (s+1) / (beta+tau))``, and
    ``d2 I / I`` is a mean of products of such terms. Returns ``d log I`` with shape
    (4, n) and the upper triangle of ``d2 I / I`` row by row, shape (10, n) (empty
    unless ``second``).

    With u, v the larger and smaller of alpha and beta, p, q their exponents and
    ``z = log((u+tau)/(u+t))``, the integrand is proportional to
    ``exp(-(p+q-1) z) (1 - zeta e^-z)^-q`` with ``zeta = (u-v)/(u+t)`` in [0, 1): a
    decaying exponential times a factor that decreases to 1. In ``w = (p+q-1) z`` it is
    integrated by the exp-sinh (double exponential) rule, whose nodes cluster at 0,
    where the factor can fall steeply, and reach far enough for ``e^-w`` to vanish.
    Against adaptive quadrature over a wide range of parameters, x up to 300 and zeta up
    to 0.998, its relative error was 5e-13 typically and 3e-10 at worst. The rule's
    integral of the integrand itself is checked against ``log_tail``; where they differ
    by more than 1e-10 (zeta very close to 1), a rule with half the step takes over.
    """
    first, second_, poor = _tail_means(
        r, alpha, s, beta, x, t, log_tail, _DE_NODES, _DE_LOG_WEIGHTS, second
    )
    if np.any(poor):
        redo = _tail_means(
            r, alpha, s, beta, x[poor], t[poor], log_tail[poor], _DE_FINE_NODES,
            _DE_FINE_LOG_WEIGHTS, second,
        )  # fmt: skip
        first[:, poor] = redo[0]
        second_[:, poor] = redo[1]
    return first, second_


def _tail_means(
    r: float,
    alpha: float,
    s: float,
    beta: float,
    x: np.ndarray,
    t: np.ndarray,
    log_tail: np.ndarray,
    nodes: np.ndarray,
    log_weights: np.ndarray,
    second: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_tail_moments` with one quadrature rule, and which tails it got wrong."""
    p_a, q_b = r + x, np.full(len(x), s + 1.0)
    a_ge_b = alpha >= beta
    u, v = max(alpha, beta), min(alpha, beta)
    p, q = (p_a, q_b) if a_ge_b else (q_b, p_a)
    with np.errstate(divide="ignore", invalid="ignore"):
        # z and e^-z depend on the exponents only: once per distinct x.
        m, at = np.unique(p + q - 1.0, return_inverse=True)
        z_m = nodes / m[:, None]
        z = np.take(z_m, at.ravel(), axis=0)
        ez = np.take(np.exp(-z_m), at.ravel(), axis=0)
        zeta = (u - v) / (u + t)
        near = 1.0 - zeta[:, None] * ez  # (v+tau)/(u+tau)
        gone = np.log(near)
        phi = (log_weights - nodes) - q[:, None] * gone
        top = phi.max(axis=1, keepdims=True)
        weight = np.exp(phi - top)
        total = weight.sum(axis=1)
        log_u = np.log(u + t)
        found = np.log(total) + top[:, 0] - np.log(m[at.ravel()]) + (1.0 - p - q) * log_u
        poor = ~(np.abs(found - log_tail) <= 1e-10)
        weight /= total[:, None]
        # Means of z, log((v+tau)/(u+tau)), (u+t)/(u+tau) and (u+t)/(v+tau).
        g = ez / near
        m_z, m_gone, m_eu, m_ev = (np.einsum("ij,ij->i", weight, f) for f in (z, gone, ez, g))
        inv_u = 1.0 / (u + t)
        # Means of log(u+tau), log(v+tau), 1/(u+tau), 1/(v+tau).
        first_u = (log_u + m_z, m_eu * inv_u)
        first_v = (log_u + m_z + m_gone, m_ev * inv_u)
        (l_a, i_a), (l_b, i_b) = (first_u, first_v) if a_ge_b else (first_v, first_u)
        first = np.stack([-l_a, -p_a * i_a, -l_b, -q_b * i_b])
        if not second:
            return first, np.empty((10, len(x))), poor
        zg = z + gone
        w_z, w_zg, w_ez = weight * z, weight * zg, weight * ez

        def mean(wf: np.ndarray, f: np.ndarray) -> np.ndarray:
            return np.einsum("ij,ij->i", wf, f)

        # Second moments of (log(u+tau) - log(u+t), log(v+tau) - log(u+t), (u+t)/(u+tau),
        # (u+t)/(v+tau)), then shifted and scaled back.
        zz, zv, vv = mean(w_z, z), mean(w_z, zg), mean(w_zg, zg)
        z_eu, z_ev, v_eu, v_ev = mean(w_z, ez), mean(w_z, g), mean(w_zg, ez), mean(w_zg, g)
        eu_eu, eu_ev, ev_ev = mean(w_ez, ez), mean(w_ez, g), mean(weight * g, g)
        m_zg = m_z + m_gone
        ll_uu = zz + 2 * log_u * m_z + log_u**2
        ll_uv = zv + log_u * (m_z + m_zg) + log_u**2
        ll_vv = vv + 2 * log_u * m_zg + log_u**2
        li_uu = (z_eu + log_u * m_eu) * inv_u  # log(u+tau) / (u+tau)
        li_uv = (z_ev + log_u * m_ev) * inv_u  # log(u+tau) / (v+tau)
        li_vu = (v_eu + log_u * m_eu) * inv_u  # log(v+tau) / (u+tau)
        li_vv = (v_ev + log_u * m_ev) * inv_u
        ii_uu, ii_uv, ii_vv = eu_eu * inv_u**2, eu_ev * inv_u**2, ev_ev * inv_u**2
        if a_ge_b:
            laa, lab, lbb = ll_uu, ll_uv, ll_vv
            la_ia, la_ib, lb_ia, lb_ib = li_uu, li_uv, li_vu, li_vv
            iaa, iab, ibb = ii_uu, ii_uv, ii_vv
        else:
            laa, lab, lbb = ll_vv, ll_uv, ll_uu
            la_ia, la_ib, lb_ia, lb_ib = li_vv, li_vu, li_uv, li_uu
            iaa, iab, ibb = ii_vv, ii_uv, ii_uu
        second_ = np.stack(
            [
                laa,  # r r
                p_a * la_ia - i_a,  # r alpha
                lab,  # r s
                q_b * la_ib,  # r beta
                p_a * (p_a + 1.0) * iaa,  # alpha alpha
                p_a * lb_ia,  # alpha s
                p_a * q_b * iab,  # alpha beta
                lbb,  # s s
                q_b * lb_ib - i_b,  # s beta
                q_b * (q_b + 1.0) * ibb,  # beta beta
            ]
        )
    return first, second_, poor


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
