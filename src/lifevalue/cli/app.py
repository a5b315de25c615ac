"""The Typer application and the one place where errors become exit codes."""

from __future__ import annotations

import logging
import sys

import typer
from rich.logging import RichHandler

from lifevalue.cli import data as data_commands
from lifevalue.cli import demo as demo_commands
from lifevalue.cli import history as history_commands
from lifevalue.cli import models as model_commands
from lifevalue.cli import report as report_commands
from lifevalue.cli import run as run_commands
from lifevalue.cli.shared import err_console, print_error
from lifevalue.errors import LifevalueError

app = typer.Typer(
    name="lifevalue",
    help="Customer lifetime value as net profit, from a transaction log to decisions.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("validate")(data_commands.validate)
app.command("summarize")(data_commands.summarize)
app.command("fit")(model_commands.fit)
app.command("predict")(model_commands.predict)
app.command("compare")(model_commands.compare)
app.command("run")(run_commands.run)
app.command("demo")(demo_commands.demo)
app.add_typer(history_commands.runs_app, name="runs")
app.command("monitor")(history_commands.monitor)
app.command("backtest")(history_commands.backtest)
app.command("report")(report_commands.report)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log what the library does."),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False)],
        force=True,
    )


def main() -> None:
    """Entry point of the ``lifevalue`` command: user mistakes exit with code 2."""
    try:
        app()
    except LifevalueError as exc:
        print_error(str(exc))
        sys.exit(2)
