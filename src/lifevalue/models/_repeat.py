"""What the repeat-purchase models share.

:class:`PurchaseForecasts` wraps P(alive) and expected purchases for every such model
(BG/BB included, whose horizons are whole periods); :class:`RepeatPurchaseModel` adds what
the continuous-time ones (BG/NBD, MBG/NBD, Pareto/NBD) have in common: their input rules,
the check that the data can identify them, and the new-customer predictions. A subclass
supplies the formulas as staticmethods (``_p_alive``, ``_expected_purchases``,
``_expected_purchases_new``, ``_probability_of_purchases``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from lifevalue.errors import DataValidationError, InputError
from lifevalue.models import _checks
from lifevalue.models.base import Arrays, BaseModel


class PurchaseForecasts(BaseModel):
    """Per-customer P(alive) and expected purchases, for every repeat-purchase model.

    A subclass supplies ``_p_alive`` and ``_expected_purchases``; :meth:`_horizon` checks
    a horizon (whole periods for discrete-time models).
    """

    #: Whether the model defines P(alive) at a time after T.
    alive_after_T: ClassVar[bool] = True

    def _horizon(self, value: Any, name: str) -> Any:
        """``value`` after checking it is a horizon the model takes."""
        _checks.check_horizon(value, name)
        return value

    def probability_alive(self, summary: pd.DataFrame, *, future_t: float = 0.0) -> pd.Series:
        """Probability that each customer is still a customer, at T or ``future_t`` later.

        Parameters
        ----------
        summary
            One row per customer with ``frequency``, ``recency`` and ``T``.
        future_t
            Time after the end of observation, in the model's time unit; 0 (the default)
            means at T. Models whose dropout happens only at purchases (BG/NBD) define it
            at T only.

        Returns
        -------
        pandas.Series
            ``p_alive`` per customer, indexed by ``customer_id``.
        """
        future_t = self._horizon(future_t, "future_t")
        if not future_t:
            return self._predict(self._p_alive, summary, name="p_alive")  # type: ignore[attr-defined]
        if not self.alive_after_T:
            raise InputError(
                f"{type(self).__name__} defines P(alive) at the end of observation only "
                "(its customers can leave only right after a purchase): use future_t=0."
            )
        return self._predict(self._p_alive, summary, name="p_alive", future_t=future_t)  # type: ignore[attr-defined]

    def expected_purchases(self, summary: pd.DataFrame, *, future_t: float) -> pd.Series:
        """Expected number of purchases in (T, T + future_t], per customer.

        Parameters
        ----------
        summary
            One row per customer with ``frequency``, ``recency`` and ``T``.
        future_t
            Length of the horizon, in the model's time unit.

        Returns
        -------
        pandas.Series
            ``expected_purchases`` per customer, indexed by ``customer_id``.
        """
        future_t = self._horizon(future_t, "future_t")
        return self._predict(
            self._expected_purchases,
            summary,
            name="expected_purchases",
            future_t=future_t,  # type: ignore[attr-defined]
        )

    def expected_purchases_interval(
        self,
        summary: pd.DataFrame,
        *,
        future_t: float,
        level: float = 0.9,
        n_draws: int = 500,
        method: str = "auto",
    ) -> pd.DataFrame:
        """Expected purchases in (T, T + future_t] with a parameter-uncertainty interval.

        Parameters
        ----------
        summary
            One row per customer with ``frequency``, ``recency`` and ``T``.
        future_t
            Length of the horizon, in the model's time unit.
        level
            Coverage of the equal-tailed interval (0.9 by default).
        n_draws
            Parameter draws behind the interval.
        method
            ``"auto"``, ``"normal"``, ``"delta"`` or ``"bootstrap"`` (needs
            :meth:`bootstrap` first); see :mod:`lifevalue.models._uncertainty`.

        Returns
        -------
        pandas.DataFrame
            ``expected_purchases``, ``expected_purchases_low`` and
            ``expected_purchases_high``, indexed by ``customer_id``.
        """
        future_t = self._horizon(future_t, "future_t")
        return self._predict_interval(
            self._expected_purchases, summary, name="expected_purchases", level=level,  # type: ignore[attr-defined]
            n_draws=n_draws, method=method, future_t=future_t,
        )  # fmt: skip


class RepeatPurchaseModel(PurchaseForecasts):
    """Base of the models of ``frequency`` (x), ``recency`` (t_x) and ``T`` in continuous time."""

    def _rules(self) -> list[_checks.Rule]:
        return [
            *_checks.non_negative("frequency", "recency", "T"),
            *_checks.integer("frequency"),
            _checks.not_above("recency", "T"),
            _checks.zero_with("recency", "frequency"),
        ]

    def _check_dataset(self, data: Arrays, weights: np.ndarray) -> None:
        if not np.any((data["frequency"] > 0) & (weights > 0)):
            raise DataValidationError(
                f"{type(self).__name__} needs some customers with repeat purchases; every "
                "customer in this summary has frequency 0, so the purchase rate and the "
                "dropout cannot be told apart.",
                rule="no_repeat_buyers",
            )

    @staticmethod
    def _purchase_rate_start(data: Arrays, weights: np.ndarray) -> float:
        """Repeat purchases per unit of observed time: the scale a starting point needs."""
        rate = float(weights @ data["frequency"]) / max(float(weights @ data["T"]), 1e-9)
        return max(rate, 1e-6)

    def expected_purchases_new_customer(self, *, t: float | np.ndarray) -> float | np.ndarray:
        """Expected repeat purchases of a newly acquired customer in their first ``t`` units.

        Returns a float for a scalar ``t`` and an array for an array of horizons.
        """
        self._check_fitted()
        _checks.check_horizon(t, "t")
        with np.errstate(all="ignore"):
            out = self._expected_purchases_new(self.params_, t)  # type: ignore[attr-defined]
        return float(out) if np.ndim(out) == 0 else np.asarray(out)

    def probability_of_purchases(self, k: Any, *, t: float) -> np.ndarray:
        """P(X(t) = k): the probability a new customer makes ``k`` repeat purchases by ``t``.

        Parameters
        ----------
        k
            Numbers of repeat purchases (integers >= 0).
        t
            Length of the period after the first purchase, in the model's time unit.
        """
        self._check_fitted()
        _checks.check_horizon(t, "t", scalar=True)
        counts = _checks.check_counts(k)
        with np.errstate(all="ignore"):
            return np.asarray(
                self._probability_of_purchases(self.params_, counts, t=float(t))  # type: ignore[attr-defined]
            )
