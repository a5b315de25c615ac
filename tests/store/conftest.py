"""Run-store fixtures: a store on each backend, stored runs to alter, the command line.

The PostgreSQL store is tested against the server named by ``LIFEVALUE_TEST_POSTGRES_URL``
(``source .ci/postgres`` starts one). Without it those tests are skipped, unless
``LIFEVALUE_REQUIRE_TOOLS=1`` (as CI sets), when they fail and say why.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

import ibis
import pandas as pd
import pytest
from tests.test_cli import run as run_cli

from lifevalue.cli import shared
from lifevalue.pipeline import AnalysisResult
from lifevalue.store import StoredRun

POSTGRES_ENV = "LIFEVALUE_TEST_POSTGRES_URL"
REQUIRE_ENV = "LIFEVALUE_REQUIRE_TOOLS"


def postgres_url() -> str:
    """The test PostgreSQL server's URL; skips the test without one (fails when required)."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    message = f"no PostgreSQL server for the run-store tests: {POSTGRES_ENV} is not set"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} but {REQUIRE_ENV}=1; `source .ci/postgres` starts one.")
    pytest.skip(f"{message} (`source .ci/postgres` starts one)")


def _wipe(url: str) -> None:
    """Drop every table a run store made, so each test starts from an empty database."""
    con = ibis.connect(url)
    try:
        for table in con.list_tables():
            if table.startswith(("lv_", "lifevalue_")):
                con.drop_table(table, force=True)
    finally:
        con.disconnect()


@pytest.fixture(params=["duckdb", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """An empty run store: a DuckDB file, then a PostgreSQL database."""
    if request.param == "duckdb":
        return str(tmp_path / "runs.duckdb")
    url = postgres_url()
    _wipe(url)
    return url


@pytest.fixture(scope="session")
def stored(business_result: AnalysisResult) -> StoredRun:
    """The simulated shop's run in stored form (shared: alter copies, see ``variant``)."""
    return StoredRun.from_result(business_result, run_id="base")


@pytest.fixture
def variant(stored: StoredRun) -> Callable[..., StoredRun]:
    """A copy of the stored run under another id, its scores replaced when given.

    It keeps only the tables monitoring reads (scores, model comparison), so that it is
    quick to save.
    """

    def make(run_id: str, scores: pd.DataFrame | None = None, **fields: object) -> StoredRun:
        tables = {name: stored.tables[name] for name in ("scores", "model_comparison")}
        if scores is not None:
            tables["scores"] = scores
        return replace(stored, run_id=run_id, tables=tables, **fields)

    return make


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    """Run the command line in-process; returns (exit code, stdout, stderr).

    The consoles are made wide, so that messages and table rows stay on one line each.
    """
    monkeypatch.setattr(shared.console, "width", 200)
    monkeypatch.setattr(shared.err_console, "width", 200)

    def run(*args: object) -> tuple[int, str, str]:
        return run_cli(capsys, *args)

    return run
