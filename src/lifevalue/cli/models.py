"""``lifevalue fit``, ``lifevalue predict`` and ``lifevalue compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from lifevalue.cli.shared import console, progress
from lifevalue.data.summary import read_summary_frame
from lifevalue.errors import InputError
from lifevalue.models import BaseModel, load_model, model_class
from lifevalue.models.clv import customer_lifetime_value
from lifevalue.models.compare import CRITERIA, DEFAULT_MODELS, ModelComparison, compare_models
from lifevalue.units import METADATA_KEY

SummaryArg = Annotated[
    Path, typer.Argument(help="Customer summary (.csv with its .meta.json, or .parquet).")
]
UnitOpt = Annotated[
    str | None,
    typer.Option("--unit", help="Time unit of the summary when the file does not say it."),
]
MapOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--map",
        help="Read a column under the name a model expects, ROLE=COLUMN (repeatable), e.g. "
        "--map customer_id=ID --map frequency=x --map recency=t_x --map T=n.",
    ),
]
MODEL_NAMES = "bgnbd, mbgnbd, pnbd, bgbb, gg or sbg"


def fit(
    summary: SummaryArg,
    model: Annotated[str, typer.Option("--model", "-m", help=f"Model: {MODEL_NAMES}.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model file (.json).")],
    unit: UnitOpt = None,
    column_map: MapOpt = None,
    weights_col: Annotated[
        str | None,
        typer.Option("--weights-col", help="Column with how many customers share each row."),
    ] = None,
    penalizer: Annotated[
        float, typer.Option("--penalizer", help="L2 penalty on the parameters (default 0).")
    ] = 0.0,
) -> None:
    """Fit a model to a customer summary and write it as JSON."""
    cls = model_class(model)
    frame = _read(summary, unit, column_map)
    with progress(None) as step:
        step(f"Fitting {cls.__name__} to {len(frame):,} rows")
        fitted = cls(penalizer=penalizer).fit(frame, weights=weights_col)
    fitted.save(output)
    print_fit(fitted, len(frame))
    console.print(f"Model written to [bold]{output}[/]")


def predict(
    summary: SummaryArg,
    model: Annotated[Path, typer.Option("--model", "-m", help="Model file from `fit`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Predictions (.csv or .parquet).")],
    horizon: Annotated[
        float,
        typer.Option("--horizon", help="Future period to predict, in the model's time unit."),
    ] = 52.0,
    spend_model: Annotated[
        Path | None,
        typer.Option("--spend-model", help="A Gamma-Gamma model file, for CLV."),
    ] = None,
    margin: Annotated[
        float, typer.Option("--margin", help="Share of spend that is profit, for CLV.")
    ] = 1.0,
    discount_rate: Annotated[
        float, typer.Option("--discount-rate", help="Annual discount rate, for CLV.")
    ] = 0.1,
    level: Annotated[float, typer.Option("--level", help="Interval coverage.")] = 0.9,
    unit: UnitOpt = None,
    column_map: MapOpt = None,
) -> None:
    """Per-customer predictions with intervals from a fitted model."""
    fitted = load_model(model)
    frame = _read(summary, unit or fitted.time_unit_.value, column_map)
    with progress(None) as step:
        step(f"Predicting {len(frame):,} customers")
        table = _predictions(fitted, frame, horizon, spend_model, margin, discount_rate, level)
    _write(table.reset_index(), output)
    console.print(
        f"Predictions of {len(table):,} customers over {horizon:g} "
        f"{fitted.time_unit_.value} written to [bold]{output}[/]"
    )


def compare(
    summary: SummaryArg,
    models: Annotated[
        str,
        typer.Option("--models", help="Comma-separated models to compare."),
    ] = ",".join(DEFAULT_MODELS),
    criterion: Annotated[
        str,
        typer.Option("--criterion", help=f"Best model by: {', '.join(CRITERIA)}."),
    ] = "mae",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the table (.csv).")
    ] = None,
    unit: UnitOpt = None,
    column_map: MapOpt = None,
) -> None:
    """Compare models on a summary's calibration/holdout split."""
    frame = _read(summary, unit, column_map)
    names = [m.strip() for m in models.split(",") if m.strip()]
    for name in names:
        model_class(name)
    with progress(None) as step:
        step(f"Fitting and scoring {len(names)} models")
        result = compare_models(frame, models=names, criterion=criterion)
    print_comparison(result)
    if output is not None:
        result.table.to_csv(output)
        console.print(f"Table written to [bold]{output}[/]")


