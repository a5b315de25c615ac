"""The run store: every run kept in a DuckDB file or a PostgreSQL database.

One code path serves both engines through Ibis. The store holds:

- ``lifevalue_runs``: one row per run (id, creation time, scoring date, data fingerprint,
  transaction model, headline figures) with its headline, settings, configuration,
  validation report, models, metrics and table manifest as JSON text;
- ``lv_<run_id>_<name>``: each output table of a run in a table of its own, so that tables
  whose columns differ from one run to the next never clash;
- ``lifevalue_aggregates``: per run, dimension and group, the monitored figures
  (:func:`lifevalue.store.monitor.aggregates`), written when the run is stored;
- ``lifevalue_alerts``: the alerts raised when each run was stored;
- ``lifevalue_backtests``: the rows of each backtest (:mod:`lifevalue.store.backtest`).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

import duckdb
import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlglot as sg
import sqlglot.expressions as sge

from lifevalue.config import Config, MonitorConfig
from lifevalue.errors import InputError
from lifevalue.store.monitor import (
    AGGREGATE_COLUMNS,
    ALERT_COLUMNS,
    aggregates,
    find_alerts,
    order_alerts,
)
from lifevalue.store.run import StoredRun

if TYPE_CHECKING:
    from lifevalue.pipeline import AnalysisResult
    from lifevalue.store.backtest import Backtest

logger = logging.getLogger(__name__)

#: The store used when none is named: a DuckDB file in the current folder.
DEFAULT_STORE = "lifevalue-runs.duckdb"
#: The environment variable naming the store when neither option nor configuration does.
STORE_ENV = "LIFEVALUE_STORE"

RUNS = "lifevalue_runs"
AGGREGATES = "lifevalue_aggregates"
ALERTS = "lifevalue_alerts"
BACKTESTS = "lifevalue_backtests"

_JSON_FIELDS = ("headline", "settings", "config", "validation", "models", "metrics", "tables")
_SCHEMAS: dict[str, ibis.Schema] = {
    RUNS: ibis.schema(
        {
            "run_id": "string",
            "seq": "int64",
            "created_at": "string",
            "as_of": "string",
            "fingerprint": "string",
            "transaction_model": "string",
            "customers": "int64",
            "customer_equity": "float64",
            "predicted_value": "float64",
            **dict.fromkeys(_JSON_FIELDS, "string"),
        }
    ),
    AGGREGATES: ibis.schema(
        {
            "run_id": "string",
            "created_at": "string",
            "as_of": "string",
            "dimension": "string",
            "group": "string",
            "customers": "int64",
            "active_customers": "int64",
            "customer_equity": "float64",
            "predicted_value": "float64",
            "mean_clv": "float64",
            "mean_p_alive": "float64",
        }
    ),
    ALERTS: ibis.schema(
        {
            "run_id": "string",
            "previous_run_id": "string",
            "figure": "string",
            "dimension": "string",
            "group": "string",
            "previous": "float64",
            "current": "float64",
            "change": "float64",
            "threshold": "float64",
            "drivers": "string",
        }
    ),
    BACKTESTS: ibis.schema(
        {
            "backtest_id": "string",
            "created_at": "string",
            "as_of": "string",
            "fingerprint": "string",
            "holdout_weeks": "float64",
            "cutoff": "string",
            "holdout_end": "string",
            "model": "string",
            "n_customers": "int64",
            "log_likelihood": "float64",
            "aic": "float64",
            "bic": "float64",
            "mae": "float64",
            "rmse": "float64",
            "predicted_total": "float64",
            "actual_total": "float64",
            "tracking_error": "float64",
            "calibration_error": "float64",
            "p_alive_auc": "float64",
            "gini": "float64",
        }
    ),
}
#: Columns of :meth:`RunStore.list`.
LIST_COLUMNS: tuple[str, ...] = (
    "run_id",
    "created_at",
    "as_of",
    "transaction_model",
    "customers",
    "customer_equity",
    "predicted_value",
    "fingerprint",
    "alerts",
)
_RUN_ID = re.compile(r"^[0-9a-z_]{1,32}$")
# Each row's position in a stored table: a server returns rows in no particular order.
_ROW = "_lv_row"
# PostgreSQL truncates identifiers beyond 63 bytes.
_MAX_IDENTIFIER = 63


def resolve_store_url(url: str | Path | None = None, config: Config | None = None) -> str:
    """The run store to use.

    Parameters
    ----------
    url
        The store named on the command line or by the caller; wins when given.
    config
        A configuration whose ``[store] url`` comes next.

    Returns
    -------
    str
        ``url``, else the configuration's ``[store] url``, else the environment variable
        ``LIFEVALUE_STORE``, else ``lifevalue-runs.duckdb`` in the current folder.
    """
    if url:
        return str(url)
    if config is not None and config.store.url:
        return str(config.store.url)
    return os.environ.get(STORE_ENV) or DEFAULT_STORE


def display_url(url: str) -> str:
    """A store URL fit to print or log: any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


