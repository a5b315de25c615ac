"""``lifevalue demo``: the main job on the bundled CDNOW data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lifevalue.cli import shared
from lifevalue.cli.models import print_comparison, print_fit
from lifevalue.cli.run import print_result
from lifevalue.cli.shared import console
from lifevalue.config import Config
from lifevalue.data import Engine, datasets, summarize, validate_transactions
from lifevalue.data.simulate import simulate_business
from lifevalue.models import GammaGammaModel
from lifevalue.models.clv import customer_lifetime_value
from lifevalue.models.compare import compare_models
from lifevalue.pipeline import run_analysis


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
        frame = summary.to_pandas()
        step("Comparing models on the 39-week holdout")
        comparison = compare_models(frame)
        comparison.table.to_csv(out / "cdnow_model_comparison.csv")
        best = comparison.models[comparison.best]
        best.save(out / f"cdnow_{best.model_name}.json")
        step("Fitting spend and valuing customers")
        spend = GammaGammaModel().fit(frame)
        spend.save(out / "cdnow_gg.json")
        values = customer_lifetime_value(
            best, frame, spend=spend, horizon=12, horizon_unit="months", margin=1.0, level=0.9
        )
        values.insert(0, "p_alive", best.probability_alive(frame))  # type: ignore[attr-defined]
        values.reset_index().to_csv(out / "cdnow_clv.csv", index=False)
    (out / "cdnow_validation.json").write_text(json.dumps(validated.report.as_dict(), indent=2))
    shared.print_validation(validated.report)
    shared.print_summary(summary, None)
    print_comparison(comparison)
    print_fit(best, len(frame))
    print_fit(spend, len(frame))
    console.print(
        f"12-month value of the {len(values):,} customers (revenue, 10% a year discount): "
        f"{values['clv'].sum():,.0f} (90% interval {values['clv_low'].sum():,.0f} to "
        f"{values['clv_high'].sum():,.0f} summing the customers' bounds)",
        highlight=False,
    )
    business = _simulated_business(out / "business", engine)
    console.print(
        f"\nResults in [bold]{out}[/]: cdnow_summary.parquet and .csv (one row per customer), "
        "cdnow_validation.json (what validation found), cdnow_quarantine.csv (rows set aside), "
        f"cdnow_model_comparison.csv, cdnow_{best.model_name}.json and cdnow_gg.json (the models), "
        "cdnow_clv.csv (P(alive), expected purchases and 12-month CLV with intervals); "
        f"{business}: a simulated shop's log, spend and customers, its lifevalue.toml, and "
        "results/ with every table of `lifevalue run` (Parquet, CSV, lifevalue.duckdb).",
        highlight=False,
    )


# A shop with channels, campaigns, spend, regions and timestamps, in the files a user has.
_CONFIG = """\
[data]
source = "transactions.csv"

[summary]
calibration_end = "2024-12-31"
unit = "weeks"

[value]
margin_rate = 0.4
cost_to_serve = 1.5
annual_discount_rate = 0.1
horizon_months = 12
spend = "marketing_spend.csv"
customers = "customers.csv"
"""


def _simulated_business(folder: Path, engine: Engine) -> Path:
    """Simulate a shop, write its files and configuration, and run the pipeline on them."""
    folder.mkdir(parents=True, exist_ok=True)
    console.rule("A simulated shop: 3,000 customers from six channels, 2023-2024")
    with shared.progress(engine) as step:
        step("Simulating a shop")
        shop = simulate_business(n_customers=3000, seed=2024)
        shop.transactions.to_csv(folder / "transactions.csv", index=False)
        shop.spend.to_csv(folder / "marketing_spend.csv", index=False)
        shop.customers[["customer_id", "region", "age_band"]].to_csv(
            folder / "customers.csv", index=False
        )
        (folder / "lifevalue.toml").write_text(_CONFIG)
        result = run_analysis(Config.from_toml(folder / "lifevalue.toml"), engine=engine, step=step)
        step("Writing the results")
        result.write(folder / "results")
    print_result(result)
    return folder
