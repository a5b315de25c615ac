"""``lifevalue demo``: the main job on the bundled CDNOW data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lifevalue.cli import shared
from lifevalue.cli.shared import console
from lifevalue.data import Engine, datasets, summarize, validate_transactions


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the results.")] = Path("out/demo"),
) -> None:
    """Run the pipeline on the bundled CDNOW data and say where the results are."""
    out.mkdir(parents=True, exist_ok=True)
    engine = Engine()
    console.rule("CDNOW: 2,357 customers of an online CD store, 1997-1998")
    with shared.progress(engine) as step:
        step("Validating the CDNOW sample")
        validated = validate_transactions(
            datasets.cdnow_sample_path(),
            columns=datasets.CDNOW_SAMPLE_COLUMNS,
            observation_end=datasets.CDNOW_OBSERVATION_END,
            duplicates=datasets.CDNOW_DUPLICATES,
            engine=engine,
        )
        validated.write_quarantine(out / "cdnow_quarantine.csv")
        step("Summarising customers")
        summary = summarize(validated, calibration_end=datasets.CDNOW_CALIBRATION_END, unit="weeks")
        summary.write(out / "cdnow_summary.parquet")
        summary.write(out / "cdnow_summary.csv")
    (out / "cdnow_validation.json").write_text(json.dumps(validated.report.as_dict(), indent=2))
    shared.print_validation(validated.report)
    shared.print_summary(summary, None)
    console.print(
        f"\nResults in [bold]{out}[/]: cdnow_summary.parquet and .csv (one row per customer), "
        "cdnow_validation.json (what validation found), cdnow_quarantine.csv (rows set aside).",
        highlight=False,
    )
