"""Sources: delimited text of every common shape, Parquet files and folders, frames, SQL tables."""

from __future__ import annotations

import sqlite3

import ibis
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from lifevalue.data import CsvOptions, datasets, read_transactions, validate_transactions
from lifevalue.errors import InputError

ROWS = [("a", "2024-01-05", 10.5), ("b", "2024-01-06", 3.0), ("a", "2024-01-09", 7.25)]


def accepted_rows(source, engine, **options) -> list[tuple]:
    validated = validate_transactions(source, engine=engine, **options)
    frame = validated.accepted.execute().sort_values("_lv_pos")
    return [
        (str(r.customer_id), r.timestamp.strftime("%Y-%m-%d"), float(r.amount))
        for r in frame.itertuples()
    ]


@pytest.mark.parametrize(
    ("text", "options"),
    [
        ("customer_id,timestamp,amount\n{rows}", {}),
        ("customer_id;timestamp;amount\n{rows}", {}),
        ("customer_id\ttimestamp\tamount\n{rows}", {}),
        ("customer_id|timestamp|amount\n{rows}", {}),
        ("customer_id  timestamp   amount\n{rows}", {}),
        ("{rows}", {"columns": {"customer_id": "1", "timestamp": "2", "amount": "3"}}),
        (
            "junk line\n{rows}",
            {
                "csv_options": CsvOptions(
                    skip_rows=1, header=False, names=("customer_id", "timestamp", "amount")
                )
            },
        ),
    ],
    ids=["comma", "semicolon", "tab", "pipe", "whitespace", "no-header", "skip-and-names"],
)
def test_delimited_text_of_every_shape(tmp_path, engine, text, options):
    separators = {"comma": ",", "semicolon": ";", "tab": "\t", "pipe": "|"}
    sep = next((s for s in separators.values() if s in text.split("\n")[0]), ",")
    if text.startswith("customer_id  "):
        sep = "   "
    body = "\n".join(sep.join(str(v) for v in row) for row in ROWS)
    path = tmp_path / "log.txt"
    path.write_text(text.format(rows=body) + "\n")
    assert accepted_rows(path, engine, **options) == [
        ("a", "2024-01-05", 10.5),
        ("b", "2024-01-06", 3.0),
        ("a", "2024-01-09", 7.25),
    ]


def test_quoted_fields_and_windows_line_ends(tmp_path, engine):
    path = tmp_path / "log.csv"
    path.write_bytes(
        b'customer_id,timestamp,amount,note\r\n"a, inc.",2024-01-05,10,"x\r\ny"\r\n'
        b"b,2024-01-06,3,plain\r\n"
    )
    assert accepted_rows(path, engine) == [
        ("a, inc.", "2024-01-05", 10.0),
        ("b", "2024-01-06", 3.0),
    ]


def test_cdnow_files_read_as_published(engine):
    sample = read_transactions(datasets.cdnow_sample_path(), engine=engine)
    assert sample.columns == ("column1", "column2", "column3", "column4", "column5")
    assert sample.table.count().execute() == 6919
    master = read_transactions(datasets.cdnow_master_path(), engine=engine)
    assert master.columns == ("customer_id", "date", "number_of_cds", "dollar_value")
    assert master.table.count().execute() == 69659


def test_whitespace_rows_with_the_wrong_number_of_fields_are_malformed(tmp_path, engine):
    path = tmp_path / "log.txt"
    path.write_text("a 20240105 10\nb 20240106\n\nc 20240107 12\n")
    validated = validate_transactions(
        path, columns={"customer_id": "1", "timestamp": "2", "amount": "3"}, engine=engine
    )
    quarantined = validated.quarantine_frame()
    assert quarantined[["source_row", "reason"]].values.tolist() == [[2, "malformed_row"]]
    assert "expected 3 fields" in quarantined["message"][0]
    assert validated.report.accepted == 2


