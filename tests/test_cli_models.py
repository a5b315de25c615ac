"""``lifevalue fit``, ``predict`` and ``compare`` on the CDNOW data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tests.test_cli import run

from lifevalue.data.datasets import _path

REFERENCE = _path("cdnow", "cdnow_customers_summary_with_transactions.csv")
MAP = ["--map", "customer_id=ID", "--map", "frequency=x", "--map", "recency=t_x"]


def test_fit_writes_the_model_json(capsys, tmp_path: Path) -> None:
    out = tmp_path / "bg.json"
    code, stdout, _ = run(capsys, "fit", REFERENCE, "--model", "bgnbd", "--unit", "weeks",
                          "--output", out, *MAP)  # fmt: skip
    assert code == 0, stdout
    saved = json.loads(out.read_text())
    assert saved["model"] == "bgnbd"
    assert saved["params"]["r"] == pytest.approx(0.2426, rel=1e-3)
    assert set(saved["std_errors"]) == {"r", "alpha", "a", "b"}
    assert saved["log_likelihood"] == pytest.approx(-9582.43, abs=0.01)
    assert saved["n_customers"] == 2357
    assert saved["time_unit"] == "weeks"
    assert saved["converged"] is True
    assert "0.2426" in stdout


def test_predict_writes_intervals_and_clv(capsys, tmp_path: Path) -> None:
    model = tmp_path / "bg.json"
    assert run(capsys, "fit", REFERENCE, "--model", "bgnbd", "--unit", "weeks",
               "--output", model, *MAP)[0] == 0  # fmt: skip
    out = tmp_path / "predictions.parquet"
    code, stdout, _ = run(capsys, "predict", REFERENCE, "--model", model, "--horizon", "39",
                          "--output", out, *MAP, "--map", "monetary_value=zbar")  # fmt: skip
    assert code == 0, stdout
    table = pd.read_parquet(out)
    assert len(table) == 2357
    wanted = {"customer_id", "p_alive", "expected_purchases", "expected_purchases_low",
              "expected_purchases_high", "clv", "clv_low", "clv_high"}  # fmt: skip
    assert wanted <= set(table.columns)
    assert (table["expected_purchases_low"] <= table["expected_purchases"]).all()
    first = table.set_index("customer_id").loc[1]
    assert first["expected_purchases"] > 0


def test_compare_prints_a_table(capsys, tmp_path: Path, cdnow_holdout) -> None:
    summary = cdnow_holdout
    path = summary.write(tmp_path / "holdout.parquet")
    code, stdout, _ = run(capsys, "compare", path, "--models", "bgnbd", "--output",
                          tmp_path / "cmp.csv")  # fmt: skip
    assert code == 0, stdout
    assert "Best model by mae: bgnbd" in " ".join(stdout.split())
    assert pd.read_csv(tmp_path / "cmp.csv")["model"].tolist() == ["bgnbd"]


def test_model_mistakes_exit_2(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "fit", REFERENCE, "--model", "magic", "--output", tmp_path / "m")
    assert code == 2 and "Unknown model 'magic'" in err
    code, _, err = run(capsys, "fit", REFERENCE, "--model", "bgnbd", "--output", tmp_path / "m")
    assert code == 2 and "--unit" in err
    code, _, err = run(capsys, "fit", REFERENCE, "--model", "bgnbd", "--unit", "weeks",
                       "--output", tmp_path / "m")  # fmt: skip
    assert code == 2 and "missing: frequency, recency" in " ".join(err.split())
    code, _, err = run(capsys, "predict", REFERENCE, "--model", tmp_path / "none.json",
                       "--output", tmp_path / "p.csv")  # fmt: skip
    assert code == 2 and "does not exist" in " ".join(err.split())


def test_fit_and_predict_retention_from_cohort_counts(capsys, tmp_path: Path) -> None:
    from lifevalue.models import ShiftedBetaGeometricModel

    # Fader & Hardie (2007), Table 1, "regular" customers: active at the start of years 0-7.
    tenures = ShiftedBetaGeometricModel.survival_frame([1000, 631, 468, 382, 326, 289, 262, 241])
    data = tmp_path / "tenures.csv"
    tenures.to_csv(data, index=False)
    model = tmp_path / "sbg.json"
    code, stdout, _ = run(capsys, "fit", data, "--model", "sbg", "--unit", "years", "-o", model)
    assert code == 0, stdout
    params = json.loads(model.read_text())["params"]
    assert params == pytest.approx({"alpha": 0.704, "beta": 1.182}, abs=5e-3)
    out = tmp_path / "derl.csv"
    code, stdout, _ = run(capsys, "predict", data, "--model", model, "-o", out)
    assert code == 0, stdout
    table = pd.read_csv(out)
    assert len(table) == len(tenures)
    assert (table["derl_low"] <= table["derl"]).all() and (
        table["derl"] <= table["derl_high"]
    ).all()
