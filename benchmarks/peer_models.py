"""A peer library's model fits and predictions on a summary, run in that peer's own environment.

Usage: ``peer_models.py lifetimes|pymc-marketing bgnbd|pnbd|gg|predict SUMMARY.parquet``.

The summary has ``customer_id``, ``frequency``, ``recency``, ``T`` (weeks) and
``monetary_value`` (mean value of the repeat purchases, 0 without any). Prints one JSON
object: ``seconds`` of the timed call, the fitted ``params`` (fits) or summaries of the
predictions (``predict``), and the peak memory. Reading the summary and imports are not
timed. Imports nothing from lifevalue (the peers pin older numpy and pandas).

- lifetimes: ``BetaGeoFitter``, ``ParetoNBDFitter``, ``GammaGammaFitter`` with their
  defaults, one row per customer (as their documentation uses them).
- pymc-marketing: ``BetaGeoModel``, ``ParetoNBDModel``, ``GammaGammaModel`` with
  ``fit(method="map")`` and HalfFlat priors on every parameter, so the MAP is the
  maximum-likelihood estimate the other libraries compute (its default priors move it).
  The first fit in a process compiles the model's graph (about a minute cold), so each
  worker first fits the same model on 1,000 customers, untimed.
- Gamma-Gamma is fitted on the customers with repeat purchases (frequency > 0), the
  selection counted in the timing.
- ``predict``: BG/NBD expected purchases in the next 52 weeks, P(alive), and 12-month CLV
  from BG/NBD and Gamma-Gamma at 10% a year (the monthly rate 1.1 ** (1/12) - 1), point
  values only; the two models are fitted first, untimed.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HORIZON_WEEKS = 52
CLV_MONTHS = 12
MONTHLY_DISCOUNT = 1.1 ** (1 / 12) - 1
WARM_UP_ROWS = 1_000
PARAMS = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "pnbd": ("r", "alpha", "s", "beta"),
    "gg": ("p", "q", "v"),
}


def peak_memory() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def emit(result: dict[str, Any]) -> None:
    print(json.dumps({**result, "peak_bytes": peak_memory()}), flush=True)


def repeat_buyers(frame: Any) -> Any:
    return frame[frame["frequency"] > 0]


# ----------------------------------------------------------------------------- lifetimes


def lifetimes_fit(model: str, frame: Any) -> Any:
    from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

    if model == "gg":
        rows = repeat_buyers(frame)
        return GammaGammaFitter().fit(rows["frequency"], rows["monetary_value"])
    fitter = BetaGeoFitter() if model == "bgnbd" else ParetoNBDFitter()
    return fitter.fit(frame["frequency"], frame["recency"], frame["T"])


def lifetimes_params(model: str, fitted: Any) -> dict[str, float]:
    return {name: float(fitted.params_[name]) for name in PARAMS[model]}


def lifetimes_predict(frame: Any) -> dict[str, Any]:
    bg = lifetimes_fit("bgnbd", frame)
    gg = lifetimes_fit("gg", frame)
    f, r, t = frame["frequency"], frame["recency"], frame["T"]
    start = time.perf_counter()
    expected = bg.conditional_expected_number_of_purchases_up_to_time(HORIZON_WEEKS, f, r, t)
    expected_at = time.perf_counter()
    alive = bg.conditional_probability_alive(f, r, t)
    alive_at = time.perf_counter()
    clv = gg.customer_lifetime_value(
        bg,
        f,
        r,
        t,
        frame["monetary_value"],
        time=CLV_MONTHS,
        discount_rate=MONTHLY_DISCOUNT,
        freq="W",
    )
    done = time.perf_counter()
    return {
        "seconds": done - start,
        "expected": expected_at - start,
        "alive": alive_at - expected_at,
        "clv": done - alive_at,
        "predictions": _summaries(expected, alive, clv),
    }


# ------------------------------------------------------------------------ pymc-marketing


def pymc_model(model: str) -> Any:
    from pymc_extras.prior import Prior
    from pymc_marketing.clv import BetaGeoModel, GammaGammaModel, ParetoNBDModel

    flat = {name: Prior("HalfFlat") for name in PARAMS[model]}
    cls = {"bgnbd": BetaGeoModel, "pnbd": ParetoNBDModel, "gg": GammaGammaModel}[model]
    return cls(model_config=flat)


def pymc_data(model: str, frame: Any) -> Any:
    if model == "gg":
        return repeat_buyers(frame)[["customer_id", "frequency", "monetary_value"]]
    return frame[["customer_id", "frequency", "recency", "T"]]


def pymc_fit(model: str, frame: Any) -> Any:
    fitted = pymc_model(model)
    fitted.fit(pymc_data(model, frame), method="map", progressbar=False)
    return fitted


def pymc_warm_up(model: str, frame: Any) -> None:
    """One small fit of the same model, untimed: the first fit in a process compiles."""
    head = frame.iloc[:WARM_UP_ROWS]
    if model == "gg":
        head = repeat_buyers(frame).iloc[:WARM_UP_ROWS]
    pymc_fit(model, head)


def pymc_params(model: str, fitted: Any) -> dict[str, float]:
    posterior = fitted.fit_result
    return {name: float(posterior[name].values.ravel()[0]) for name in PARAMS[model]}


def pymc_predict(frame: Any) -> dict[str, Any]:
    bg = pymc_fit("bgnbd", frame)
    gg = pymc_fit("gg", frame)
    data = frame[["customer_id", "frequency", "recency", "T"]]
    with_spend = frame[["customer_id", "frequency", "recency", "T", "monetary_value"]].copy()
    start = time.perf_counter()
    expected = bg.expected_purchases(data, future_t=HORIZON_WEEKS)
    expected_at = time.perf_counter()
    alive = bg.expected_probability_alive(data)
    alive_at = time.perf_counter()
    clv = gg.expected_customer_lifetime_value(
        transaction_model=bg,
        data=with_spend,
        future_t=CLV_MONTHS,
        discount_rate=MONTHLY_DISCOUNT,
        time_unit="W",
    )
    done = time.perf_counter()
    return {
        "seconds": done - start,
        "expected": expected_at - start,
        "alive": alive_at - expected_at,
        "clv": done - alive_at,
        "predictions": _summaries(expected.values, alive.values, clv.values),
    }


# ---------------------------------------------------------------------------------- main


def _summaries(expected: Any, alive: Any, clv: Any) -> dict[str, float]:
    import numpy as np

    return {
        "expected_purchases_mean": float(np.mean(np.asarray(expected, dtype=float))),
        "p_alive_mean": float(np.mean(np.asarray(alive, dtype=float))),
        "clv_total": float(np.sum(np.asarray(clv, dtype=float))),
    }


def main() -> None:
    lib, task, path = sys.argv[1:4]
    import pandas as pd

    warnings.simplefilter("ignore")
    frame = pd.read_parquet(
        path, columns=["customer_id", "frequency", "recency", "T", "monetary_value"]
    )
    if lib == "lifetimes":
        import lifetimes  # noqa: F401  (imports are not timed)

        if task == "predict":
            emit(lifetimes_predict(frame))
            return
        start = time.perf_counter()
        fitted = lifetimes_fit(task, frame)
        seconds = time.perf_counter() - start
        emit({"seconds": seconds, "params": lifetimes_params(task, fitted)})
    elif lib == "pymc-marketing":
        import pymc_extras.prior  # noqa: F401  (imports are not timed)
        import pymc_marketing.clv  # noqa: F401

        if task == "predict":
            # The untimed fits before the predictions compile everything they need.
            emit(pymc_predict(frame))
            return
        pymc_warm_up(task, frame)
        start = time.perf_counter()
        fitted = pymc_fit(task, frame)
        seconds = time.perf_counter() - start
        emit({"seconds": seconds, "params": pymc_params(task, fitted), "warm_up": True})
    else:
        raise SystemExit(f"unknown peer {lib!r}: expected lifetimes or pymc-marketing")


if __name__ == "__main__":
    main()
