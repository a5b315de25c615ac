"""Validation: every row accepted or quarantined with a reason, counts that add up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifevalue.data import REASONS, validate_transactions
from lifevalue.errors import DataValidationError, InputError


def check_accounting(validated) -> None:
    """accepted + quarantined == rows read, counted from the tables themselves."""
    report = validated.report
    accepted = int(validated.accepted.count().execute())
    quarantined = validated.quarantine_frame()
    assert accepted == report.accepted
    assert len(quarantined) == report.quarantined_total
    assert accepted + len(quarantined) == report.rows_read
    assert quarantined["reason"].value_counts().to_dict() == dict(report.quarantined)
    assert quarantined["source_row"].is_unique


def reasons_by_row(validated) -> dict[int, str]:
    frame = validated.quarantine_frame()
    return dict(zip(frame["source_row"], frame["reason"], strict=True))


def test_every_row_rule_names_its_rows(write_text, engine):
    path = write_text(
        """
        customer_id,timestamp,amount,quantity
        c1,2024-01-05,10.50,1
        ,2024-01-06,3.00,1
        c2,,4.00,1
        c3,not a date,5.00,1
        c4,2024-01-07,,1
        c5,2024-01-07,ten,1
        c6,2024-01-07,nan,1
        c7,2024-01-07,inf,1
        c8,2024-01-07,5.00,many
        c9,2031-01-01,5.00,1
        c10,2024-01-08,7.25,2
        """
    )
    validated = validate_transactions(path, observation_end="2024-12-31", engine=engine)
    assert reasons_by_row(validated) == {
        2: "missing_customer_id",
        3: "missing_timestamp",
        4: "unparseable_timestamp",
        5: "missing_amount",
        6: "non_numeric_amount",
        7: "non_finite_amount",
        8: "non_finite_amount",
        9: "invalid_quantity",
        10: "after_observation_end",
    }
    assert validated.report.accepted == 2
    check_accounting(validated)
    messages = validated.quarantine_frame().set_index("source_row")["message"]
    assert "'ten' is not a number" in messages[6]
    assert "'not a date' does not read as iso" in messages[4]
    assert "after the observation end 2024-12-31" in messages[10]


def test_quarantine_file_has_row_reason_message_and_the_row(write_text, tmp_path, engine):
    path = write_text(
        """
        customer_id,timestamp,amount
        c1,2024-01-05,10
        c2,2024-01-05,abc
        """
    )
    validated = validate_transactions(path, engine=engine)
    out = validated.write_quarantine(tmp_path / "q" / "quarantine.csv")
    frame = pd.read_csv(out, dtype=str)
    assert list(frame.columns) == [
        "source_row",
        "reason",
        "message",
        "customer_id",
        "timestamp",
        "amount",
    ]
    assert frame.iloc[0].to_dict() == {
        "source_row": "2",
        "reason": "non_numeric_amount",
        "message": "amount 'abc' is not a number",
        "customer_id": "c2",
        "timestamp": "2024-01-05",
        "amount": "abc",
    }


def test_empty_quarantine_file_still_has_its_columns(write_text, tmp_path, engine):
    path = write_text("customer_id,timestamp,amount\nc1,2024-01-05,10\n")
    out = validate_transactions(path, engine=engine).write_quarantine(tmp_path / "q.csv")
    frame = pd.read_csv(out)
    assert frame.empty
    assert list(frame.columns)[:3] == ["source_row", "reason", "message"]


def test_source_columns_named_like_quarantine_columns_are_kept_apart(engine):
    frame = pd.DataFrame(
        {
            "customer_id": ["a", None],
            "timestamp": ["2024-01-01", "2024-01-02"],
            "amount": [1.0, 2.0],
            "reason": ["x", "y"],
            "message": ["m", "n"],
        }
    )
    quarantined = validate_transactions(frame, engine=engine).quarantine_frame()
    assert quarantined.loc[0, "reason"] == "missing_customer_id"
    assert quarantined.loc[0, "reason_in_source"] == "y"
    assert quarantined.loc[0, "message_in_source"] == "n"


def test_malformed_csv_lines_are_quarantined_with_their_row_numbers(write_text, engine):
    path = write_text(
        """
        customer_id,timestamp,amount
        c1,2024-01-05,10
        c2,2024-01-05
        c3,2024-01-06,11
        c4,2024-01-06,11,extra
        c5,2024-01-07,12
        """
    )
    validated = validate_transactions(path, engine=engine)
    assert reasons_by_row(validated) == {2: "malformed_row", 4: "malformed_row"}
    accepted = validated.accepted.execute().sort_values("_lv_pos")
    assert accepted["customer_id"].tolist() == ["c1", "c3", "c5"]
    assert accepted["_lv_pos"].tolist() == [1, 3, 5]
    check_accounting(validated)


def test_exact_repeats_are_quarantined_and_the_first_is_kept(write_text, engine):
    path = write_text(
        """
        customer_id,timestamp,amount
        a,2024-01-05,10
        b,2024-01-05,10
        a,2024-01-05,10
        a,2024-01-05,10
        a,2024-01-06,10
        """
    )
    validated = validate_transactions(path, engine=engine)
    assert reasons_by_row(validated) == {3: "duplicate_row", 4: "duplicate_row"}
    messages = validated.quarantine_frame()["message"].tolist()
    assert messages == ["exact repeat of row 1", "exact repeat of row 1"]
    check_accounting(validated)


def test_exact_repeats_can_be_kept_and_are_still_counted(write_text, engine):
    path = write_text(
        """
        customer_id,timestamp,amount
        a,2024-01-05,10
        a,2024-01-05,10
        """
    )
    validated = validate_transactions(path, duplicates="keep", engine=engine)
    assert validated.report.accepted == 2
    assert validated.report.duplicates_kept == 1
    assert any("repeat an earlier row" in note for note in validated.report.notes)


def test_order_ids_lines_repeats_and_conflicts(write_text, engine):
    path = write_text(
        """
        customer_id,timestamp,amount,order_id
        a,2024-01-05 10:00,10,o1
        a,2024-01-05 10:00,5,o1
        a,2024-01-05 10:00,5,o1
        b,2024-01-06,7,o2
        c,2024-01-06,7,o2
        d,2024-01-06,3,o3
        d,2024-01-08,3,o3
        e,2024-01-09,4,o4
        f,2024-01-09,4,
        f,2024-01-09,4,
        """
    )
    validated = validate_transactions(path, engine=engine)
    assert reasons_by_row(validated) == {
        3: "duplicate_row",
        4: "conflicting_order_id",
        5: "conflicting_order_id",
        6: "conflicting_order_id",
        7: "conflicting_order_id",
        10: "duplicate_row",
    }
    message = validated.quarantine_frame().set_index("source_row")["message"]
    assert "order_id 'o2' has rows for different customers ('b' and 'c')" in message[4]
    assert "purchases on different days (2024-01-06 to 2024-01-08)" in message[6]
    check_accounting(validated)
    # The second line of order o1 is an extra line of an order already counted.
    extra = validated.extra_order_lines.execute()
    assert extra["customer_id"].tolist() == ["a"]


def test_returns_net_against_their_order_or_same_day_purchase(write_text, engine):
    path = write_text(
        """
        customer_id,timestamp,amount,order_id
        a,2024-01-05,30,o1
        a,2024-01-20,-10,o1
        a,2024-02-01,20,
        a,2024-02-01,-5,
        a,2024-02-03,-5,
        b,2024-01-05,-8,o9
        """
    )
    validated = validate_transactions(path, engine=engine)
    assert reasons_by_row(validated) == {5: "unmatched_return", 6: "unmatched_return"}
    accepted = validated.accepted.execute().set_index("_lv_pos")
    # The return of order o1 joins the occasion of the purchase it undoes.
    assert accepted.loc[2, "occasion_at"] == pd.Timestamp("2024-01-05")
    assert accepted.loc[4, "occasion_at"] == pd.Timestamp("2024-02-01")
    assert validated.report.returns == 2
    check_accounting(validated)


def test_returns_can_be_kept_or_quarantined(write_text, engine):
    text = """
        customer_id,timestamp,amount
        a,2024-01-05,30
        a,2024-01-20,-10
        """
    kept = validate_transactions(write_text(text), returns="keep", engine=engine)
    assert kept.report.accepted == 2 and kept.report.returns == 1
    gone = validate_transactions(write_text(text), returns="quarantine", engine=engine)
    assert reasons_by_row(gone) == {2: "return_quarantined"}
    with pytest.raises(InputError, match="Unknown returns policy 'refund'"):
        validate_transactions(write_text(text), returns="refund", engine=engine)


def test_currencies_one_per_analysis(write_text, engine):
    path = write_text(
        """
        customer_id,timestamp,amount,currency
        a,2024-01-05,10,usd
        b,2024-01-05,10,USD
        c,2024-01-05,10,EUR
        d,2024-01-05,10,
        """
    )
    validated = validate_transactions(path, engine=engine)
    assert validated.report.currency == "USD"
    assert reasons_by_row(validated) == {3: "mixed_currency", 4: "missing_currency"}
    assert any("most common" in note for note in validated.report.notes)
    chosen = validate_transactions(path, currency="eur", engine=engine)
    assert reasons_by_row(chosen) == {
        1: "mixed_currency",
        2: "mixed_currency",
        4: "missing_currency",
    }


def test_an_empty_currency_column_is_ignored(engine):
    frame = pd.DataFrame(
        {"customer_id": ["a"], "timestamp": ["2024-01-01"], "amount": [1.0], "currency": [None]}
    )
    validated = validate_transactions(frame, engine=engine)
    assert validated.report.accepted == 1
    assert validated.report.currency is None


def test_float_customer_ids_from_pandas(engine):
    frame = pd.DataFrame(
        {
            "customer_id": [1.0, 2.5, np.nan, 4.0],
            "timestamp": pd.to_datetime(["2024-01-01"] * 4),
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )
    validated = validate_transactions(frame, engine=engine)
    assert reasons_by_row(validated) == {2: "invalid_customer_id", 3: "missing_customer_id"}
    assert sorted(validated.accepted.execute()["customer_id"]) == [1, 4]


def test_strict_lists_the_first_twenty_problems_and_counts_the_rest(engine):
    n = 30
    frame = pd.DataFrame(
        {
            "customer_id": ["x"] * 5 + [None] * 25,
            "timestamp": ["2024-01-01"] * 25 + ["nope"] * 5,
            "amount": [1.0] * n,
        }
    )
    frame.loc[0, "customer_id"] = "a"
    with pytest.raises(DataValidationError) as info:
        validate_transactions(frame, strict=True, engine=engine)
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0].startswith("28 of 30 rows of the DataFrame data frame break")
    assert lines[1].strip() == "row 3: duplicate_row: exact repeat of row 2"
    assert len([line for line in lines if line.startswith("  row ")]) == 20
    assert "and 8 more" in lines[-1]
    assert "missing_customer_id 25" in lines[-1]
    assert len(info.value.rows) == 20


def test_strict_passes_clean_data(write_text, engine):
    path = write_text("customer_id,timestamp,amount\na,2024-01-01,1\n")
    assert validate_transactions(path, strict=True, engine=engine).report.accepted == 1


def test_typed_parquet_columns(tmp_path, engine):
    frame = pd.DataFrame(
        {
            "customer_id": pd.array([1, 2, None, 4], dtype="Int64"),
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", None]),
            "amount": [1.0, float("inf"), 3.0, 4.0],
        }
    )
    frame.to_parquet(tmp_path / "t.parquet")
    validated = validate_transactions(tmp_path / "t.parquet", engine=engine)
    assert reasons_by_row(validated) == {
        2: "non_finite_amount",
        3: "missing_customer_id",
        4: "missing_timestamp",
    }
    check_accounting(validated)


def test_margin_comes_from_cost_or_a_margin_column(engine):
    base = {"customer_id": ["a"], "timestamp": ["2024-01-01"], "amount": [10.0]}
    with_cost = validate_transactions(pd.DataFrame({**base, "cost": [6.0]}), engine=engine)
    assert with_cost.accepted.execute()["margin"].tolist() == [4.0]
    with_margin = validate_transactions(pd.DataFrame({**base, "margin": [3.0]}), engine=engine)
    assert with_margin.accepted.execute()["margin"].tolist() == [3.0]


def test_reason_codes_are_documented():
    from lifevalue.data import validate as module

    for code in REASONS:
        assert f"``{code}``" in module.__doc__


messy_ids = st.sampled_from(["a", "b", "c", "", "  ", None])
messy_dates = st.sampled_from(["2024-01-01", "2024-01-02", "2024-03-04 10:00", "", "x", None])
messy_amounts = st.sampled_from(["1", "2.5", "-2.5", "0", "", "abc", "nan", "-inf", None])
messy_orders = st.sampled_from(["o1", "o2", "o3", "", None])


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.tuples(messy_ids, messy_dates, messy_amounts, messy_orders), max_size=25),
    returns=st.sampled_from(["net", "keep", "quarantine"]),
    duplicates=st.sampled_from(["quarantine", "keep"]),
)
def test_nothing_is_ever_lost(rows, returns, duplicates, engine):
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "order_id"])
    if frame.empty:
        return
    frame = frame.astype(object)
    validated = validate_transactions(
        frame,
        returns=returns,
        duplicates=duplicates,
        date_format="iso",
        observation_end="2025-01-01",
        engine=engine,
    )
    check_accounting(validated)
    assert set(validated.report.quarantined) <= set(REASONS)
    accepted = validated.accepted.execute()
    assert accepted["customer_id"].notna().all()
    assert np.isfinite(accepted["amount"]).all()
    if returns == "quarantine":
        assert (accepted["amount"] >= 0).all()
