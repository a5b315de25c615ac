"""``lifevalue validate`` and ``lifevalue summarize``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lifevalue.cli import shared
from lifevalue.cli.shared import console
from lifevalue.data import summarize as summarize_transactions
from lifevalue.data.validate import strict_message
from lifevalue.errors import DataValidationError, InputError

InputArg = Annotated[
    str | None,
    typer.Argument(
        help="CSV or Parquet file, a folder or glob of Parquet files. Default: the "
        "configuration's [data] source."
    ),
]


def validate(
    input: InputArg = None,
    config: shared.ConfigOpt = None,
    customer_col: shared.CustomerCol = None,
    date_col: shared.DateCol = None,
    amount_col: shared.AmountCol = None,
    order_col: shared.OrderCol = None,
    quantity_col: shared.QuantityCol = None,
    cost_col: shared.CostCol = None,
    margin_col: shared.MarginCol = None,
    channel_col: shared.ChannelCol = None,
    campaign_col: shared.CampaignCol = None,
    category_col: shared.CategoryCol = None,
    currency_col: shared.CurrencyCol = None,
    date_format: shared.DateFormat = None,
    observation_end: shared.ObservationEnd = None,
    returns: shared.Returns = None,
    duplicates: shared.Duplicates = None,
    currency: shared.Currency = None,
    delimiter: shared.Delimiter = None,
    header: shared.Header = None,
    quarantine: shared.QuarantineOut = None,
    strict: shared.Strict = False,
    memory_limit: shared.MemoryLimit = None,
    threads: shared.Threads = None,
) -> None:
    """Check a transaction log: every row is accepted or quarantined with a reason."""
    cfg = shared.configure(locals())
    source = shared.source_path(input, cfg)
    engine = shared.make_engine(cfg, memory_limit, threads)
    with shared.progress(engine) as step:
        step("Validating")
        validated = shared.validate_source(source, cfg, engine)
        if quarantine is not None:
            step("Writing quarantined rows")
            validated.write_quarantine(quarantine)
    shared.print_validation(validated.report)
    if quarantine is not None:
        console.print(f"Quarantined rows written to {quarantine}", highlight=False)
    if strict and validated.report.quarantined_total:
        raise DataValidationError(strict_message(validated), rule="strict")


def summarize(
    input: InputArg = None,
    calibration_end: Annotated[
        str | None,
        typer.Option("--calibration-end", help="Last day of the calibration period."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Summary file (.csv or .parquet).")
    ] = None,
    unit: Annotated[
        str | None, typer.Option("--unit", help="days, weeks (default), months or years.")
    ] = None,
    occasion_period: Annotated[
        str | None,
        typer.Option("--occasion-period", help="hour, day (default), week or month."),
    ] = None,
    acquisition: Annotated[
        bool,
        typer.Option(
            "--acquisition",
            help="Add each customer's acquisition channel and campaign (of the first order).",
        ),
    ] = False,
    config: shared.ConfigOpt = None,
    customer_col: shared.CustomerCol = None,
    date_col: shared.DateCol = None,
    amount_col: shared.AmountCol = None,
    order_col: shared.OrderCol = None,
    quantity_col: shared.QuantityCol = None,
    cost_col: shared.CostCol = None,
    margin_col: shared.MarginCol = None,
    channel_col: shared.ChannelCol = None,
    campaign_col: shared.CampaignCol = None,
    category_col: shared.CategoryCol = None,
    currency_col: shared.CurrencyCol = None,
    date_format: shared.DateFormat = None,
    observation_end: shared.ObservationEnd = None,
    returns: shared.Returns = None,
    duplicates: shared.Duplicates = None,
    currency: shared.Currency = None,
    delimiter: shared.Delimiter = None,
    header: shared.Header = None,
    quarantine: shared.QuarantineOut = None,
    strict: shared.Strict = False,
    memory_limit: shared.MemoryLimit = None,
    threads: shared.Threads = None,
) -> None:
    """Summarise transactions per customer: frequency, recency, T, monetary value, history."""
    cfg = shared.configure(locals())
    source = shared.source_path(input, cfg)
    cal_end = calibration_end or cfg.summary.calibration_end
    if not cal_end:
        raise InputError(
            "No calibration end: pass --calibration-end YYYY-MM-DD (or set calibration_end in "
            "the [summary] section of the configuration)."
        )
    if output is None:
        raise InputError("No output file: pass --output FILE (.csv or .parquet).")
    engine = shared.make_engine(cfg, memory_limit, threads)
    with shared.progress(engine) as step:
        step("Validating")
        validated = shared.validate_source(source, cfg, engine)
        if strict and validated.report.quarantined_total:
            raise DataValidationError(strict_message(validated), rule="strict")
        if quarantine is not None:
            step("Writing quarantined rows")
            validated.write_quarantine(quarantine)
        step("Summarising")
        summary = summarize_transactions(
            validated,
            calibration_end=cal_end,
            unit=unit or cfg.summary.unit,
            occasion_period=occasion_period or cfg.summary.occasion_period,
            acquisition=acquisition,
        )
        step("Writing the summary")
        summary.write(output)
    shared.print_validation(validated.report)
    shared.print_summary(summary, output)
    if quarantine is not None:
        console.print(f"Quarantined rows written to {quarantine}", highlight=False)
