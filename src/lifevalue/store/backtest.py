"""Backtests: how well the models would have predicted what really happened.

The analysis is replayed at past cut-off dates: at each cutoff the models are fitted on
the history up to it and judged on the stretch after it (the holdout), which has already
happened; rows after the holdout are left out, as they did not exist then. The measures
are those of :func:`lifevalue.models.compare.compare_models`: per-customer MAE and RMSE of
holdout purchases, the aggregate tracking error, P(alive) calibration and AUC, and the Gini
of holdout revenue ranked by predicted value. Several cutoffs show whether a model's
accuracy holds over time on the user's own data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from lifevalue.config import Config
from lifevalue.data import Engine, ValidatedTransactions, summarize, validate_transactions
from lifevalue.data.fingerprint import data_fingerprint
from lifevalue.errors import InputError
from lifevalue.models import BaseModel, GammaGammaModel
from lifevalue.models.compare import DEFAULT_MODELS, compare_models
from lifevalue.pipeline import configured_engine, scoring_date, validate_configured

logger = logging.getLogger(__name__)

#: Fewest customers with a purchase before a cutoff for a backtest to mean anything.
MIN_CUSTOMERS = 50
#: Fewest repeat buyers before a cutoff (the models learn from repeat purchases).
MIN_REPEAT_BUYERS = 10
#: Columns of :attr:`Backtest.table`, in order.
BACKTEST_COLUMNS: tuple[str, ...] = (
    "cutoff",
    "holdout_end",
    "model",
    "n_customers",
    "log_likelihood",
    "aic",
    "bic",
    "mae",
    "rmse",
    "predicted_total",
    "actual_total",
    "tracking_error",
    "calibration_error",
    "p_alive_auc",
    "gini",
)


@dataclass
class Backtest:
    """What :func:`run_backtest` found.

    Attributes
    ----------
    table
        One row per cutoff and model (:data:`BACKTEST_COLUMNS`): the cutoff and the end of
        its holdout, the customers summarised at the cutoff, the fit (log-likelihood, AIC,
        BIC) and the holdout measures of :func:`~lifevalue.models.compare.compare_models`.
    as_of
        The scoring date of the configuration (the end of the last holdout at most).
    fingerprint
        The digest of the accepted transactions.
    holdout_weeks
        Length of each holdout, in weeks.
    calibration
        The P(alive) calibration table of each (cutoff, model).
    """

    table: pd.DataFrame
    as_of: str
    fingerprint: str
    holdout_weeks: float
    calibration: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict, repr=False)


def default_cutoffs(as_of: str, *, n_cutoffs: int = 3, holdout_weeks: float = 26.0) -> list[str]:
    """``n_cutoffs`` dates spaced by the holdout, the last one a holdout before ``as_of``.

    Examples
    --------
    >>> default_cutoffs("2024-12-31", n_cutoffs=2, holdout_weeks=26)
    ['2024-01-02', '2024-07-02']
    """
    if n_cutoffs < 1:
        raise InputError(f"The number of cutoffs must be >= 1. Got {n_cutoffs!r} instead.")
    end = pd.Timestamp(as_of)
    step = pd.Timedelta(weeks=holdout_weeks)
    return [str((end - k * step).date()) for k in range(n_cutoffs, 0, -1)]


def run_backtest(
    config: Config,
    cutoffs: Sequence[str] | None = None,
    *,
    n_cutoffs: int = 3,
    holdout_weeks: float | None = None,
    models: Sequence[str | BaseModel] = DEFAULT_MODELS,
    engine: Engine | None = None,
    step: Callable[[str], None] | None = None,
) -> Backtest:
    """Fit the models at past cutoffs and measure them against what happened next.

    Parameters
    ----------
    config
        The configuration of the analysis: its source, reading options, time unit and
        scoring date (``[summary] calibration_end``, else ``[data] observation_end``).
        The log is read and validated once, up to the scoring date; at each cutoff the
        staged log is validated again up to the end of its holdout (later rows did not
        exist then), with the timestamp format and currency found the first time.
    cutoffs
        The cut-off dates (``"2024-06-30"``); by default :func:`default_cutoffs`.
    n_cutoffs
        How many default cutoffs.
    holdout_weeks
        Length of the stretch after each cutoff the models are judged on; by default
        ``[models] holdout_weeks`` (26). Each cutoff's holdout must end by the scoring date.
    models
        The transaction models to measure (names or unfitted models).
    engine
        The SQL engine; by default one built from ``[engine]``.
    step
        Called with the name of each step as it starts (for progress displays).

    Returns
    -------
    Backtest
        One row per cutoff and model.

    Raises
    ------
    InputError
        Without a source or scoring date, for a cutoff that is not a date, whose holdout
        runs past the scoring date, or that leaves too little history before it (fewer
        than :data:`MIN_CUSTOMERS` customers or :data:`MIN_REPEAT_BUYERS` repeat buyers).
    """
    say = step or (lambda label: logger.info("%s", label))
    data = config.data
    as_of = scoring_date(config)
    weeks = float(config.models.holdout_weeks if holdout_weeks is None else holdout_weeks)
    if not weeks > 0:
        raise InputError(f"The holdout must be longer than 0 weeks. Got {weeks!r} instead.")
    end = pd.Timestamp(as_of)
    holdout = pd.Timedelta(weeks=weeks)
    if cutoffs is None:
        cutoffs = default_cutoffs(as_of, n_cutoffs=n_cutoffs, holdout_weeks=weeks)
    dates = sorted({_date(c) for c in cutoffs})
    if not dates:
        raise InputError("No cutoff to backtest: give at least one date.")
    for cutoff in dates:
        if cutoff + holdout > end:
            raise InputError(
                f"The cutoff {cutoff.date()} leaves a holdout of {weeks:g} weeks ending "
                f"{(cutoff + holdout).date()}, after the scoring date {end.date()}: choose a "
                f"cutoff on or before {(end - holdout).date()} or a shorter holdout."
            )
    engine = engine or configured_engine(config)
    say("Validating transactions")
    validated = validate_configured(config, observation_end=as_of, engine=engine)
    start = _log_start(validated)
    frames, calibration = [], {}
    for cutoff in dates:
        label = str(cutoff.date())
        holdout_end = str((cutoff + holdout).date())
        say(f"Backtesting at {label} (holdout to {holdout_end})")
        then = validate_transactions(
            validated.source,
            columns=data.columns,
            date_format=validated.report.date_format,
            observation_end=holdout_end,
            returns=data.returns,
            duplicates=data.duplicates,
            currency=validated.report.currency,
            engine=engine,
        )
        summary = _summary(then, label, holdout_end, config, start=start)
        repeat = int((summary["frequency"] > 0).sum())
        spend = GammaGammaModel().fit(summary) if repeat >= MIN_REPEAT_BUYERS else None
        comparison = compare_models(summary, models=models, spend=spend)
        table = comparison.table.reset_index().assign(
            cutoff=label, holdout_end=holdout_end, n_customers=len(summary)
        )
        frames.append(table[list(BACKTEST_COLUMNS)])
        for name, cal in comparison.calibration.items():
            calibration[(label, name)] = cal
    return Backtest(
        table=pd.concat(frames, ignore_index=True),
        as_of=str(end.date()),
        fingerprint=data_fingerprint(validated),
        holdout_weeks=weeks,
        calibration=calibration,
    )


def _date(value: object) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(str(value).strip())
    except (TypeError, ValueError):
        stamp = pd.NaT
    if pd.isna(stamp):
        raise InputError(f"The cutoff {value!r} is not a date: expected one like 2024-06-30.")
    return stamp.normalize()


def _summary(
    validated: ValidatedTransactions, cutoff: str, holdout_end: str, config: Config, *, start: str
) -> pd.DataFrame:
    """The customer summary at a cutoff, checked to hold enough history (``start``: the
    date of the log's first accepted row, for the messages)."""
    try:
        summary = summarize(
            validated,
            calibration_end=cutoff,
            observation_end=holdout_end,
            unit=config.summary.unit,
            occasion_period=config.summary.occasion_period,
        ).to_pandas()
    except InputError as exc:
        raise InputError(
            f"The cutoff {cutoff} leaves too little history (the log starts {start}): {exc}"
        ) from exc
    repeat = int((summary["frequency"] > 0).sum())
    if len(summary) < MIN_CUSTOMERS or repeat < MIN_REPEAT_BUYERS:
        raise InputError(
            f"The cutoff {cutoff} leaves too little history: {len(summary)} customers bought "
            f"before it, {repeat} of them more than once (at least {MIN_CUSTOMERS} and "
            f"{MIN_REPEAT_BUYERS} needed); the log starts {start}. "
            "Choose a later cutoff."
        )
    return summary


def _log_start(validated: ValidatedTransactions) -> str:
    first = validated.accepted.timestamp.min().to_pandas()
    return "nowhere (no accepted row)" if pd.isna(first) else str(pd.Timestamp(first).date())