class RunStore:
    """The run history: save, list, get, compare and delete runs; trends, alerts, backtests.

    Parameters
    ----------
    url
        A DuckDB file (a path, or ``duckdb:///path``; ``:memory:`` for a throwaway store) or
        a PostgreSQL database (``postgresql://user:password@host:5432/db``, ``postgres://``
        also accepted; needs ``pip install 'lifevalue[postgres]'``). ``None``: see
        :func:`resolve_store_url`. The tables are created when missing.

    Raises
    ------
    InputError
        For a URL of another kind, a DuckDB file in a missing folder, or a database that
        cannot be reached.

    Examples
    --------
    >>> store = RunStore("runs.duckdb")  # doctest: +SKIP
    >>> run_id = store.save(run_analysis(config))  # doctest: +SKIP
    >>> store.get("latest").scores.head()  # doctest: +SKIP
    """

    def __init__(self, url: str | Path | None = None) -> None:
        self.url = resolve_store_url(url)
        self.backend, self._con = _connect(self.url)
        self._ensure_schema()

    # -- life cycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection to the store."""
        self._con.disconnect()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({display_url(self.url)!r})"

    # -- runs ---------------------------------------------------------------------------

    def save(
        self,
        run: AnalysisResult | StoredRun,
        *,
        threshold: float | None = None,
        min_customers: int | None = None,
    ) -> str:
        """Store a run, its aggregates and the alerts it raises against the previous run.

        Parameters
        ----------
        run
            A pipeline result or a stored run (stored under its own ``run_id``).
        threshold, min_customers
            Alert settings; by default those of the run's ``[monitor]`` configuration
            (0.10 and 30 when it has none). See :func:`lifevalue.store.monitor.find_alerts`.

        Returns
        -------
        str
            The run's id.

        Raises
        ------
        InputError
            When a run with the same id is already stored, or the id is not 1 to 32
            lower-case letters, digits or underscores.
        """
        stored = run if isinstance(run, StoredRun) else StoredRun.from_result(run)
        run_id = stored.run_id
        if not _RUN_ID.match(run_id):
            raise InputError(
                f"A run id must be 1 to 32 lower-case letters, digits or underscores. "
                f"Got {run_id!r} instead."
            )
        runs = self._runs_table()
        if run_id in set(runs["run_id"]):
            raise InputError(f"The run store {self} already holds a run {run_id!r}.")
        before = runs[runs["created_at"] <= stored.created_at]
        previous = str(before["run_id"].iloc[-1]) if len(before) else None
        threshold, min_customers = _monitor_settings(stored.config, threshold, min_customers)
        current = aggregates(stored)
        alerts = pd.DataFrame(columns=list(ALERT_COLUMNS))
        if previous is not None:
            alerts = find_alerts(
                self._scores(previous),
                stored,
                threshold=threshold,
                min_customers=min_customers,
            )
        alerts = alerts.assign(run_id=run_id, previous_run_id=previous)
        seq = int(runs["seq"].max()) + 1 if len(runs) else 1
        try:
            manifest = self._write_tables(run_id, stored.tables)
            self._insert(RUNS, [_run_row(stored, seq, manifest)])
            self._insert(
                AGGREGATES,
                current.assign(
                    run_id=run_id, created_at=stored.created_at, as_of=stored.as_of
                ).to_dict("records"),
            )
            self._insert(ALERTS, alerts.to_dict("records"))
        except BaseException:
            # Leave no half-stored run behind.
            self._remove(run_id)
            raise
        logger.info(
            "Stored run %s in %s (%d tables, %d alerts).",
            run_id,
            self,
            len(stored.tables),
            len(alerts),
        )
        return run_id

    def list(self) -> pd.DataFrame:
        """The stored runs, oldest first: :data:`LIST_COLUMNS`."""
        runs = self._runs_table()
        counts = (
            self._con.table(ALERTS).group_by("run_id").aggregate(alerts=ibis._.count()).to_pandas()
        )
        listed = runs.merge(counts, on="run_id", how="left")
        listed["alerts"] = listed["alerts"].fillna(0).astype("int64")
        return listed[list(LIST_COLUMNS)].reset_index(drop=True)

    def resolve(self, run: str) -> str:
        """The id of a run: ``"latest"``, an id, or a unique start of one (4 or more characters).

        Raises
        ------
        InputError
            When no stored run matches (the message lists the known ones).
        """
        ids = [str(i) for i in self._runs_table()["run_id"]]
        ref = str(run).strip()
        if not ids:
            raise InputError(f"The run store {self} holds no runs yet; `lifevalue run` stores one.")
        if ref.lower() == "latest":
            return ids[-1]
        if ref in ids:
            return ref
        matches = [i for i in ids if len(ref) >= 4 and i.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        shown = ", ".join(reversed(ids[-5:]))
        more = f" and {len(ids) - 5} older" if len(ids) > 5 else ""
        kind = "several runs" if len(matches) > 1 else "no run"
        raise InputError(
            f"{ref!r} matches {kind} in the run store {self}: expected a run id or 'latest'; "
            f"the latest runs are {shown}{more}."
        )

    def get(self, run: str = "latest") -> StoredRun:
        """A stored run, rebuilt whole: tables, models and alerts.

        Parameters
        ----------
        run
            A run id, a unique start of one, or ``"latest"``.
        """
        run_id = self.resolve(run)
        row = self._row(run_id)
        payload = {name: json.loads(row[name]) for name in _JSON_FIELDS}
        tables = {
            name: self._read_table(entry) for name, entry in (payload["tables"] or {}).items()
        }
        return StoredRun(
            run_id=run_id,
            created_at=str(row["created_at"]),
            as_of=str(row["as_of"]),
            headline=payload["headline"],
            settings=payload["settings"],
            config=payload["config"],
            validation=payload["validation"],
            fingerprint=str(row["fingerprint"]),
            models=payload["models"],
            tables=tables,
            alerts=self.alerts(run_id),
        )

    def metrics(self, run: str = "latest") -> dict[str, Any]:
        """A run's fit and holdout metrics.

        Returns
        -------
        dict
            ``models``: each fitted model's ``model``, ``log_likelihood``, ``aic``, ``bic``,
            ``n_customers`` and ``converged`` by role (``transaction``, ``spend``);
            ``holdout``: the rows of the run's model comparison on the holdout (or ``None``
            when the model was configured rather than chosen).
        """
        return json.loads(self._row(self.resolve(run))["metrics"])

    def previous(self, run: str = "latest") -> str | None:
        """The id of the run stored just before ``run``, or ``None`` for the first."""
        run_id = self.resolve(run)
        ids = [str(i) for i in self._runs_table()["run_id"]]
        at = ids.index(run_id)
        return ids[at - 1] if at > 0 else None

    def delete(self, run: str) -> str:
        """Delete a run: its row, its tables, aggregates and alerts. Returns its id."""
        run_id = self.resolve(run)
        self._remove(run_id)
        logger.info("Deleted run %s from %s.", run_id, self)
        return run_id

    # -- monitoring ---------------------------------------------------------------------

    def trends(self, dimension: str | None = None) -> pd.DataFrame:
        """The monitored figures over runs, oldest run first.

        One row per run, dimension and group: ``run_id``, ``created_at``, ``as_of``,
        ``dimension``, ``group``, ``customers``, ``active_customers`` (P(alive) >= 0.5),
        ``customer_equity`` (sum of ``total_clv``), ``predicted_value`` (sum of
        ``predicted_clv``), ``mean_clv`` (mean ``predicted_clv``) and ``mean_p_alive``.
        Dimension ``"all"`` (group ``"all"``) is the whole base; the others are
        ``value_tier``, ``segment``, ``lifecycle_state``, ``acquisition_channel`` and
        ``acquisition_cohort`` (month of first purchase), where the scores have them.

        Parameters
        ----------
        dimension
            Only this dimension's rows.
        """
        table = self._con.table(AGGREGATES)
        if dimension is not None:
            table = table.filter(table.dimension == dimension)
        frame = table.to_pandas()
        order = self._runs_table()[["run_id", "seq"]]
        frame = frame.merge(order, on="run_id").sort_values(["seq", "dimension", "group"])
        columns = ["run_id", "created_at", "as_of", *AGGREGATE_COLUMNS]
        return frame[columns].reset_index(drop=True)

    def alerts(self, run: str = "latest") -> pd.DataFrame:
        """The alerts a run raised when it was stored.

        Columns ``run_id``, ``previous_run_id``, ``figure``, ``dimension``, ``group``,
        ``previous``, ``current``, ``change``, ``threshold``, ``drivers``; the whole base
        first, then by dimension, largest changes first.
        """
        run_id = self.resolve(run)
        table = self._con.table(ALERTS)
        frame = table.filter(table.run_id == run_id).to_pandas()
        columns = ["run_id", "previous_run_id", *ALERT_COLUMNS]
        return order_alerts(frame[columns])

    # -- backtests ----------------------------------------------------------------------

    def save_backtest(self, backtest: Backtest) -> str:
        """Store a backtest's rows; returns the backtest's id."""
        backtest_id = uuid.uuid4().hex[:12]
        created = datetime.now(UTC).isoformat(timespec="microseconds")
        rows = backtest.table.assign(
            backtest_id=backtest_id,
            created_at=created,
            as_of=backtest.as_of,
            fingerprint=backtest.fingerprint,
            holdout_weeks=float(backtest.holdout_weeks),
        )
        self._insert(BACKTESTS, rows.to_dict("records"))
        logger.info("Stored backtest %s in %s (%d rows).", backtest_id, self, len(rows))
        return backtest_id

    def backtests(self, backtest_id: str | None = None) -> pd.DataFrame:
        """The rows of a stored backtest (by default the latest): one per cutoff and model.

        Columns: ``cutoff``, ``holdout_end``, ``model``, ``n_customers``, the fit figures
        (``log_likelihood``, ``aic``, ``bic``), ``mae``, ``rmse``, ``predicted_total``,
        ``actual_total``, ``tracking_error``, ``calibration_error``, ``p_alive_auc``,
        ``gini``, and ``backtest_id``, ``created_at``, ``as_of``, ``fingerprint``,
        ``holdout_weeks``. Empty when none is stored.

        Raises
        ------
        InputError
            For an unknown ``backtest_id``.
        """
        table = self._con.table(BACKTESTS)
        if backtest_id is None:
            latest = table.aggregate(last=table.created_at.max()).to_pandas()["last"].iloc[0]
            if latest is None or pd.isna(latest):
                return pd.DataFrame(columns=list(_SCHEMAS[BACKTESTS]))
            chosen = table.filter(table.created_at == latest)
        else:
            chosen = table.filter(table.backtest_id == backtest_id)
        frame = chosen.to_pandas()
        if backtest_id is not None and frame.empty:
            known = table.select("backtest_id").distinct().to_pandas()["backtest_id"]
            raise InputError(
                f"No backtest {backtest_id!r} in the run store {self}; known: "
                f"{', '.join(map(str, known)) or 'none'}."
            )
        order = ["cutoff", "holdout_end", "model"]
        columns = [*order, *(c for c in _SCHEMAS[BACKTESTS] if c not in order)]
        return frame.sort_values(["cutoff", "model"])[columns].reset_index(drop=True)

    # -- internals ----------------------------------------------------------------------

    def __str__(self) -> str:
        return display_url(self.url)

    def _ensure_schema(self) -> None:
        existing = set(self._con.list_tables())
        for name, schema in _SCHEMAS.items():
            if name not in existing:
                self._con.create_table(name, schema=schema)

    def _runs_table(self) -> pd.DataFrame:
        """Run ids, creation times and headline columns, in the order runs were stored."""
        columns = [c for c in _SCHEMAS[RUNS] if c not in _JSON_FIELDS]
        frame = self._con.table(RUNS).select(*columns).to_pandas()
        return frame.sort_values(["created_at", "seq"]).reset_index(drop=True)

    def _row(self, run_id: str) -> pd.Series:
        table = self._con.table(RUNS)
        return table.filter(table.run_id == run_id).to_pandas().iloc[0]

    def _scores(self, run_id: str) -> pd.DataFrame:
        """The scores of a stored run (what alerts compare)."""
        manifest = json.loads(self._row(run_id)["tables"]) or {}
        if "scores" not in manifest:
            raise InputError(f"The stored run {run_id!r} has no scores table.")
        return self._read_table(manifest["scores"])

    def _write_tables(
        self, run_id: str, tables: Mapping[str, pd.DataFrame]
    ) -> dict[str, dict[str, Any]]:
        manifest: dict[str, dict[str, Any]] = {}
        used: set[str] = set()
        for name, frame in tables.items():
            physical = _table_name(run_id, name, used)
            used.add(physical)
            arrow, columns = _to_arrow(frame)
            if self.backend == "postgres":
                # Ibis inserts an in-memory table into PostgreSQL row by row; COPY takes a
                # million customers' scores in seconds.
                self._con.create_table(
                    physical, schema=ibis.Schema.from_pyarrow(arrow.schema), overwrite=True
                )
                _copy_into(self._con.con, physical, arrow)
            else:
                self._con.create_table(physical, arrow, overwrite=True)
            manifest[name] = {"table": physical, "columns": columns}
        return manifest

    def _read_table(self, entry: Mapping[str, Any]) -> pd.DataFrame:
        table = self._con.table(entry["table"])
        frame = table.order_by(_ROW).to_pandas()
        return _restore(frame, entry["columns"])

    def _insert(self, name: str, rows: Iterable[Mapping[str, Any]]) -> None:
        schema = _SCHEMAS[name]
        records = [{c: _plain(row.get(c)) for c in schema} for row in rows]
        if not records:
            return
        table = pa.Table.from_pylist(records, schema=schema.to_pyarrow())
        self._con.insert(name, ibis.memtable(table))

    def _remove(self, run_id: str) -> None:
        """Drop every trace of a run; what is already gone is skipped."""
        for table in self._con.list_tables():
            if table.startswith(f"lv_{run_id}_"):
                self._con.drop_table(table, force=True)
        for name in (RUNS, AGGREGATES, ALERTS):
            # Ibis has no row deletion; the statement is built with sqlglot, not by pasting text.
            statement = sge.delete(
                sg.table(name, quoted=True),
                where=sg.column("run_id", quoted=True).eq(sge.convert(run_id)),
            )
            result = self._con.raw_sql(statement)
            if self.backend == "postgres":
                # A psycopg cursor; DuckDB hands back its connection, which must stay open.
                result.close()


def _copy_into(connection: Any, name: str, table: pa.Table) -> None:
    """Append ``table`` to the PostgreSQL table ``name`` with COPY, as CSV.

    Arrow's CSV writer quotes every string and leaves nulls empty and unquoted, which is
    how COPY's CSV format tells a null from an empty string.
    """
    from psycopg import sql

    buffer = io.BytesIO()
    pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(include_header=False))
    statement = sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(sql.Identifier(name))
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(buffer.getbuffer())


