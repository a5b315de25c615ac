"""Timestamps: detected or given formats, ambiguity reported and never guessed."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from lifevalue.data import validate_transactions
from lifevalue.data.dates import parse_moment
from lifevalue.errors import InputError


def frame(dates: list) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(len(dates))],
            "timestamp": dates,
            "amount": [1.0] * len(dates),
        }
    )


def read(dates: list, engine, **options) -> tuple[list, str | None]:
    validated = validate_transactions(
        frame(dates), observation_end="2030-01-01", engine=engine, **options
    )
    accepted = validated.accepted.execute().sort_values("_lv_pos")
    return accepted["timestamp"].dt.strftime(
        "%Y-%m-%d %H:%M"
    ).tolist(), validated.report.date_format


@pytest.mark.parametrize(
    ("dates", "fmt"),
    [
        (["2024-03-01", "2024-03-02 14:05:00", "2024-03-03T08:30:00.5"], "iso"),
        (["20240301", "20240302", "20240303"], "%Y%m%d"),
        (["2024/03/01", "2024/03/02 14:05", "2024/03/03"], "iso"),  # the engine reads these
        (["01 Mar 2024", "02 Mar 2024", "03 Mar 2024"], "%d %b %Y"),
        (["Mar 01, 2024", "Mar 02, 2024", "Mar 03, 2024"], "%b %d, %Y"),
    ],
)
def test_formats_are_detected(engine, dates, fmt):
    values, used = read(dates, engine)
    assert used == fmt
    assert [v[:10] for v in values] == ["2024-03-01", "2024-03-02", "2024-03-03"]


def test_day_first_is_read_when_a_value_proves_it(engine):
    values, used = read(["01/03/2024", "02/03/2024", "25/03/2024 10:15"], engine)
    assert used == "%d/%m/%Y"
    assert values == ["2024-03-01 00:00", "2024-03-02 00:00", "2024-03-25 10:15"]


def test_month_first_is_read_when_a_value_proves_it(engine):
    values, used = read(["03/01/2024", "03/02/2024", "12/25/2024"], engine)
    assert used == "%m/%d/%Y"
    assert values[2] == "2024-12-25 00:00"


def test_evidence_far_beyond_the_sample_still_decides(engine):
    dates = ["01/03/2024"] * 210_000 + ["13/03/2024"]
    _, used = read(dates, engine)
    assert used == "%d/%m/%Y"


def test_ambiguous_dates_are_reported_not_guessed(engine):
    with pytest.raises(InputError) as info:
        read(["01/03/2024", "02/03/2024", "11/12/2024"], engine)
    message = str(info.value)
    assert "ambiguous" in message
    assert "'%d/%m/%Y'" in message and "'%m/%d/%Y'" in message
    assert "--date-format" in message
    values, _ = read(["01/03/2024", "11/12/2024"], engine, date_format="%m/%d/%Y")
    assert values == ["2024-01-03 00:00", "2024-11-12 00:00"]


def test_values_that_do_not_fit_the_column_format_are_quarantined(engine):
    validated = validate_transactions(
        frame(["2024-03-01", "2024-03-02", "March the fifth"]), engine=engine
    )
    assert validated.report.quarantined == {"unparseable_timestamp": 1}


def test_unreadable_columns_and_formats(engine):
    with pytest.raises(InputError, match="no known date format fits"):
        read(["soon", "later"], engine)
    with pytest.raises(InputError, match="has no strptime directive"):
        read(["2024-01-01"], engine, date_format="YYYY-MM-DD")
    with pytest.raises(InputError, match="holds boolean values"):
        read([True, False], engine)


def test_typed_dates_and_integer_dates(engine):
    values, used = read([dt.date(2024, 3, 1), dt.date(2024, 3, 2)], engine)
    assert used is None and values == ["2024-03-01 00:00", "2024-03-02 00:00"]
    values, used = read([20240301, 20240302], engine)
    assert used == "%Y%m%d" and values[1] == "2024-03-02 00:00"
    aware = pd.to_datetime(["2024-03-01 10:00"]).tz_localize("Europe/Paris")
    values, _ = read(list(aware), engine)
    assert values == ["2024-03-01 09:00"]  # read as UTC


def test_user_moments():
    day = parse_moment("2024-06-30", name="calibration end")
    assert day.date_only and day.end == dt.datetime(2024, 6, 30, 23, 59, 59, 999999)
    moment = parse_moment("2024-06-30 12:00", name="calibration end")
    assert not moment.date_only and moment.end == dt.datetime(2024, 6, 30, 12)
    assert parse_moment(dt.date(2024, 6, 30), name="x").date_only
    with pytest.raises(InputError, match="The calibration end 'June' is not a date"):
        parse_moment("June", name="calibration end")
