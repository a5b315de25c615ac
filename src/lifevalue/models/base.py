"""The shared base of every probabilistic model.

A model subclass supplies its parameter names, the columns it reads, the rules those
columns obey, its per-row log-likelihood (and, where it has one, the likelihood's
gradient) and its predictions as functions of the parameters. The base owns everything
else: column checks, compression of the data to distinct patterns with counts,
maximum-likelihood fitting on log-parameters from several starts with a final Newton
polish, the Hessian, standard errors and confidence intervals, parameter draws and
prediction intervals in batches, ``summary()``, and JSON save/load.

Parameters are estimated on the log scale, so they stay positive and the optimiser sees
a better-conditioned surface; standard errors are reported on the natural scale (delta
method) and confidence intervals are the log-scale intervals mapped back, so they never
cross zero.
"""

from __future__ import annotations

import inspect
import itertools
import json
import logging
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
from scipy import optimize, stats

from lifevalue.errors import ConvergenceError, DataValidationError, InputError, NotFittedError
from lifevalue.models._arrays import compress, factorize, subset
from lifevalue.models._checks import Rule, check_rules, finite, frame_arrays
from lifevalue.models._uncertainty import Factor, interval
from lifevalue.units import METADATA_KEY, TimeUnit

logger = logging.getLogger(__name__)

#: Parameter values as a mapping from name to a float or an array of draws (broadcastable).
Params = Mapping[str, Any]
Arrays = Mapping[str, np.ndarray]

# Log-parameters stay within exp(+-_LOG_BOUND): far beyond any sensible value, but finite.
_LOG_BOUND = 25.0

# From this many customers on, predictions compute terms per distinct column value.
_CODE_ROWS = 50_000

_REGISTRY: dict[str, type[BaseModel]] = {}