# -- connection -------------------------------------------------------------------------


def _connect(url: str) -> tuple[str, Any]:
    """The backend's name and an Ibis connection for a store URL."""
    shown = display_url(url)
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        try:
            import psycopg
        except ImportError:
            raise InputError(
                f"The run store {shown} is a PostgreSQL database, which needs the PostgreSQL "
                "driver: pip install 'lifevalue[postgres]'."
            ) from None
        try:
            return "postgres", ibis.connect("postgresql://" + url.split("://", 1)[1])
        except (psycopg.Error, ValueError) as exc:
            raise InputError(f"Cannot connect to the run store {shown}: {exc}") from exc
    if scheme not in ("", "duckdb"):
        raise InputError(
            f"Unknown run store {shown!r}: expected a DuckDB file (a path or duckdb:///path) "
            "or a PostgreSQL URL (postgresql://user@host:5432/database)."
        )
    path = url.split("://", 1)[1] if scheme else url
    if path in ("", ":memory:"):
        return "duckdb", ibis.duckdb.connect(":memory:")
    file = Path(path).expanduser()
    if not file.parent.is_dir():
        raise InputError(
            f"The run store {str(file)!r} is in a folder that does not exist ({file.parent})."
        )
    try:
        return "duckdb", ibis.duckdb.connect(str(file))
    except duckdb.Error as exc:  # a file locked by another process, or not a database
        raise InputError(f"Cannot open the run store {str(file)!r}: {exc}") from exc


