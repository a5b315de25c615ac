"""The command line: real exit codes, readable messages, files written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lifevalue.cli import main
from lifevalue.store import RunStore

LOG = """customer_id,timestamp,amount
a,2024-01-05,10
a,2024-02-05,20
b,2024-01-07,5
b,,5
c,2024-01-09,abc
"""


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run the command line in-process; return (exit code, stdout, stderr)."""
    old = sys.argv
    sys.argv = ["lifevalue", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "log.csv"
    path.write_text(LOG)
    return path


def test_validate_prints_counts_per_reason_and_writes_the_quarantine(capsys, log, tmp_path):
    code, out, _ = run(capsys, "validate", log, "--quarantine", tmp_path / "q.csv")
    assert code == 0
    assert "Read 5 rows" in out
    assert "accepted" in out and "3" in out
    assert "missing_timestamp" in out and "non_numeric_amount" in out
    quarantine = pd.read_csv(tmp_path / "q.csv")
    assert quarantine[["source_row", "reason"]].values.tolist() == [
        [4, "missing_timestamp"],
        [5, "non_numeric_amount"],
    ]


def test_strict_fails_with_code_2_and_no_traceback(capsys, log):
    code, _, err = run(capsys, "validate", log, "--strict")
    assert code == 2
    assert "row 4: missing_timestamp" in err and "row 5: non_numeric_amount" in err
    assert "Traceback" not in err


def test_summarize_writes_the_summary(capsys, log, tmp_path):
    out_file = tmp_path / "summary.csv"
    code, out, _ = run(
        capsys,
        "summarize",
        log,
        "--calibration-end",
        "2024-01-31",
        "--unit",
        "days",
        "--output",
        out_file,
    )
    assert code == 0, out
    frame = pd.read_csv(out_file)
    assert list(frame.columns[:5]) == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    assert frame.set_index("customer_id").loc["a", "frequency_holdout"] == 1
    assert "Summarised 2 customers" in out
    assert (tmp_path / "summary.csv.meta.json").is_file()
    parquet = tmp_path / "summary.parquet"
    assert run(capsys, "summarize", log, "--calibration-end", "2024-01-31", "-o", parquet)[0] == 0
    assert len(pd.read_parquet(parquet)) == 2


def test_summarize_adds_acquisition_labels_on_request(capsys, tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(
        "customer_id,timestamp,amount,channel\n"
        "a,2024-01-05,10,search\na,2024-02-05,20,email\nb,2024-01-07,5,social\n"
    )
    plain, labelled = tmp_path / "plain.csv", tmp_path / "labelled.csv"
    for out, extra in ((plain, []), (labelled, ["--acquisition"])):
        code, text, _ = run(
            capsys, "summarize", log, "--calibration-end", "2024-03-01", "-o", out, *extra
        )
        assert code == 0, text
    assert "acquisition_channel" not in pd.read_csv(plain).columns
    channels = pd.read_csv(labelled).set_index("customer_id")["acquisition_channel"]
    assert channels.to_dict() == {"a": "search", "b": "social"}


def test_a_configuration_file_maps_columns(capsys, tmp_path):
    (tmp_path / "shop.csv").write_text("Client;Day;Total\nx;05/01/2024;10\nx;15/02/2024;3\n")
    (tmp_path / "lifevalue.toml").write_text(
        '[data]\nsource = "shop.csv"\n\n[data.columns]\ncustomer_id = "Client"\n'
        'timestamp = "Day"\namount = "Total"\n\n[summary]\ncalibration_end = "2024-01-31"\n'
    )
    out_file = tmp_path / "s.csv"
    code, out, err = run(
        capsys, "summarize", "--config", tmp_path / "lifevalue.toml", "-o", out_file
    )
    assert code == 0, err
    assert "timestamps read as %d/%m/%Y (detected)" in out
    assert pd.read_csv(out_file)["frequency_holdout"].tolist() == [1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["validate", "missing.csv"], "Input file 'missing.csv' does not exist"),
        (["validate", "{log}", "--customer-col", "client"], "customer_id -> 'client'"),
        (["summarize", "{log}", "--calibration-end", "soon", "-o", "x.csv"], "is not a date"),
        (["summarize", "{log}", "-o", "x.csv"], "No calibration end"),
        (["summarize", "{log}", "--calibration-end", "2024-01-31"], "No output file"),
        (["validate", "{log}", "--returns", "refund"], "Unknown returns policy"),
        (["validate"], "No input"),
        (["validate", "{log}", "--config", "none.toml"], "does not exist"),
    ],
)
def test_user_mistakes_exit_2_with_one_paragraph(
    capsys, log, tmp_path, monkeypatch, args, expected
):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *[a.format(log=log) for a in args])
    assert code == 2
    assert expected in err.replace("\n", " ")
    assert "Traceback" not in err


def test_demo_runs_on_the_bundled_data(capsys, tmp_path):
    code, out, _ = run(capsys, "demo", "--out", tmp_path / "demo")
    assert code == 0
    assert "Summarised 2,357 customers" in out
    summary = pd.read_parquet(tmp_path / "demo" / "cdnow_summary.parquet")
    assert len(summary) == 2357
    assert str(tmp_path / "demo") in out.replace("\n", "")
    comparison = pd.read_csv(tmp_path / "demo" / "cdnow_model_comparison.csv", index_col=0)
    assert set(comparison.index) == {"bgnbd", "mbgnbd", "pnbd"}
    best = comparison["mae"].idxmin()
    assert (tmp_path / "demo" / f"cdnow_{best}.json").is_file()
    values = pd.read_csv(tmp_path / "demo" / "cdnow_clv.csv")
    assert len(values) == 2357
    assert (values["clv_low"] <= values["clv"]).all()
    assert (values["clv"] <= values["clv_high"]).all()
    assert values["p_alive"].between(0, 1).all()
    business = tmp_path / "demo" / "business"
    assert (business / "lifevalue.toml").is_file()
    scores = pd.read_parquet(business / "results" / "scores.parquet")
    assert {"predicted_clv", "value_tier", "segment", "offers"} <= set(scores.columns)
    assert "Acquisition channels" in out
    # The demo ends with the dashboard, the report and the figures, and says where.
    flat = out.replace("\n", "")
    for name in ("dashboard.xlsx", "report.html", "figures"):
        assert (business / name).exists() and str(business / name) in flat
    assert len(list((business / "figures").glob("*.png"))) >= 10
    with RunStore(business / "runs.duckdb") as runs:
        assert len(runs.list()) == 2 and not runs.backtests().empty


def test_the_installed_entry_point(log):
    result = subprocess.run(
        [sys.executable, "-m", "lifevalue", "validate", str(log), "--strict"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 2
    assert "missing_timestamp" in result.stderr
    assert "Traceback" not in result.stderr
