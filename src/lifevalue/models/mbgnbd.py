"""MBG/NBD: the BG/NBD with a chance of dropping out right after the first purchase.

Batislam, E. P., Denizel, M. & Filiztekin, A. (2007), Empirical validation and comparison
of models for customer base analysis. *International Journal of Research in Marketing*
24(3), 201-209; with Wagner, U. & Hoppe, D. (2008), Erratum on the MBG/NBD model,
*IJRM* 25(3), 225-226. Every expression here was rederived from the model's story and is
checked in the tests against integrals over the mixing distributions or simulation.

While active, a customer buys in a Poisson process with rate lambda ~ Gamma(r, alpha);
right after each purchase, the first included, they drop out with probability
p ~ Beta(a, b). Unlike the BG/NBD, a customer with no repeat purchase may be gone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import betainc, betaln, gammaln, hyp2f1, psi

from lifevalue.models._arrays import by_value
from lifevalue.models._repeat import RepeatPurchaseModel
from lifevalue.models.base import Arrays, Params

_NAMES = ("r", "alpha", "a", "b")
# Within this of a = 1 the expectations' (a - 1) in a denominator is removable but
# cancels: they are interpolated linearly between a = 1 -/+ this.
_NEAR_ONE = 1e-5


class ModifiedBetaGeoModel(RepeatPurchaseModel):
    """MBG/NBD model (Batislam, Denizel & Filiztekin 2007) of non-contractual purchasing.

    Reads ``frequency`` (x, repeat purchases), ``recency`` (t_x, time of the last
    purchase since the first) and ``T`` (time since the first purchase), in the summary's
    time unit. Parameters ``r, alpha`` (gamma purchase rate, shape and rate) and
    ``a, b`` (beta dropout probability after each purchase).
    """

    model_name = "mbgnbd"
    param_names = _NAMES

    def _initial_params(self, data: Arrays, weights: np.ndarray) -> dict[str, float]:
        rate = self._purchase_rate_start(data, weights)
        return {"r": 1.0, "alpha": 1.0 / rate, "a": 1.0, "b": 1.0}

    @staticmethod
    def _log_likelihood(params: Params, data: Arrays) -> np.ndarray:
        """Log of the MBG/NBD likelihood, per customer (Batislam et al. 2007, section 2).

        ``L = B(a, b+x+1)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+T)^(r+x))
        + B(a+1, b+x)/B(a, b) * Gamma(r+x) alpha^r / (Gamma(r) (alpha+t_x)^(r+x))``: alive
        at T after surviving x+1 purchases, or gone right after the last one (at t_x, or
        at the first purchase when x = 0).
        """
        common, still, dropped = _terms(params, data)
        return common + np.logaddexp(still, dropped)

    def _log_likelihood_and_gradient(
        self, params: Params, data: Arrays
    ) -> tuple[np.ndarray, np.ndarray]:
        r, alpha, a, b = (params[k] for k in _NAMES)
        x = data["frequency"]
        common, still, dropped = _terms(params, data)
        # One exponential serves both the log-sum and the shares of the two terms.
        gap = still - dropped
        e = np.exp(-np.abs(gap))
        ll = common + np.maximum(still, dropped) + np.log1p(e)
        w2 = np.where(gap > 0, e, 1.0) / (1.0 + e)  # share of the "gone" term
        w1 = 1.0 - w2
        log_t = by_value(data, "T", lambda u: np.log(alpha + u))
        log_tx = by_value(data, "recency", lambda u: np.log(alpha + u))
        inv_t = by_value(data, "T", lambda u: 1.0 / (alpha + u))
        inv_tx = by_value(data, "recency", lambda u: 1.0 / (alpha + u))
        psi_abx = by_value(data, "frequency", lambda u: psi(a + b + u + 1))
        psi_rx = by_value(data, "frequency", lambda u: psi(r + u))
        psi_bx = by_value(data, "frequency", lambda u: psi(b + u))
        psi_bx1 = by_value(data, "frequency", lambda u: psi(b + u + 1))
        d_r = psi_rx - psi(r) + np.log(alpha) - w1 * log_t - w2 * log_tx
        d_alpha = r / alpha - (r + x) * (w1 * inv_t + w2 * inv_tx)
        d_a = -(psi(a) - psi(a + b)) + w1 * (psi(a) - psi_abx) + w2 * (psi(a + 1) - psi_abx)
        d_b = -(psi(b) - psi(a + b)) + w1 * (psi_bx1 - psi_abx) + w2 * (psi_bx - psi_abx)
        return ll, np.stack(np.broadcast_arrays(d_r, d_alpha, d_a, d_b))

    # ------------------------------------------------------------------ predictions

    @staticmethod
    def _p_alive(params: Params, data: Arrays, *, future_t: float = 0.0) -> np.ndarray:
        """P(alive at T + future_t | x, t_x, T).

        At T: ``1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))``, the "alive" term's
        share of the likelihood; below 1 at x = 0 too. Later: a customer alive at T
        leaves at the first future purchase whose coin says so, after an Exp(lambda p)
        time; with the posterior lambda ~ Gamma(r+x, alpha+T) and p ~ Beta(a, b+x+1),
        surviving t more has probability ``((alpha+T)/(alpha+T+t))^(r+x)
        2F1(r+x, b+x+1; a+b+x+1; t/(alpha+T+t))``.
        """
        r, alpha, a, b = (params[k] for k in _NAMES)
        x, t_x, T = data["frequency"], data["recency"], data["T"]
        log_ratio = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        now = np.exp(-np.logaddexp(0.0, log_ratio))
        if np.all(np.asarray(future_t) == 0):
            return now
        # Euler's transformation leaves two small parameters and z = t / (alpha+T+t):
        # (1-z)^a 2F1(a+b+1-r, a; a+b+x+1; z).
        z = future_t / (alpha + T + future_t)
        survive = np.exp(-a * np.log1p(future_t / (alpha + T))) * _hyp2f1(
            a + b + 1.0 - r, a, a + b + x + 1.0, z
        )
        return np.clip(now * survive, 0.0, 1.0)

    @staticmethod
    def _expected_purchases(params: Params, data: Arrays, *, future_t: float) -> np.ndarray:
        """E[X(T, T+t] | x, t_x, T] (Batislam et al. 2007, as corrected by Wagner & Hoppe 2008).

        ``P(alive) (a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x)
        2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))]``: the BG/NBD's conditional expectation
        (Fader, Hardie & Lee 2005, eq. 10) with b + x + 1 for b + x (the posterior of p
        given survival of x + 1 purchases) and the MBG's P(alive).
        """
        r, alpha, a, b = (params[k] for k in _NAMES)
        x, T = data["frequency"], data["T"]
        per_alive = _per_alive(r + x, alpha + T, a, b + x + 1.0, future_t)
        return np.maximum(per_alive, 0.0) * ModifiedBetaGeoModel._p_alive(params, data)

    @staticmethod
    def _expected_purchases_new(params: Params, t: Any) -> np.ndarray:
        """E[X(t)] of a new customer (Batislam et al. 2007).

        ``b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]``: alive after
        the first purchase with probability b/(a+b), then a BG/NBD customer with
        p ~ Beta(a, b+1).
        """
        r, alpha, a, b = (params[k] for k in _NAMES)
        out = b / (a + b) * _per_alive(r, alpha, a, b + 1.0, np.asarray(t, dtype=float))
        return np.maximum(out, 0.0)

    @staticmethod
    def _probability_of_purchases(params: Params, k: Any, *, t: float) -> np.ndarray:
        """P(X(t) = k) for a new customer.

        Derived like equation (8) of Fader, Hardie & Lee (2005) for the BG/NBD: given
        lambda and p the customer leaves at the first purchase (k = 0) with probability
        p; otherwise, with k purchases by t, they are still alive, with probability
        ``(1-p)^(k+1) Poisson(k; lambda t)``, or left right after the k-th purchase,
        ``p (1-p)^k P(Poisson(lambda t) >= k)``. Mixed over lambda and p:

        ``P(X(t)=k) = [k=0] a/(a+b) + B(a, b+k+1)/B(a, b) NBD(k)
        + [k>0] B(a+1, b+k)/B(a, b) I_{t/(alpha+t)}(k, r)``,

        where NBD(k) is the negative binomial probability of k with parameters r and
        alpha/(alpha+t) and I the regularized incomplete beta function, which is
        P(NBD >= k).
        """
        r, alpha, a, b = (np.asarray(params[n], dtype=float) for n in _NAMES)
        k = np.asarray(k, dtype=float)
        log_nbd = (
            gammaln(r + k) - gammaln(r) - gammaln(k + 1)
            + r * (np.log(alpha) - np.log(alpha + t)) + _xlog(k, t / (alpha + t))
        )  # fmt: skip
        alive = np.exp(betaln(a, b + k + 1) - betaln(a, b) + log_nbd)
        tail = betainc(np.maximum(k, 1.0), r, t / (alpha + t))
        gone = np.where(k > 0, np.exp(betaln(a + 1, b + k) - betaln(a, b)) * tail, a / (a + b))
        return np.clip(alive + gone, 0.0, 1.0)


# ---------------------------------------------------------------------- numerics


def _terms(params: Params, data: Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The common factor and the logs of the likelihood's two terms, per pattern.

    ``Gamma(r+x) alpha^r / (Gamma(r) B(a, b))`` and the logs of "alive at T",
    ``B(a, b+x+1) (alpha+T)^-(r+x)``, and "gone after the last purchase",
    ``B(a+1, b+x) (alpha+t_x)^-(r+x)``. Terms in one column alone are computed once per
    distinct value (:func:`~lifevalue.models.base.by_value`).
    """
    r, alpha, a, b = (params[k] for k in _NAMES)
    x = data["frequency"]
    common = (
        by_value(data, "frequency", lambda u: gammaln(r + u))
        - gammaln(r) + r * np.log(alpha) - betaln(a, b)
    )  # fmt: skip
    log_t = by_value(data, "T", lambda u: np.log(alpha + u))
    log_tx = by_value(data, "recency", lambda u: np.log(alpha + u))
    still = by_value(data, "frequency", lambda u: betaln(a, b + u + 1)) - (r + x) * log_t
    dropped = by_value(data, "frequency", lambda u: betaln(a + 1, b + u)) - (r + x) * log_tx
    return common, still, dropped


