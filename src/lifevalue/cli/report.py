"""``lifevalue report``: a stored run as an Excel dashboard, an HTML report or figures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.markup import escape

from lifevalue.cli.history import ConfigOpt, StoreOpt, open_store
from lifevalue.cli.shared import console
from lifevalue.errors import InputError
from lifevalue.store import RunStore, StoredRun

#: The formats ``--format`` takes, and what each writes.
FORMATS = {
    "xlsx": "Excel dashboard",
    "html": "HTML report",
    "png": "figures (PNG)",
    "svg": "figures (SVG)",
}


def report(
    run: Annotated[
        str, typer.Argument(help="A run id (or its first characters), or 'latest'.")
    ] = "latest",
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="xlsx, html, png or svg.")
    ] = "html",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="The file to write (a folder for png and svg). Default: named after the run, "
            "in the current folder.",
        ),
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Render a stored run: the Excel dashboard, the HTML report, or its figures."""
    kind = output_format.strip().lower()
    if kind not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}; got {output_format!r}.")
    with open_store(store, config) as runs:
        stored, path, written = render(runs, run, kind, out)
    if written is not None:
        console.print(
            f"{len(written)} figures of run [bold]{stored.run_id}[/] written to "
            f"{escape(str(path))}: {', '.join(written)}.",
            highlight=False,
        )
        return
    console.print(
        f"{FORMATS[kind]} of run [bold]{stored.run_id}[/] (scored as of {stored.as_of}) "
        f"written to {escape(str(path))}.",
        highlight=False,
    )


def render(
    runs: RunStore, run: str, kind: str, out: Path | None = None
) -> tuple[StoredRun, Path, list[str] | None]:
    """Write one output of a stored run, with the trends up to it and the latest backtest.

    Returns the run, the path written (a folder for figures) and, for figures, their names.
    """
    stored = runs.get(run)
    trends = _trends_up_to(runs.trends(), runs.list(), stored.run_id)
    backtests = runs.backtests()
    backtests = None if backtests.empty else backtests
    if kind == "xlsx":
        from lifevalue.report import write_dashboard

        path = out or Path(f"lifevalue-dashboard-{stored.run_id}.xlsx")
        return stored, write_dashboard(stored, path, trends=trends, backtests=backtests), None
    if kind == "html":
        from lifevalue.report import write_report

        path = out or Path(f"lifevalue-report-{stored.run_id}.html")
        return stored, write_report(stored, path, trends=trends, backtests=backtests), None
    from lifevalue.report import save_figures

    path = out or Path(f"lifevalue-figures-{stored.run_id}")
    written = save_figures(stored, path, formats=(kind,), trends=trends, backtests=backtests)
    return stored, path, list(written)


def _trends_up_to(trends: pd.DataFrame, listed: pd.DataFrame, run_id: str) -> pd.DataFrame | None:
    """The trend rows of the runs stored up to ``run_id`` (an older run's report ends there)."""
    if trends.empty:
        return None
    ids = [str(i) for i in listed["run_id"]]
    kept = set(ids[: ids.index(run_id) + 1]) if run_id in ids else set(ids)
    rows = trends[trends["run_id"].astype(str).isin(kept)]
    return None if rows.empty else rows.reset_index(drop=True)
