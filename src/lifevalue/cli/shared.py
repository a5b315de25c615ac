"""What the commands share: options, the engine, progress display, error output."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lifevalue.config import Config
from lifevalue.data import (
    REASONS,
    CustomerSummary,
    Engine,
    ValidatedTransactions,
    ValidationReport,
    validate_transactions,
)
from lifevalue.data.contract import ColumnMapping, CsvOptions
from lifevalue.errors import InputError

console = Console()
err_console = Console(stderr=True)


def print_error(message: str) -> None:
    """Print a user-facing error as one paragraph on standard error."""
    err_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False)


# Options shared by the commands that read a transaction log.
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="A lifevalue.toml configuration file.")
]
CustomerCol = Annotated[str | None, typer.Option("--customer-col", help="Customer id column.")]
DateCol = Annotated[str | None, typer.Option("--date-col", help="Timestamp column.")]
AmountCol = Annotated[str | None, typer.Option("--amount-col", help="Amount column.")]
OrderCol = Annotated[str | None, typer.Option("--order-col", help="Order id column.")]
QuantityCol = Annotated[str | None, typer.Option("--quantity-col", help="Quantity column.")]
CostCol = Annotated[str | None, typer.Option("--cost-col", help="Cost column.")]
MarginCol = Annotated[str | None, typer.Option("--margin-col", help="Margin column.")]
ChannelCol = Annotated[str | None, typer.Option("--channel-col", help="Channel column.")]
CampaignCol = Annotated[str | None, typer.Option("--campaign-col", help="Campaign column.")]
CategoryCol = Annotated[str | None, typer.Option("--category-col", help="Category column.")]
CurrencyCol = Annotated[str | None, typer.Option("--currency-col", help="Currency column.")]
DateFormat = Annotated[
    str | None,
    typer.Option("--date-format", help="strptime format of text dates, e.g. %d/%m/%Y, or 'iso'."),
]
ObservationEnd = Annotated[
    str | None,
    typer.Option(
        "--observation-end",
        help="End of the observation period (later rows are quarantined). Default: now.",
    ),
]
Returns = Annotated[
    str | None, typer.Option("--returns", help="Returns policy: net (default), keep, quarantine.")
]
Duplicates = Annotated[
    str | None,
    typer.Option("--duplicates", help="Exact repeats: quarantine (default) or keep."),
]
Currency = Annotated[
    str | None, typer.Option("--currency", help="The analysis currency (default: most common).")
]
Delimiter = Annotated[
    str | None,
    typer.Option("--delimiter", help="CSV field separator, or 'whitespace'. Default: detected."),
]
Header = Annotated[
    bool | None,
    typer.Option("--header/--no-header", help="Whether the CSV has a header. Default: detected."),
]
Strict = Annotated[bool, typer.Option("--strict", help="Any problem row is fatal (exit code 2).")]
QuarantineOut = Annotated[
    Path | None, typer.Option("--quarantine", help="Write quarantined rows to this CSV file.")
]
MemoryLimit = Annotated[
    str | None,
    typer.Option("--memory-limit", help="Engine memory limit, e.g. 4GB (spills beyond)."),
]
Threads = Annotated[int | None, typer.Option("--threads", help="Engine threads. Default: all.")]


def load_config(path: Path | None) -> Config:
    """The configuration file's contents, or the defaults."""
    return Config.from_toml(path) if path is not None else Config()


#: Parameter names of the source options, as the commands declare them.
SOURCE_OPTIONS = (
    "config",
    "customer_col",
    "date_col",
    "amount_col",
    "order_col",
    "quantity_col",
    "cost_col",
    "margin_col",
    "channel_col",
    "campaign_col",
    "category_col",
    "currency_col",
    "date_format",
    "observation_end",
    "returns",
    "duplicates",
    "currency",
    "delimiter",
    "header",
)
_ROLE_OPTIONS = {
    "customer_col": "customer_id",
    "date_col": "timestamp",
    "amount_col": "amount",
    "order_col": "order_id",
    "quantity_col": "quantity",
    "cost_col": "cost",
    "margin_col": "margin",
    "channel_col": "channel",
    "campaign_col": "campaign",
    "category_col": "category",
    "currency_col": "currency",
}