# ---------------------------------------------------------------------- helpers


def _read(path: Path, unit: str | None, column_map: list[str] | None) -> pd.DataFrame:
    frame = read_summary_frame(path, time_unit=unit)
    if not frame.attrs[METADATA_KEY].get("time_unit"):
        raise InputError(
            f"{str(path)!r} does not say in which time unit recency and T are measured "
            "(no lifevalue metadata): pass --unit weeks (or days, months, years)."
        )
    renames: dict[str, str] = {}
    for item in column_map or []:
        role, sep, column = item.partition("=")
        if not sep or not role.strip() or not column.strip():
            raise InputError(f"--map expects ROLE=COLUMN (e.g. frequency=x). Got {item!r}.")
        if column.strip() not in frame.columns:
            raise InputError(
                f"--map {item}: column {column.strip()!r} is not in {str(path)!r}; it has "
                f"{', '.join(map(str, frame.columns))}."
            )
        renames[column.strip()] = role.strip()
    attrs = frame.attrs
    frame = frame.rename(columns=renames)
    frame.attrs = attrs
    return frame


def _predictions(
    model: BaseModel,
    frame: pd.DataFrame,
    horizon: float,
    spend_path: Path | None,
    margin: float,
    discount_rate: float,
    level: float,
) -> pd.DataFrame:
    if hasattr(model, "_expected_purchases"):
        out = model.expected_purchases_interval(frame, future_t=horizon, level=level)  # type: ignore[attr-defined]
        out.insert(0, "p_alive", model.probability_alive(frame))  # type: ignore[attr-defined]
        spend = load_model(spend_path) if spend_path is not None else None
        if spend is not None or "monetary_value" in frame.columns:
            clv = customer_lifetime_value(
                model, frame, spend=spend, horizon=horizon, horizon_unit=model.time_unit_,
                annual_discount_rate=discount_rate, margin=margin, level=level,
            )  # fmt: skip
            out = out.join(clv[["expected_spend", "clv", "clv_low", "clv_high"]])
        return out
    if hasattr(model, "conditional_expected_spend_interval"):
        return model.conditional_expected_spend_interval(frame, level=level)  # type: ignore[attr-defined]
    if hasattr(model, "survival_function"):
        if "tenure" in frame.columns:
            return model.discounted_expected_residual_lifetime_interval(  # type: ignore[attr-defined]
                frame, annual_discount_rate=discount_rate, level=level
            )
        # Without customers: the cohort's survival curve over the horizon.
        return model.survival_function_interval(np.arange(0, int(horizon) + 1), level=level)  # type: ignore[attr-defined]
    raise InputError(f"{type(model).__name__} has no per-customer predictions to write.")


def _write(table: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".parquet", ".pq"):
        table.to_parquet(path, index=False)
    else:
        table.to_csv(path, index=False)


def print_comparison(result: ModelComparison) -> None:
    """The comparison table, one column per model, and the best model."""
    table = Table(title="Models on the holdout period")
    table.add_column("metric")
    for name in result.table.index:
        table.add_column(name, justify="right")
    for metric in result.table.columns:
        table.add_row(metric, *(f"{v:,.4g}" for v in result.table[metric]))
    console.print(table)
    console.print(f"Best model by {result.criterion}: [bold]{result.best}[/]")


def print_fit(model: BaseModel, rows: int) -> None:
    """A fitted model's parameters with standard errors and intervals."""
    used = round(model.n_customers_)
    title = f"{type(model).__name__}: {used:,} customers"
    if model.model_name == "gg":
        title += f" with repeat purchases used (of {rows:,} rows)"
    table = Table(title=title)
    for column in ("parameter", "estimate", "std error", "95% lower", "95% upper"):
        table.add_column(column, justify="right")
    for name, row in model.summary().iterrows():
        table.add_row(
            str(name), *(f"{row[c]:.4g}" for c in ("estimate", "std_error", "lower", "upper"))
        )
    console.print(table)
    console.print(
        f"log-likelihood {model.log_likelihood_:,.2f}, converged: {model.converged_}; "
        f"time unit: {model.time_unit_.value}"
    )
