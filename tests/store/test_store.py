"""The run store on DuckDB and PostgreSQL: runs saved, listed, rebuilt, compared, deleted."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lifevalue.config import Config
from lifevalue.errors import InputError
from lifevalue.store import (
    DEFAULT_STORE,
    STORE_ENV,
    RunStore,
    StoredRun,
    resolve_store_url,
)
from lifevalue.store.store import display_url


def _as_stored(table: pd.DataFrame) -> pd.DataFrame:
    """A table as a store keeps it: times to the microsecond (the engines' resolution)."""
    table = table.copy()
    for column in table.columns:
        if pd.api.types.is_datetime64_any_dtype(table[column].dtype):
            table[column] = table[column].dt.floor("us")
    return table


def test_a_run_round_trips_whole(store_url: str, stored: StoredRun, business_result) -> None:
    with RunStore(store_url) as store:
        assert store.save(stored) == "base"
        back = store.get("base")
        metrics = store.metrics("base")
    # Every table comes back with its columns, kinds and rows in order; the scores are
    # the pipeline's own.
    assert set(back.tables) == set(business_result.tables)
    for name, table in stored.tables.items():
        pd.testing.assert_frame_equal(back.tables[name], _as_stored(table), obj=name)
    scores = business_result.scores.reset_index()
    assert back.scores["customer_id"].tolist() == scores["customer_id"].tolist()
    np.testing.assert_array_equal(back.scores["total_clv"], scores["total_clv"])
    assert back.scores["first_purchase_date"].iloc[0] == scores["first_purchase_date"].iloc[0]
    # The models rebuild and predict as the fitted ones do.
    model = back.model("transaction")
    assert model.params_ == business_result.transaction_model.params_
    assert back.model("spend").params_ == business_result.spend_model.params_
    assert (back.headline, back.settings, back.as_of) == (
        stored.headline,
        stored.settings,
        stored.as_of,
    )
    assert back.fingerprint == business_result.fingerprint
    assert back.validation["accepted"] == business_result.validation.accepted
    assert back.config["value"]["margin_rate"] == 0.4
    assert back.alerts.empty
    fit = metrics["models"]["transaction"]
    assert fit["log_likelihood"] == pytest.approx(business_result.transaction_model.log_likelihood_)
    assert fit["aic"] == pytest.approx(business_result.transaction_model.aic_)
    assert fit["converged"] is True
    holdout = pd.DataFrame(metrics["holdout"])
    assert set(holdout["model"]) == set(business_result.tables["model_comparison"]["model"])


def test_runs_are_listed_resolved_and_deleted(store_url: str, stored: StoredRun, variant) -> None:
    with RunStore(store_url) as store:
        store.save(variant("base"))
        store.save(variant("second"))
        listed = store.list()
        assert listed["run_id"].tolist() == ["base", "second"]
        assert listed["customers"].tolist() == [len(stored.scores)] * 2
        assert listed["customer_equity"].iloc[0] == pytest.approx(
            stored.headline["customer_equity"]
        )
        assert store.resolve("latest") == "second"
        assert store.resolve("seco") == "second"
        assert store.previous("second") == "base" and store.previous("base") is None
        with pytest.raises(InputError, match="already holds a run 'base'"):
            store.save(variant("base"))
        with pytest.raises(InputError, match=r"'nope' matches no run .*second, base"):
            store.get("nope")
        assert store.delete("base") == "base"
        assert store.list()["run_id"].tolist() == ["second"]
        assert store.trends()["run_id"].unique().tolist() == ["second"]
        tables = store._con.list_tables()
        assert not [t for t in tables if t.startswith("lv_base_")]
        assert [t for t in tables if t.startswith("lv_second_")]
        store.delete("latest")
        assert store.list().empty
        with pytest.raises(InputError, match="holds no runs yet"):
            store.get("latest")


def test_alerts_fire_on_changed_data_and_not_on_the_same_data(
    store_url: str, stored: StoredRun, variant
) -> None:
    scores = stored.scores
    half = scores.iloc[: len(scores) // 2].copy()
    with RunStore(store_url) as store:
        store.save(variant("base"))
        store.save(variant("same"))
        store.save(variant("half", scores=half))
        assert store.alerts("same").empty
        alerts = store.alerts("half")
        listed = store.list().set_index("run_id")["alerts"]
    assert listed["same"] == 0 and listed["half"] == len(alerts) > 0
    assert (alerts["run_id"] == "half").all() and (alerts["previous_run_id"] == "same").all()
    whole = alerts[alerts["dimension"] == "all"].set_index("figure")
    assert whole.loc["customers", "current"] == len(half)
    assert whole.loc["customers", "change"] == pytest.approx(len(half) / len(scores) - 1)
    equity = whole.loc["customer_equity"]
    assert equity["previous"] == pytest.approx(scores["total_clv"].sum())
    assert equity["current"] == pytest.approx(half["total_clv"].sum())
    # The drivers name the dropped customers with the largest value.
    dropped = scores.iloc[len(scores) // 2 :]
    biggest = dropped.nlargest(5, "total_clv")["customer_id"].astype(str)
    assert all(f"{cid} (-" in equity["drivers"] for cid in biggest)
    assert "value_tier " in equity["drivers"]
    assert (alerts["change"].abs() > alerts["threshold"]).all()


def test_alert_settings_come_from_the_runs_configuration(
    store_url: str, stored: StoredRun, variant
) -> None:
    # Every customer's equity 15% lower: beyond the default 10%, within the run's own 20%.
    lower = stored.scores.assign(total_clv=stored.scores["total_clv"] * 0.85)
    config = {**stored.config, "monitor": {"threshold": 0.2, "min_customers": 30}}
    with RunStore(store_url) as store:
        store.save(variant("base"))
        store.save(variant("quiet", scores=lower, config=config))
        # Back up again, with the threshold given to save() over the run's 10%.
        store.save(variant("back"), threshold=0.05)
        quiet, back = store.alerts("quiet"), store.alerts("back")
    assert quiet.empty
    assert set(back["figure"]) == {"customer_equity"} and (back["threshold"] == 0.05).all()
    assert back["change"].to_numpy() == pytest.approx(1 / 0.85 - 1)
    assert back["dimension"].iloc[0] == "all"


def test_trends_hold_each_runs_figures(store_url: str, stored: StoredRun, variant) -> None:
    with RunStore(store_url) as store:
        store.save(variant("base"))
        store.save(variant("cheaper", scores=stored.scores.assign(predicted_clv=0.0)))
        trends = store.trends()
        tiers = store.trends("value_tier")
    whole = trends[trends["dimension"] == "all"].set_index("run_id")
    assert whole.loc["base", "customer_equity"] == pytest.approx(stored.headline["customer_equity"])
    assert whole.loc["base", "active_customers"] == stored.headline["active_customers"]
    assert whole.loc["cheaper", "mean_clv"] == 0
    assert set(trends["dimension"]) == {
        "all",
        "value_tier",
        "segment",
        "lifecycle_state",
        "acquisition_channel",
        "acquisition_cohort",
    }
    per_tier = tiers[tiers["run_id"] == "base"]
    assert per_tier["customers"].sum() == len(stored.scores)
    assert set(per_tier["group"]) == set(stored.scores["value_tier"])


def test_a_store_url_names_its_backend(tmp_path: Path) -> None:
    with RunStore(f"duckdb://{tmp_path / 'a.duckdb'}") as store:
        assert store.backend == "duckdb" and store.list().empty
    assert (tmp_path / "a.duckdb").is_file()
    with pytest.raises(InputError, match="folder that does not exist"):
        RunStore(tmp_path / "missing" / "runs.duckdb")
    with pytest.raises(InputError, match="Unknown run store 'mysql://"):
        RunStore("mysql://user@host/db")
    with pytest.raises(InputError, match=r"Cannot connect to the run store postgresql://u:\*\*\*@"):
        RunStore("postgresql://u:secret@127.0.0.1:1/none")
    assert display_url("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"


def test_the_store_is_the_option_else_the_config_else_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STORE_ENV, raising=False)
    (tmp_path / "lifevalue.toml").write_text('[store]\nurl = "history/runs.duckdb"\n')
    config = Config.from_toml(tmp_path / "lifevalue.toml")
    assert config.store.url == str(tmp_path / "history" / "runs.duckdb")
    assert resolve_store_url("x.duckdb", config) == "x.duckdb"
    assert resolve_store_url(None, config) == config.store.url
    assert resolve_store_url() == DEFAULT_STORE
    monkeypatch.setenv(STORE_ENV, "postgresql://h/db")
    assert resolve_store_url(None, Config()) == "postgresql://h/db"
    assert resolve_store_url(None, config) == config.store.url


def test_monitor_settings_are_checked() -> None:
    config = Config.from_dict({"monitor": {"threshold": 0.25, "min_customers": 5}})
    assert (config.monitor.threshold, config.monitor.min_customers) == (0.25, 5)
    with pytest.raises(InputError, match="'threshold' setting of \\[monitor\\] must be"):
        Config.from_dict({"monitor": {"threshold": -1}})
    with pytest.raises(InputError, match="Unknown setting\\(s\\) 'treshold' in \\[monitor\\]"):
        Config.from_dict({"monitor": {"treshold": 0.1}})


def test_the_stored_configuration_hides_the_store_password(tmp_path: Path, stored) -> None:
    config = {**stored.config, "store": {"url": "postgresql://u:secret@h/db"}}
    run = replace(stored, run_id="pw", config=config)
    with RunStore(tmp_path / "runs.duckdb") as store:
        store.save(run)
        raw = store._con.table("lifevalue_runs").to_pandas()["config"].iloc[0]
    assert "secret" not in raw
    assert json.loads(raw)["store"]["url"] == "postgresql://u:***@h/db"


def test_tables_with_awkward_columns_survive(tmp_path: Path, stored: StoredRun) -> None:
    odd = pd.DataFrame(
        {
            "mixed": [1, "a", None],
            "empty": [None, None, None],
            "flag": [True, None, False],
            "count": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    run = replace(stored, run_id="odd", tables={**stored.tables, "odd": odd})
    with RunStore(tmp_path / "runs.duckdb") as store:
        store.save(run)
        back = store.get("odd").tables["odd"]
        assert store._con.table("lv_odd_odd").schema()["empty"].is_string()
    assert back["mixed"].tolist()[:2] == ["1", "a"] and pd.isna(back["mixed"].iloc[2])
    assert back["empty"].isna().all()
    assert back["count"].dtype == "Int64" and back["count"].tolist()[::2] == [1, 3]
