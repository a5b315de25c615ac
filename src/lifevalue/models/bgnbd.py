"""BG/NBD: beta-geometric / negative binomial distribution model of repeat purchasing.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "Counting your customers" the easy
way: an alternative to the Pareto/NBD model. *Marketing Science* 24(2), 275-284.

While active, a customer buys in a Poisson process with rate lambda ~ Gamma(r, alpha);
after each purchase they drop out with probability p ~ Beta(a, b).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import betaln, expit, gammaln, hyp2f1, polygamma, psi

from lifevalue.models._arrays import by_value, by_values, dot, value_codes
from lifevalue.models._repeat import RepeatPurchaseModel
from lifevalue.models.base import Arrays, Params


class BetaGeoModel(RepeatPurchaseModel):
    """BG/NBD model (Fader, Hardie & Lee 2005) for non-contractual, continuous-time purchasing.

    Reads ``frequency`` (x, repeat purchases), ``recency`` (t_x, time of the last
    purchase since the first) and ``T`` (time since the first purchase), in the summary's
    time unit. Parameters ``r, alpha`` (gamma purchase rate) and ``a, b`` (beta dropout).
    """

    model_name = "bgnbd"
    param_names = ("r", "alpha", "a", "b")
    # Customers leave only right after a purchase: P(alive) is defined at T.
    alive_after_T = False

    def _initial_params(self, data: Arrays, weights: np.ndarray) -> dict[str, float]:
        rate = self._purchase_rate_start(data, weights)
        return {"r": 1.0, "alpha": 1.0 / rate, "a": 1.0, "b": 1.0}

    @staticmethod
    def _terms(params: Params, data: Arrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The common factor and the logs of the two terms of equation (6), per pattern.

        Terms in the frequency alone, or in T or t_x alone, are computed once per distinct
        value (:func:`~lifevalue.models.base.by_value`): at a million customers that turns
        hundreds of thousands of log-gamma calls into a few hundred.
        """
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
        x = data["frequency"]
        common = by_value(data, "frequency", lambda u: gammaln(r + u)) - gammaln(r) + r * np.log(
            alpha
        ) - betaln(a, b)  # fmt: skip
        log_t = by_value(data, "T", lambda u: np.log(alpha + u))
        log_tx = by_value(data, "recency", lambda u: np.log(alpha + u))
        still = by_value(data, "frequency", lambda u: betaln(a, b + u)) - (r + x) * log_t
        dropped = np.where(
            x > 0,
            by_value(data, "frequency", lambda u: betaln(a + 1, np.maximum(b + u - 1, 1e-300)))
            - (r + x) * log_tx,
            -np.inf,
        )
        return common, still, dropped

    @staticmethod
    def _log_likelihood(params: Params, data: Arrays) -> np.ndarray:
        """Log of equation (6) of Fader, Hardie & Lee (2005), per customer."""
        common, still, dropped = BetaGeoModel._terms(params, data)
        return common + np.logaddexp(still, dropped)

    def _log_likelihood_and_gradient(
        self, params: Params, data: Arrays
    ) -> tuple[np.ndarray, np.ndarray]:
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
        x = data["frequency"]
        common, still, dropped = self._terms(params, data)
        # One exponential serves both the log-sum and the shares of the two terms.
        gap = still - dropped  # +inf where x = 0: only the first term
        e = np.exp(-np.abs(gap))
        ll = common + np.maximum(still, dropped) + np.log1p(e)
        w2 = np.where(gap > 0, e, 1.0) / (1.0 + e)  # share of the "dropped" term
        w1 = 1.0 - w2
        log_t = by_value(data, "T", lambda u: np.log(alpha + u))
        log_tx = by_value(data, "recency", lambda u: np.log(alpha + u))
        inv_t = by_value(data, "T", lambda u: 1.0 / (alpha + u))
        inv_tx = by_value(data, "recency", lambda u: 1.0 / (alpha + u))
        psi_abx = by_value(data, "frequency", lambda u: psi(a + b + u))
        psi_rx = by_value(data, "frequency", lambda u: psi(r + u))
        psi_bx = by_value(data, "frequency", lambda u: psi(b + u))
        psi_bx1 = by_value(data, "frequency", lambda u: psi(np.maximum(b + u - 1, 1e-300)))
        d_r = psi_rx - psi(r) + np.log(alpha) - w1 * log_t - w2 * log_tx
        d_alpha = r / alpha - (r + x) * (w1 * inv_t + w2 * inv_tx)
        d_a = -(psi(a) - psi(a + b)) + w1 * (psi(a) - psi_abx) + w2 * (psi(a + 1) - psi_abx)
        d_b = -(psi(b) - psi(a + b)) + w1 * (psi_bx - psi_abx) + w2 * (psi_bx1 - psi_abx)
        return ll, np.stack(np.broadcast_arrays(d_r, d_alpha, d_a, d_b))

    def _log_likelihood_derivatives(
        self, params: Params, data: Arrays, counts: np.ndarray, *, hessian: bool
    ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Weighted log-likelihood with its exact gradient and Hessian.

        Equation (6) is split into terms of x alone (summed per distinct x), terms of T
        and ``softplus(d)`` with ``d = log(a / (b+x-1)) + (r+x) log((alpha+T) /
        (alpha+t_x))``, the log-odds of "dropped after the last purchase" against "still
        active". The softplus term is the only one computed per pattern; its Hessian is
        the ``w (1-w)``-weighted Gram matrix of the gradient of d (w the logistic of d)
        plus w times the few second derivatives of d that are not zero.
        """
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
        c = counts
        n = float(c.sum())
        rx = r + data["frequency"]
        # Terms of x alone, per distinct x; b + x - 1 only where x > 0.
        ux, ix = value_codes(data, "frequency")
        per_x = np.bincount(ix, weights=c, minlength=len(ux))
        repeat = ux > 0
        b_x1 = np.where(repeat, b + ux - 1.0, 1.0)
        log_odds = np.where(repeat, np.log(a) - np.log(b_x1), -np.inf)
        inv_b = np.where(repeat, 1.0 / b_x1, 0.0)
        # Terms of T alone, summed per distinct T with weights c and c (r+x).
        uT, iT = value_codes(data, "T")
        log_tu, inv_tu = np.log(alpha + uT), 1.0 / (alpha + uT)
        per_t = np.bincount(iT, weights=c, minlength=len(uT))
        per_t_rx = np.bincount(iT, weights=c * rx, minlength=len(uT))
        # softplus(d) = max(d, 0) + log(1 + e), w = (1 if d > 0 else e) / (1 + e) and
        # 1 - w = (e if d > 0 else 1) / (1 + e), with e = exp(-|d|): two transcendental
        # functions per pattern in all. e = 0 where d = -inf (no repeat purchase).
        inv_t = np.take(inv_tu, iT)
        inv_tx = by_value(data, "recency", lambda u: 1.0 / (alpha + u))
        gap = np.take(log_tu, iT) - by_value(data, "recency", lambda u: np.log(alpha + u))
        d = np.take(log_odds, ix) + rx * gap
        e = np.exp(-np.abs(d))
        one_e = 1.0 + e
        above = d > 0
        ll = (
            dot(per_x, gammaln(r + ux) + betaln(a, b + ux))
            + n * (r * np.log(alpha) - gammaln(r) - betaln(a, b))
            - dot(per_t_rx, log_tu)
            + dot(c, np.maximum(d, 0.0) + np.log(one_e))
        )
        c_one_e = c / one_e
        cw = np.where(above, c_one_e, e * c_one_e)
        cw_x = np.bincount(ix, weights=cw, minlength=len(ux))
        d_inv = inv_t - inv_tx
        rx_inv = rx * d_inv
        psi_ab = psi(a + b + ux)
        grad = np.array(
            [
                dot(per_x, psi(r + ux)) + n * (np.log(alpha) - psi(r))
                - dot(per_t, log_tu) + dot(cw, gap),
                n * r / alpha - dot(per_t_rx, inv_tu) + dot(cw, rx_inv),
                dot(per_x, psi(a) - psi_ab) - n * (psi(a) - psi(a + b)) + cw_x.sum() / a,
                dot(per_x, psi(b + ux) - psi_ab) - n * (psi(b) - psi(a + b)) - dot(cw_x, inv_b),
            ]
        )  # fmt: skip
        if not hessian:
            return float(ll), grad, None
        v = cw * np.where(above, e, 1.0) / one_e  # c w (1 - w)
        v_x = np.bincount(ix, weights=v, minlength=len(ux))
        v_gap = v * gap
        v_rx_inv = v * rx_inv
        b_pat = np.take(inv_b, ix)
        tri = polygamma(1, np.concatenate([r + ux, a + b + ux, b + ux, [r, a, b, a + b]]))
        tri_r, tri_ab, tri_b = tri[: len(ux)], tri[len(ux) : 2 * len(ux)], tri[2 * len(ux) : -4]
        tri_r0, tri_a0, tri_b0, tri_ab0 = tri[-4:]
        h = np.empty((4, 4))
        h[0, 0] = dot(per_x, tri_r) - n * tri_r0 + dot(v_gap, gap)
        h[0, 1] = n / alpha - dot(per_t, inv_tu) + dot(v_gap, rx_inv) + dot(cw, d_inv)
        # d2 d / d alpha2 = -(r+x) (1/(alpha+T)^2 - 1/(alpha+t_x)^2).
        h[1, 1] = (
            -n * r / alpha**2 + dot(per_t_rx, inv_tu * inv_tu) + dot(v_rx_inv, rx_inv)
            - dot(cw, rx_inv * (inv_t + inv_tx))
        )  # fmt: skip
        h[0, 2] = v_gap.sum() / a
        h[1, 2] = v_rx_inv.sum() / a
        h[0, 3] = -dot(v_gap, b_pat)
        h[1, 3] = -dot(v_rx_inv, b_pat)
        h[2, 2] = (
            dot(per_x, tri_a0 - tri_ab) - n * (tri_a0 - tri_ab0) + (v_x.sum() - cw_x.sum()) / a**2
        )
        h[2, 3] = -dot(per_x, tri_ab) + n * tri_ab0 - dot(v_x, inv_b) / a
        h[3, 3] = dot(per_x, tri_b - tri_ab) - n * (tri_b0 - tri_ab0) + dot(v_x + cw_x, inv_b**2)
        upper = np.triu_indices(4, 1)
        h[upper[1], upper[0]] = h[upper]
        return float(ll), grad, h

    # ------------------------------------------------------------------ predictions

    @staticmethod
    def _p_alive(params: Params, data: Arrays) -> np.ndarray:
        """Equation (11): P(alive at T | x, t_x, T); 1 without repeat purchases."""
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
        x = data["frequency"]
        log_ratio = by_value(
            data, "frequency", lambda u: np.log(a) - np.log(np.maximum(b + u - 1, 1e-300))
        ) + (r + x) * (
            by_value(data, "T", lambda u: np.log(alpha + u))
            - by_value(data, "recency", lambda u: np.log(alpha + u))
        )
        return np.where(x > 0, expit(-log_ratio), 1.0)

    @staticmethod
    def _expected_purchases_if_alive(params: Params, data: Arrays, *, future_t: Any) -> np.ndarray:
        """Equation (10) without its P(alive) factor: purchases in (T, T+t] if alive at T.

        The paper's ``((alpha+T)/(alpha+T+t))**(r+x) * 2F1(r+x, b+x; a+b+x-1; z)`` is
        computed after Euler's transformation as ``(1-z)**(a-1) * 2F1(a+b-1-r, a-1;
        a+b+x-1; z)``: the same number, but a series that converges fast for heavy
        buyers, where the original overflows. It depends on x and T only, so it is
        evaluated once per distinct (x, T).
        """
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))

        def term(x: Any, T: Any) -> Any:
            z = future_t / (alpha + T + future_t)
            c = a + b + x - 1
            tail = 1 - np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - 1 - r, a - 1, c, z)
            return c / (a - 1) * tail

        if np.ndim(future_t):  # one horizon per customer
            return term(data["frequency"], data["T"])
        return by_values(data, ("frequency", "T"), term)

    @staticmethod
    def _expected_purchases(params: Params, data: Arrays, *, future_t: Any) -> np.ndarray:
        """Equation (10) of Fader, Hardie & Lee (2005): E[X(T, T+t) | x, t_x, T]."""
        return BetaGeoModel._expected_purchases_if_alive(
            params, data, future_t=future_t
        ) * BetaGeoModel._p_alive(params, data)

    @staticmethod
    def _expected_purchases_new(params: Params, t: Any) -> np.ndarray:
        """Equation (7): E[X(t)] of a customer acquired at time 0."""
        r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
        t = np.asarray(t, dtype=float)
        z = t / (alpha + t)
        # Euler's transformation, as in _expected_purchases.
        tail = 1 - np.exp((a - 1) * np.log1p(-z)) * hyp2f1(a + b - 1 - r, a - 1, a + b - 1, z)
        return (a + b - 1) / (a - 1) * tail

    @staticmethod
    def _probability_of_purchases(params: Params, k: Any, *, t: float) -> np.ndarray:
        """Equation (8): P(X(t) = k) for a customer acquired at time 0."""
        r, alpha, a, b = (params[k_] for k_ in ("r", "alpha", "a", "b"))
        k = np.asarray(k, dtype=float)
        log_p = np.log(alpha / (alpha + t))
        log_q = np.log(t / (alpha + t)) if t > 0 else -np.inf
        # log of Gamma(r+j) / (Gamma(r) j!) * p^r q^j, the NBD probability of j purchases
        j_max = int(np.max(k, initial=0))
        j = np.arange(j_max + 1, dtype=float)
        with np.errstate(invalid="ignore"):
            nbd = (
                gammaln(r + j)
                - gammaln(r)
                - gammaln(j + 1)
                + r * log_p
                + np.where(j > 0, j * log_q, 0.0)
            )
        below = np.concatenate([[0.0], np.cumsum(np.exp(nbd))])  # P(NBD < j), j = 0..j_max+1
        idx = k.astype(int)
        still = np.exp(betaln(a, b + k) - betaln(a, b) + nbd[idx])
        dropped = np.where(
            k > 0,
            np.exp(betaln(a + 1, np.maximum(b + k - 1, 1e-300)) - betaln(a, b)) * (1 - below[idx]),
            0.0,
        )
        return np.clip(still + dropped, 0.0, 1.0)
