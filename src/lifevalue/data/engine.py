"""The SQL engine that does per-transaction work: DuckDB, embedded, through Ibis.

Every heavy step (reading, validating, summarising) is an Ibis expression run by an
engine; Python only sees per-customer rows. The default engine is an in-process DuckDB
database that spills to a temporary directory when a query outgrows its memory limit,
so inputs larger than memory work.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
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
        Path(self.temp_directory).mkdir(parents=True, exist_ok=True)
        self.backend = ibis.duckdb.connect(self.database)
        settings: dict[str, str] = {
            # Naive timestamps everywhere; a TIMESTAMPTZ source is read as UTC.
            "TimeZone": "UTC",
            # Row order matters only where staging numbers rows (see Workspace.ordered); not
            # keeping it elsewhere lets large results be written without buffering them.
            "preserve_insertion_order": "false",
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

    def workspace(self) -> Workspace:
        """A new workspace in this engine."""
        return Workspace(self.backend, self.temp_directory, self)


class Workspace:
    """The temporary tables and views of one job in an engine, dropped together.

    Ibis shares an expression used twice in one query through a common table expression,
    which DuckDB materialises in full before either use. Naming such a step as a view
    instead lets the engine push projections and filters into each use; steps worth
    computing once become tables. Everything a workspace created is dropped when the
    workspace is garbage collected, that is, when no result that reads it is left.

    Large intermediate results are stored as Parquet files in a private folder rather
    than as tables of the in-memory database, so that they cost disk, not memory.

    Parameters
    ----------
    backend
        The Ibis DuckDB backend to work in.
    directory
        Where stored results go (a private folder inside it); the system's temporary
        folder by default.
    """

    def __init__(self, backend: Any, directory: str | None = None, owner: Any = None) -> None:
        self.backend = backend
        self._objects: list[tuple[str, str]] = []
        self._folder: str | None = None
        self._parent = directory
        # Whatever owns the folder (an Engine) lives at least as long as its results.
        self._owner = owner
        weakref.finalize(self, _drop_all, backend.con, self._objects)

    def child(self) -> Workspace:
        """A new workspace on the same engine and folder (for a job that reads this one's)."""
        return Workspace(self.backend, self._parent, self._owner)

    def name(self, prefix: str, kind: str) -> str:
        """A fresh name for an object of ``kind`` (TABLE, VIEW or ARROW) to be dropped later."""
        name = ibis.util.gen_name(prefix)
        self._objects.append((kind, name))
        return name

    def execute(self, statement: str) -> Any:
        """Run one SQL statement in the engine."""
        return self.backend.con.execute(statement)

    def create(self, kind: str, select: str, prefix: str) -> ibis.Table:
        """``CREATE TEMP {kind} <name> AS <select>`` and return the new object as a table."""
        name = self.name(prefix, kind)
        self.execute(f"CREATE TEMP {kind} {name} AS {select}")
        return self.backend.table(name)

    def view(self, expr: ibis.Table, prefix: str = "lv_view") -> ibis.Table:
        """``expr`` as a named view: evaluated by every query that reads it, never stored."""
        return self.create("VIEW", self.backend.compile(expr), prefix)

    def table(self, expr: ibis.Table, prefix: str = "lv_table") -> ibis.Table:
        """``expr`` computed once and held in the engine (for small results)."""
        return self.create("TABLE", self.backend.compile(expr), prefix)

    def stored(self, expr: ibis.Table, prefix: str = "lv_stored") -> ibis.Table:
        """``expr`` computed once into a Parquet file of the workspace, read as a view.

        For results that may be large: the file is compressed and on disk, and the engine
        writes it in parallel.
        """
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="lifevalue-", dir=self._parent)
            self._objects.insert(0, ("FOLDER", self._folder))
        name = self.name(prefix, "VIEW")
        path = sql_string(str(Path(self._folder) / f"{name}.parquet"))
        self.execute(f"COPY ({self.backend.compile(expr)}) TO {path} (FORMAT parquet)")
        self.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM read_parquet({path})")
        return self.backend.table(name)

    @contextmanager
    def ordered(self) -> Iterator[None]:
        """Within the block, tables keep their rows in insertion order (``rowid`` = position)."""
        con = self.backend.con
        before = con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0]
        con.execute("SET preserve_insertion_order = true")
        try:
            yield
        finally:
            con.execute(f"SET preserve_insertion_order = {str(bool(before)).lower()}")

    def register(self, data: Any, prefix: str) -> ibis.Table:
        """An Arrow table (or record-batch reader) as a table of the engine, without a copy."""
        name = self.name(prefix, "ARROW")
        self.backend.con.register(name, data)
        return self.backend.table(name)


def _drop_all(con: Any, objects: list[tuple[str, str]]) -> None:
    for kind, name in reversed(objects):
        try:
            if kind == "FOLDER":
                shutil.rmtree(name, ignore_errors=True)
            elif kind == "ARROW":
                con.unregister(name)
            else:
                con.execute(f"DROP {kind} IF EXISTS {name}")
        except Exception:  # the connection may be closed already; nothing is left to free
            logger.debug("Could not drop %s %s", kind, name)
    objects.clear()


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


@ibis.udf.scalar.builtin(name="hash")
def value_hash(value) -> dt.uint64:  # type: ignore[no-untyped-def,empty-body]
    """The engine's 64-bit hash of a value (of any type, structs included)."""


def row_hash(table: ibis.Table, columns: Sequence[str]) -> ibis.Value:
    """A 64-bit hash of the named columns of each row (equal rows hash equal).

    Ibis's portable ``hash`` round-trips through a bit string on DuckDB, which costs about
    a third more on large inputs than the engine's own.
    """
    return value_hash(ibis.struct({c: table[c] for c in columns}))


def min_by(value: ibis.Value, key: ibis.Value) -> ibis.Value:
    """The value of ``value`` on the row where ``key`` is smallest, as a grouped aggregate."""
    if value.type().is_string():
        return _min_by_string(value, key)
    return _min_by_float(value.cast("float64"), key)


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