def _per_alive(shape: Any, rate: Any, a: Any, b: Any, t: Any) -> np.ndarray:
    """Expected purchases in the next t of a customer alive now (after a purchase or not).

    With lambda ~ Gamma(shape, rate) and p ~ Beta(a, b), ``E[(1 - exp(-lambda p t))/p]``
    ``= (a+b-1)/(a-1) [1 - (rate/(rate+t))^shape 2F1(shape, b; a+b-1; t/(rate+t))]``
    (Fader, Hardie & Lee 2005, eqs. 9-10). It is analytic through a = 1, where the
    formula is 0/0; there it is interpolated between a = 1 -/+ ``_NEAR_ONE``.
    """
    near = np.abs(np.asarray(a) - 1.0) < _NEAR_ONE
    if not np.any(near):
        return _per_alive_formula(shape, rate, a, b, t)
    below = _per_alive_formula(shape, rate, np.where(near, 1.0 - _NEAR_ONE, a), b, t)
    above = _per_alive_formula(shape, rate, np.where(near, 1.0 + _NEAR_ONE, a), b, t)
    share = (np.asarray(a) - (1.0 - _NEAR_ONE)) / (2 * _NEAR_ONE)
    return np.where(near, below + share * (above - below), above)


def _per_alive_formula(shape: Any, rate: Any, a: Any, b: Any, t: Any) -> np.ndarray:
    # Euler's transformation of the 2F1 above: (1-z)^(a-1) 2F1(a+b-1-shape, a-1; a+b-1; z),
    # whose first two parameters stay small however many purchases were made.
    z = t / (rate + t)
    log_head = (a - 1.0) * (np.log(rate) - np.log(rate + t))
    series = _hyp2f1(a + b - 1.0 - shape, a - 1.0, a + b - 1.0, z)
    return (a + b - 1.0) / (a - 1.0) * (1.0 - np.exp(log_head) * series)


