"""``lifevalue demo``: the main job on the bundled CDNOW data."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer

from lifevalue.cli import shared
from lifevalue.cli.history import print_alerts
from lifevalue.cli.models import print_comparison, print_fit
from lifevalue.cli.report import render
from lifevalue.cli.run import print_result
from lifevalue.cli.shared import console
from lifevalue.config import Config
from lifevalue.data import Engine, datasets, summarize, validate_transactions
from lifevalue.data.simulate import simulate_business
from lifevalue.models import GammaGammaModel
from lifevalue.models.clv import customer_lifetime_value
from lifevalue.models.compare import compare_models
from lifevalue.pipeline import run_analysis
from lifevalue.store import RunStore
from lifevalue.store.backtest import run_backtest


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
        f"{business}: a simulated shop's log, spend and customers, its lifevalue.toml, "
        "results/ with every table of `lifevalue run` (Parquet, CSV, lifevalue.duckdb), "
        "runs.duckdb (two runs and a backtest), dashboard.xlsx, report.html and figures/.",
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
    """Simulate a shop, run the pipeline on it twice, backtest, and write the reports.

    The shop is scored at the end of September and again at the end of December 2024, both
    runs kept in ``runs.duckdb``, so the dashboard has a trend and the monitor something to
    compare; then the models are backtested at past cut-offs, and the latest run is
    rendered as the Excel dashboard, the HTML report and the figures.
    """
    folder.mkdir(parents=True, exist_ok=True)
    console.rule("A simulated shop: 3,000 customers from six channels, 2023-2024")
    store = folder / "runs.duckdb"
    store.unlink(missing_ok=True)
    with shared.progress(engine) as step, RunStore(store) as runs:
        step("Simulating a shop")
        shop = simulate_business(n_customers=3000, seed=2024)
        shop.transactions.to_csv(folder / "transactions.csv", index=False)
        shop.spend.to_csv(folder / "marketing_spend.csv", index=False)
        shop.customers[["customer_id", "region", "age_band"]].to_csv(
            folder / "customers.csv", index=False
        )
        (folder / "lifevalue.toml").write_text(_CONFIG)
        config = Config.from_toml(folder / "lifevalue.toml")
        earlier = dataclasses.replace(
            config, summary=dataclasses.replace(config.summary, calibration_end="2024-09-30")
        )
        step("Scoring the shop as of 2024-09-30")
        runs.save(run_analysis(earlier, engine=engine, step=step))
        result = run_analysis(config, engine=engine, step=step)
        step("Writing the results")
        result.write(folder / "results")
        step("Storing the run and comparing it with September's")
        run_id = runs.save(result)
        alerts, previous = runs.alerts(run_id), runs.previous(run_id)
        step("Backtesting the models at three past cut-offs")
        runs.save_backtest(run_backtest(config, engine=engine, step=step))
        step("Writing the dashboard, the report and the figures")
        _, dashboard, _ = render(runs, run_id, "xlsx", folder / "dashboard.xlsx")
        _, page, _ = render(runs, run_id, "html", folder / "report.html")
        _, figures, names = render(runs, run_id, "png", folder / "figures")
    print_result(result)
    if previous is not None:
        print_alerts(alerts, previous=previous, limit=5)
    console.print(
        f"\nExcel dashboard: [bold]{dashboard}[/]\nHTML report: [bold]{page}[/]\n"
        f"Figures ({len(names or [])} PNG files): [bold]{figures}[/]\n"
        f"Run history: [bold]{store}[/] (try `lifevalue runs list --store {store}` and "
        f"`lifevalue monitor --store {store}`).",
        highlight=False,
    )
    return folder