def configure(options: dict[str, Any]) -> Config:
    """The configuration file (if any) with the command's source options laid over it.

    ``options`` holds a command's parameters by name (see :data:`SOURCE_OPTIONS`).
    """
    config = load_config(options.get("config"))
    data = config.data
    csv: CsvOptions = data.csv
    if options.get("delimiter") is not None:
        csv = replace(csv, delimiter=options["delimiter"])
    if options.get("header") is not None:
        csv = replace(csv, header=options["header"])
    columns = {role: options.get(name) for name, role in _ROLE_OPTIONS.items()}
    mapping: ColumnMapping = data.columns.with_overrides(**columns)
    data = replace(
        data,
        columns=mapping,
        csv=csv,
        **{
            key: options.get(key) or getattr(data, key)
            for key in ("date_format", "observation_end", "returns", "duplicates", "currency")
        },
    )
    return replace(config, data=data)


def source_path(given: str | None, config: Config) -> str:
    """The input named on the command line, else the configuration's source."""
    source = given or config.data.source
    if not source:
        raise InputError(
            "No input: pass the transaction file (or set source in the [data] section of the "
            "configuration)."
        )
    return source


def validate_source(source: str, config: Config, engine: Engine) -> ValidatedTransactions:
    """Validate a source with the configuration's reading and validation options."""
    data = config.data
    return validate_transactions(
        source,
        columns=data.columns,
        date_format=data.date_format,
        observation_end=data.observation_end,
        returns=data.returns,
        duplicates=data.duplicates,
        currency=data.currency,
        csv_options=data.csv,
        engine=engine,
    )


def make_engine(config: Config, memory_limit: str | None, threads: int | None) -> Engine:
    """The engine the configuration and options ask for."""
    return Engine(
        database=config.engine.database,
        memory_limit=memory_limit or config.engine.memory_limit,
        threads=threads or config.engine.threads,
    )


@contextmanager
def progress(engine: Engine | None) -> Iterator[Callable[[str], None]]:
    """A progress display for long steps; yields a function that starts a named step.

    The bar follows the engine's own estimate of the running query's progress.
    """
    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("Starting", total=100)
        stop = threading.Event()

        def poll() -> None:
            while engine is not None and not stop.wait(0.2):
                done = engine.query_progress()
                if done >= 0:
                    bar.update(task, completed=done)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()

        def step(label: str) -> None:
            bar.update(task, description=label, completed=0)

        try:
            yield step
        finally:
            stop.set()
            thread.join()


def print_validation(report: ValidationReport) -> None:
    """Counts of a validation, per reason, as a table."""
    fmt = report.date_format
    how = f"; timestamps read as {fmt}" + (" (detected)" if report.date_format_detected else "")
    console.print(
        f"Read [bold]{report.rows_read:,}[/] rows from {escape(report.source)}"
        + (escape(how) if fmt else ""),
        highlight=False,
    )
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("rows", justify="left")
    table.add_column("count", justify="right")
    table.add_column("meaning")
    table.add_row("accepted", f"{report.accepted:,}", "")
    if report.returns:
        table.add_row(
            "  of which returns", f"{report.returns:,}", f"policy '{report.returns_policy}'"
        )
    table.add_row("quarantined", f"{report.quarantined_total:,}", "")
    for code, n in report.quarantined.items():
        table.add_row(f"  {code}", f"{n:,}", REASONS[code])
    console.print(table)
    for note in report.notes:
        console.print(f"Note: {escape(note)}", highlight=False)


def print_summary(summary: CustomerSummary, output: Path | None) -> None:
    """A few lines about a customer summary and where it was written."""
    acc = summary.accounting
    stats = (
        summary.table.aggregate(
            repeat=(summary.table.frequency > 0).mean(),
            mean_frequency=summary.table.frequency.mean(),
        )
        .execute()
        .iloc[0]
    )
    console.print(
        f"Summarised [bold]{acc.get('customers', 0):,}[/] customers "
        f"(calibration to {summary.calibration_end}, time unit {summary.time_unit}): "
        f"{stats['repeat']:.1%} bought again, {stats['mean_frequency']:.2f} repeat purchases "
        "on average.",
        highlight=False,
    )
    if summary.has_holdout:
        console.print(f"Holdout period to {summary.observation_end}.", highlight=False)
    excluded = acc.get("customers_first_seen_in_holdout", 0) + acc.get(
        "customers_without_purchase", 0
    )
    if excluded:
        console.print(
            f"Not in the summary: {acc['customers_first_seen_in_holdout']:,} customers first "
            f"seen after the calibration end and {acc['customers_without_purchase']:,} with no "
            f"purchase left after returns ({acc['rows_of_excluded_customers']:,} rows).",
            highlight=False,
        )
    if output is not None:
        console.print(f"Summary written to {output}", highlight=False)
