"""Backtests on the simulated shop: one row per cutoff and model, measured on what happened."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifevalue.config import Config
from lifevalue.errors import InputError
from lifevalue.store import Backtest, RunStore, default_cutoffs, run_backtest
from lifevalue.store.backtest import BACKTEST_COLUMNS

MODELS = ("bgnbd", "pnbd")


@pytest.fixture(scope="module")
def config(business) -> Config:
    folder, _ = business
    return Config.from_toml(folder / "lifevalue.toml")


@pytest.fixture(scope="module")
def backtest(config: Config) -> Backtest:
    return run_backtest(config, n_cutoffs=2, models=MODELS)


def test_default_cutoffs_step_back_a_holdout_at_a_time() -> None:
    assert default_cutoffs("2024-12-31", n_cutoffs=3, holdout_weeks=13) == [
        "2024-04-02",
        "2024-07-02",
        "2024-10-01",
    ]
    with pytest.raises(InputError, match="number of cutoffs must be >= 1"):
        default_cutoffs("2024-12-31", n_cutoffs=0)


def test_one_row_per_cutoff_and_model_with_finite_measures(
    backtest: Backtest, business_result
) -> None:
    table = backtest.table
    assert list(table.columns) == list(BACKTEST_COLUMNS)
    assert list(zip(table["cutoff"], table["model"], strict=True)) == [
        (cutoff, model) for cutoff in ("2024-01-02", "2024-07-02") for model in MODELS
    ]
    assert (
        table["holdout_end"]
        == table["cutoff"].map({"2024-01-02": "2024-07-02", "2024-07-02": "2024-12-31"})
    ).all()
    measures = ["mae", "rmse", "tracking_error", "calibration_error", "p_alive_auc", "gini"]
    assert np.isfinite(table[measures].to_numpy(float)).all()
    assert (table["actual_total"] > 0).all() and (table["p_alive_auc"] > 0.5).all()
    # More customers have bought by the later cutoff.
    counts = table.groupby("cutoff")["n_customers"].first()
    assert counts.is_monotonic_increasing and counts.iloc[0] > 100
    assert backtest.as_of == "2024-12-31" and backtest.holdout_weeks == 26
    assert backtest.fingerprint == business_result.fingerprint
    assert set(backtest.calibration) == {(c, m) for c in counts.index for m in MODELS}
    # The last cutoff is the pipeline's own model choice: the same holdout, the same errors.
    chosen = business_result.tables["model_comparison"].set_index("model")
    last = table[table["cutoff"] == "2024-07-02"].set_index("model")
    for column in ("mae", "rmse", "tracking_error", "calibration_error", "p_alive_auc"):
        np.testing.assert_allclose(last[column], chosen.loc[list(MODELS), column], rtol=1e-9)


def test_cutoffs_without_enough_history_or_future_are_refused(config: Config) -> None:
    with pytest.raises(InputError, match=r"cutoff 2023-01-10 leaves too little history: \d+ "):
        run_backtest(config, ["2023-01-10"], models=MODELS)
    with pytest.raises(InputError, match="log starts 2023-01-01"):
        run_backtest(config, ["2021-06-30"], models=MODELS)
    with pytest.raises(InputError, match="ending 2025-03-31, after the scoring date 2024-12-31"):
        run_backtest(config, ["2024-09-30"], models=MODELS)
    with pytest.raises(InputError, match="'junk' is not a date"):
        run_backtest(config, ["junk"])
    with pytest.raises(InputError, match="longer than 0 weeks"):
        run_backtest(config, holdout_weeks=0)
    with pytest.raises(InputError, match="no \\[data\\] source"):
        run_backtest(Config())


def test_backtests_are_stored_and_read_back(store_url: str, backtest: Backtest) -> None:
    with RunStore(store_url) as store:
        assert store.backtests().empty
        first = store.save_backtest(backtest)
        shorter = Backtest(backtest.table.iloc[:2], backtest.as_of, "other", 13)
        second = store.save_backtest(shorter)
        latest = store.backtests()
        earlier = store.backtests(first)
        with pytest.raises(InputError, match="No backtest 'nope'"):
            store.backtests("nope")
    assert (latest["backtest_id"] == second).all() and len(latest) == 2
    assert (latest["holdout_weeks"] == 13).all() and (latest["fingerprint"] == "other").all()
    pd.testing.assert_frame_equal(
        earlier[list(BACKTEST_COLUMNS)], backtest.table, check_dtype=False
    )
    assert (earlier["as_of"] == "2024-12-31").all()
