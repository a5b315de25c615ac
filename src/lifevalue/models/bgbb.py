"""BG/BB: beta-geometric / beta-Bernoulli model of discrete-time repeat transactions.

Fader, P. S., Hardie, B. G. S. & Shang, J. (2010), Customer-base analysis in a
discrete-time noncontractual setting. *Marketing Science* 29(6), 1086-1108.

After a first transaction at opportunity 0, a customer has ``n`` further transaction
opportunities (periods). While alive they transact at each opportunity with probability
p ~ Beta(alpha, beta); at the start of each opportunity they die with probability
theta ~ Beta(gamma, delta), and stay dead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import betaln, gammaln, logsumexp, polygamma, psi

from lifevalue.errors import DataValidationError, InputError
from lifevalue.models import _checks
from lifevalue.models._repeat import PurchaseForecasts
from lifevalue.models._special import log_discounted_beta_sum
from lifevalue.models.base import Arrays, Params
from lifevalue.units import TimeUnit, period_discount_rate

# Terms (draws x summands) evaluated at once in the ragged sum of equation (5).
_CHUNK_ELEMENTS = 2_000_000
# Within this distance of gamma = 1 the sum of survival probabilities uses its Taylor
# expansion, where the closed form divides two vanishing quantities.
_NEAR_ONE = 1e-3


class BetaGeoBetaBinomModel(PurchaseForecasts):
    """BG/BB model (Fader, Hardie & Shang 2010) for non-contractual, discrete-time transactions.

    Reads ``frequency`` (x, the number of opportunities with a transaction after the
    first), ``recency`` (t_x, the last opportunity with a transaction, 0 if none) and
    ``T`` (n, the number of transaction opportunities observed), all whole numbers with
    0 <= x <= t_x <= n and t_x = 0 exactly when x = 0. One opportunity is one period of
    the model's time unit (``time_unit`` at fit: "years" for annual opportunities).
    Parameters ``alpha, beta`` (beta transaction probability) and ``gamma, delta`` (beta
    dropout probability).
    """

    model_name = "bgbb"
    param_names = ("alpha", "beta", "gamma", "delta")
    discrete_time = True

    def _rules(self) -> list[_checks.Rule]:
        return [
            *_checks.non_negative("frequency", "recency", "T"),
            *_checks.integer("frequency", "recency", "T"),
            _checks.not_above("frequency", "recency"),
            _checks.not_above("recency", "T"),
            _checks.zero_with("recency", "frequency"),
            _checks.zero_with("frequency", "recency"),
        ]

    def _check_dataset(self, data: Arrays, weights: np.ndarray) -> None:
        name = type(self).__name__
        used = weights > 0
        if not np.any((data["frequency"] > 0) & used):
            raise DataValidationError(
                f"{name} needs some customers with repeat transactions; every customer in "
                "this summary has frequency 0, so the transaction and dropout probabilities "
                "cannot be told apart.",
                rule="no_repeat_buyers",
            )
        if not np.any((data["frequency"] < data["T"]) & used):
            raise DataValidationError(
                f"{name} needs some customers who skipped an opportunity; every customer "
                "in this summary transacted at every one (frequency = T), so the "
                "transaction probability runs to 1.",
                rule="no_missed_opportunity",
            )

    def _initial_params(self, data: Arrays, weights: np.ndarray) -> dict[str, float]:
        # Transactions per opportunity while evidently alive (up to the last transaction).
        share = float(weights @ data["frequency"]) / max(float(weights @ data["recency"]), 1.0)
        share = min(max(share, 0.05), 0.95)
        return {"alpha": 2 * share, "beta": 2 * (1 - share), "gamma": 1.0, "delta": 2.0}

    @staticmethod
    def _log_likelihood(params: Params, data: Arrays) -> np.ndarray:
        """Log of equation (5) of Fader, Hardie & Shang (2010), per customer.

        L = B(alpha+x, beta+n-x)/B(alpha,beta) * B(gamma, delta+n)/B(gamma,delta)
          + sum_{i=0}^{n-t_x-1} B(alpha+x, beta+t_x-x+i)/B(alpha,beta)
                                * B(gamma+1, delta+t_x+i)/B(gamma,delta),

        the first term for a customer alive through opportunity n, the sum for one who
        died at opportunity t_x+i+1 <= n. The sum is taken in log space.
        """
        alpha, beta, gamma, delta = (params[k] for k in ("alpha", "beta", "gamma", "delta"))
        return _log_joint(params, data) - betaln(alpha, beta) - betaln(gamma, delta)

    def _log_likelihood_and_gradient(
        self, params: Params, data: Arrays
    ) -> tuple[np.ndarray, np.ndarray]:
        """Equation (5) and its derivatives in one pass over the terms of the sum.

        Each term is a product of betas, so its derivative by a parameter is a difference
        of digammas; the derivative of log L is the mean of those over the terms, weighted
        by each term's share of L. The digammas, like the log-gammas, come from tables
        over the few values their arguments take.
        """
        alpha, beta, gamma, delta = (params[k] for k in ("alpha", "beta", "gamma", "delta"))
        x, n = data["frequency"], data["T"]
        head = _log_head(params, x, n)
        log_joint = head.copy()
        w0 = np.ones_like(x)  # share of the first term (alive through n) in L
        # Share-weighted digammas of the terms' arguments: the first term's, then the sum's.
        s_ab = psi(alpha + beta + n)
        s_b = psi(beta + n - x)
        s_gd = psi(gamma + delta + n)
        s_d = psi(delta + n)
        by_k, by_j = _tail_tables(params, _table_size(data))
        v = np.arange(by_k.shape[-1], dtype=float)
        psi_ab, psi_b = psi(alpha + beta + v), psi(beta + v)
        psi_gd, psi_d = psi(gamma + delta + 1 + v), psi(delta + v)
        lead = gammaln(alpha + x) + gammaln(gamma + 1)
        for rows, starts, owner, j, k in _segments(data, 1):
            terms = by_k[k] + by_j[j]
            top = np.maximum.reduceat(terms, starts)
            share = np.exp(terms - top[owner])
            tail = top + np.log(np.add.reduceat(share, starts)) + lead[rows]
            log_joint[rows] = np.logaddexp(head[rows], tail)
            w0[rows] = np.exp(head[rows] - log_joint[rows])
            # exp(term - log_joint) for each term, from the shares already computed.
            share *= np.exp(top + lead[rows] - log_joint[rows])[owner]
            for target, table, index in (
                (s_ab, psi_ab, j), (s_b, psi_b, k), (s_gd, psi_gd, j), (s_d, psi_d, j),
            ):  # fmt: skip
                target[rows] = w0[rows] * target[rows] + np.add.reduceat(
                    share * table[index], starts
                )
        s_g = w0 * psi(gamma) + (1 - w0) * psi(gamma + 1)
        ll = log_joint - betaln(alpha, beta) - betaln(gamma, delta)
        d_alpha = psi(alpha + x) - psi(alpha) + psi(alpha + beta) - s_ab
        d_beta = s_b - psi(beta) + psi(alpha + beta) - s_ab
        d_gamma = s_g - psi(gamma) + psi(gamma + delta) - s_gd
        d_delta = s_d - psi(delta) + psi(gamma + delta) - s_gd
        return ll, np.stack(np.broadcast_arrays(d_alpha, d_beta, d_gamma, d_delta))

    # ------------------------------------------------------------------ predictions

    @staticmethod
    def _p_alive(params: Params, data: Arrays, *, future_t: float = 0.0) -> np.ndarray:
        """P(alive at opportunity n + 1 + future_t | x, t_x, n), Fader, Hardie & Shang (2010).

        B(alpha+x, beta+n-x)/B(alpha,beta) * B(gamma, delta+n+1+future_t)/B(gamma,delta) / L:
        the share of L from being alive through n, times surviving 1 + future_t more starts.
        """
        alpha, beta, gamma, delta = (params[k] for k in ("alpha", "beta", "gamma", "delta"))
        x, n = data["frequency"], data["T"]
        log_p = (
            betaln(alpha + x, beta + n - x)
            + betaln(gamma, delta + n + 1 + future_t)
            - _log_joint(params, data)
        )
        return np.clip(np.exp(log_p), 0.0, 1.0)

    @staticmethod
    def _expected_purchases(params: Params, data: Arrays, *, future_t: float) -> np.ndarray:
        """Equation (13) of Fader, Hardie & Shang (2010): E[X(n, n + n*) | x, t_x, n]."""
        alpha, beta, gamma, delta = (params[k] for k in ("alpha", "beta", "gamma", "delta"))
        x, n = data["frequency"], data["T"]
        if np.ndim(future_t) == 0:
            # The same few n for many customers: one evaluation per value.
            unique, where = np.unique(n, return_inverse=True)
            survival = np.take(
                _log_survival_sum(gamma, delta, unique, unique + future_t), where.ravel(), axis=-1
            )
        else:
            survival = _log_survival_sum(gamma, delta, n, n + future_t)
        log_e = betaln(alpha + x + 1, beta + n - x) + survival - _log_joint(params, data)
        return np.exp(log_e)

    @staticmethod
    def _dert(params: Params, data: Arrays, *, discount: float) -> np.ndarray:
        """Discounted expected residual transactions (Fader, Hardie & Shang 2010, eq. 14).

        DERT = B(alpha+x+1, beta+n-x)/B(alpha,beta) * B(gamma, delta+n+1)
               / ((1+d) B(gamma,delta)) * 2F1(1, delta+n+1; gamma+delta+n+1; 1/(1+d)) / L,

        the transaction at opportunity n+s discounted by (1+d)^-s, d per period. The 2F1
        term and its beta are evaluated together as a discounted beta sum
        (:func:`~lifevalue.models.sbg.log_discounted_beta_sum`), robust for long histories.
        """
        alpha, beta, gamma, delta = (params[k] for k in ("alpha", "beta", "gamma", "delta"))
        x, n = data["frequency"], data["T"]
        log_dert = (
            betaln(alpha + x + 1, beta + n - x)
            + log_discounted_beta_sum(gamma, delta + n + 1, discount)
            - math.log1p(discount)
            - _log_joint(params, data)
        )
        return np.exp(log_dert)

    @staticmethod
    def _discounted_expected_transactions(
        params: Params, data: Arrays, *, annual_discount_rate: float, unit: TimeUnit | str
    ) -> np.ndarray:
        """DERT at the per-period rate equivalent to ``annual_discount_rate`` in ``unit``."""
        discount = period_discount_rate(annual_discount_rate, unit)
        return BetaGeoBetaBinomModel._dert(params, data, discount=discount)

    def _horizon(self, value: Any, name: str) -> Any:
        """Horizons count whole opportunities: P(alive) at T + 1 + k, purchases in n*."""
        return _whole(value, name)

    def discounted_expected_transactions(
        self, summary: pd.DataFrame, *, annual_discount_rate: float
    ) -> pd.Series:
        """Discounted expected residual transactions (DERT), per customer.

        The expected number of transactions at opportunities T + 1, T + 2, ... (forever),
        the one at T + s discounted by (1 + d)^-s, where d is the per-period rate
        equivalent to ``annual_discount_rate`` (compounded yearly) in the model's time
        unit. Multiply by a margin per transaction for a residual value. With a rate of 0
        it is the undiscounted expected number, infinite when gamma <= 1.

        Parameters
        ----------
        summary
            One row per customer with ``frequency``, ``recency`` and ``T``.
        annual_discount_rate
            Yearly discount rate, 0.1 for 10%.
        """
        self._check_fitted()
        period_discount_rate(annual_discount_rate, self.time_unit_)  # checks the rate
        return self._predict(
            self._discounted_expected_transactions, summary, name="dert",
            annual_discount_rate=annual_discount_rate, unit=self.time_unit_,
        )  # fmt: skip

    def probability_of_purchases(self, k: Any, *, t: float) -> np.ndarray | float:
        """P(X(t) = k): the chance a newly acquired customer transacts at k of t opportunities.

        P(X(n) = x) of Fader, Hardie & Shang (2010). ``k`` is a whole number or an array
        of them; ``t`` a whole number of opportunities. Multiplied by the size of a cohort
        it gives the expected number of its customers with k repeat transactions.
        """
        self._check_fitted()
        n = _whole(t, "t")
        ks = _checks.check_counts(k)
        out = _pmf(self.params_, ks.ravel(), n).reshape(ks.shape)
        return float(out) if out.ndim == 0 else out

    def expected_purchases_new_customer(self, *, t: Any) -> np.ndarray | float:
        """E[X(t)]: expected transactions of a newly acquired customer in t opportunities.

        E[X(n)] of Fader, Hardie & Shang (2010); ``t`` is a whole number of periods
        of the model's time unit, or an array of them.
        """
        self._check_fitted()
        ts = np.asarray(t, dtype=float)
        if np.any(~np.isfinite(ts)) or np.any(ts != np.round(ts)) or np.any(ts < 0):
            raise InputError(f"t must hold whole numbers >= 0. Got {t!r} instead.")
        p = self.params_
        with np.errstate(divide="ignore"):
            log_alive = _log_survival_sum(p["gamma"], p["delta"], 0.0, ts) - betaln(
                p["gamma"], p["delta"]
            )
        out = p["alpha"] / (p["alpha"] + p["beta"]) * np.exp(log_alive)
        return float(out) if np.ndim(out) == 0 else out


# ------------------------------------------------------------------------- helpers


def _whole(value: Any, name: str) -> float:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    if not (ok and math.isfinite(value) and value >= 0 and value == round(value)):
        raise InputError(
            f"{name} must be a whole number of periods >= 0 for the BG/BB, a discrete-time "
            f"model. Got {value!r} instead."
        )
    return float(value)


def _log_head(params: Params, x: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Log of the first term of equation (5) without its normalising betas: alive at n."""
    alpha, beta, gamma, delta = (params[k] for k in ("alpha", "beta", "gamma", "delta"))
    return betaln(alpha + x, beta + n - x) + betaln(gamma, delta + n)