class BaseModel(ABC):
    """Shared machinery of lifevalue's probabilistic models.

    Subclasses define ``model_name``, ``param_names``, ``fit_columns`` and implement
    :meth:`_log_likelihood` and :meth:`_initial_params`; they may add rules
    (:meth:`_rules`), a dataset-level check (:meth:`_check_dataset`), an analytic gradient
    (:meth:`_log_likelihood_gradient`) and the choice of rows used for fitting
    (:meth:`_select`).

    Parameters
    ----------
    penalizer
        Strength of an L2 penalty on the parameters (natural scale), added to the mean
        negative log-likelihood per customer. 0 (the default) is plain maximum likelihood.
    tol
        Convergence tolerance on the gradient of the mean negative log-likelihood.
    max_iter
        Iteration limit of each optimiser start.
    n_starts
        Most starting points tried; fitting stops early once two starts agree.
    random_state
        Seed of the extra starting points, parameter draws and bootstrap samples.
    """

    model_name: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    #: Columns the fit reads (besides an optional ``weights`` column).
    fit_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    #: Columns predictions read.
    predict_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    #: Prediction columns with few distinct values, worth evaluating terms per value.
    coded_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    #: Whether time comes in whole periods (purchase opportunities), not continuously.
    discrete_time: ClassVar[bool] = False

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        tol: float = 1e-6,
        max_iter: int = 500,
        n_starts: int = 4,
        random_state: int | None = 0,
    ) -> None:
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter
        self.n_starts = n_starts
        self.random_state = random_state

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not inspect.isabstract(cls) and "model_name" in cls.__dict__:
            _REGISTRY[cls.model_name] = cls

    # ------------------------------------------------------------------ subclass hooks

    @staticmethod
    @abstractmethod
    def _log_likelihood(params: Params, data: Arrays) -> np.ndarray:
        """Log-likelihood of each row of ``data`` (arrays of ``fit_columns``)."""

    @abstractmethod
    def _initial_params(self, data: Arrays, weights: np.ndarray) -> dict[str, float]:
        """A sensible starting point for the optimiser, from the data."""

    def _log_likelihood_gradient(self, params: Params, data: Arrays) -> np.ndarray | None:
        """Derivatives of each row's log-likelihood by each parameter, shape (k, n).

        ``None`` (the default) makes the base use central finite differences.
        """
        return None

    def _rules(self) -> list[Rule]:
        """Rules every fitting row must satisfy (beyond finiteness)."""
        return []

    def _check_dataset(self, data: Arrays, weights: np.ndarray) -> None:  # noqa: B027
        """Raise :class:`DataValidationError` if the data as a whole cannot identify the model."""

    def _select(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` the fit uses (all of them by default)."""
        return frame

    # ---------------------------------------------------------------------- settings

    @classmethod
    def _settings_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]

    def get_params(self) -> dict[str, Any]:
        """The constructor's settings, as given."""
        return {name: getattr(self, name) for name in self._settings_names()}

    def _validate_settings(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("penalizer", _is_number(self.penalizer) and self.penalizer >= 0, ">= 0"),
            ("tol", _is_number(self.tol) and self.tol > 0, "> 0"),
            ("max_iter", isinstance(self.max_iter, int) and self.max_iter >= 1, "an integer >= 1"),
            ("n_starts", isinstance(self.n_starts, int) and self.n_starts >= 1, "an integer >= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise InputError(
                    f"The {name!r} parameter of {type(self).__name__} must be {expected}. "
                    f"Got {getattr(self, name)!r} instead."
                )

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({shown})"

    # ------------------------------------------------------------------------ fitting

    def fit(
        self,
        summary: pd.DataFrame,
        *,
        weights: str | None = None,
        time_unit: TimeUnit | str | None = None,
    ) -> Self:
        """Estimate the parameters by maximum likelihood.

        Parameters
        ----------
        summary
            One row per customer (or per pattern) with the model's ``fit_columns``.
        weights
            Name of a column holding how many customers share each row. Without it, a
            column named ``weights`` is used when present, else every row counts once.
        time_unit
            Unit of the summary's durations; by default read from
            ``summary.attrs["lifevalue"]["time_unit"]`` (set by lifevalue's summaries).

        Returns
        -------
        Self
            The fitted model.

        Raises
        ------
        DataValidationError
            If columns are missing or rows break the model's rules.
        ConvergenceError
            If no start reaches a finite optimum with a small gradient.
        """
        self._validate_settings()
        self.time_unit_ = _time_unit_of(summary, time_unit, model=type(self).__name__)
        frame = self._select(summary)
        data, counts = self._arrays(frame, self.fit_columns, weights=weights)
        self._check_dataset(data, counts)
        data, counts = compress(data, counts)
        self.n_customers_ = float(counts.sum())
        self.n_patterns_ = len(counts)
        theta, info = self._optimise(data, counts)
        self._set_fit(theta, data, counts, info)
        return self

    def _arrays(
        self, frame: pd.DataFrame, columns: Sequence[str], *, weights: str | None = None
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        name = type(self).__name__
        weight_col = weights or ("weights" if "weights" in getattr(frame, "columns", []) else None)
        if weights is not None and weights not in frame.columns:
            raise DataValidationError(
                f"{name}: the weights column {weights!r} is not in the summary "
                f"(columns: {', '.join(map(str, frame.columns))}).",
                rule="columns",
            )
        wanted = [*columns, *([weight_col] if weight_col else [])]
        arrays = frame_arrays(frame, wanted, model=name)
        labels = _labels_of(frame)
        rules = _finite_rules(wanted) + self._rules()
        if weight_col:
            rules.append(
                Rule("weights_non_negative", f"{weight_col!r} must be >= 0", _negative(weight_col))
            )
        check_rules(arrays, rules, labels=labels, model=name)
        counts = arrays.pop(weight_col) if weight_col else np.ones(len(frame))
        if len(frame) == 0 or counts.sum() <= 0:
            raise DataValidationError(
                f"{name} needs at least one customer; the summary has none.", rule="empty"
            )
        return arrays, counts

    def _log_likelihood_and_gradient(
        self, params: Params, data: Arrays
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-row log-likelihood and its gradient (k, n) by the natural parameters.

        Subclasses override it when both share expensive terms; the gradient may be
        ``None`` (then the base differentiates numerically).
        """
        return self._log_likelihood(params, data), self._log_likelihood_gradient(params, data)

    def _has_analytic_gradient(self) -> bool:
        cls = type(self)
        return (
            cls._log_likelihood_gradient is not BaseModel._log_likelihood_gradient
            or cls._log_likelihood_and_gradient is not BaseModel._log_likelihood_and_gradient
        )

    def _objective(
        self, data: Arrays, counts: np.ndarray, *, rough: bool = False
    ) -> tuple[Callable[[np.ndarray], float], Callable[[np.ndarray], tuple[float, np.ndarray]]]:
        """Mean penalised negative log-likelihood: ``value(theta)`` and ``both(theta)``.

        Large data are cut into chunks evaluated on a thread pool (numpy and scipy release
        the GIL), one chunk per core.
        """
        total = counts.sum()
        names = self.param_names
        chunks = _chunks(data, counts, os.cpu_count() or 1)
        pool = ThreadPoolExecutor(len(chunks)) if len(chunks) > 1 else None
        self.__dict__.setdefault("_pools", []).append(pool)

        def run(task: Callable[[tuple[Arrays, np.ndarray]], Any]) -> list[Any]:
            return list(pool.map(task, chunks)) if pool is not None else [task(chunks[0])]

        def penalised(p: np.ndarray, loglik: float) -> float:
            out = -loglik / total + self.penalizer * float(p @ p)
            return out if math.isfinite(out) else math.inf

        def value(theta: np.ndarray) -> float:
            p = np.exp(theta)
            params = dict(zip(names, p, strict=True))

            def part(chunk: tuple[Arrays, np.ndarray]) -> float:
                with np.errstate(all="ignore"):
                    return float(chunk[1] @ self._log_likelihood(params, chunk[0]))

            return penalised(p, sum(run(part)))

        def both(theta: np.ndarray) -> tuple[float, np.ndarray]:
            p = np.exp(theta)
            params = dict(zip(names, p, strict=True))

            def part(chunk: tuple[Arrays, np.ndarray]) -> tuple[float, np.ndarray | None]:
                # Sums rather than BLAS products: BLAS threads would fight the pool's.
                with np.errstate(all="ignore"):
                    ll, grad = self._log_likelihood_and_gradient(params, chunk[0])
                    total_ll = float((chunk[1] * ll).sum())
                    if grad is None:
                        return total_ll, None
                    return total_ll, (np.asarray(grad) * chunk[1]).sum(axis=1)

            parts = run(part)
            f = penalised(p, sum(v for v, _ in parts))
            if parts[0][1] is None:
                # Forward differences are precise enough to steer the search (rough);
                # the final Newton steps use central ones.
                return f, _numerical_gradient(value, theta, f if rough else None)
            g = -sum(g for _, g in parts) / total * p + 2 * self.penalizer * p * p
            return f, g

        return value, both

    def _optimise(self, data: Arrays, counts: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        self._pools: list[ThreadPoolExecutor | None] = []
        try:
            return self._optimise_with_pools(data, counts)
        finally:
            for pool in self._pools:
                if pool is not None:
                    pool.shutdown()
            self.__dict__.pop("_pools", None)

    def _optimise_with_pools(
        self, data: Arrays, counts: np.ndarray
    ) -> tuple[np.ndarray, dict[str, Any]]:
        start = self._initial_params(data, counts)
        theta0 = np.log(np.clip([start[n] for n in self.param_names], 1e-6, 1e6))
        rng = np.random.default_rng(self.random_state)
        # With many patterns, the starts explore a random sample of the customers; the
        # best of them is then refined on all the data.
        sample = _customer_sample(data, counts, rng)
        value, both = self._objective(*(sample or (data, counts)), rough=True)
        results = self._starts(value, both, theta0, rng)
        best = min(results, key=lambda r: r.fun)
        # The sample's Hessian approximates the full data's well: Newton steps with it
        # take the sample's optimum to the full one in a few evaluations.
        analytic = self._has_analytic_gradient()
        guess = _hessian(value, both, best.x, analytic=analytic) if sample is not None else None
        value, both = self._objective(data, counts)
        theta, hessian, grad = _newton_polish(value, both, best.x, analytic=analytic, hessian=guess)
        info = {
            "starts": len(results),
            "iterations": int(best.nit),
            "message": str(best.message),
            "gradient_max": float(np.max(np.abs(grad))),
        }
        ok = np.all(np.isfinite(theta)) and math.isfinite(value(theta))
        if not ok or info["gradient_max"] > max(self.tol, 1e-4):
            raise ConvergenceError(
                f"{type(self).__name__} did not converge: after {len(results)} start(s) the "
                f"largest gradient component is {info['gradient_max']:.3g} "
                f"(tolerance {max(self.tol, 1e-4):g}; optimiser: {best.message}). Try "
                "penalizer=0.001, more starts (n_starts=8), or a coarser time unit.",
                result=best,
            )
        info["hessian"] = hessian
        return theta, info

    def _minimise(
        self,
        both: Callable[[np.ndarray], tuple[float, np.ndarray]],
        x0: np.ndarray,
        *,
        gtol: float | None = None,
    ) -> optimize.OptimizeResult:
        # BFGS rather than L-BFGS-B: with a handful of parameters its bookkeeping costs
        # microseconds where L-BFGS-B's costs milliseconds per step. Log-parameters need
        # no bounds; the objective is infinite where the likelihood cannot be evaluated,
        # and the line search backs off from there.
        return optimize.minimize(
            both, x0, jac=True, method="BFGS",
            options={"maxiter": self.max_iter, "gtol": self.tol * 1e-2 if gtol is None else gtol},
        )  # fmt: skip

    def _starts(
        self,
        value: Callable[[np.ndarray], float],
        both: Callable[[np.ndarray], tuple[float, np.ndarray]],
        theta0: np.ndarray,
        rng: np.random.Generator,
    ) -> list[optimize.OptimizeResult]:
        results: list[optimize.OptimizeResult] = []
        for i in range(self.n_starts):
            x0 = theta0 if i == 0 else theta0 + rng.normal(0.0, 1.0, len(theta0))
            if not math.isfinite(value(x0)):
                continue
            res = self._minimise(both, x0)
            if math.isfinite(res.fun):
                results.append(res)
            finite = sorted(r.fun for r in results)
            # Two starts that agree are evidence enough of the optimum.
            if len(finite) >= 2 and abs(finite[0] - finite[1]) <= 1e-9 * max(1.0, abs(finite[0])):
                break
        if not results:
            raise ConvergenceError(
                f"{type(self).__name__} could not evaluate its likelihood at any starting point "
                f"({self.n_starts} tried): the data may be degenerate for this model. Check the "
                "summary's time unit (durations in days give very large T) or try a penalizer "
                "such as 0.001.",
            )
        return results

    def _set_fit(
        self, theta: np.ndarray, data: Arrays, counts: np.ndarray, info: dict[str, Any]
    ) -> None:
        hessian = info.pop("hessian") * counts.sum()
        eigen = np.linalg.eigvalsh(hessian)
        positive_definite = bool(eigen.min() > 0)
        covariance = np.linalg.pinv(hessian) if not positive_definite else np.linalg.inv(hessian)
        if not positive_definite:
            logger.warning(
                "%s: the likelihood is flat in some direction at the optimum; standard "
                "errors are unreliable.",
                type(self).__name__,
            )
        params = dict(zip(self.param_names, np.exp(theta), strict=True))
        ll = self._log_likelihood(params, data)
        self.log_params_ = theta
        self.covariance_ = covariance
        self.params_ = {k: float(v) for k, v in params.items()}
        self.log_likelihood_ = float(counts @ ll)
        self.converged_ = positive_definite
        self.optimizer_ = info
        self.bootstrap_log_params_: np.ndarray | None = None

    # ----------------------------------------------------------------- fitted results

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(summary) first."
            )

    @property
    def std_errors_(self) -> dict[str, float]:
        """Standard errors of the parameters on their natural scale (delta method)."""
        self._check_fitted()
        se_log = np.sqrt(np.clip(np.diag(self.covariance_), 0.0, None))
        values = np.exp(self.log_params_) * se_log
        return {n: float(v) for n, v in zip(self.param_names, values, strict=True)}

    def confidence_intervals(self, level: float = 0.95) -> pd.DataFrame:
        """Confidence intervals of the parameters, from the log scale mapped back."""
        self._check_fitted()
        _check_level(level)
        z = stats.norm.ppf(0.5 + level / 2)
        se_log = np.sqrt(np.clip(np.diag(self.covariance_), 0.0, None))
        return pd.DataFrame(
            {
                "lower": np.exp(self.log_params_ - z * se_log),
                "upper": np.exp(self.log_params_ + z * se_log),
            },
            index=pd.Index(self.param_names, name="parameter"),
        )

    @property
    def aic_(self) -> float:
        """Akaike information criterion of the fit."""
        self._check_fitted()
        return 2 * len(self.param_names) - 2 * self.log_likelihood_

    @property
    def bic_(self) -> float:
        """Bayesian information criterion of the fit (n = customers)."""
        self._check_fitted()
        return len(self.param_names) * math.log(self.n_customers_) - 2 * self.log_likelihood_

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Estimates, standard errors and confidence intervals, one row per parameter."""
        self._check_fitted()
        table = self.confidence_intervals(level)
        table.insert(0, "std_error", [self.std_errors_[n] for n in self.param_names])
        table.insert(0, "estimate", [self.params_[n] for n in self.param_names])
        return table

    # ----------------------------------------------------------- uncertainty: draws

    def param_draws(
        self, n_draws: int = 500, *, method: str = "normal", random_state: int | None = None
    ) -> dict[str, np.ndarray]:
        """Draws of the parameters expressing their estimation uncertainty.

        Parameters
        ----------
        n_draws
            Number of draws.
        method
            ``"normal"``: the asymptotic normal distribution of the log-parameters.
            ``"bootstrap"``: resampled fits stored by :meth:`bootstrap` (drawn with
            replacement when more are asked for than were fitted).
        random_state
            Seed; defaults to the model's ``random_state``.
        """
        self._check_fitted()
        rng = np.random.default_rng(self.random_state if random_state is None else random_state)
        if method == "normal":
            theta = rng.multivariate_normal(self.log_params_, self.covariance_, size=n_draws)
        elif method == "bootstrap":
            if self.bootstrap_log_params_ is None:
                raise NotFittedError(
                    f"{type(self).__name__} has no bootstrap fits: call "
                    "bootstrap(summary, n_boot=...) before asking for bootstrap intervals."
                )
            rows = rng.integers(0, len(self.bootstrap_log_params_), n_draws)
            theta = self.bootstrap_log_params_[rows]
        else:
            raise InputError(
                f"Unknown interval method {method!r}: expected 'normal' or 'bootstrap'."
            )
        values = np.exp(np.clip(theta, -_LOG_BOUND, _LOG_BOUND))
        return {n: values[:, i] for i, n in enumerate(self.param_names)}

    def bootstrap(
        self, summary: pd.DataFrame, *, n_boot: int = 200, weights: str | None = None
    ) -> Self:
        """Refit on ``n_boot`` resamples of the customers, for bootstrap intervals.

        Meant for small data, where the normal approximation is poor. The model must be
        fitted on the same summary first; the resampled log-parameters are kept in
        ``bootstrap_log_params_`` and saved with the model.
        """
        self._check_fitted()
        frame = self._select(summary)
        data, counts = self._arrays(frame, self.fit_columns, weights=weights)
        data, counts = compress(data, counts)
        rng = np.random.default_rng(self.random_state)
        total = round(counts.sum())
        draws = []
        refit = type(self)(**{**self.get_params(), "n_starts": 1})
        for _ in range(n_boot):
            resampled = rng.multinomial(total, counts / counts.sum()).astype(float)
            keep = resampled > 0
            sub = subset(data, keep)
            try:
                refit._initial_params = lambda d, w: self.params_  # type: ignore[method-assign]
                theta, _ = refit._optimise(sub, resampled[keep])
            except ConvergenceError:
                logger.warning("%s: one bootstrap refit did not converge.", type(self).__name__)
                continue
            draws.append(theta)
        if not draws:
            raise ConvergenceError(f"No bootstrap refit of {type(self).__name__} converged.")
        self.bootstrap_log_params_ = np.array(draws)
        return self

    # ------------------------------------------------------------- predictions

    def _predict_arrays(
        self, data: pd.DataFrame, columns: Sequence[str] | None = None
    ) -> tuple[dict[str, np.ndarray], pd.Index]:
        """Checked arrays of the prediction columns and the customer labels."""
        self._check_fitted()
        unit = (getattr(data, "attrs", {}).get(METADATA_KEY) or {}).get("time_unit")
        if unit and TimeUnit.parse(unit) is not self.time_unit_:
            raise DataValidationError(
                f"{type(self).__name__} was fitted in {self.time_unit_.value} but the summary "
                f"given is in {TimeUnit.parse(unit).value}; summarise in the model's unit.",
                rule="time_unit",
            )
        cols = list(columns or self.predict_columns)
        arrays = frame_arrays(data, cols, model=type(self).__name__)
        labels = _labels_of(data)
        check_rules(
            arrays, _finite_rules(cols) + self._rules(), labels=labels, model=type(self).__name__
        )
        coded = [c for c in self.coded_columns if c in arrays]
        if len(labels) >= _CODE_ROWS and coded:
            # Many customers share a frequency, a T, a recency (in whole days): expensive
            # terms are then computed once per distinct value (see _arrays.by_value).
            arrays = {**arrays, **factorize({c: arrays[c] for c in coded})}
        return arrays, labels

    def _predict(
        self,
        compute: Callable[..., np.ndarray],
        data: pd.DataFrame,
        *,
        name: str,
        columns: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> pd.Series:
        arrays, labels = self._predict_arrays(data, columns)
        with np.errstate(all="ignore"):
            values = compute(self.params_, arrays, **kwargs)
        return pd.Series(np.broadcast_to(values, len(labels)), index=labels, name=name)

    def _predict_interval(
        self,
        compute: Callable[..., np.ndarray],
        data: pd.DataFrame,
        *,
        name: str,
        level: float = 0.9,
        n_draws: int = 500,
        method: str = "auto",
        columns: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> pd.DataFrame:
        """Estimate and interval of ``compute`` per customer from parameter uncertainty.

        ``method`` is ``"auto"``, ``"normal"`` (draws), ``"delta"`` or ``"bootstrap"``;
        see :mod:`lifevalue.models._uncertainty`.
        """
        _check_level(level)
        arrays, labels = self._predict_arrays(data, columns)
        return interval(
            [self._factor(lambda p, a: compute(p, a, **kwargs))],
            arrays,
            labels,
            name=name,
            level=level,
            method=method,
            n_draws=n_draws,
        )

    def _factor(self, compute: Callable[[Params, Arrays], np.ndarray]) -> Factor:
        """``compute`` as one factor of an interval calculation, with this model's uncertainty."""
        self._check_fitted()
        return Factor(
            compute=compute,
            names=self.param_names,
            theta=self.log_params_,
            covariance=self.covariance_,
            draws=lambda n, method: self.param_draws(n, method=method),
        )

    # -------------------------------------------------------------- serialisation

    def to_dict(self) -> dict[str, Any]:
        """The fitted model as plain JSON-ready data (no pickle)."""
        self._check_fitted()
        from lifevalue import __version__

        return {
            "model": self.model_name,
            "class": type(self).__name__,
            "params": dict(self.params_),
            "std_errors": self.std_errors_,
            "confidence_intervals": {
                n: [float(row.lower), float(row.upper)]
                for n, row in self.confidence_intervals().iterrows()
            },
            "log_likelihood": self.log_likelihood_,
            "aic": self.aic_,
            "bic": self.bic_,
            "n_customers": self.n_customers_,
            "n_patterns": self.n_patterns_,
            "time_unit": self.time_unit_.value,
            "converged": self.converged_,
            "settings": self.get_params(),
            "log_params": self.log_params_.tolist(),
            "covariance_log": self.covariance_.tolist(),
            "bootstrap_log_params": (
                None if self.bootstrap_log_params_ is None else self.bootstrap_log_params_.tolist()
            ),
            "optimizer": {k: v for k, v in self.optimizer_.items() if k != "hessian"},
            "lifevalue_version": __version__,
        }

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> BaseModel:
        """Rebuild a fitted model from :meth:`to_dict` output.

        Called on :class:`BaseModel` it returns whichever model the payload names.
        """
        name = payload.get("model")
        target = _REGISTRY.get(str(name))
        if target is None:
            raise InputError(
                f"Unknown model {name!r} in the saved model: expected one of "
                f"{', '.join(sorted(_REGISTRY))}."
            )
        if cls is not BaseModel and not issubclass(target, cls):
            raise InputError(f"The saved model is a {target.__name__}, not a {cls.__name__}.")
        model = target(**dict(payload.get("settings") or {}))
        model.params_ = {k: float(payload["params"][k]) for k in target.param_names}
        model.log_params_ = np.asarray(payload["log_params"], dtype=float)
        model.covariance_ = np.asarray(payload["covariance_log"], dtype=float)
        boot = payload.get("bootstrap_log_params")
        model.bootstrap_log_params_ = None if boot is None else np.asarray(boot, dtype=float)
        model.log_likelihood_ = float(payload["log_likelihood"])
        model.n_customers_ = float(payload["n_customers"])
        model.n_patterns_ = int(payload.get("n_patterns", 0))
        model.time_unit_ = TimeUnit.parse(payload["time_unit"])
        model.converged_ = bool(payload["converged"])
        model.optimizer_ = dict(payload.get("optimizer") or {})
        return model

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to a JSON file and return its path."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path


def model_class(name: str) -> type[BaseModel]:
    """The model class registered under ``name`` (``"bgnbd"``, ``"pnbd"``, ...).

    Raises
    ------
    InputError
        If no model has that name.
    """
    found = _REGISTRY.get(str(name).lower())
    if found is None:
        raise InputError(f"Unknown model {name!r}: expected one of {', '.join(sorted(_REGISTRY))}.")
    return found


def load_model(path: str | Path) -> BaseModel:
    """Read a model saved with :meth:`BaseModel.save`.

    Raises
    ------
    InputError
        If the file is missing or is not a saved lifevalue model.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Model file {str(path)!r} does not exist.")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"Model file {str(path)!r} is not JSON: {exc}.") from exc
    if not isinstance(payload, dict) or "model" not in payload or "params" not in payload:
        raise InputError(
            f"Model file {str(path)!r} is not a saved lifevalue model (no 'model'/'params')."
        )
    return BaseModel.from_dict(payload)


# ---------------------------------------------------------------------- helpers


def _numerical_gradient(
    value: Callable[[np.ndarray], float], theta: np.ndarray, f0: float | None = None
) -> np.ndarray:
    """Gradient by differences: forward from ``f0`` (the value at ``theta``) when given,
    which halves the evaluations, central (more precise) otherwise."""
    h = 1e-7 if f0 is not None else 1e-6
    grad = np.empty_like(theta)
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = h
        if f0 is not None:
            grad[i] = (value(theta + step) - f0) / h
        else:
            grad[i] = (value(theta + step) - value(theta - step)) / (2 * h)
    return grad


def _hessian(
    value: Callable[[np.ndarray], float],
    both: Callable[[np.ndarray], tuple[float, np.ndarray]],
    theta: np.ndarray,
    *,
    analytic: bool,
) -> np.ndarray:
    """Finite-difference Hessian: of the analytic gradient, else second differences of the value.

    Differencing a numerical gradient would cost 2k gradients of 2k values each; second
    differences need 2k^2 + 1 values.
    """
    h = 1e-4
    k = len(theta)
    out = np.empty((k, k))
    eye = np.eye(k) * h
    if analytic:
        for i in range(k):
            out[:, i] = (both(theta + eye[i])[1] - both(theta - eye[i])[1]) / (2 * h)
        return (out + out.T) / 2
    f0 = value(theta)
    for i in range(k):
        out[i, i] = (value(theta + eye[i]) - 2 * f0 + value(theta - eye[i])) / h**2
        for j in range(i):
            out[i, j] = out[j, i] = (
                value(theta + eye[i] + eye[j]) - value(theta + eye[i] - eye[j])
                - value(theta - eye[i] + eye[j]) + value(theta - eye[i] - eye[j])
            ) / (4 * h**2)  # fmt: skip
    return out


def _newton_polish(
    value: Callable[[np.ndarray], float],
    both: Callable[[np.ndarray], tuple[float, np.ndarray]],
    theta: np.ndarray,
    *,
    analytic: bool,
    steps: int = 12,
    hessian: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Damped Newton steps from the optimiser's answer; returns theta, Hessian, gradient.

    Quasi-Newton methods stop once progress per step is small, which on flat surfaces (the
    Pareto/NBD in beta) can leave the gradient visibly non-zero; Newton steps with the
    finite-difference Hessian finish the job. The Hessian is computed once and reused
    while the steps are small, and again at the end if the point moved.
    """
    f, g = both(theta)
    hess = _hessian(value, both, theta, analytic=analytic) if hessian is None else hessian
    start = theta.copy() if hessian is None else np.full_like(theta, np.inf)
    for _ in range(steps):
        if np.max(np.abs(g)) < 1e-10:
            break
        eigval, eigvec = np.linalg.eigh(hess)
        # Keep the step a descent direction where the Hessian is not positive definite.
        safe = np.maximum(np.abs(eigval), 1e-8)
        step = -(eigvec @ ((eigvec.T @ g) / safe))
        if -float(g @ step) / 2 < 1e-14 * max(1.0, abs(f)):
            break  # what a step could still gain is below rounding: at the optimum
        g_new = None
        for scale in (1.0, 0.5, 0.25, 0.1, 0.01):
            candidate = np.clip(theta + scale * step, -_LOG_BOUND, _LOG_BOUND)
            # An analytic gradient costs little beyond the value: take both at once.
            f_new, g_new = both(candidate) if analytic else (value(candidate), None)
            if f_new <= f:
                break
        else:
            break
        theta, f = candidate, f_new
        g = g_new if g_new is not None else both(theta)[1]
        if hessian is None and np.max(np.abs(theta - start)) > 1e-3:
            hess = _hessian(value, both, theta, analytic=analytic)
            start = theta.copy()
    if not np.max(np.abs(theta - start)) <= 1e-6:
        hess = _hessian(value, both, theta, analytic=analytic)
    return theta, hess, g


def _chunks(
    data: Arrays, counts: np.ndarray, n_chunks: int
) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    """Split per-pattern arrays into ``n_chunks`` parts (only when they are large)."""
    n = len(counts)
    if n < 100_000 or n_chunks <= 1:
        return [(dict(data), counts)]
    bounds = np.linspace(0, n, n_chunks + 1).astype(int)
    out = []
    for lo, hi in itertools.pairwise(bounds):
        out.append((subset(data, slice(lo, hi)), counts[lo:hi]))
    return out


def _customer_sample(
    data: Arrays, counts: np.ndarray, rng: np.random.Generator, size: int = 20_000
) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """A random sample of ``size`` customers (as patterns with counts), when there are many more."""
    if len(counts) <= 2 * size:
        return None
    drawn = rng.multinomial(size, counts / counts.sum()).astype(float)
    keep = drawn > 0
    return subset(data, keep), drawn[keep]


def _negative(column: str) -> Callable[[Arrays], np.ndarray]:
    return lambda d: d[column] < 0


def _finite_rules(columns: Sequence[str]) -> list[Rule]:
    return finite(*columns)


def _labels_of(frame: pd.DataFrame) -> pd.Index:
    if "customer_id" in frame.columns:
        return pd.Index(frame["customer_id"], name="customer_id")
    index = frame.index
    return index if index.name else index.rename("customer_id")


def _time_unit_of(frame: Any, given: TimeUnit | str | None, *, model: str) -> TimeUnit:
    meta = getattr(frame, "attrs", {}).get(METADATA_KEY) or {}
    found = meta.get("time_unit")
    if given is not None:
        unit = TimeUnit.parse(given)
        if found and TimeUnit.parse(found) is not unit:
            raise DataValidationError(
                f"{model}: time_unit={unit.value!r} was given but the summary says its "
                f"durations are in {TimeUnit.parse(found).value}.",
                rule="time_unit",
            )
        return unit
    if found:
        return TimeUnit.parse(found)
    raise DataValidationError(
        f"{model} cannot tell the time unit of this summary (no lifevalue metadata): pass "
        "time_unit='weeks' (or days, months, years) to fit.",
        rule="time_unit",
    )


def _check_level(level: float) -> None:
    if not (_is_number(level) and 0 < level < 1):
        raise InputError(f"An interval level must be between 0 and 1. Got {level!r} instead.")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
