"""The shared base of every probabilistic model.

A model subclass supplies its parameter names, the columns it reads, the rules those
columns obey, its per-row log-likelihood (and, where it has them, the likelihood's
gradient, or its weighted sum with exact gradient and Hessian) and its predictions as
functions of the parameters. The base owns everything else: column checks, compression
of the data to distinct patterns with counts, maximum-likelihood fitting on
log-parameters from several starts (Newton's method where the model gives exact second
derivatives, else BFGS with a final Newton polish on finite-difference Hessians), the
Hessian, standard errors and confidence intervals, parameter draws and prediction
intervals in batches, ``summary()``, and JSON save/load.

With many distinct patterns, the starts explore a random sample of 20,000 customers and
the best of them is refined on all the data, where a few Newton steps suffice.

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
from lifevalue.models._arrays import compress, dot, factorize, subset
from lifevalue.models._checks import Rule, check_rules, finite, frame_arrays
from lifevalue.models._uncertainty import Factor, interval
from lifevalue.units import METADATA_KEY, TimeUnit

logger = logging.getLogger(__name__)

#: Parameter values as a mapping from name to a float or an array of draws (broadcastable).
Params = Mapping[str, Any]
Arrays = Mapping[str, np.ndarray]

# Log-parameters stay within exp(+-_LOG_BOUND): far beyond any sensible value, but finite.
_LOG_BOUND = 25.0

# Newton's method stops when its next step would raise the log-likelihood by less than
# this: the optimum is then within about 1.4e-4 standard errors in every direction.
_GAIN_TOL = 1e-8

# From this many customers on, predictions compute terms per distinct column value.
_CODE_ROWS = 50_000

_REGISTRY: dict[str, type[BaseModel]] = {}


class BaseModel(ABC):
    """Shared machinery of lifevalue's probabilistic models.

    Subclasses define ``model_name``, ``param_names``, ``fit_columns`` and implement
    :meth:`_log_likelihood` and :meth:`_initial_params`; they may add rules
    (:meth:`_rules`), a dataset-level check (:meth:`_check_dataset`), an analytic gradient
    (:meth:`_log_likelihood_gradient`), exact first and second derivatives
    (:meth:`_log_likelihood_derivatives`, which makes the fit use Newton's method) and
    the choice of rows used for fitting (:meth:`_select`).

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
    #: Whether exact derivatives are evaluated on chunks of rows in parallel. A model whose
    #: cost lies in terms shared by many rows takes all rows at once and runs those terms
    #: in parallel itself (:meth:`_map`).
    rows_in_parallel: ClassVar[bool] = True

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

        By default, the gradient of :meth:`_log_likelihood_and_gradient` when a subclass
        overrides that, else ``None``, which makes the base use finite differences.
        """
        if type(self)._log_likelihood_and_gradient is BaseModel._log_likelihood_and_gradient:
            return None
        return self._log_likelihood_and_gradient(params, data)[1]

    def _log_likelihood_derivatives(
        self, params: Params, data: Arrays, counts: np.ndarray, *, hessian: bool
    ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Count-weighted sums of the log-likelihood, its gradient (k,) and Hessian (k, k).

        Derivatives are by the natural parameters; the Hessian is ``None`` unless
        ``hessian``. Models that override it are fitted by Newton's method with exact
        second derivatives (see :meth:`_optimise_newton`), which needs far fewer
        evaluations of the likelihood than a quasi-Newton search.
        """
        raise NotImplementedError

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
        rows, counts = self._arrays(frame, self.fit_columns, weights=weights, check=False)
        data, counts = compress(rows, counts, drop_empty=False)
        # The rules hold row by row, so checking the distinct patterns checks every row;
        # the rows themselves are looked at only to name the ones that break a rule.
        rules = self._column_rules(self.fit_columns)
        if _any_broken(data, rules):
            check_rules(rows, rules, labels=_labels_of(frame), model=type(self).__name__)
        if not np.all(counts > 0):
            data, counts = subset(data, counts > 0), counts[counts > 0]
        self._check_dataset(data, counts)
        self.n_customers_ = float(counts.sum())
        self.n_patterns_ = len(counts)
        theta, info = self._optimise(data, counts)
        self._set_fit(theta, data, counts, info)
        return self

    def _column_rules(self, columns: Sequence[str]) -> list[Rule]:
        return _finite_rules(columns) + self._rules()

    def _arrays(
        self,
        frame: pd.DataFrame,
        columns: Sequence[str],
        *,
        weights: str | None = None,
        check: bool = True,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The columns and the customers' counts, checked (``check=False``: the weights only)."""
        name = type(self).__name__
        weight_col = weights or ("weights" if "weights" in getattr(frame, "columns", []) else None)
        if weights is not None and weights not in frame.columns:
            raise DataValidationError(
                f"{name}: the weights column {weights!r} is not in the summary "
                f"(columns: {', '.join(map(str, frame.columns))}).",
                rule="columns",
            )
        wanted = [*columns, *([weight_col] if weight_col else [])]
        if (
            isinstance(frame, pd.DataFrame)
            and frame.columns.is_unique
            and all(c in frame.columns and _plain_numbers(frame[c].dtype) for c in wanted)
        ):
            # Columns of plain numbers need no conversion, nor a search for text in them.
            arrays = {c: frame[c].to_numpy(dtype=float) for c in wanted}
        else:
            arrays = frame_arrays(frame, wanted, model=name)
        labels = _labels_of(frame)
        rules = self._column_rules(columns)
        if weight_col:
            weight_rules = [
                *_finite_rules([weight_col]),
                Rule("weights_non_negative", f"{weight_col!r} must be >= 0", _negative(weight_col)),
            ]
            if check or _any_broken(arrays, weight_rules):
                check_rules(arrays, [*rules, *weight_rules], labels=labels, model=name)
        elif check:
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

    def _has_analytic_hessian(self) -> bool:
        return type(self)._log_likelihood_derivatives is not BaseModel._log_likelihood_derivatives

    def _runner(
        self, data: Arrays, counts: np.ndarray, *, split: bool = True
    ) -> Callable[[Callable[[tuple[Arrays, np.ndarray]], Any]], list[Any]]:
        """``run(task)``: ``task`` applied to each chunk of the data, in parallel.

        Large data are cut into chunks evaluated on a thread pool (numpy and scipy release
        the GIL), one chunk per core.
        """
        chunks = _chunks(data, counts, (os.cpu_count() or 1) if split else 1)
        pool = ThreadPoolExecutor(len(chunks)) if len(chunks) > 1 else None
        self.__dict__.setdefault("_pools", []).append(pool)

        def run(task: Callable[[tuple[Arrays, np.ndarray]], Any]) -> list[Any]:
            return list(pool.map(task, chunks)) if pool is not None else [task(chunks[0])]

        return run

    def _map(self, function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``[function(item) for item in items]``, on a thread per core when there are several."""
        cores = os.cpu_count() or 1
        if len(items) < 2 or cores < 2:
            return [function(item) for item in items]
        pool = self.__dict__.get("_map_pool")
        if pool is None:
            pool = ThreadPoolExecutor(cores)
            self.__dict__["_map_pool"] = pool
            self.__dict__.setdefault("_pools", []).append(pool)
        return list(pool.map(function, items))

    def _derivatives(
        self, data: Arrays, counts: np.ndarray
    ) -> Callable[[np.ndarray, bool], tuple[float, np.ndarray, np.ndarray | None]]:
        """Mean penalised negative log-likelihood with its exact derivatives by log-parameters.

        ``fgh(theta, hessian)`` returns the value, the gradient and (if ``hessian``) the
        Hessian; the value is infinite where the likelihood cannot be evaluated.
        """
        total = counts.sum()
        names = self.param_names
        run = self._runner(data, counts, split=self.rows_in_parallel)
        ridge = self.penalizer

        def fgh(theta: np.ndarray, hessian: bool) -> tuple[float, np.ndarray, np.ndarray | None]:
            p = np.exp(theta)
            params = dict(zip(names, p, strict=True))

            def part(chunk: tuple[Arrays, np.ndarray]) -> Any:
                with np.errstate(all="ignore"):
                    return self._log_likelihood_derivatives(
                        params, chunk[0], chunk[1], hessian=hessian
                    )

            parts = run(part)
            loglik = sum(ll for ll, _, _ in parts)
            f = -loglik / total + ridge * float(p @ p)
            # Chain rule to theta = log p: d/dtheta_i = p_i d/dp_i.
            grad = -sum(g for _, g, _ in parts) / total
            g = grad * p + 2 * ridge * p * p
            if not (math.isfinite(f) and np.all(np.isfinite(g))):
                return math.inf, g, None
            if not hessian:
                return f, g, None
            hess = -sum(h for _, _, h in parts) / total * np.outer(p, p)
            hess[np.diag_indices_from(hess)] += grad * p + 4 * ridge * p * p
            return f, g, hess

        return fgh

    def _objective(
        self, data: Arrays, counts: np.ndarray, *, rough: bool = False
    ) -> tuple[Callable[[np.ndarray], float], Callable[[np.ndarray], tuple[float, np.ndarray]]]:
        """Mean penalised negative log-likelihood: ``value(theta)`` and ``both(theta)``.

        Large data are evaluated in chunks on a thread pool (see :meth:`_runner`).
        """
        total = counts.sum()
        names = self.param_names
        run = self._runner(data, counts)

        def penalised(p: np.ndarray, loglik: float) -> float:
            out = -loglik / total + self.penalizer * float(p @ p)
            return out if math.isfinite(out) else math.inf

        def value(theta: np.ndarray) -> float:
            p = np.exp(theta)
            params = dict(zip(names, p, strict=True))

            def part(chunk: tuple[Arrays, np.ndarray]) -> float:
                with np.errstate(all="ignore"):
                    return dot(chunk[1], self._log_likelihood(params, chunk[0]))

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
        self.__dict__.pop("_map_pool", None)
        try:
            return self._optimise_with_pools(data, counts)
        finally:
            for pool in self._pools:
                if pool is not None:
                    pool.shutdown()
            self.__dict__.pop("_pools", None)
            self.__dict__.pop("_map_pool", None)

    def _optimise_with_pools(
        self, data: Arrays, counts: np.ndarray
    ) -> tuple[np.ndarray, dict[str, Any]]:
        rng = np.random.default_rng(self.random_state)
        # With many patterns, the starts explore a random sample of the customers; the
        # best of them is then refined on all the data.
        sample = _customer_sample(data, counts, rng)
        start = self._initial_params(*(sample or (data, counts)))
        theta0 = np.log(np.clip([start[n] for n in self.param_names], 1e-6, 1e6))
        if self._has_analytic_hessian():
            return self._optimise_newton(data, counts, theta0, rng, sample)
        value, both = self._objective(*(sample or (data, counts)), rough=True)
        results = self._starts(
            lambda x0: self._minimise(both, x0) if math.isfinite(value(x0)) else None,
            theta0,
            rng,
        )
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
        self._check_converged(ok, info, best)
        info["hessian"] = hessian
        return theta, info

    def _optimise_newton(
        self,
        data: Arrays,
        counts: np.ndarray,
        theta0: np.ndarray,
        rng: np.random.Generator,
        sample: tuple[dict[str, np.ndarray], np.ndarray] | None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Newton's method with exact Hessians: starts on the sample, then all the data.

        Each start converges in about ten evaluations of the likelihood and its
        derivatives. From the sample's optimum, two or three Newton steps on all the
        data reach the full optimum: the sample's optimum is within sampling error of
        it, where Newton's method converges quadratically.
        """
        first = sample or (data, counts)
        fgh = self._derivatives(*first)
        gain_tol = _GAIN_TOL / first[1].sum()
        results = self._starts(
            lambda x0: _newton(
                fgh, x0, max_iter=self.max_iter, gtol=self.tol * 1e-2, gain_tol=gain_tol
            ),
            theta0,
            rng,
        )
        best = min(results, key=lambda r: r.fun)
        guess = None
        if sample is not None:
            fgh = self._derivatives(data, counts)
            # The sample's Hessian (of a mean, like the full data's) serves the first step.
            guess = best.hess
        final = _newton(
            fgh, best.x, max_iter=50, gtol=1e-10, gain_tol=_GAIN_TOL / counts.sum(),
            hessian=guess,
        )  # fmt: skip
        theta = final.x
        info: dict[str, Any] = {
            "starts": len(results),
            "iterations": int(best.nit) + int(final.nit),
            "message": str(final.message),
            "gradient_max": float(np.max(np.abs(final.jac))),
        }
        ok = bool(np.all(np.isfinite(theta)) and math.isfinite(final.fun))
        self._check_converged(ok and final.hess is not None, info, final)
        info["hessian"] = final.hess
        info["log_likelihood"] = (self.penalizer * float(np.exp(2 * theta).sum()) - final.fun) * (
            counts.sum()
        )
        return theta, info

    def _check_converged(
        self, ok: bool, info: dict[str, Any], result: optimize.OptimizeResult
    ) -> None:
        if not ok or info["gradient_max"] > max(self.tol, 1e-4):
            raise ConvergenceError(
                f"{type(self).__name__} did not converge: after {info['starts']} start(s) the "
                f"largest gradient component is {info['gradient_max']:.3g} "
                f"(tolerance {max(self.tol, 1e-4):g}; optimiser: {result.message}). Try "
                "penalizer=0.001, more starts (n_starts=8), or a coarser time unit.",
                result=result,
            )

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
        solve: Callable[[np.ndarray], optimize.OptimizeResult | None],
        theta0: np.ndarray,
        rng: np.random.Generator,
    ) -> list[optimize.OptimizeResult]:
        """``solve`` from ``theta0`` and from random starts around it, until two agree.

        ``solve`` returns ``None`` for a start where the likelihood cannot be evaluated.
        """
        results: list[optimize.OptimizeResult] = []
        for i in range(self.n_starts):
            x0 = theta0 if i == 0 else theta0 + rng.normal(0.0, 1.0, len(theta0))
            res = solve(x0)
            if res is not None and math.isfinite(res.fun):
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
        loglik = info.pop("log_likelihood", None)
        if loglik is None:
            loglik = dot(counts, self._log_likelihood(params, data))
        self.log_params_ = theta
        self.covariance_ = covariance
        self.params_ = {k: float(v) for k, v in params.items()}
        self.log_likelihood_ = float(loglik)
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


def _newton(
    fgh: Callable[[np.ndarray, bool], tuple[float, np.ndarray, np.ndarray | None]],
    theta: np.ndarray,
    *,
    max_iter: int,
    gtol: float,
    gain_tol: float = 0.0,
    max_step: float = 2.0,
    hessian: np.ndarray | None = None,
) -> optimize.OptimizeResult:
    """Minimise ``fgh`` by Newton steps with a backtracking line search.

    Stops when the largest gradient component is below ``gtol`` or when what the next
    Newton step would gain (half the Newton decrement) is below ``gain_tol`` or rounding.
    Where the Hessian is not positive definite, its eigenvalues are taken in absolute
    value, which keeps the step a descent direction; steps are at most ``max_step`` in
    any log-parameter (a factor e^2), which keeps early steps from far starts sensible.
    A ``hessian`` given stands for the one at ``theta`` in the first step (the Hessian
    of a sample's mean at its optimum, for a start on all the data); every later one is
    computed.
    """
    theta = np.asarray(theta, dtype=float)
    f, g, hess = fgh(theta, hessian is None)
    if hessian is not None and math.isfinite(f):
        hess = hessian
    nfev, nit = 1, 0
    if not math.isfinite(f) or hess is None:
        return optimize.OptimizeResult(
            x=theta, fun=math.inf, jac=g, hess=None, nit=0, nfev=nfev, success=False,
            message="the likelihood cannot be evaluated at the start",
        )  # fmt: skip
    message, success = f"stopped after {max_iter} Newton steps", False
    while nit < max_iter:
        if np.max(np.abs(g)) < gtol:
            message, success = "the gradient is below the tolerance", True
            break
        if not np.all(np.isfinite(hess)):
            message = "the Hessian is not finite"
            break
        eigval, eigvec = np.linalg.eigh(hess)
        floor = 1e-10 * max(1.0, float(np.max(np.abs(eigval))))
        step = -(eigvec @ ((eigvec.T @ g) / np.maximum(np.abs(eigval), floor)))
        longest = float(np.max(np.abs(step)))
        if longest > max_step:
            step *= max_step / longest
        slope = float(g @ step)
        if -slope / 2 < max(gain_tol, 1e-14 * max(1.0, abs(f))):
            message, success = "what a Newton step could still gain is negligible", True
            break
        for scale in (1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 1e-3):
            candidate = np.clip(theta + scale * step, -_LOG_BOUND, _LOG_BOUND)
            f_new, g_new, h_new = fgh(candidate, True)
            nfev += 1
            if f_new <= f + 1e-4 * scale * slope and h_new is not None:
                break
        else:
            message = "the line search found no lower value along the Newton step"
            break
        theta, f, g, hess = candidate, f_new, g_new, h_new
        nit += 1
    return optimize.OptimizeResult(
        x=theta, fun=f, jac=g, hess=hess, nit=nit, nfev=nfev, success=success, message=message
    )


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
    # Customers drawn by their position in the cumulated counts: a multinomial draw over
    # hundreds of thousands of patterns costs far more.
    cumulated = np.cumsum(counts)
    picked = np.searchsorted(cumulated, rng.random(size) * cumulated[-1], side="right")
    drawn = np.bincount(np.minimum(picked, len(counts) - 1), minlength=len(counts)).astype(float)
    keep = drawn > 0
    return subset(data, keep), drawn[keep]


def _plain_numbers(dtype: Any) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind in "iuf"


def _any_broken(data: Arrays, rules: Sequence[Rule]) -> bool:
    with np.errstate(invalid="ignore"):
        return any(bool(np.any(rule.failing(data))) for rule in rules)


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
