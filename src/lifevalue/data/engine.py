"""The SQL engine that does per-transaction work: DuckDB, embedded, through Ibis.

Every heavy step (reading, validating, summarising) is an Ibis expression run by an
engine; Python only sees per-customer rows. The default engine is an in-process DuckDB
database that spills to a temporary directory when a query outgrows its memory limit,
so inputs larger than memory work.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.datatypes as dt

logger = logging.getLogger(__name__)


@dataclass
class Engine:
    """A DuckDB connection configured for lifevalue's work.

    Parameters
    ----------
    database
        DuckDB database file, or ``":memory:"`` (the default) for a private in-memory one.
    memory_limit
        DuckDB memory limit such as ``"4GB"``; ``None`` keeps DuckDB's default (80% of RAM).
        Queries that need more spill to ``temp_directory``.
    threads
        Worker threads; ``None`` uses every core.
    temp_directory
        Where DuckDB spills; defaults to a private temporary directory.
    """

    database: str = ":memory:"
    memory_limit: str | None = None
    threads: int | None = None
    temp_directory: str | None = None
    backend: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.temp_directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lifevalue-duckdb-")
            self.temp_directory = self._tmp.name
        self.backend = ibis.duckdb.connect(self.database)
        settings: dict[str, str] = {
            # Naive timestamps everywhere; a TIMESTAMPTZ source is read as UTC.
            "TimeZone": "UTC",
            # CSV rows keep their file order in the staging table, which gives row numbers.
            "preserve_insertion_order": "true",
            "temp_directory": self.temp_directory,
            # Progress is polled by the command line; DuckDB itself prints nothing.
            "enable_progress_bar": "true",
            "enable_progress_bar_print": "false",
        }
        if self.memory_limit is not None:
            settings["memory_limit"] = self.memory_limit
        if self.threads is not None:
            settings["threads"] = str(int(self.threads))
        for name, value in settings.items():
            quoted = value.replace("'", "''")
            self.raw.execute(f"SET {name} = '{quoted}'")
        logger.debug("DuckDB engine ready: %s", settings)

    @property
    def raw(self) -> Any:
        """The underlying ``duckdb.DuckDBPyConnection``, for engine-specific statements."""
        return self.backend.con

    def query_progress(self) -> float:
        """Percentage of the running query that is done, or -1 when nothing runs."""
        try:
            return float(self.raw.query_progress())
        except Exception:  # progress is advisory; never fail a job over it
            return -1.0

    def temp_name(self, prefix: str) -> str:
        """A fresh name for a temporary table."""
        return ibis.util.gen_name(prefix)


_DEFAULT: Engine | None = None


def default_engine() -> Engine:
    """The process-wide default engine (created on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Engine()
    return _DEFAULT


# Aggregates some engines spell differently from Ibis's portable forms. ``min_by`` is
# a hash aggregate in DuckDB, Spark, Trino and Snowflake; Ibis's ``argmin`` compiles to an
# ordered aggregate on DuckDB, which is markedly slower on large inputs.
@ibis.udf.agg.builtin(name="min_by")
def _min_by_float(value: dt.float64, key: dt.timestamp) -> dt.float64:  # type: ignore[empty-body]
    ...


@ibis.udf.agg.builtin(name="min_by")
def _min_by_string(value: dt.string, key: dt.timestamp) -> dt.string:  # type: ignore[empty-body]
    ...


def min_by(value: ibis.Value, key: ibis.Value) -> ibis.Value:
    """The value of ``value`` on the row where ``key`` is smallest, as a grouped aggregate."""
    if value.type().is_string():
        return _min_by_string(value, key)
    return _min_by_float(value.cast("float64"), key)