def test_parquet_file_folder_and_glob(tmp_path, engine):
    frame = pd.DataFrame(ROWS, columns=["customer_id", "timestamp", "amount"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    (tmp_path / "parts" / "2024").mkdir(parents=True)
    frame.iloc[:2].to_parquet(tmp_path / "parts" / "2024" / "a.parquet")
    frame.iloc[2:].to_parquet(tmp_path / "parts" / "b.parquet")
    frame.to_parquet(tmp_path / "all.parquet")
    expected = accepted_rows(tmp_path / "all.parquet", engine)
    assert sorted(accepted_rows(tmp_path / "parts", engine)) == sorted(expected)
    assert sorted(accepted_rows(str(tmp_path / "parts" / "**" / "*.parquet"), engine)) == sorted(
        expected
    )


def test_rows_of_several_files_are_traced_to_their_file(tmp_path, engine):
    good = pd.DataFrame({"customer_id": ["a"], "timestamp": ["2024-01-01"], "amount": [1.0]})
    bad = pd.DataFrame(
        {"customer_id": ["b", None], "timestamp": ["2024-01-01"] * 2, "amount": [1.0, 2.0]}
    )
    good.to_parquet(tmp_path / "p1.parquet")
    bad.to_parquet(tmp_path / "p2.parquet")
    quarantined = validate_transactions(tmp_path, engine=engine).quarantine_frame()
    assert quarantined[["source_file", "source_row", "reason"]].values.tolist() == [
        [str(tmp_path / "p2.parquet"), 2, "missing_customer_id"]
    ]


def test_data_frames_and_arrow_tables(engine):
    frame = pd.DataFrame(ROWS, columns=["customer_id", "timestamp", "amount"])
    expected = [("a", "2024-01-05", 10.5), ("b", "2024-01-06", 3.0), ("a", "2024-01-09", 7.25)]
    assert accepted_rows(frame, engine) == expected
    assert accepted_rows(pl.from_pandas(frame), engine) == expected
    assert accepted_rows(pa.Table.from_pandas(frame), engine) == expected


def test_a_pandas_column_mixing_numbers_and_text(engine):
    frame = pd.DataFrame(
        {"customer_id": ["a", "b"], "timestamp": ["2024-01-05", "2024-01-06"], "amount": [1.5, "x"]}
    )
    validated = validate_transactions(frame, engine=engine)
    assert validated.report.accepted == 1
    assert validated.report.quarantined == {"non_numeric_amount": 1}


def test_sql_tables_through_ibis(tmp_path, engine):
    db = tmp_path / "shop.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE orders (customer_id TEXT, timestamp TEXT, amount REAL)")
        con.executemany("INSERT INTO orders VALUES (?, ?, ?)", ROWS)
    sqlite_table = ibis.sqlite.connect(db).table("orders")
    expected = [("a", "2024-01-05", 10.5), ("b", "2024-01-06", 3.0), ("a", "2024-01-09", 7.25)]
    assert sorted(accepted_rows(sqlite_table, engine)) == sorted(expected)
    duck = ibis.duckdb.connect()
    duck.create_table(
        "orders", ibis.memtable(pd.DataFrame(ROWS, columns=["customer_id", "timestamp", "amount"]))
    )
    assert sorted(accepted_rows(duck.table("orders"), engine)) == sorted(expected)


def test_unreadable_sources_say_what_was_expected(tmp_path, engine):
    with pytest.raises(InputError, match="does not exist"):
        read_transactions(tmp_path / "missing.csv", engine=engine)
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(InputError, match=r"Cannot tell the format .* '\.xlsx'"):
        read_transactions(tmp_path / "data.xlsx", engine=engine)
    with pytest.raises(InputError, match="holds no Parquet files"):
        read_transactions(tmp_path, engine=engine)
    with pytest.raises(InputError, match="No files match"):
        read_transactions(str(tmp_path / "*.parquet"), engine=engine)
    with pytest.raises(InputError, match="expected a file path"):
        read_transactions(42, engine=engine)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="holds no rows"):
        read_transactions(empty, engine=engine)
    with pytest.raises(InputError, match="Unsupported encoding"):
        read_transactions(empty, csv_options=CsvOptions(encoding="cp1252"), engine=engine)
