"""``lifevalue run``: the whole analysis a configuration file describes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lifevalue.cli import shared
from lifevalue.cli.history import StoreOpt, print_alerts
from lifevalue.cli.shared import console
from lifevalue.errors import InputError
from lifevalue.pipeline import AnalysisResult, run_analysis
from lifevalue.store import RunStore, resolve_store_url


def run(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The lifevalue.toml to run.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the results.")] = Path(
        "out/run"
    ),
    store: StoreOpt = None,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Do not keep the run in the run history.")
    ] = False,
) -> None:
    """Validate, summarise, fit, score and decide; write every table (Parquet, CSV, DuckDB).

    The run is also kept in the run history (see `lifevalue runs`) and compared with the
    run stored before it; figures that moved beyond the [monitor] threshold are printed.
    """
    if config is None:
        raise InputError("No configuration: pass --config lifevalue.toml.")
    cfg = shared.load_config(config)
    engine = shared.make_engine(cfg, None, None)
    runs = None if no_store else RunStore(resolve_store_url(store, cfg))
    try:
        with shared.progress(engine) as step:
            result = run_analysis(cfg, engine=engine, step=step)
            step("Writing the results")
            written = result.write(out)
            if runs is not None:
                step("Storing the run")
                run_id = runs.save(result)
                alerts, previous = runs.alerts(run_id), runs.previous(run_id)
    finally:
        if runs is not None:
            runs.close()
    print_result(result)
    console.print(
        f"\nResults in [bold]{out}[/]: {len(result.tables)} tables as Parquet and CSV "
        f"({', '.join(result.tables)}), all of them in {written['database'].name}, the models "
        "as JSON and run.json.",
        highlight=False,
    )
    if runs is not None:
        console.print(
            f"Stored as run [bold]{run_id}[/] in {escape(str(runs))}"
            + (f", compared with run {previous}." if previous else " (its first run)."),
            highlight=False,
        )
        if previous is not None:
            print_alerts(alerts, previous=previous, limit=10)


def print_result(result: AnalysisResult) -> None:
    """A short, readable account of what a run found."""
    head = result.headline()
    shared.print_validation(result.validation)
    console.print(
        f"As of {head['as_of']}: {head['customers']:,} customers, {head['active_customers']:,} "
        f"probably active (P(alive) >= 0.5). Model: {head['transaction_model']}.\n"
        f"Customer equity (profit so far plus the next {result.settings['horizon_months']:g} "
        f"months): {head['customer_equity']:,.0f}. Predicted profit of the next "
        f"{result.settings['horizon_months']:g} months: {head['predicted_value']:,.0f} "
        f"(customers' 90% bounds summed: {head['predicted_value_low']:,.0f} to "
        f"{head['predicted_value_high']:,.0f}). The top 20% of customers hold "
        f"{head['top_20_percent_share']:.0%} of it.",
        highlight=False,
    )
    if "forecast" in result.tables:
        forecast = result.tables["forecast"]
        console.print(
            f"Existing customers over the next {len(forecast)} months: "
            f"{forecast['expected_orders'].sum():,.0f} orders, revenue "
            f"{forecast['expected_revenue'].sum():,.0f}, margin "
            f"{forecast['expected_margin'].sum():,.0f}.",
            highlight=False,
        )
    segments = result.tables["segments"]
    tiers = segments[segments["attribute"] == "value_tier"]
    table = Table(title="Value tiers")
    for column in ("tier", "customers", "mean predicted CLV", "share of future value"):
        table.add_column(column, justify="right")
    for row in tiers.itertuples():
        table.add_row(
            str(row.group),
            f"{row.customers:,}",
            f"{row.mean_predicted_clv:,.2f}",
            f"{row.share_of_predicted_clv:.0%}",
        )
    console.print(table)
    if "acquisition" in result.tables:
        acq = result.tables["acquisition"]
        table = Table(title="Acquisition channels")
        for column in ("channel", "new customers", "CAC", "LTV:CAC", "payback (months)", "advice"):
            table.add_column(column, justify="right")
        for row in acq.itertuples():
            table.add_row(
                str(row.acquisition_channel),
                f"{row.new_customers:,}",
                _number(row.cac, ",.2f"),
                _number(row.ltv_cac, ".1f"),
                _number(row.payback_months, ".1f"),
                str(row.recommendation),
            )
        console.print(table)
    offers = result.scores["offers"].fillna("").str.split("; ").explode()
    counts = offers[offers != ""].value_counts()
    if len(counts):
        console.print(
            "Offers: " + ", ".join(f"{name} {n:,}" for name, n in counts.items()),
            highlight=False,
        )
    if "leads" in result.tables:
        leads = result.tables["leads"]
        checked = result.tables.get("lead_validation")
        gini = (
            ""
            if checked is None
            else ", out-of-time Gini "
            + format(checked.set_index("metric")["value"].get("gini", float("nan")), ".2f")
        )
        console.print(
            f"New customers (last 90 days): {len(leads):,} valued by the lead model{gini}; "
            f"their predicted value {leads['predicted_value'].sum():,.0f}, the best "
            f"{leads['predicted_value'].iloc[0]:,.0f}.",
            highlight=False,
        )
    if "prospects" in result.tables:
        console.print(
            f"Prospects ranked: {len(result.tables['prospects']):,} (table prospects).",
            highlight=False,
        )


def _number(value: float, spec: str) -> str:
    """A figure, or a dash where there is none (an organic channel has no CAC)."""
    return "-" if value != value else format(value, spec)
