"""The run history on the command line: run stores, runs/monitor/backtest read and report."""

from __future__ import annotations

import io
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from lifevalue.store import STORE_ENV, RunStore, StoredRun


@pytest.fixture(scope="module")
def filled_once(tmp_path_factory: pytest.TempPathFactory, stored: StoredRun) -> Path:
    path = tmp_path_factory.mktemp("store") / "runs.duckdb"
    half = stored.scores.iloc[: len(stored.scores) // 2]
    headline = {
        **stored.headline,
        "customers": len(half),
        "customer_equity": float(half["total_clv"].sum()),
    }
    with RunStore(path) as store:
        store.save(stored)
        store.save(
            replace(
                stored, run_id="half", tables={**stored.tables, "scores": half}, headline=headline
            )
        )
    return path


@pytest.fixture
def filled(filled_once: Path, tmp_path: Path) -> Path:
    """A store with the shop's run, then one with half its customers gone (a fresh copy)."""
    return Path(shutil.copy(filled_once, tmp_path / "runs.duckdb"))


def test_run_stores_each_run_and_prints_its_id_and_alerts(
    cli, business, business_result, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = business
    # The pipeline itself is tested elsewhere: here its result is handed over.
    monkeypatch.setattr("lifevalue.cli.run.run_analysis", lambda *a, **k: business_result)
    monkeypatch.delenv(STORE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    config = folder / "lifevalue.toml"
    code, out, err = cli("run", "--config", config, "--out", tmp_path / "out")
    assert code == 0, err
    assert "Stored as run" in out and "(its first run)" in out
    with RunStore(tmp_path / "lifevalue-runs.duckdb") as store:  # the default store
        (first,) = store.list()["run_id"]
    assert f"run {first} in lifevalue-runs.duckdb" in out
    code, out, _ = cli("run", "--config", config, "--out", tmp_path / "out")
    assert code == 0 and f"compared with run {first}" in out and "No alerts" in out
    code, out, _ = cli("run", "--config", config, "--out", tmp_path / "out", "--no-store")
    assert code == 0 and "Stored as run" not in out
    with RunStore(tmp_path / "lifevalue-runs.duckdb") as store:
        assert len(store.list()) == 2


def test_runs_list_show_and_compare(cli, filled: Path) -> None:
    code, out, _ = cli("runs", "list", "--store", filled)
    assert code == 0
    assert "base" in out and "half" in out and out.index("base") < out.index("half")
    code, out, _ = cli("runs", "show", "latest", "--store", filled, "--alerts", "3")
    assert code == 0
    assert "Run half" in out and "Models on the holdout" in out and "transaction" in out
    assert "Alerts" in out and "whole base" in out and "more (--alerts" in out
    code, out, _ = cli("runs", "show", "base", "--store", filled)
    assert code == 0 and "No alerts." in out
    code, out, _ = cli("runs", "compare", "base", "half", "--store", filled)
    assert code == 0
    assert "customer equity" in out and "-50.0%" in out
    assert "gone" in out and "new customer" in out
    assert "Same scoring date, data and settings." in out


def test_runs_delete_asks_first(cli, filled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, out, _ = cli("runs", "delete", "base", "--store", filled)
    assert code == 1 and "Delete run base from" in out
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, _ = cli("runs", "delete", "half", "--store", filled)
    assert code == 0 and "Deleted run half" in out
    code, out, _ = cli("runs", "delete", "latest", "--store", filled, "--yes")
    assert code == 0 and "Deleted run base" in out
    with RunStore(filled) as store:
        assert store.list().empty


def test_unknown_runs_and_options_are_clear_errors(cli, filled: Path, tmp_path: Path) -> None:
    code, _, err = cli("runs", "show", "nope", "--store", filled)
    assert code == 2 and "'nope' matches no run" in err and "half, base" in err
    code, _, err = cli("monitor", "--store", filled, "--by", "colour")
    assert code == 2 and "Unknown --by 'colour'" in err
    code, _, err = cli("monitor", "--store", tmp_path / "empty.duckdb")
    assert code == 2 and "holds no runs yet" in err
    code, _, err = cli("runs", "list", "--store", "mysql://h/db")
    assert code == 2 and "Unknown run store" in err


def test_monitor_shows_trends_migration_and_alerts(cli, filled: Path) -> None:
    code, out, _ = cli("monitor", "--store", filled)
    assert code == 0
    assert "Trend over runs" in out and "-50.0%" in out
    assert "Tier migration" in out and "rows: run base; columns: run half" in out
    assert "gone" in out
    assert "Alerts" in out and "whole base" in out
    code, out, _ = cli("monitor", "--store", filled, "--by", "value_tier", "--alerts", "0")
    assert code == 0 and "by value_tier" in out
    for tier in ("top", "high", "medium", "low"):
        assert tier in out


def test_backtest_command_prints_and_stores(cli, business, tmp_path: Path) -> None:
    folder, _ = business
    store = tmp_path / "runs.duckdb"
    code, out, err = cli(
        "backtest",
        "--config",
        folder / "lifevalue.toml",
        "--cutoffs",
        "2024-07-02",
        "--models",
        "bgnbd",
        "--store",
        store,
    )
    assert code == 0, err
    assert "2024-07-02" in out and "bgnbd" in out and "Lowest MAE: bgnbd" in out
    with RunStore(store) as runs:
        stored = runs.backtests()
    assert stored[["cutoff", "model"]].values.tolist() == [["2024-07-02", "bgnbd"]]
    assert f"Stored as backtest {stored['backtest_id'].iloc[0]}" in out
    code, _, err = cli("backtest", "--config", folder / "lifevalue.toml", "--cutoffs", "2025-06-30")
    assert code == 2 and "after the scoring date" in err
