"""sBG: the shifted-beta-geometric model of contractual retention.

Fader, P. S. & Hardie, B. G. S. (2007), How to project customer retention. *Journal of
Interactive Marketing* 21(1), 76-90.

Fader, P. S. & Hardie, B. G. S. (2010), Customer-base valuation in a contractual
setting: the perils of ignoring heterogeneity. *Marketing Science* 29(1), 85-93.

A customer acquired at time 0 renews at the end of each period with probability
1 - theta and, once lost, is lost for good; theta ~ Beta(alpha, beta) across customers.
The period of churn T is then shifted-beta-geometric:
P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta) and S(t) = P(T > t) =
B(alpha, beta + t) / B(alpha, beta).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.special import betaln, psi

from lifevalue.errors import DataValidationError, InputError
from lifevalue.models import _checks
from lifevalue.models._special import log_discounted_beta_sum
from lifevalue.models.base import Arrays, BaseModel, Params
from lifevalue.units import TimeUnit, period_discount_rate


class ShiftedBetaGeometricModel(BaseModel):
    """sBG model (Fader & Hardie 2007) of how long contractual customers stay.

    Fits on one row per customer (or per pattern, with ``weights``): ``tenure``, the
    number of periods observed (the period in which the customer churned, or the last
    period they are known to be active in) and ``churned`` (1 or True if they left in
    period ``tenure``; 0 or False if still active, a right-censored observation). Cohort
    counts of active customers fit through :meth:`fit_survival`. Parameters
    ``alpha, beta`` of the beta distribution of the per-period churn probability.

    Per-customer predictions (:meth:`expected_remaining_lifetime`,
    :meth:`discounted_expected_residual_lifetime`) read ``tenure`` of active customers,
    the number of renewals they have made.
    """

    model_name = "sbg"
    param_names = ("alpha", "beta")
    fit_columns = ("tenure", "churned")
    predict_columns = ("tenure",)
    discrete_time = True

    def _rules(self) -> list[_checks.Rule]:
        # Predictions read ``tenure`` alone and the curves ``t``: each rule applies when
        # the columns it reads are there.
        return [
            *(_when_present(r, "tenure") for r in _checks.non_negative("tenure")),
            *(_when_present(r, "tenure") for r in _checks.integer("tenure")),
            _when_present(
                _checks.Rule(
                    "churned_binary",
                    "'churned' must be 0 or 1 (False or True)",
                    lambda d: ~np.isin(d["churned"], (0.0, 1.0)),
                ),
                "churned",
            ),
            _when_present(
                _checks.Rule(
                    "tenure_positive_when_churned",
                    "'tenure' must be >= 1 where 'churned' is 1 (churn happens in period 1 "
                    "or later)",
                    lambda d: (d["churned"] == 1) & (d["tenure"] < 1),
                ),
                "tenure",
                "churned",
            ),
        ]

    def _check_dataset(self, data: Arrays, weights: np.ndarray) -> None:
        name = type(self).__name__
        used = weights > 0
        if not np.any((data["churned"] == 1) & used):
            raise DataValidationError(
                f"{name} needs some customers who churned; nobody in this data did, so the "
                "churn probability runs to 0.",
                rule="no_churn",
            )
        if not np.any((data["tenure"] >= 2) & used):
            raise DataValidationError(
                f"{name} needs customers observed for two periods or more; with one period "
                "only the mean churn probability is known, not its spread across customers.",
                rule="one_period",
            )

    def _initial_params(self, data: Arrays, weights: np.ndarray) -> dict[str, float]:
        # Churns per period at risk: the churn probability of a homogeneous population.
        rate = float(weights @ data["churned"]) / max(float(weights @ data["tenure"]), 1.0)
        rate = min(max(rate, 0.01), 0.99)
        return {"alpha": rate, "beta": 1.0 - rate}

    @staticmethod
    def _log_likelihood(params: Params, data: Arrays) -> np.ndarray:
        """Log-likelihood per customer (Fader & Hardie 2007).

        A customer who churned in period t contributes P(T = t) = B(alpha + 1, beta + t - 1)
        / B(alpha, beta); one still active after t periods contributes S(t) = B(alpha,
        beta + t) / B(alpha, beta). With c = churned both are B(alpha + c, beta + t - c) /
        B(alpha, beta).
        """
        alpha, beta = params["alpha"], params["beta"]
        t, c = data["tenure"], data["churned"]
        return betaln(alpha + c, beta + t - c) - betaln(alpha, beta)

    def _log_likelihood_gradient(self, params: Params, data: Arrays) -> np.ndarray:
        alpha, beta = params["alpha"], params["beta"]
        t, c = data["tenure"], data["churned"]
        total = psi(alpha + beta + t)
        d_alpha = psi(alpha + c) - total - psi(alpha) + psi(alpha + beta)
        d_beta = psi(beta + t - c) - total - psi(beta) + psi(alpha + beta)
        return np.stack(np.broadcast_arrays(d_alpha, d_beta))

    # ------------------------------------------------------------- cohort counts

    @staticmethod
    def survival_frame(active: Sequence[float] | np.ndarray | pd.Series) -> pd.DataFrame:
        """Turn cohort counts of active customers into the tenure frame :meth:`fit` reads.

        Parameters
        ----------
        active
            Customers of one cohort still active at the start (period 0) and after each
            period 1..n, e.g. ``[1000, 631, 468, 382, 326, 289, 262, 241]``: whole numbers,
            never increasing.

        Returns
        -------
        pandas.DataFrame
            Columns ``tenure``, ``churned`` and ``weights``: ``active[t-1] - active[t]``
            customers churned in period t (t = 1..n), and ``active[n]`` still active after
            n periods. Rows of no customers are left out.

        Raises
        ------
        DataValidationError
            If the counts are not whole numbers >= 0, increase, or are fewer than two.
        """
        counts = np.asarray(active, dtype=float).ravel()
        problems = []
        if counts.size < 2:
            problems.append("at least two counts (period 0 and period 1)")
        if not np.all(np.isfinite(counts)) or np.any(counts < 0):
            problems.append("finite numbers >= 0")
        elif np.any(counts != np.round(counts)):
            problems.append("whole numbers")
        elif counts.size >= 2 and np.any(np.diff(counts) > 0):
            problems.append("counts that never increase (customers lost are lost for good)")
        elif counts.size and counts[0] <= 0:
            problems.append("a positive count at period 0")
        if problems:
            raise DataValidationError(
                "ShiftedBetaGeometricModel.survival_frame needs "
                + "; ".join(problems)
                + f". Got {counts.tolist()!r}.",
                rule="survival_counts",
            )
        n = counts.size - 1
        frame = pd.DataFrame(
            {
                "tenure": np.r_[np.arange(1, n + 1), n].astype(np.int64),
                "churned": np.r_[np.ones(n, dtype=bool), False],
                "weights": np.r_[-np.diff(counts), counts[-1]],
            }
        )
        return frame[frame["weights"] > 0].reset_index(drop=True)

    def fit_survival(
        self, active: Sequence[float] | np.ndarray | pd.Series, *, time_unit: TimeUnit | str
    ) -> Self:
        """Fit on a cohort's counts of active customers at periods 0..n.

        Parameters
        ----------
        active
            Customers still active at the start and after each period (see
            :meth:`survival_frame`).
        time_unit
            The length of one period ("years" for annual contracts).

        Returns
        -------
        Self
            The fitted model.
        """
        return self.fit(self.survival_frame(active), weights="weights", time_unit=time_unit)

    # ------------------------------------------------------------------ predictions

    @staticmethod
    def _survival(params: Params, data: Arrays) -> np.ndarray:
        """S(t) = B(alpha, beta + t) / B(alpha, beta) (Fader & Hardie 2007)."""
        alpha, beta = params["alpha"], params["beta"]
        return np.clip(np.exp(betaln(alpha, beta + data["t"]) - betaln(alpha, beta)), 0.0, 1.0)

    @staticmethod
    def _retention_rate(params: Params, data: Arrays) -> np.ndarray:
        """r_t = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1) (Fader & Hardie 2007)."""
        alpha, beta = params["alpha"], params["beta"]
        t = data["t"]
        return (beta + t - 1) / (alpha + beta + t - 1)

    @staticmethod
    def _churn_probability(params: Params, data: Arrays) -> np.ndarray:
        """P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta) (Fader & Hardie 2007)."""
        alpha, beta = params["alpha"], params["beta"]
        log_p = betaln(alpha + 1, beta + data["t"] - 1) - betaln(alpha, beta)
        return np.clip(np.exp(log_p), 0.0, 1.0)

    @staticmethod
    def _remaining_lifetime(params: Params, data: Arrays) -> np.ndarray:
        """E[periods still to renew | n - 1 = tenure renewals made] = (beta + n - 1) / (alpha - 1).

        Given T >= n, theta ~ Beta(alpha, beta + n - 1) and the count of further renewals
        is geometric with mean 1/theta - 1; its expectation is finite only for alpha > 1.
        """
        alpha, beta = params["alpha"], params["beta"]
        value = (beta + data["tenure"]) / np.where(alpha > 1, alpha - 1, 1.0)
        return np.where(alpha > 1, value, np.inf)

    @staticmethod
    def _derl(params: Params, data: Arrays, *, discount: float) -> np.ndarray:
        """DERL (Fader & Hardie 2010) for a customer who has made n - 1 = tenure renewals.

        DERL = (beta + n - 1) / (alpha + beta + n - 1) * 2F1(1, beta + n; alpha + beta + n;
        1 / (1 + d)) = sum_{s>=0} B(alpha, beta + n + s) / B(alpha, beta + n - 1) / (1 + d)^s:
        the expected payments at periods n, n + 1, ..., the one at n + s discounted by
        (1 + d)^-s.
        """
        alpha, beta = params["alpha"], params["beta"]
        renewals = data["tenure"]
        log_sum = log_discounted_beta_sum(alpha, beta + renewals + 1, discount)
        return np.exp(log_sum - betaln(alpha, beta + renewals))

    def survival_function(self, t: Any) -> pd.Series:
        """S(t): the share of a cohort still active after t periods.

        Parameters
        ----------
        t
            Whole numbers of periods >= 0 (of the model's time unit), or one of them.

        Returns
        -------
        pandas.Series
            Survival probabilities indexed by ``t``.
        """
        return self._curve(self._survival, t, name="survival", first=0)

    def survival_function_interval(
        self, t: Any, *, level: float = 0.9, n_draws: int = 500, method: str = "auto"
    ) -> pd.DataFrame:
        """S(t) with an equal-tailed interval over parameter uncertainty.

        Parameters
        ----------
        t
            Whole numbers of periods >= 0.
        level
            Coverage of the interval.
        n_draws
            Parameter draws used for the interval.
        method
            ``"auto"`` (normal draws, or the delta method for very many values),
            ``"normal"``, ``"delta"`` or ``"bootstrap"`` (needs :meth:`bootstrap` first).

        Returns
        -------
        pandas.DataFrame
            Columns ``survival``, ``survival_low``, ``survival_high``, indexed by ``t``.
        """
        return self._curve_interval(
            self._survival, t, name="survival", first=0, level=level, n_draws=n_draws,
            method=method,
        )  # fmt: skip

    def retention_rate(self, t: Any) -> pd.Series:
        """r_t: the share of customers active after period t-1 who renew in period t.

        ``t`` holds whole numbers >= 1. Rates rise with t as the customers most likely
        to churn leave first (Fader & Hardie 2007). Indexed by ``t``.
        """
        return self._curve(self._retention_rate, t, name="retention_rate", first=1)

    def retention_rate_interval(
        self, t: Any, *, level: float = 0.9, n_draws: int = 500, method: str = "auto"
    ) -> pd.DataFrame:
        """r_t with an interval over parameter uncertainty (see :meth:`retention_rate`)."""
        return self._curve_interval(
            self._retention_rate, t, name="retention_rate", first=1, level=level,
            n_draws=n_draws, method=method,
        )  # fmt: skip

    def churn_probability(self, t: Any) -> pd.Series:
        """P(T = t): the chance a new customer churns in period t (whole numbers >= 1).

        Indexed by ``t``; equal to S(t - 1) - S(t).
        """
        return self._curve(self._churn_probability, t, name="churn_probability", first=1)

    def expected_lifetime(self) -> float:
        """E[T]: mean number of periods a new customer stays, (alpha + beta - 1) / (alpha - 1).

        Counts the period of acquisition, so it is also the mean number of payments when
        customers pay at the start of each period. Infinite when alpha <= 1.
        """
        self._check_fitted()
        alpha, beta = self.params_["alpha"], self.params_["beta"]
        return (alpha + beta - 1) / (alpha - 1) if alpha > 1 else math.inf

    def discounted_expected_lifetime(self, *, annual_discount_rate: float) -> float:
        """DEL: the discounted expected number of payments of a new customer.

        Fader & Hardie (2010): 2F1(1, beta; alpha + beta; 1 / (1 + d)), a payment
        at the start of each period alive, the one at period t discounted by (1 + d)^-t,
        where d is the per-period rate equivalent to ``annual_discount_rate`` in the
        model's time unit. Multiply by the payment per period for the expected lifetime
        value. Infinite for a rate of 0 when alpha <= 1.
        """
        self._check_fitted()
        d = period_discount_rate(annual_discount_rate, self.time_unit_)
        alpha, beta = self.params_["alpha"], self.params_["beta"]
        return float(np.exp(log_discounted_beta_sum(alpha, beta, d) - betaln(alpha, beta)))

    def expected_remaining_lifetime(self, customers: pd.DataFrame) -> pd.Series:
        """Expected number of further renewals of each active customer.

        Parameters
        ----------
        customers
            Active customers with ``tenure``, the renewals made so far (periods survived).

        Returns
        -------
        pandas.Series
            (beta + tenure) / (alpha - 1) periods, indexed by ``customer_id``; infinite
            when alpha <= 1, where the mean lifetime does not exist.
        """
        return self._predict(self._remaining_lifetime, customers, name="remaining_lifetime")

    def discounted_expected_residual_lifetime(
        self, customers: pd.DataFrame, *, annual_discount_rate: float
    ) -> pd.Series:
        """DERL of each active customer (Fader & Hardie 2010).

        The expected number of the customer's future payments, the next renewal (due now)
        counted in full and the one s periods later discounted by (1 + d)^-s, where d is the
        per-period rate equivalent to ``annual_discount_rate`` in the model's time unit.
        Multiply by the payment per period for the residual value of the customer.

        Parameters
        ----------
        customers
            Active customers with ``tenure``, the renewals made so far (n - 1 in the paper).
        annual_discount_rate
            Yearly discount rate, 0.1 for 10%.
        """
        self._check_fitted()
        discount = period_discount_rate(annual_discount_rate, self.time_unit_)
        return self._predict(self._derl, customers, name="derl", discount=discount)

    def discounted_expected_residual_lifetime_interval(
        self,
        customers: pd.DataFrame,
        *,
        annual_discount_rate: float,
        level: float = 0.9,
        n_draws: int = 500,
        method: str = "auto",
    ) -> pd.DataFrame:
        """DERL with an interval over parameter uncertainty (``derl``, ``_low``, ``_high``)."""
        self._check_fitted()
        discount = period_discount_rate(annual_discount_rate, self.time_unit_)
        return self._predict_interval(
            self._derl, customers, name="derl", level=level, n_draws=n_draws, method=method,
            discount=discount,
        )  # fmt: skip

    # ------------------------------------------------------------------- helpers

    def _curve(
        self, compute: Callable[..., np.ndarray], t: Any, *, name: str, first: int
    ) -> pd.Series:
        return self._predict(compute, _periods(t, first), name=name, columns=("t",))

    def _curve_interval(
        self,
        compute: Callable[..., np.ndarray],
        t: Any,
        *,
        name: str,
        first: int,
        level: float,
        n_draws: int,
        method: str,
    ) -> pd.DataFrame:
        return self._predict_interval(
            compute, _periods(t, first), name=name, level=level, n_draws=n_draws,
            method=method, columns=("t",),
        )  # fmt: skip


def _when_present(rule: _checks.Rule, *columns: str) -> _checks.Rule:
    """``rule``, passing every row when the input lacks one of the ``columns`` it reads."""

    def failing(d: Arrays) -> np.ndarray:
        if any(c not in d for c in columns):
            return np.zeros(len(next(iter(d.values()), ())), dtype=bool)
        return rule.failing(d)

    return _checks.Rule(rule.code, rule.text, failing)


def _periods(t: Any, first: int) -> pd.DataFrame:
    """A frame of periods ``t`` (indexed by them) after checking they are whole and >= first."""
    values = np.atleast_1d(np.asarray(t, dtype=float))
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < first)
    if values.ndim != 1 or np.any(bad):
        raise InputError(f"t must hold whole numbers of periods >= {first}. Got {t!r} instead.")
    index = pd.Index(values.astype(np.int64), name="t")
    return pd.DataFrame({"t": values}, index=index)
