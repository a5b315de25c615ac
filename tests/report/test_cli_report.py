"""``lifevalue report``: a stored run rendered from the run store on the command line."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from tests.test_cli import run as run_cli

from lifevalue.report.excel import SHEETS
from lifevalue.store import RunStore
from lifevalue.store.run import StoredRun


@pytest.fixture(scope="module")
def store(stored_run: StoredRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "runs.duckdb"
    with RunStore(path) as runs:
        runs.save(stored_run)
    return path


def test_report_writes_the_dashboard_of_the_latest_run(
    capsys, store: Path, stored_run: StoredRun, tmp_path: Path
) -> None:
    out = tmp_path / "dash.xlsx"
    code, stdout, stderr = run_cli(
        capsys, "report", "latest", "--format", "xlsx", "--out", out, "--store", store
    )
    assert code == 0, stderr
    assert f"Excel dashboard of run {stored_run.run_id}" in stdout
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == list(SHEETS)
    assert book["Overview"]["B5"].value == stored_run.headline["customers"]


def test_report_writes_the_html_and_the_figures(
    capsys, store: Path, stored_run: StoredRun, tmp_path: Path
) -> None:
    code, stdout, stderr = run_cli(
        capsys, "report", stored_run.run_id[:6], "--format", "html", "-o", tmp_path / "r.html",
        "--store", store,
    )  # fmt: skip
    assert code == 0, stderr
    assert "What your customers are worth" in (tmp_path / "r.html").read_text()
    code, stdout, stderr = run_cli(
        capsys, "report", "latest", "--format", "svg", "--out", tmp_path / "figs", "-s", store
    )
    assert code == 0, stderr
    written = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert "concentration.svg" in written and all(name.endswith(".svg") for name in written)
    assert f"{len(written)} figures of run {stored_run.run_id}" in stdout


def test_report_errors_are_one_readable_line(capsys, store: Path, tmp_path: Path) -> None:
    code, _, stderr = run_cli(capsys, "report", "--format", "pdf", "--store", store)
    assert code == 2
    assert "--format must be one of xlsx, html, png, svg; got 'pdf'" in stderr
    code, _, stderr = run_cli(capsys, "report", "nosuchrun", "--store", store)
    assert code == 2
    assert "'nosuchrun' matches no run" in stderr