def _hyp2f1(a: Any, b: Any, c: Any, z: Any) -> np.ndarray:
    """scipy's ``hyp2f1``, summed as a power series where scipy overflows.

    scipy returns inf or nan for c beyond about 100 with z above 0.9. Every call here
    has a and b of order one and c large in that case, so the series' terms shrink
    like n^(a+b-c-1) z^n and a few hundred of them reach rounding level.
    """
    a, b, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (a, b, c, z)))
    with np.errstate(all="ignore"):
        value = np.atleast_1d(np.array(hyp2f1(a, b, c, z), dtype=float))
    bad = ~np.isfinite(value)
    if np.any(bad):
        flat = [np.atleast_1d(v)[bad] for v in (a, b, c, z)]
        value[bad] = _hyp2f1_series(*flat)
    return value.reshape(np.shape(a))


def _hyp2f1_series(
    a: np.ndarray, b: np.ndarray, c: np.ndarray, z: np.ndarray, *, max_terms: int = 20_000
) -> np.ndarray:
    term = np.ones_like(z)
    total = np.ones_like(z)
    for n in range(max_terms):
        term = term * (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z
        total = total + term
        if np.all(np.abs(term) <= 1e-17 * np.abs(total)):
            break
    return total


def _xlog(k: np.ndarray, base: Any) -> np.ndarray:
    """``k * log(base)`` with 0 where k = 0 (also for base = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(k == 0, 0.0, k * np.log(base))
