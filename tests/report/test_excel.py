"""The Excel dashboard, reopened with openpyxl and converted by LibreOffice."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from tests.report._runs import with_tables

from lifevalue.report.excel import KPI_LABELS, SHEETS, write_dashboard
from lifevalue.store.run import StoredRun

#: Native charts each sheet holds when every input is given.
CHARTS = {
    "Overview": 1,
    "Segments": 1,
    "Acquisition": 2,
    "Customers": 0,
    "Timing": 0,
    "Offers": 1,
    "Forecast": 2,
    "Trends": 1,
    "Model": 1,
}


@pytest.fixture(scope="module")
def dashboard(
    stored_run: StoredRun,
    trends: pd.DataFrame,
    backtests: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    path = tmp_path_factory.mktemp("dashboard") / "nested" / "dashboard.xlsx"
    assert write_dashboard(stored_run, path, trends=trends, backtests=backtests) == path
    return path


@pytest.fixture(scope="module")
def book(dashboard: Path) -> openpyxl.Workbook:
    return openpyxl.load_workbook(dashboard)


@pytest.fixture(scope="module")
def bare_book(bare_run: StoredRun, tmp_path_factory: pytest.TempPathFactory) -> openpyxl.Workbook:
    path = write_dashboard(bare_run, tmp_path_factory.mktemp("bare") / "bare.xlsx")
    return openpyxl.load_workbook(path)


def _header(ws, row: int = 2) -> dict[str, int]:
    """Column numbers of a sheet's header row, by name."""
    columns: dict[str, int] = {}
    for c in ws[row]:
        if c.value is not None:
            columns.setdefault(c.value, c.column)  # the first table of the sheet
    return columns


def test_the_sheets_are_all_there_in_order_with_their_charts(book) -> None:
    assert book.sheetnames == list(SHEETS)
    assert {ws.title: len(ws._charts) for ws in book.worksheets} == CHARTS


def test_headers_are_frozen_and_customers_filterable(book, stored_run: StoredRun) -> None:
    for name in ("Segments", "Customers", "Timing", "Offers", "Forecast", "Trends", "Model"):
        assert book[name].freeze_panes in ("A3", "B3"), name
    customers = book["Customers"]
    n = len(stored_run.scores)
    columns = stored_run.scores.shape[1]
    last = openpyxl.utils.get_column_letter(columns)
    assert customers.auto_filter.ref == f"A2:{last}{n + 2}"


def test_overview_kpis_are_the_run_headline(book, stored_run: StoredRun) -> None:
    ws = book["Overview"]
    values = {row[0]: row[1] for row in ws.iter_rows(min_row=5, values_only=True) if row[0]}
    for key, label in KPI_LABELS.items():
        assert values[label] == pytest.approx(stored_run.headline[key], rel=1e-12), key
    for row in stored_run.tables["acquisition"].itertuples():
        got = values[f"LTV:CAC, {row.acquisition_channel}"]
        assert got is None if pd.isna(row.ltv_cac) else got == pytest.approx(row.ltv_cac)