# -- rows and tables --------------------------------------------------------------------


def _monitor_settings(
    config: Mapping[str, Any], threshold: float | None, min_customers: int | None
) -> tuple[float, int]:
    section = dict(config.get("monitor") or {})
    given = {"threshold": threshold, "min_customers": min_customers}
    section.update({k: v for k, v in given.items() if v is not None})
    known = {k: section[k] for k in ("threshold", "min_customers") if k in section}
    settings = MonitorConfig(**known)
    return float(settings.threshold), int(settings.min_customers)


def _run_row(stored: StoredRun, seq: int, manifest: Mapping[str, Any]) -> dict[str, Any]:
    head = stored.headline
    config = _redacted(stored.config)
    return {
        "run_id": stored.run_id,
        "seq": seq,
        "created_at": stored.created_at,
        "as_of": stored.as_of,
        "fingerprint": stored.fingerprint,
        "transaction_model": str(
            head.get("transaction_model") or stored.settings.get("transaction_model", "")
        ),
        "customers": int(head.get("customers", len(stored.scores))),
        "customer_equity": head.get("customer_equity"),
        "predicted_value": head.get("predicted_value"),
        "headline": _json(head),
        "settings": _json(stored.settings),
        "config": _json(config),
        "validation": _json(stored.validation),
        "models": _json(stored.models),
        "metrics": _json(_metrics(stored)),
        "tables": _json(manifest),
    }