def _table_size(data: Arrays) -> int:
    return int(np.max(data["T"], initial=0)) + 1


def _tail_tables(params: Params, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-gamma tables giving the terms of the sum in equation (5) by lookup.

    With j = t_x + i (the last opportunity alive) and k = j - x (opportunities without a
    transaction up to it), the i-th term without its normalising betas is
    B(alpha+x, beta+k) B(gamma+1, delta+j) = Gamma(alpha+x) Gamma(gamma+1) * Gamma(beta+k)
    * Gamma(delta+j) / (Gamma(alpha+beta+j) Gamma(gamma+delta+1+j)): a factor of the
    customer times ``exp(by_k[k] + by_j[j])``. j and k are below ``size``, the largest n
    plus one, so every log-gamma is computed once per value instead of once per term.
    """
    alpha, beta, gamma, delta = (params[k] for k in ("alpha", "beta", "gamma", "delta"))
    v = np.arange(size, dtype=float)
    by_k = gammaln(beta + v)
    by_j = gammaln(delta + v) - gammaln(alpha + beta + v) - gammaln(gamma + delta + 1 + v)
    return by_k, by_j


def _segments(
    data: Arrays, width: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Chunks of the ragged sum of equation (5): rows, starts, owner, j and k of each term.

    The sum of a customer runs over i = 0 .. n - t_x - 1; its terms are laid out flat, the
    customer's first at ``starts`` (for ``np.add.reduceat``) and ``owner`` giving each
    term's row within the chunk. Only rows with a non-empty sum appear. A chunk holds about
    ``_CHUNK_ELEMENTS / width`` terms (``width``: parameter draws broadcast against them),
    so memory stays bounded however many customers and opportunities there are.
    """
    x = np.rint(data["frequency"]).astype(np.int64)
    t_x = np.rint(data["recency"]).astype(np.int64)
    gaps = np.rint(data["T"]).astype(np.int64) - t_x
    rows = np.flatnonzero(gaps > 0)
    if rows.size == 0:
        return
    lengths = gaps[rows]
    ends = np.cumsum(lengths)
    limit = max(_CHUNK_ELEMENTS // max(width, 1), 1)
    begin = 0
    while begin < rows.size:
        offset = ends[begin - 1] if begin else 0
        stop = max(int(np.searchsorted(ends, offset + limit, side="right")), begin + 1)
        chunk, part = rows[begin:stop], lengths[begin:stop]
        starts = np.concatenate(([0], np.cumsum(part)[:-1]))
        owner = np.repeat(np.arange(part.size), part)
        j = np.arange(int(part.sum())) - np.repeat(starts, part) + t_x[chunk][owner]
        yield chunk, starts, owner, j, j - x[chunk][owner]
        begin = stop


def _distinct(data: Arrays) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """The distinct (x, t_x, n) rows and where each row is among them, when worth it.

    Discrete-time histories repeat a lot (a few hundred patterns among a million
    customers), so predictions compute the likelihood once per pattern.
    """
    x, t_x, n = data["frequency"], data["recency"], data["T"]
    if x.size < 1000:
        return None
    span = int(np.max(n, initial=0)) + 1
    key = (np.rint(n).astype(np.int64) * span + np.rint(t_x).astype(np.int64)) * span + np.rint(
        x
    ).astype(np.int64)
    unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    if unique.size > x.size // 2:
        return None
    return {"frequency": x[first], "recency": t_x[first], "T": n[first]}, inverse.ravel()


def _log_joint(params: Params, data: Arrays) -> np.ndarray:
    """log [L * B(alpha, beta) * B(gamma, delta)]: equation (5) before normalising.

    Parameters may be arrays of draws of shape (n_draws, 1); the result then has shape
    (n_draws, n_customers).
    """
    distinct = _distinct(data)
    if distinct is not None:
        patterns, where = distinct
        return np.take(_log_joint(params, patterns), where, axis=-1)
    alpha, gamma = params["alpha"], params["gamma"]
    x, n = data["frequency"], data["T"]
    out = np.array(_log_head(params, x, n), dtype=float, copy=True)
    by_k, by_j = _tail_tables(params, _table_size(data))
    lead = gammaln(alpha + x) + gammaln(gamma + 1)
    width = int(np.prod(out.shape[:-1])) if out.ndim > 1 else 1
    for rows, starts, owner, j, k in _segments(data, width):
        terms = np.take(by_k, k, axis=-1) + np.take(by_j, j, axis=-1)
        top = np.maximum.reduceat(terms, starts, axis=-1)
        spread = np.exp(terms - np.take(top, owner, axis=-1))
        tail = top + np.log(np.add.reduceat(spread, starts, axis=-1)) + lead[..., rows]
        out[..., rows] = np.logaddexp(out[..., rows], tail)
    return out


def _log_survival_sum(gamma: Any, delta: Any, n: Any, m: Any) -> np.ndarray:
    """log sum_{t=n+1}^{m} B(gamma, delta + t), in closed form (-inf when m = n).

    With G(t) = Gamma(delta+t+1) / Gamma(gamma+delta+t), the sum telescopes to
    Gamma(gamma) [G(n) - G(m)] / (gamma - 1), the form behind E[X(n)] and equation (13) of
    Fader, Hardie & Shang (2010). Near gamma = 1 both G(n) - G(m) and gamma - 1 vanish;
    there their ratio comes from a third-order Taylor expansion in gamma - 1.
    """
    gm1 = gamma - 1.0
    near = np.abs(gm1) < _NEAR_ONE
    # D = log G(m) - log G(n) = -[f(gamma) - f(1)], f(g) = lnGamma(g+delta+m) - lnGamma(g+delta+n).
    d = (gammaln(delta + m + 1) - gammaln(delta + n + 1)) - (
        gammaln(gamma + delta + m) - gammaln(gamma + delta + n)
    )
    taylor = -(
        (psi(1 + delta + m) - psi(1 + delta + n))
        + gm1 / 2 * (polygamma(1, 1 + delta + m) - polygamma(1, 1 + delta + n))
        + gm1**2 / 6 * (polygamma(2, 1 + delta + m) - polygamma(2, 1 + delta + n))
    )
    slope = np.where(near, taylor, d / np.where(near, 1.0, gm1))
    d = np.where(near, taylor * gm1, d)
    # -expm1(D) / (gamma - 1) = -(expm1(D) / D) * (D / (gamma - 1)), with expm1(D)/D -> 1.
    safe = np.where(d == 0, 1.0, d)
    factor = np.where(d == 0, 1.0, np.expm1(safe) / safe)
    ratio = -factor * slope
    return gammaln(gamma) + gammaln(delta + n + 1) - gammaln(gamma + delta + n) + np.log(ratio)


def _pmf(params: Params, ks: np.ndarray, n: float) -> np.ndarray:
    """P(X(n) = k) of Fader, Hardie & Shang (2010), for each k of ``ks``.

    P = C(n,k) B(alpha+k, beta+n-k)/B(alpha,beta) B(gamma, delta+n)/B(gamma,delta)
      + sum_{i=k}^{n-1} C(i,k) B(alpha+k, beta+i-k)/B(alpha,beta) B(gamma+1, delta+i)/B(gamma,delta)
    (0 for k > n).
    """
    alpha, beta, gamma, delta = (params[k] for k in ("alpha", "beta", "gamma", "delta"))
    norm = betaln(alpha, beta) + betaln(gamma, delta)
    out = np.zeros(ks.shape)
    valid = ks <= n
    kv = ks[valid]

    def log_choose(a: Any, b: Any) -> Any:
        return gammaln(a + 1) - gammaln(b + 1) - gammaln(a - b + 1)

    head = log_choose(n, kv) + betaln(alpha + kv, beta + n - kv) + betaln(gamma, delta + n)
    i = np.arange(int(n), dtype=float)
    result = np.empty(kv.shape)
    # Rows of k at a time, so the (k, i) grid stays small for long horizons.
    step = max(1, _CHUNK_ELEMENTS // max(i.size, 1))
    for start in range(0, kv.size, step):
        kc = kv[start : start + step, None]
        with np.errstate(all="ignore"):
            terms = np.where(
                i >= kc,
                log_choose(i, kc)
                + betaln(alpha + kc, beta + np.maximum(i - kc, 0.0))
                + betaln(gamma + 1, delta + i),
                -np.inf,
            )
        both = np.concatenate([head[start : start + step, None], terms], axis=1)
        result[start : start + step] = logsumexp(both, axis=1)
    out[valid] = np.exp(result - norm)
    return np.clip(out, 0.0, 1.0)