def test_customer_cells_are_the_scores_with_formats(book, stored_run: StoredRun) -> None:
    ws = book["Customers"]
    header = _header(ws)
    scores = stored_run.scores
    assert list(header) == list(scores.columns)
    for i in (0, len(scores) // 2, len(scores) - 1):
        row = scores.iloc[i]

        def cell(name: str, row_number: int = i + 3) -> openpyxl.cell.Cell:
            return ws.cell(row_number, header[name])

        assert cell("customer_id").value == str(row["customer_id"])
        assert cell("predicted_clv").value == pytest.approx(row["predicted_clv"], rel=1e-12)
        assert cell("p_alive").value == pytest.approx(row["p_alive"], rel=1e-12)
        assert cell("value_tier").value == row["value_tier"]
        first = cell("first_purchase_date").value
        assert isinstance(first, dt.datetime)
        assert first.date() == pd.Timestamp(row["first_purchase_date"]).date()
        due = row["expected_next_order_date"]
        if pd.isna(due):
            assert cell("expected_next_order_date").value is None
        else:
            written = pd.Timestamp(cell("expected_next_order_date").value)
            assert abs(written - due) < pd.Timedelta(seconds=1)
    sample = 3
    assert '"$"' in ws.cell(sample, header["predicted_clv"]).number_format
    assert ws.cell(sample, header["p_alive"]).number_format == "0.0%"
    assert ws.cell(sample, header["first_purchase_date"]).number_format == "yyyy-mm-dd"
    rules = {str(r.sqref): [rule.type for rule in r.rules] for r in ws.conditional_formatting}
    letter = openpyxl.utils.get_column_letter
    n = len(scores) + 2
    assert rules[f"{letter(header['predicted_clv'])}3:{letter(header['predicted_clv'])}{n}"] == [
        "dataBar"
    ]
    assert rules[f"{letter(header['p_alive'])}3:{letter(header['p_alive'])}{n}"] == ["colorScale"]


def test_charts_read_the_sheet_cells(book, stored_run: StoredRun) -> None:
    forecast = book["Forecast"]
    header = _header(forecast)
    revenue = next(c for c in forecast._charts if len(c.series) == 3)
    refs = [s.val.numRef.f for s in revenue.series]
    col = openpyxl.utils.get_column_letter(header["expected_revenue"])
    n = len(stored_run.tables["forecast"]) + 2
    assert f"Forecast!${col}$3:${col}${n}" in refs
    segments = book["Segments"]
    bar = segments._charts[0]
    values = bar.series[0].val.numRef.f
    rows = [int(part.split("$")[-1]) for part in values.split(":")]
    names = {segments.cell(r, 1).value for r in range(rows[0], rows[1] + 1)}
    assert names == {"segment"}  # the chart covers exactly the segment rows


def test_trends_and_model_sheets_hold_the_history(
    book, trends: pd.DataFrame, backtests: pd.DataFrame
) -> None:
    ws = book["Trends"]
    header = _header(ws)
    whole = trends[trends["dimension"] == "all"]
    got = [ws.cell(3 + i, header["customer_equity"]).value for i in range(len(whole))]
    assert got == pytest.approx(whole["customer_equity"].tolist())
    assert isinstance(ws.cell(3, header["as_of"]).value, dt.datetime)
    model = book["Model"]
    text = [c.value for row in model.iter_rows(max_row=2) for c in row if c.value]
    assert "Backtests: each model refitted at past cutoffs" in text
    assert "Parameters (95% intervals)" in text
    assert len(model._charts[0].series) == backtests["model"].nunique()


def test_sheets_without_data_say_why(bare_book) -> None:
    assert bare_book.sheetnames == list(SHEETS)
    assert "No marketing-spend table was given" in bare_book["Acquisition"]["A1"].value
    assert "No run history was given" in bare_book["Trends"]["A1"].value
    notes = [c.value for row in bare_book["Model"].iter_rows() for c in row if c.value]
    assert "No backtest was given." in notes
    overview = [c.value for row in bare_book["Overview"].iter_rows() for c in row]
    assert "No marketing-spend table was given" in overview


def test_currency_and_text_cells_are_safe(stored_run: StoredRun, tmp_path: Path) -> None:
    scores = stored_run.scores.head(20).copy()
    scores.loc[0, "customer_id"] = '=HYPERLINK("http://x")'
    scores.loc[1, "customer_id"] = "00123"
    run = dataclasses.replace(
        with_tables(stored_run, scores=scores),
        validation={**stored_run.validation, "currency": "EUR"},
    )
    ws = openpyxl.load_workbook(write_dashboard(run, tmp_path / "eur.xlsx"))["Customers"]
    assert ws["A3"].data_type == "s" and ws["A3"].value.startswith("=HYPERLINK")
    assert ws["A4"].value == "00123"
    assert "€" in ws.cell(3, _header(ws)["predicted_clv"]).number_format
    plain = dataclasses.replace(run, validation={**stored_run.validation, "currency": None})
    ws = openpyxl.load_workbook(write_dashboard(plain, tmp_path / "plain.xlsx"))["Customers"]
    assert ws.cell(3, _header(ws)["predicted_clv"]).number_format == "#,##0.00"


def test_libreoffice_opens_the_dashboard(dashboard: Path, tmp_path: Path, tool) -> None:
    soffice = tool("soffice", "libreoffice")
    profile = tmp_path / "profile"
    done = subprocess.run(
        [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--convert-to",
            "ods",
            "--outdir",
            str(tmp_path),
            str(dashboard),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    converted = tmp_path / "dashboard.ods"
    assert converted.exists(), f"no output; stdout: {done.stdout} stderr: {done.stderr}"
    with zipfile.ZipFile(converted) as ods:
        charts = {n.split("/")[0] for n in ods.namelist() if n.startswith("Object ")}
        content = ods.read("content.xml").decode("utf-8")
    assert len(charts) == sum(CHARTS.values())  # LibreOffice read every chart
    for name in SHEETS:
        assert f'table:name="{name}"' in content
