"""Sources of transaction logs: CSV, Parquet, data frames and Ibis tables.

Reading stages a source in the engine as an Ibis table holding the source's own columns
plus ``_lv_pos``, the row's position in its source: ``(file index << 40) + row number``,
with row numbers counted from 1 at the first data row (the line after the header).
Positions let every rejected row be traced back to where it came from.

Delimited text is read with every field as text, so that a malformed value becomes a
reported problem rather than a reader error; lines the reader cannot split into the right
number of fields are kept aside as malformed rows, with their row numbers.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa

from lifevalue.data.contract import CsvOptions
from lifevalue.data.engine import (
    Engine,
    Workspace,
    default_engine,
    sql_identifier,
    sql_string,
)
from lifevalue.errors import InputError

logger = logging.getLogger(__name__)

POS = "_lv_pos"
POS_BITS = 40
_ROW_MASK = (1 << POS_BITS) - 1

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".dat", ".psv")
_DELIMITER_CANDIDATES = (",", "\t", ";", "|")
_ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "utf-16": "utf-16", "latin-1": "latin-1"}
_ENCODINGS.update({"latin1": "latin-1", "iso-8859-1": "latin-1"})

SourceLike = Any  # str | Path | pandas/polars DataFrame | pyarrow Table | ibis Table


@dataclass
class TransactionSource:
    """A transaction log staged in an engine, before validation.

    Attributes
    ----------
    table
        The source's columns plus ``_lv_pos`` (see the module notes).
    columns
        The source's own column names, in order.
    files
        File paths by file index (empty for in-memory sources).
    description
        How to name the source in messages.
    malformed
        Rows the reader could not split into fields (``_lv_pos``, ``message``), or ``None``.
    workspace
        The engine objects that hold the staged source.
    """

    table: ibis.Table
    columns: tuple[str, ...]
    files: tuple[str, ...] = ()
    description: str = "the source"
    malformed: ibis.Table | None = None
    workspace: Workspace | None = field(default=None, repr=False)

    @property
    def backend(self) -> Any:
        """The Ibis backend that holds the staged table."""
        return self.table._find_backend()

    def row_label(self, pos: int) -> str:
        """Human-readable location of a position: ``"row 12"`` or ``"row 12 of part-1.parquet"``."""
        row = int(pos) & _ROW_MASK
        if len(self.files) > 1:
            return f"row {row} of {self.files[int(pos) >> POS_BITS]}"
        return f"row {row}"


def split_position(pos: Any) -> tuple[np.ndarray, np.ndarray]:
    """Split ``_lv_pos`` values into (file index, row number)."""
    values = np.asarray(pos, dtype=np.int64)
    return values >> POS_BITS, values & _ROW_MASK


def read_transactions(
    source: SourceLike,
    *,
    csv_options: CsvOptions | None = None,
    engine: Engine | None = None,
) -> TransactionSource:
    """Stage a transaction log for validation.

    Parameters
    ----------
    source
        A path to a CSV or Parquet file, a folder of Parquet files, a glob pattern of Parquet
        files, a pandas or polars DataFrame, a pyarrow Table, or an Ibis table. Ibis tables
        on a DuckDB backend are used where they are; tables on other backends (SQLite,
        PostgreSQL, a warehouse) are streamed into the engine through their Ibis backend.
    csv_options
        How to read delimited text; detected when omitted.
    engine
        The engine that stages files and data frames; the default engine when omitted.

    Returns
    -------
    TransactionSource

    Raises
    ------
    InputError
        The file does not exist, its format is unknown, or it cannot be read.
    """
    engine = engine or default_engine()
    if isinstance(source, ibis.Table):
        return _from_ibis(source, engine)
    if isinstance(source, pd.DataFrame | pa.Table) or _is_polars(source):
        return _from_frame(source, engine)
    if isinstance(source, str | Path):
        return _from_path(str(source), csv_options or CsvOptions(), engine)
    raise InputError(
        "Cannot read transactions from an object of type "
        f"{type(source).__name__}: expected a file path, a folder or glob of Parquet files, "
        "a pandas or polars DataFrame, a pyarrow Table or an Ibis table."
    )


# -- paths ------------------------------------------------------------------------------


def _from_path(path: str, options: CsvOptions, engine: Engine) -> TransactionSource:
    if any(ch in path for ch in "*?["):
        files = sorted(glob.glob(path, recursive=True))
        if not files:
            raise InputError(f"No files match the pattern {path!r}.")
        return _from_parquet(files, engine, description=f"files matching {path!r}")
    p = Path(path)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in PARQUET_SUFFIXES)
        if not files:
            raise InputError(f"The folder {path!r} holds no Parquet files (*.parquet).")
        return _from_parquet(files, engine, description=f"Parquet folder {path!r}")
    if not p.exists():
        raise InputError(f"Input file {path!r} does not exist.")
    suffixes = [s.lower() for s in p.suffixes]
    kind = next((s for s in reversed(suffixes) if s not in (".gz", ".zst", ".bz2")), "")
    if kind in PARQUET_SUFFIXES:
        return _from_parquet([str(p)], engine, description=f"Parquet file {path!r}")
    if kind in CSV_SUFFIXES or kind == "":
        return _from_csv(p, options, engine)
    raise InputError(
        f"Cannot tell the format of {path!r} from its extension {kind!r}: expected a CSV "
        f"({', '.join(CSV_SUFFIXES)}) or Parquet ({', '.join(PARQUET_SUFFIXES)}) file."
    )


def _from_parquet(files: Sequence[str], engine: Engine, *, description: str) -> TransactionSource:
    for f in files:
        if Path(f).suffix.lower() not in PARQUET_SUFFIXES:
            raise InputError(f"{f!r} is not a Parquet file; a multi-file source must be Parquet.")
    ws = engine.workspace()
    file_list = "[" + ", ".join(sql_string(f) for f in files) + "]"
    try:
        table = ws.create(
            "VIEW",
            f"SELECT (CAST(file_index AS BIGINT) << {POS_BITS}) + file_row_number + 1 AS {POS}, * "
            f"FROM read_parquet({file_list}, union_by_name = true)",
            "lv_parquet",
        )
    except Exception as exc:
        raise InputError(f"Cannot read {description}: {_first_line(exc)}") from exc
    columns = tuple(c for c in table.columns if c != POS)
    return TransactionSource(
        table=table, columns=columns, files=tuple(files), description=description, workspace=ws
    )


def _from_csv(path: Path, options: CsvOptions, engine: Engine) -> TransactionSource:
    encoding = _ENCODINGS.get(options.encoding.lower())
    if encoding is None:
        raise InputError(
            f"Unsupported encoding {options.encoding!r} for {str(path)!r}: expected utf-8, "
            "utf-16 or latin-1."
        )
    lines = _peek_lines(path, encoding, skip=options.skip_rows)
    if not lines:
        raise InputError(f"The file {str(path)!r} holds no rows.")
    delimiter = options.delimiter or _detect_delimiter(lines, options.quote)
    if delimiter is None:
        raise InputError(
            f"Cannot tell how the fields of {str(path)!r} are separated: no comma, tab, "
            "semicolon or pipe splits most of the first lines into the same number of fields, "
            "and neither does whitespace. Pass --delimiter."
        )
    whitespace = delimiter.lower() in ("whitespace", "ws", " ", r"\s+")
    first = _split(lines[0], delimiter, options.quote, whitespace)
    second = _split(lines[1], delimiter, options.quote, whitespace) if len(lines) > 1 else []
    header = options.header if options.header is not None else _looks_like_header(first, second)
    if options.names is not None:
        names = list(options.names)
    elif header:
        names = _unique_names(first)
    else:
        names = [f"column{i + 1}" for i in range(len(first))]
    file = _File(path, names, options.skip_rows + (1 if header else 0), encoding)
    if whitespace:
        return _stage_whitespace(file, engine.workspace())
    return _stage_delimited(file, delimiter, options.quote, engine.workspace())


@dataclass(frozen=True)
class _File:
    path: Path
    names: list[str]
    skip: int
    encoding: str

    @property
    def description(self) -> str:
        return f"CSV file {str(self.path)!r}"


def _stage_delimited(file: _File, delimiter: str, quote: str, ws: Workspace) -> TransactionSource:
    rejects, scans = ws.name("lv_rej", "TABLE"), ws.name("lv_scan", "TABLE")
    columns = "{" + ", ".join(f"{sql_string(n)}: 'VARCHAR'" for n in file.names) + "}"
    try:
        with ws.ordered():
            stage = ws.create(
                "TABLE",
                f"SELECT * FROM read_csv({sql_string(str(file.path))}, columns = {columns}, "
                f"header = false, skip = {file.skip}, delim = {sql_string(delimiter)}, "
                f"quote = {sql_string(quote)}, escape = {sql_string(quote)}, auto_detect = false, "
                f"encoding = {sql_string(file.encoding)}, store_rejects = true, "
                f"rejects_table = {sql_string(rejects)}, rejects_scan = {sql_string(scans)})",
                "lv_csv",
            ).get_name()
    except Exception as exc:
        raise InputError(f"Cannot read {file.description}: {_first_line(exc)}") from exc
    # Reject line numbers count from the top of the file; rows count from the first data row.
    bad = f"(SELECT DISTINCT CAST(line AS BIGINT) - {file.skip} AS rec FROM {rejects})"
    malformed = None
    if ws.execute(f"SELECT count(*) FROM {bad}").fetchone()[0] == 0:
        table = ws.create("VIEW", f"SELECT rowid + 1 AS {POS}, * FROM {stage}", "lv_csv_rows")
    else:
        # The k-th (0-based) good row is the (k+1)-th record number not taken by a rejected
        # record: k + 1 + #{j : r_j - j <= k} for the sorted rejected records r_1 < r_2 < ...
        shifts = ws.create(
            "TABLE",
            f"SELECT s, max(j) AS c FROM (SELECT rec - row_number() OVER (ORDER BY rec) AS s, "
            f"row_number() OVER (ORDER BY rec) AS j FROM {bad}) GROUP BY s",
            "lv_csv_shift",
        ).get_name()
        table = ws.create(
            "VIEW",
            f"SELECT src.rowid + 1 + coalesce(sh.c, 0) AS {POS}, src.* FROM {stage} AS src "
            f"ASOF LEFT JOIN {shifts} AS sh ON src.rowid >= sh.s",
            "lv_csv_rows",
        )
        malformed = ws.create(
            "TABLE",
            f"SELECT CAST(line AS BIGINT) - {file.skip} AS {POS}, 'malformed row: ' || "
            f"lower(any_value(error_type)) || ' (' || any_value(error_message) || '): ' || "
            f"trim(any_value(csv_line), chr(10) || chr(13)) AS message "
            f"FROM {rejects} GROUP BY line",
            "lv_csv_bad",
        )
    return TransactionSource(
        table=table,
        columns=tuple(file.names),
        files=(str(file.path),),
        description=file.description,
        malformed=malformed,
        workspace=ws,
    )


def _stage_whitespace(file: _File, ws: Workspace) -> TransactionSource:
    try:
        with ws.ordered():
            lines = ws.create(
                "TABLE",
                f"SELECT line FROM read_csv({sql_string(str(file.path))}, "
                f"columns = {{'line': 'VARCHAR'}}, delim = chr(1), quote = '', escape = '', "
                f"header = false, skip = {file.skip}, auto_detect = false, "
                f"encoding = {sql_string(file.encoding)})",
                "lv_lines",
            ).get_name()
    except Exception as exc:
        raise InputError(f"Cannot read {file.description}: {_first_line(exc)}") from exc
    # Splitting on a regular expression is slow; it is done once, into tables.
    fields = ws.create(
        "TABLE",
        f"SELECT rowid + 1 AS {POS}, "
        f"string_split_regex(trim(line, ' ' || chr(9) || chr(13)), '\\s+') AS f FROM {lines} "
        "WHERE trim(coalesce(line, '')) <> ''",
        "lv_fields",
    ).get_name()
    ws.execute(f"DROP TABLE {lines}")
    n = len(file.names)
    cols = ", ".join(f"f[{i + 1}] AS {sql_identifier(name)}" for i, name in enumerate(file.names))
    table = ws.create(
        "TABLE", f"SELECT {POS}, {cols} FROM {fields} WHERE len(f) = {n}", "lv_ws_rows"
    )
    malformed = ws.create(
        "TABLE",
        f"SELECT {POS}, 'malformed row: expected {n} fields separated by whitespace, found ' || "
        f"len(f) || ': ' || array_to_string(f, ' ') AS message FROM {fields} WHERE len(f) <> {n}",
        "lv_ws_bad",
    )
    ws.execute(f"DROP TABLE {fields}")
    return TransactionSource(
        table=table,
        columns=tuple(file.names),
        files=(str(file.path),),
        description=file.description,
        malformed=malformed,
        workspace=ws,
    )


def _peek_lines(path: Path, encoding: str, *, skip: int, n: int = 50) -> list[str]:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rt", encoding=encoding, newline="") as handle:  # type: ignore[operator]
            lines: list[str] = []
            for i, line in enumerate(handle):
                if i < skip:
                    continue
                line = line.rstrip("\r\n")
                if line.strip():
                    lines.append(line)
                if len(lines) >= n:
                    break
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read {str(path)!r} as {encoding} text: {exc}") from exc
    return lines


def _split(line: str, delimiter: str, quote: str, whitespace: bool) -> list[str]:
    if whitespace:
        return line.split()
    return next(csv.reader(io.StringIO(line), delimiter=delimiter, quotechar=quote or None))


def _detect_delimiter(lines: list[str], quote: str) -> str | None:
    # A delimiter splits most sampled lines (a few may be malformed) into the same number
    # (>= 2) of fields.
    sample = lines

    def consistency(counts: list[int]) -> tuple[float, int]:
        mode = max(set(counts), key=counts.count)
        return (counts.count(mode) / len(counts), mode) if mode >= 2 else (0.0, mode)

    scored = [
        (consistency([len(_split(line, d, quote, False)) for line in sample]), d)
        for d in _DELIMITER_CANDIDATES
    ]
    (share, _), best = max(scored, key=lambda item: item[0])
    if share >= 0.6:
        return best
    share, _ = consistency([len(line.split()) for line in sample])
    return "whitespace" if share >= 0.6 else None


def _is_number(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


def _looks_like_header(first: list[str], second: list[str]) -> bool:
    if any(_is_number(f) for f in first):
        return False
    return not second or any(_is_number(f) for f in second)


def _unique_names(header: list[str]) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(header):
        name = raw.strip() or f"column{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        names.append(name)
    return names


# -- frames and Ibis tables --------------------------------------------------------------


def _is_polars(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "polars" and hasattr(obj, "to_arrow")


def _frame_to_arrow(frame: Any) -> pa.Table:
    if isinstance(frame, pa.Table):
        return frame
    if _is_polars(frame):
        return frame.to_arrow()
    frame = frame.rename(columns=str)
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # Object columns mixing numbers and text are read as text; validation reports the
        # values that do not parse.
        mixed = {
            c: frame[c].astype("string")
            for c in frame.columns
            if frame[c].dtype == object and not _arrow_ok(frame[c])
        }
        return pa.Table.from_pandas(frame.assign(**mixed), preserve_index=False)


def _arrow_ok(column: pd.Series) -> bool:
    try:
        pa.array(column, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    return True


def _from_frame(frame: Any, engine: Engine) -> TransactionSource:
    table = _frame_to_arrow(frame)
    if POS in table.column_names:
        raise InputError(f"The column name {POS!r} is reserved; rename that column.")
    table = table.append_column(POS, pa.array(range(1, table.num_rows + 1), type=pa.int64()))
    ws = engine.workspace()
    # A registered Arrow table is scanned in place, without a copy into the engine.
    staged = ws.register(table, "lv_frame")
    kind = "polars" if _is_polars(frame) else type(frame).__name__
    return TransactionSource(
        table=staged,
        columns=tuple(c for c in table.column_names if c != POS),
        description=f"the {kind} data frame",
        workspace=ws,
    )


def _from_ibis(table: ibis.Table, engine: Engine) -> TransactionSource:
    if POS in table.columns:
        raise InputError(f"The column name {POS!r} is reserved; rename that column.")
    backend = table._find_backend()
    name = getattr(backend, "name", "unknown")
    columns = tuple(table.columns)
    if name == "duckdb":
        # Rows of a SQL table have no inherent order; the position is the order of the scan.
        ws = Workspace(backend)
        staged = ws.view(table.mutate(**{POS: ibis.row_number() + 1}), "lv_ibis_rows")
        return TransactionSource(
            table=staged,
            columns=columns,
            description=f"the DuckDB table {_label(table)}",
            workspace=ws,
        )
    ws = engine.workspace()
    try:
        reader = ws.register(table.to_pyarrow_batches(), "lv_ibis_reader")
    except Exception as exc:
        raise InputError(
            f"Cannot read the {name} table {_label(table)}: {_first_line(exc)}"
        ) from exc
    with ws.ordered():
        stage = ws.create("TABLE", f"SELECT * FROM {reader.get_name()}", "lv_ibis").get_name()
    staged = ws.create("VIEW", f"SELECT rowid + 1 AS {POS}, * FROM {stage}", "lv_ibis_rows")
    return TransactionSource(
        table=staged,
        columns=columns,
        description=f"the {name} table {_label(table)}",
        workspace=ws,
    )


def _label(table: ibis.Table) -> str:
    try:
        return repr(table.get_name())
    except Exception:  # an expression rather than a named table
        return "(query)"


# -- SQL text helpers ----------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
