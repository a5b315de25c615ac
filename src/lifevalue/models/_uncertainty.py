"""Per-customer intervals from the estimation uncertainty of model parameters.

A quantity is a product of factors, each a function of one model's parameters and the
customers' data (CLV = margin x spend(Gamma-Gamma) x discounted purchases(BG/NBD)); the
models' estimates are independent. Three ways to turn that into intervals:

- ``"normal"``: draws from the asymptotic normal distribution of each model's
  log-parameters; each customer's interval is the equal-tailed quantile range of the
  quantity over the draws.
- ``"bootstrap"``: the same with refitted parameters on resampled customers.
- ``"delta"``: the first-order (delta-method) version of ``"normal"``: the standard error
  of log(quantity) from its gradient in the log-parameters (forward differences) and the
  covariance, and the interval ``estimate * exp(+-z * se)``. It costs (k + 1)
  evaluations per customer instead of one per draw, and agrees with ``"normal"`` when the
  parameters are well determined, which is always the case with many customers.

``"auto"`` (the default) uses normal draws while customers x draws stay below
:data:`AUTO_DRAW_LIMIT` and the delta method beyond.

Customers are processed in batches on a thread pool (numpy and scipy release the GIL in
their loops), so memory grows with the batch, never with draws x customers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lifevalue.errors import InputError
from lifevalue.models._arrays import subset

Arrays = dict[str, np.ndarray]
#: Customers x draws above which ``method="auto"`` switches from draws to the delta method.
AUTO_DRAW_LIMIT = 10_000_000
# Elements (draws x customers) in one batch.
_BATCH_ELEMENTS = 2_000_000
_STEP = 1e-5
METHODS = ("auto", "normal", "delta", "bootstrap")


@dataclass(frozen=True)
class Factor:
    """One factor of a quantity: a function of one model's parameters and the data.

    Parameters
    ----------
    compute
        ``compute(params, arrays) -> values`` broadcasting parameter arrays of shape
        (n_draws, 1) against customer arrays of shape (n,). ``params`` maps names to values.
    names
        The model's parameter names, in the order of ``theta``.
    theta, covariance
        Estimated log-parameters and their covariance.
    draws
        ``draws(n, method) -> {name: array (n,)}`` for the draw-based methods.
    """

    compute: Callable[[dict[str, object], Arrays], np.ndarray]
    names: tuple[str, ...]
    theta: np.ndarray
    covariance: np.ndarray
    draws: Callable[[int, str], dict[str, np.ndarray]]

    def at(self, theta: np.ndarray, arrays: Arrays) -> np.ndarray:
        params = dict(zip(self.names, np.exp(theta), strict=True))
        return self.compute(params, arrays)


def resolve_method(method: str, n_customers: int, n_draws: int) -> str:
    """The interval method to use; ``"auto"`` picks draws or the delta method by size."""
    if method not in METHODS:
        raise InputError(
            f"Unknown interval method {method!r}: expected one of {', '.join(METHODS)}."
        )
    if method == "auto":
        return "normal" if n_customers * n_draws <= AUTO_DRAW_LIMIT else "delta"
    return method


def interval(
    factors: Sequence[Factor],
    arrays: Arrays,
    labels: pd.Index,
    *,
    name: str,
    level: float,
    method: str = "auto",
    n_draws: int = 500,
    constant: np.ndarray | float = 1.0,
) -> pd.DataFrame:
    """Estimate and interval of ``constant x product of factors`` for each customer.

    Returns a frame indexed by ``labels`` with ``name``, ``name_low`` and ``name_high``.
    """
    n = len(labels)
    method = resolve_method(method, n, n_draws)
    constant = np.broadcast_to(np.asarray(constant, dtype=float), n)
    z = float(stats.norm.ppf(0.5 + level / 2))
    q = [(1 - level) / 2, (1 + level) / 2]
    draws = (
        [] if method == "delta" else [{k: v[:, None] for k, v in f.draws(n_draws, method).items()}
                                      for f in factors]
    )  # fmt: skip
    per_batch = _BATCH_ELEMENTS // (len(factors[0].names) + 2 if method == "delta" else n_draws)
    batch = max(1_000, per_batch)

    def run(start: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        part = subset(arrays, slice(start, start + batch))
        width = min(batch, n - start)
        c = constant[start : start + width]
        with np.errstate(all="ignore"):
            at_estimate = [np.broadcast_to(f.at(f.theta, part), width) for f in factors]
            estimate = c * np.prod(at_estimate, axis=0)
            if method == "delta":
                var = np.zeros(width)
                for f, value in zip(factors, at_estimate, strict=True):
                    var += _log_variance(f, part, value)
                spread = np.exp(z * np.sqrt(var))
                low, high = estimate / spread, estimate * spread
                exact = estimate == 0
                low[exact] = high[exact] = 0.0
            else:
                values = c * np.prod(
                    [
                        np.broadcast_to(f.compute(d, part), (n_draws, width))
                        for f, d in zip(factors, draws, strict=True)
                    ],
                    axis=0,
                )
                low, high = np.nanquantile(values, q, axis=0)
        return start, estimate, low, high

    out = np.empty((3, n))
    workers = min(os.cpu_count() or 1, max(1, -(-n // batch)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start, *columns in pool.map(run, range(0, n, batch)):
            out[:, start : start + len(columns[0])] = columns
    return pd.DataFrame({name: out[0], f"{name}_low": out[1], f"{name}_high": out[2]}, index=labels)


def _log_variance(factor: Factor, arrays: Arrays, value: np.ndarray) -> np.ndarray:
    """Delta-method variance of log(factor) per customer (forward differences in theta).

    ``value`` is the factor at the estimate, already computed by the caller.
    """
    width = len(value)
    base = np.log(value)
    grads = np.empty((len(factor.theta), width))
    for j in range(len(factor.theta)):
        theta = factor.theta.copy()
        theta[j] += _STEP
        shifted = np.log(np.broadcast_to(factor.at(theta, arrays), width))
        grads[j] = (shifted - base) / _STEP
    grads[~np.isfinite(grads)] = 0.0
    return np.einsum("in,ij,jn->n", grads, factor.covariance, grads)
