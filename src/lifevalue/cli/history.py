"""``lifevalue runs``, ``monitor`` and ``backtest``: the run history on the command line."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from lifevalue.cli import shared
from lifevalue.cli.shared import console
from lifevalue.errors import InputError
from lifevalue.store import (
    RunStore,
    compare_runs,
    resolve_store_url,
    run_backtest,
    tier_migration,
)
from lifevalue.store.monitor import ALL, DIMENSIONS, setting_changes

runs_app = typer.Typer(
    help="The run history: list, show, compare and delete stored runs.",
    no_args_is_help=True,
)

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        "-s",
        help="The run store: a DuckDB file or a postgresql:// URL. Default: \\[store] url of "
        "--config, else $LIFEVALUE_STORE, else lifevalue-runs.duckdb here.",
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="A lifevalue.toml whose \\[store] url to use."),
]
RunArg = Annotated[str, typer.Argument(help="A run id (or its first characters), or 'latest'.")]

_FIGURE_LABELS = {
    "customer_equity": "customer equity",
    "mean_clv": "mean CLV",
    "mean_p_alive": "mean P(alive)",
    "customers": "customers",
    "active_customers": "active customers",
    "predicted_value": "predicted value",
    "predicted_value_low": "predicted value (low)",
    "predicted_value_high": "predicted value (high)",
    "mean_predicted_clv": "mean predicted CLV",
    "top_20_percent_share": "top 20% share",
}


def open_store(store: str | None, config: Path | None = None) -> RunStore:
    """The run store the options name (see :func:`lifevalue.store.resolve_store_url`)."""
    cfg = shared.load_config(config) if config is not None else None
    return RunStore(resolve_store_url(store, cfg))


# -- lifevalue runs ... ---------------------------------------------------------------------


@runs_app.command("list")
def list_runs(store: StoreOpt = None, config: ConfigOpt = None) -> None:
    """List the stored runs, oldest first."""
    with open_store(store, config) as runs:
        listed = runs.list()
        if listed.empty:
            console.print(f"No runs stored in {escape(str(runs))} yet.", highlight=False)
            return
        table = Table(title=f"Runs in {escape(str(runs))}")
        for column in ("run", "stored (UTC)", "as of", "model", "customers", "equity", "alerts"):
            table.add_column(column, justify="left" if column == "run" else "right", no_wrap=True)
        for row in listed.itertuples():
            table.add_row(
                str(row.run_id),
                str(row.created_at)[:19].replace("T", " "),
                str(row.as_of),
                str(row.transaction_model),
                f"{row.customers:,}",
                _money(row.customer_equity),
                f"{row.alerts:,}",
            )
        console.print(table)


@runs_app.command("show")
def show(
    run: RunArg = "latest",
    store: StoreOpt = None,
    config: ConfigOpt = None,
    alerts: Annotated[int, typer.Option("--alerts", help="Alerts to print at most.")] = 20,
) -> None:
    """Show one stored run: figures, settings, models and their metrics, tables, alerts."""
    with open_store(store, config) as runs:
        stored = runs.get(run)
        metrics = runs.metrics(stored.run_id)
        previous = runs.previous(stored.run_id)
    head = stored.headline
    console.print(
        f"Run [bold]{stored.run_id}[/], stored {stored.created_at}, as of {stored.as_of}; "
        f"data fingerprint {stored.fingerprint}.",
        highlight=False,
    )
    figures = Table(title="Figures", show_header=False)
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    for key, label in _FIGURE_LABELS.items():
        if key in head:
            figures.add_row(label, _figure(key, head[key]))
    console.print(figures)
    settings = Table(title="Settings", show_header=False)
    settings.add_column("setting")
    settings.add_column("value")
    for key, value in stored.settings.items():
        settings.add_row(str(key), escape(str(value)))
    console.print(settings)
    models = Table(title="Models")
    for column in ("role", "model", "log-likelihood", "AIC", "BIC", "customers", "converged"):
        models.add_column(column, justify="left" if column in ("role", "model") else "right")
    for role, fit in (metrics.get("models") or {}).items():
        models.add_row(
            role,
            str(fit.get("model")),
            _number(fit.get("log_likelihood"), ",.1f"),
            _number(fit.get("aic"), ",.1f"),
            _number(fit.get("bic"), ",.1f"),
            _number(fit.get("n_customers"), ",.0f"),
            "yes" if fit.get("converged") else "no",
        )
    console.print(models)
    holdout = metrics.get("holdout")
    if holdout:
        print_model_table(pd.DataFrame(holdout), title="Models on the holdout")
    console.print(
        "Tables: "
        + ", ".join(f"{name} ({len(frame):,} rows)" for name, frame in stored.tables.items()),
        highlight=False,
    )
    print_alerts(stored.alerts, previous=previous, limit=alerts)


@runs_app.command("compare")
def compare(
    run_a: Annotated[str, typer.Argument(help="The earlier run (id or 'latest').")],
    run_b: Annotated[str, typer.Argument(help="The later run (id or 'latest').")],
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Compare two runs: headline figures, what changed in the settings, tier migration."""
    with open_store(store, config) as runs:
        a, b = runs.get(run_a), runs.get(run_b)
    figures = compare_runs(a, b)
    table = Table(title=f"Run {a.run_id} (as of {a.as_of}) against {b.run_id} (as of {b.as_of})")
    for column in ("figure", a.run_id, b.run_id, "change", "change %"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for key, row in figures.iterrows():
        table.add_row(
            _FIGURE_LABELS.get(str(key), str(key)),
            _figure(str(key), row["run_a"]),
            _figure(str(key), row["run_b"]),
            _figure(str(key), row["change"], signed=True),
            _percent(row["relative_change"]),
        )
    console.print(table)
    changes = setting_changes(a, b)
    if changes:
        console.print(
            "Changed: "
            + "; ".join(
                f"{k} {escape(str(x))} -> {escape(str(y))}" for k, (x, y) in changes.items()
            ),
            highlight=False,
        )
    else:
        console.print("Same scoring date, data and settings.", highlight=False)
    print_migration(tier_migration(a, b), a.run_id, b.run_id)


@runs_app.command("delete")
def delete(
    run: RunArg,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a stored run: its figures, tables, aggregates and alerts."""
    with open_store(store, config) as runs:
        run_id = runs.resolve(run)
        if not yes:
            typer.confirm(f"Delete run {run_id} from {runs}?", abort=True)
        runs.delete(run_id)
        console.print(f"Deleted run {run_id} from {escape(str(runs))}.", highlight=False)


# -- lifevalue monitor ----------------------------------------------------------------------


def monitor(
    store: StoreOpt = None,
    config: ConfigOpt = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Break the trend down by value_tier, segment, lifecycle_state, "
            "acquisition_channel or acquisition_cohort. Default: the whole base.",
        ),
    ] = None,
    last: Annotated[int, typer.Option("--last", help="How many of the latest runs to show.")] = 6,
    alerts: Annotated[int, typer.Option("--alerts", help="Alerts to print at most.")] = 20,
) -> None:
    """Trends over the stored runs, tier migration between the last two, the latest alerts."""
    if by is not None and by not in DIMENSIONS:
        raise InputError(f"Unknown --by {by!r}: expected one of {', '.join(DIMENSIONS)}.")
    if last < 1:
        raise InputError(f"--last must be >= 1. Got {last} instead.")
    with open_store(store, config) as runs:
        listed = runs.list()
        if listed.empty:
            raise InputError(f"The run store {runs} holds no runs yet; `lifevalue run` stores one.")
        trends = runs.trends(by or ALL)
        latest = runs.get("latest")
        previous_id = runs.previous(latest.run_id)
        previous = runs.get(previous_id) if previous_id is not None else None
    shown = list(listed["run_id"].iloc[-last:])
    trends = _in_order(trends[trends["run_id"].isin(shown)], shown)
    if by is not None and trends.empty:
        console.print(f"The stored runs have no {by} breakdown.", highlight=False)
    else:
        print_trends(trends, by)
    if previous is not None:
        print_migration(tier_migration(previous, latest), previous.run_id, latest.run_id)
    else:
        console.print("Only one run stored: nothing to compare it with yet.", highlight=False)
    print_alerts(latest.alerts, previous=previous_id, limit=alerts)


# -- lifevalue backtest ---------------------------------------------------------------------


def backtest(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The lifevalue.toml to backtest.")
    ] = None,
    cutoffs: Annotated[
        str | None,
        typer.Option(
            "--cutoffs",
            help="Comma-separated cut-off dates, e.g. 2024-06-30,2024-09-30. Default: "
            "--n-cutoffs dates a holdout apart, the last a holdout before the scoring date.",
        ),
    ] = None,
    n_cutoffs: Annotated[int, typer.Option("--n-cutoffs", help="Number of default cutoffs.")] = 3,
    holdout_weeks: Annotated[
        float | None,
        typer.Option(
            "--holdout-weeks", help="Weeks after each cutoff. Default: [models] holdout_weeks."
        ),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option("--models", help="Comma-separated models. Default: bgnbd,mbgnbd,pnbd."),
    ] = None,
    store: StoreOpt = None,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Do not store the backtest.")
    ] = False,
) -> None:
    """Replay the models at past cut-off dates and measure them against what happened."""
    if config is None:
        raise InputError("No configuration: pass --config lifevalue.toml.")
    cfg = shared.load_config(config)
    engine = shared.make_engine(cfg, None, None)
    options: dict[str, Any] = {"n_cutoffs": n_cutoffs, "holdout_weeks": holdout_weeks}
    if models:
        options["models"] = [m.strip() for m in models.split(",") if m.strip()]
    dates = [c.strip() for c in cutoffs.split(",") if c.strip()] if cutoffs else None
    with shared.progress(engine) as step:
        result = run_backtest(cfg, dates, engine=engine, step=step, **options)
    print_model_table(
        result.table,
        title=f"Backtest: models at each cutoff, judged on the next {result.holdout_weeks:g} weeks",
        by_cutoff=True,
    )
    means = result.table.groupby("model")[["mae", "gini"]].mean().sort_values("mae")
    console.print(
        "Mean over the cutoffs: "
        + "; ".join(
            f"{name} MAE {row.mae:.3f}, Gini {_number(row.gini, '.2f')}"
            for name, row in means.iterrows()
        )
        + f". Lowest MAE: {means.index[0]}.",
        highlight=False,
    )
    if not no_store:
        with RunStore(resolve_store_url(store, cfg)) as runs:
            backtest_id = runs.save_backtest(result)
            console.print(
                f"Stored as backtest {backtest_id} in {escape(str(runs))}.", highlight=False
            )


# -- shared printing ------------------------------------------------------------------------


def print_alerts(alerts: pd.DataFrame, *, previous: str | None = None, limit: int = 20) -> None:
    """A run's alerts as a table, at most ``limit`` of them."""
    if alerts.empty:
        against = f" against run {previous}" if previous else ""
        console.print(f"No alerts{against}.", highlight=False)
        return
    shown = alerts.head(max(limit, 0))
    against = previous or str(alerts["previous_run_id"].iloc[0])
    threshold = float(alerts["threshold"].iloc[0])
    table = Table(title=f"Alerts: moves beyond {threshold:.0%} since run {against}")
    for column in ("figure", "group", "previous", "current", "change", "drivers"):
        table.add_column(
            column, justify="right" if column in ("previous", "current", "change") else "left"
        )
    for row in shown.itertuples():
        group = "whole base" if row.dimension == ALL else f"{row.dimension}: {row.group}"
        table.add_row(
            _FIGURE_LABELS.get(row.figure, row.figure),
            escape(group),
            _figure(row.figure, row.previous),
            _figure(row.figure, row.current),
            _percent(row.change),
            escape(str(row.drivers)),
        )
    console.print(table)
    if len(alerts) > len(shown):
        console.print(
            f"... and {len(alerts) - len(shown)} more (--alerts to see them).", highlight=False
        )


def print_migration(matrix: pd.DataFrame, old: str, new: str) -> None:
    """A tier migration matrix (rows: the old run's tiers, columns: the new run's)."""
    table = Table(
        title="Tier migration: customers by value tier",
        caption=f"rows: run {old}; columns: run {new}",
    )
    table.add_column("from \\ to")
    for column in matrix.columns:
        table.add_column(str(column), justify="right")
    for tier, row in matrix.iterrows():
        table.add_row(str(tier), *(f"{int(v):,}" for v in row))
    console.print(table)


def print_trends(trends: pd.DataFrame, by: str | None) -> None:
    """The monitored figures over runs (and groups)."""
    title = "Trend over runs" + (f" by {by}" if by else ": the whole base")
    table = Table(title=title)
    columns = ["run", "as of"] + (["group"] if by else [])
    columns += ["customers", "active", "equity", "mean CLV", "mean P(alive)", "equity change"]
    for column in columns:
        table.add_column(column, justify="left" if column in ("run", "group") else "right")
    previous: dict[str, float] = {}
    for row in trends.itertuples():
        key = str(row.group)
        before = previous.get(key)
        change = (
            (row.customer_equity - before) / abs(before) if before not in (None, 0) else math.nan
        )
        previous[key] = row.customer_equity
        cells = [str(row.run_id), str(row.as_of)] + ([escape(key)] if by else [])
        cells += [
            f"{row.customers:,}",
            f"{row.active_customers:,}",
            _money(row.customer_equity),
            _number(row.mean_clv, ",.2f"),
            _number(row.mean_p_alive, ".3f"),
            _percent(change),
        ]
        table.add_row(*cells)
    console.print(table)


def print_model_table(frame: pd.DataFrame, *, title: str, by_cutoff: bool = False) -> None:
    """Models' holdout measures (one row per model, or per cutoff and model)."""
    table = Table(title=title)
    columns = (["cutoff", "customers"] if by_cutoff else []) + [
        "model",
        "MAE",
        "RMSE",
        "tracking",
        "calibration",
        "AUC",
        "Gini",
    ]
    for column in columns:
        table.add_column(column, justify="left" if column in ("cutoff", "model") else "right")
    for row in frame.itertuples():
        cells = [str(row.cutoff), f"{row.n_customers:,}"] if by_cutoff else []
        cells += [
            str(row.model),
            _number(row.mae, ".3f"),
            _number(row.rmse, ".3f"),
            _percent(row.tracking_error),
            _number(row.calibration_error, ".3f"),
            _number(row.p_alive_auc, ".3f"),
            _number(row.gini, ".3f"),
        ]
        table.add_row(*cells)
    console.print(table)


def _in_order(trends: pd.DataFrame, runs: list[str]) -> pd.DataFrame:
    """Trend rows run by run; within a run, groups by the latest run's equity, largest first."""
    latest = trends[trends["run_id"] == runs[-1]].sort_values("customer_equity", ascending=False)
    rank = {group: i for i, group in enumerate(latest["group"])}
    position = {run: i for i, run in enumerate(runs)}
    keys = pd.DataFrame(
        {
            "run": trends["run_id"].map(position),
            "group": trends["group"].map(rank).fillna(len(rank)),
        },
        index=trends.index,
    )
    return trends.loc[keys.sort_values(["run", "group"], kind="stable").index]


def _figure(key: str, value: Any, *, signed: bool = False) -> str:
    sign = "+" if signed else ""
    if key in ("customers", "active_customers"):
        return _number(value, f"{sign},.0f")
    if key in ("mean_p_alive",):
        return _number(value, f"{sign}.3f")
    if key == "top_20_percent_share":
        # A change of a share is in percentage points.
        return _number(value * 100, "+.1f") + " pp" if signed else _number(value, ".1%")
    if key in ("mean_clv", "mean_predicted_clv"):
        return _number(value, f"{sign},.2f")
    return _number(value, f"{sign},.0f")


def _money(value: Any) -> str:
    return _number(value, ",.0f")


def _percent(value: Any) -> str:
    return _number(value, "+.1%")


def _number(value: Any, spec: str) -> str:
    """A figure, or a dash where there is none."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(number) else format(number, spec)