def _metrics(stored: StoredRun) -> dict[str, Any]:
    """Each model's fit figures by role, and the holdout comparison when the run made one."""
    keys = ("model", "log_likelihood", "aic", "bic", "n_customers", "converged")
    models = {role: {k: payload.get(k) for k in keys} for role, payload in stored.models.items()}
    comparison = stored.tables.get("model_comparison")
    holdout = None if comparison is None else comparison.to_dict("records")
    return {"models": models, "holdout": holdout}


def _redacted(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration without the store's password (it would sit in the store itself)."""
    config = dict(config)
    store = config.get("store")
    if isinstance(store, Mapping) and store.get("url"):
        config["store"] = {**store, "url": display_url(str(store["url"]))}
    return config


def _json(value: Any) -> str:
    return json.dumps(value, default=_json_default, allow_nan=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _plain(value: Any) -> Any:
    """A value Arrow takes for a column of the fixed tables: NaN and NA become null."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _table_name(run_id: str, name: str, used: set[str]) -> str:
    safe = re.sub(r"[^0-9a-z_]+", "_", str(name).lower()).strip("_") or "table"
    base = f"lv_{run_id}_{safe}"[:_MAX_IDENTIFIER]
    candidate, n = base, 1
    while candidate in used:
        n += 1
        suffix = f"_{n}"
        candidate = base[: _MAX_IDENTIFIER - len(suffix)] + suffix
    return candidate


def _to_arrow(frame: pd.DataFrame) -> tuple[pa.Table, list[list[str]]]:
    """An Arrow table both engines take, and each column's kind to restore it on reading.

    Nanosecond times become microseconds (the engines' resolution), dates held as Python
    objects become dates, columns of mixed types become text and columns with nothing
    in them text columns of nulls.
    """
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    kinds: list[list[str]] = []
    for column in frame.columns:
        series = frame[column]
        kind = str(series.dtype)
        if pd.api.types.is_datetime64_any_dtype(series.dtype):
            unit = getattr(series.dtype, "unit", "ns")
            if unit == "ns":
                frame[column] = series.astype(kind.replace("[ns", "[us"))
        elif series.dtype == object:
            inferred = pd.api.types.infer_dtype(series, skipna=True)
            if inferred == "date":
                kind = "date"
            elif inferred.startswith("mixed") or inferred in ("decimal", "complex", "period"):
                frame[column] = series.map(lambda v: v if _missing(v) else str(v))
        kinds.append([column, kind])
    frame[_ROW] = np.arange(len(frame), dtype="int64")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, arrow_field in enumerate(table.schema):
        if pa.types.is_null(arrow_field.type):
            table = table.set_column(i, arrow_field.name, table.column(i).cast(pa.string()))
    return table, kinds


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _restore(frame: pd.DataFrame, kinds: list[list[str]]) -> pd.DataFrame:
    """A stored table with its columns' order and kinds as they were saved."""
    frame = frame[[column for column, _ in kinds]].copy()
    for column, kind in kinds:
        series = frame[column]
        try:
            if kind == "date":
                frame[column] = pd.to_datetime(series).dt.date.where(series.notna(), None)
            elif kind != str(series.dtype):
                frame[column] = series.astype(kind)
        except (TypeError, ValueError) as exc:
            logger.debug("Column %s stays %s (stored as %s): %s", column, series.dtype, kind, exc)
    return frame
