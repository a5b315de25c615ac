"""Gamma-Gamma model of the monetary value of transactions.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), RFM and CLV: using iso-value curves
for customer base analysis. *Journal of Marketing Research* 42(4), 415-430.

Fader, P. S. & Hardie, B. G. S. (2013), The Gamma-Gamma model of monetary value.
http://brucehardie.com/notes/025/

A customer's transaction values are Gamma(p, nu) with mean p / nu, independent of how
often they buy; nu ~ Gamma(shape q, rate gamma) across customers. The mean zbar of a customer's x
repeat transactions is then Gamma(p x, nu x) given nu.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.special import gammaln, psi

from lifevalue.errors import DataValidationError
from lifevalue.models import _checks
from lifevalue.models._arrays import by_value, cached
from lifevalue.models.base import Arrays, BaseModel, Params

logger = logging.getLogger(__name__)


class GammaGammaModel(BaseModel):
    """Gamma-Gamma model (Fader, Hardie & Lee 2005) of the mean value of repeat transactions.

    Reads ``frequency`` (x, repeat transactions) and ``monetary_value`` (zbar, the mean
    value of those x transactions, > 0). The fit uses customers with x > 0 only, since
    a customer without repeat transactions has no repeat value to observe;
    ``n_customers_`` counts those used. Parameters ``p`` (shape of the transaction
    values), ``q`` and ``gamma`` (shape and rate of the gamma distribution of their rate
    nu across customers); the mean spend per transaction is p gamma / (q - 1).
    The model assumes spend per transaction is independent of the number of
    transactions; check the correlation of ``frequency`` and ``monetary_value`` first.
    """

    model_name = "gg"
    param_names = ("p", "q", "gamma")
    fit_columns = ("frequency", "monetary_value")
    predict_columns = ("frequency", "monetary_value")
    coded_columns = ("frequency",)

    def _rules(self) -> list[_checks.Rule]:
        return [
            *_checks.non_negative("frequency"),
            *_checks.integer("frequency"),
            _checks.Rule(
                "monetary_value_positive",
                "'monetary_value' must be > 0 where 'frequency' > 0",
                lambda d: (d["frequency"] > 0) & ~(d["monetary_value"] > 0),
            ),
        ]

    def _select(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Customers with repeat transactions; rows with frequency 0 are left out (logged).

        Only an exact 0 is dropped: missing, negative or non-numeric frequencies stay in
        so that the column checks report them.
        """
        if not isinstance(frame, pd.DataFrame) or "frequency" not in frame.columns:
            return frame
        zero = (pd.to_numeric(frame["frequency"], errors="coerce") == 0).to_numpy()
        if zero.all() and len(frame):
            raise DataValidationError(
                f"{type(self).__name__} needs customers with repeat transactions "
                "(frequency > 0); every customer in this summary has frequency 0.",
                rule="no_repeat_buyers",
            )
        if zero.any():
            logger.info(
                "%s: %d of %d rows have no repeat transactions (frequency 0) and are left "
                "out of the fit.",
                type(self).__name__,
                int(zero.sum()),
                len(frame),
            )
        return frame.loc[~zero]

    def _initial_params(self, data: Arrays, weights: np.ndarray) -> dict[str, float]:
        # Mean spend is p * gamma / (q - 1): match it at p = 2, q = 3.
        mean = float(weights @ data["monetary_value"]) / max(float(weights.sum()), 1e-12)
        return {"p": 2.0, "q": 3.0, "gamma": max(mean, 1e-6)}

    @staticmethod
    def _log_likelihood(params: Params, data: Arrays) -> np.ndarray:
        """Log of the marginal density of zbar given x (Fader & Hardie 2013), per customer.

        f(zbar | p, q, gamma, x) = Gamma(p x + q) / (Gamma(p x) Gamma(q))
                                   * gamma^q x^(p x) zbar^(p x - 1) / (gamma + x zbar)^(p x + q).

        This is the full density, constant terms included (x^(p x) and zbar^(p x - 1)
        both depend on p, and the -log zbar they contain is kept), so the total matches
        the published log-likelihood of CDNOW, -4055.92 (Fader & Hardie 2013).
        """
        p, q, gamma = params["p"], params["q"], params["gamma"]
        x, z = data["frequency"], data["monetary_value"]
        px = p * x
        # Terms in x alone, once per distinct frequency (few) rather than per customer.
        by_x = by_value(
            data, "frequency", lambda u: gammaln(p * u + q) - gammaln(p * u) + p * u * np.log(u)
        )
        return (
            by_x
            - gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * np.log(z)
            - (px + q) * np.log(gamma + x * z)
        )

    def _log_likelihood_and_gradient(
        self, params: Params, data: Arrays
    ) -> tuple[np.ndarray, np.ndarray]:
        # One pass for both: the log of gamma + x zbar is the only per-customer
        # transcendental; log zbar is data and computed once.
        p, q, gamma = params["p"], params["q"], params["gamma"]
        x, z = data["frequency"], data["monetary_value"]
        px = p * x
        log_z = cached(data, "__log_monetary_value", lambda: np.log(z))
        total = gamma + x * z
        log_total = np.log(total)
        by_x = by_value(
            data, "frequency", lambda u: gammaln(p * u + q) - gammaln(p * u) + p * u * np.log(u)
        )
        ll = by_x - gammaln(q) + q * np.log(gamma) + (px - 1) * log_z - (px + q) * log_total
        psi_pxq = by_value(data, "frequency", lambda u: psi(p * u + q))
        d_p = x * (
            psi_pxq
            - by_value(data, "frequency", lambda u: psi(p * u) - np.log(u))
            + log_z
            - log_total
        )
        d_q = psi_pxq - psi(q) + np.log(gamma) - log_total
        d_gamma = q / gamma - (px + q) / total
        return ll, np.stack(np.broadcast_arrays(d_p, d_q, d_gamma))

    # ------------------------------------------------------------------ predictions

    @staticmethod
    def _conditional_expected_spend(params: Params, data: Arrays) -> np.ndarray:
        """E[Z | p, q, gamma, zbar, x] = p (gamma + x zbar) / (p x + q - 1) (Fader & Hardie 2013).

        A weighted mean of the population mean p gamma / (q - 1), weight (q - 1) /
        (p x + q - 1), and zbar; x = 0 gives the population mean (zbar unused). Infinite
        where p x + q <= 1, when the mean does not exist.
        """
        p, q, gamma = params["p"], params["q"], params["gamma"]
        x = data["frequency"]
        total = gamma + np.where(x > 0, x * data["monetary_value"], 0.0)
        denominator = p * x + q - 1
        exists = denominator > 0
        return np.where(exists, p * total / np.where(exists, denominator, 1.0), np.inf)

    def conditional_expected_spend(self, summary: pd.DataFrame) -> pd.Series:
        """Expected value of each customer's future transactions, given their history.

        The posterior mean of the customer's mean transaction value (Fader, Hardie & Lee
        2005; Fader & Hardie 2013), in the currency of ``monetary_value``. Customers without repeat
        transactions (frequency 0) get the population mean p gamma / (q - 1): the model
        knows nothing about their spend beyond it.

        Parameters
        ----------
        summary
            One row per customer with ``frequency`` and ``monetary_value`` (any finite
            number where frequency is 0).

        Returns
        -------
        pandas.Series
            Expected spend per transaction, indexed by ``customer_id``.
        """
        return self._predict(self._conditional_expected_spend, summary, name="expected_spend")

    def conditional_expected_spend_interval(
        self,
        summary: pd.DataFrame,
        *,
        level: float = 0.9,
        n_draws: int = 500,
        method: str = "auto",
    ) -> pd.DataFrame:
        """Conditional expected spend with an interval over parameter uncertainty.

        Parameters
        ----------
        summary
            One row per customer with ``frequency`` and ``monetary_value``.
        level
            Coverage of the equal-tailed interval.
        n_draws
            Parameter draws used for the interval.
        method
            ``"auto"`` (the default: normal draws, or the delta method for very many
            customers), ``"normal"``, ``"delta"`` or ``"bootstrap"`` (needs
            :meth:`bootstrap` first); see :mod:`lifevalue.models._uncertainty`.

        Returns
        -------
        pandas.DataFrame
            Columns ``expected_spend``, ``expected_spend_low``, ``expected_spend_high``,
            indexed by ``customer_id``.
        """
        return self._predict_interval(
            self._conditional_expected_spend, summary, name="expected_spend", level=level,
            n_draws=n_draws, method=method,
        )  # fmt: skip

    def population_mean_spend(self) -> float:
        """p gamma / (q - 1): the mean transaction value across customers (inf if q <= 1)."""
        self._check_fitted()
        p, q, gamma = (self.params_[k] for k in self.param_names)
        return p * gamma / (q - 1) if q > 1 else float("inf")
