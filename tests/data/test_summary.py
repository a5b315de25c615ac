"""Customer summaries: the published CDNOW summary, hand-worked cases, units, scale."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lifevalue.data import CustomerSummary, Engine, datasets, summarize, validate_transactions
from lifevalue.errors import InputError
from lifevalue.units import TimeUnit


@pytest.fixture(scope="module")
def cdnow_summary():
    engine = Engine(threads=2)
    return summarize(
        datasets.cdnow_sample_path(),
        columns=datasets.CDNOW_SAMPLE_COLUMNS,
        calibration_end=datasets.CDNOW_CALIBRATION_END,
        observation_end=datasets.CDNOW_OBSERVATION_END,
        duplicates=datasets.CDNOW_DUPLICATES,
        unit="weeks",
        engine=engine,
    )


def test_cdnow_sample_reproduces_the_published_summary(cdnow_summary):
    ours = cdnow_summary.to_pandas()
    ours["ID"] = ours["customer_id"].astype(int)
    assert len(ours) == 2357
    published = pd.read_csv(
        datasets.cdnow_sample_path().parent / "cdnow_customers_summary.csv"
    ).merge(ours, on="ID", suffixes=("_paper", ""), validate="one_to_one")
    assert len(published) == 2357
    assert (published["frequency_paper"] == published["frequency"]).all()
    assert np.abs(published["recency_paper"] - published["recency"]).max() <= 0.01
    assert np.abs(published["T_paper"] - published["T"]).max() <= 0.01


def test_cdnow_sample_reproduces_the_published_mean_repeat_spend(cdnow_summary):
    ours = cdnow_summary.to_pandas()
    ours["ID"] = ours["customer_id"].astype(int)
    published = datasets.load_cdnow_reference_summary().merge(
        ours, on="ID", suffixes=("_paper", ""), validate="one_to_one"
    )
    assert len(published) == 2357
    assert np.abs(published["monetary_value_paper"] - published["monetary_value"]).max() <= 0.01
    assert (published["frequency"] > 0).sum() == 946  # the repeat buyers of the Gamma-Gamma fit


def test_cdnow_summary_carries_its_metadata(cdnow_summary):
    assert cdnow_summary.time_unit is TimeUnit.WEEKS
    assert cdnow_summary.has_holdout
    frame = cdnow_summary.to_pandas()
    assert frame.attrs["lifevalue"]["time_unit"] == "weeks"
    assert (frame["duration_holdout"] == 39.0).all()
    assert cdnow_summary.accounting["rows_accepted"] == 6919
    assert cdnow_summary.accounting["rows_in_summary"] == 6919
    assert list(frame.columns[:5]) == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    # Holdout repeat purchases of the 2,357 customers over the 39 holdout weeks.
    assert frame["frequency_holdout"].sum() > 1500


WORKED = """
customer_id,timestamp,amount,order_id,cost,channel
a,2024-01-01 09:00,10,o1,4,email
a,2024-01-01 17:30,5,o2,2,search
a,2024-01-08,20,o3,8,search
a,2024-01-10,-20,o3,-8,search
a,2024-01-15,30,o4,12,search
a,2024-01-15,10,o4,4,search
a,2024-02-05,50,o5,20,search
a,2024-02-10,-10,o4,-4,search
b,2024-01-20,8,o6,3,
c,2024-02-02,9,o7,3,email
d,2024-01-05,12,o8,5,email
d,2024-01-06,-12,o8,-5,email
"""


def worked(write_text, engine, **options):
    return summarize(
        write_text(WORKED),
        calibration_end="2024-01-31",
        observation_end="2024-02-29",
        unit=options.pop("unit", "days"),
        acquisition=True,
        engine=engine,
        **options,
    )


def test_worked_example_with_netted_returns_lines_and_holdout(write_text, engine):
    summary = worked(write_text, engine)
    rows = summary.to_pandas().set_index("customer_id")
    a, b = rows.loc["a"], rows.loc["b"]
    # a: occasions Jan 1 (15) and Jan 15 (40); Jan 8 was returned in full.
    assert (a.frequency, a.recency, a["T"], a.monetary_value) == (1, 14.0, 30.0, 40.0)
    assert a.first_purchase_date == pd.Timestamp("2024-01-01").date()
    assert a.last_purchase_date == pd.Timestamp("2024-01-15").date()
    assert a.n_orders == 4  # o1, o2, o3, o4 (o4 has two lines)
    assert a.historic_revenue == 55.0
    assert a.historic_margin == 33.0
    assert (a.n_returns, a.return_value) == (1, 20.0)
    assert a.acquisition_channel == "email"
    # The February return of o4 lowers holdout revenue, never the calibration figures.
    assert (a.frequency_holdout, a.monetary_value_holdout, a.revenue_holdout) == (1, 50.0, 40.0)
    assert a.duration_holdout == 29.0
    assert (b.frequency, b.recency, b["T"], b.monetary_value, b.n_orders) == (0, 0.0, 11.0, 0.0, 1)
    assert pd.isna(b.acquisition_channel)
    assert summary.accounting == {
        "customers": 2,
        "customers_first_seen_in_holdout": 1,
        "customers_without_purchase": 1,
        "rows_accepted": 12,
        "rows_in_summary": 9,
        "rows_of_excluded_customers": 3,
    }


def test_kept_returns_never_change_occasions(write_text, engine):
    summary = worked(write_text, engine, returns="keep")
    rows = summary.to_pandas().set_index("customer_id")
    a, d = rows.loc["a"], rows.loc["d"]
    assert (a.frequency, a.recency, a.monetary_value) == (2, 14.0, 30.0)
    assert a.historic_revenue == 55.0
    assert (a.n_returns, a.return_value) == (1, 20.0)
    assert a.revenue_holdout == 40.0
    assert (d.frequency, d.historic_revenue, d.n_returns) == (0, 0.0, 1)
    assert summary.accounting["rows_in_summary"] == 11


@pytest.mark.parametrize(
    ("unit", "days"),
    [("days", 1.0), ("weeks", 7.0), ("months", 365.2425 / 12), ("years", 365.2425)],
)
def test_time_units_are_exact_durations(write_text, engine, unit, days):
    a = worked(write_text, engine, unit=unit).to_pandas().set_index("customer_id").loc["a"]
    assert a.recency == pytest.approx(14.0 / days)
    assert a["T"] == pytest.approx(30.0 / days)
    assert a.duration_holdout == pytest.approx(29.0 / days)


def test_occasion_periods(write_text, engine):
    by_hour = worked(write_text, engine, occasion_period="hour").to_pandas()
    a = by_hour.set_index("customer_id").loc["a"]
    assert a.frequency == 2  # 09:00 and 17:30 on Jan 1 are two occasions, then Jan 15
    by_month = worked(write_text, engine, occasion_period="month").to_pandas()
    a = by_month.set_index("customer_id").loc["a"]
    assert (a.frequency, a.recency, a.historic_revenue) == (0, 0.0, 55.0)
    with pytest.raises(InputError, match="Unknown occasion period 'fortnight'"):
        worked(write_text, engine, occasion_period="fortnight")


def test_summary_without_a_holdout(write_text, engine):
    summary = summarize(
        write_text(WORKED),
        calibration_end="2024-03-31",
        observation_end="2024-03-31",
        engine=engine,
    )
    assert not summary.has_holdout
    assert "frequency_holdout" not in summary.columns
    assert summary.accounting["customers"] == 3  # d returned everything it bought
    assert summary.accounting["customers_without_purchase"] == 1


def test_date_mistakes_are_reported(write_text, engine):
    path = write_text(WORKED)
    with pytest.raises(InputError, match="before the calibration end"):
        summarize(path, calibration_end="2024-01-31", observation_end="2024-01-01", engine=engine)
    with pytest.raises(InputError, match=r"No customer of .* bought on or before"):
        summarize(path, calibration_end="2023-01-01", engine=engine)
    with pytest.raises(InputError, match="is not a date"):
        summarize(path, calibration_end="31/31/2024", engine=engine)
    validated = validate_transactions(path, observation_end="2024-03-31", engine=engine)
    with pytest.raises(InputError, match="validate them with observation_end"):
        summarize(validated, calibration_end="2024-01-31", observation_end="2024-02-15")


def test_write_and_read_back_keep_the_metadata(write_text, tmp_path, engine):
    summary = worked(write_text, engine, unit="weeks")
    for name in ("s.parquet", "s.csv"):
        path = summary.write(tmp_path / name)
        again = CustomerSummary.read(path, engine=engine)
        assert again.time_unit is TimeUnit.WEEKS
        assert again.calibration_end == "2024-01-31"
        pd.testing.assert_frame_equal(
            again.to_pandas()[["frequency", "recency", "T", "monetary_value"]],
            summary.to_pandas()[["frequency", "recency", "T", "monetary_value"]],
            check_dtype=False,
        )
    (tmp_path / "s.csv.meta.json").unlink()
    with pytest.raises(InputError, match="which time unit"):
        CustomerSummary.read(tmp_path / "s.csv", engine=engine)
    assert CustomerSummary.read(tmp_path / "s.csv", time_unit="weeks").time_unit is TimeUnit.WEEKS


def test_patterns_count_customers(cdnow_summary):
    patterns = cdnow_summary.patterns()
    assert patterns["weights"].sum() == 2357
    assert not patterns.duplicated(["frequency", "recency", "T"]).any()
    assert len(patterns) < 2357


def _random_log(n_rows: int, n_customers: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    start = np.datetime64("2022-01-01T00:00:00")
    seconds = rng.integers(0, 2 * 365 * 86_400, n_rows).astype("timedelta64[s]")
    return pa.table(
        {
            "customer_id": rng.integers(0, n_customers, n_rows),
            "timestamp": start + seconds,
            "amount": np.round(rng.gamma(2.0, 20.0, n_rows), 2),
        }
    )


def test_matches_an_independent_pandas_summary(engine):
    log = _random_log(20_000, 3_000, seed=1)
    ours = (
        summarize(log, calibration_end="2023-06-30", observation_end="2023-12-31", engine=engine)
        .to_pandas()
        .set_index("customer_id")
        .sort_index()
    )
    frame = log.to_pandas()
    frame["day"] = frame["timestamp"].dt.floor("D")
    cal = frame[frame["day"] <= "2023-06-30"]
    occ = cal.groupby(["customer_id", "day"], as_index=False)["amount"].sum().sort_values("day")
    g = occ.groupby("customer_id")
    expected = pd.DataFrame(
        {
            "frequency": g.size() - 1,
            "recency": (g["day"].max() - g["day"].min()).dt.days / 7.0,
            "T": (pd.Timestamp("2023-06-30") - g["day"].min()).dt.days / 7.0,
            "monetary_value": ((g["amount"].sum() - g["amount"].first()) / (g.size() - 1)).fillna(
                0.0
            ),
        }
    ).sort_index()
    hold = frame[frame["day"] > "2023-06-30"].groupby("customer_id")["day"].nunique()
    expected["frequency_holdout"] = hold.reindex(expected.index, fill_value=0)
    pd.testing.assert_frame_equal(
        ours[expected.columns], expected, check_dtype=False, check_names=False
    )


def test_larger_than_memory_input_spills_to_disk(tmp_path):
    log = _random_log(4_000_000, 800_000, seed=2)
    path = tmp_path / "big.parquet"
    pq.write_table(log, path, row_group_size=100_000)
    meta = pq.ParquetFile(path).metadata
    assert sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) > 80 * 2**20
    spill = tmp_path / "spill"
    tight = Engine(memory_limit="250MB", threads=2, temp_directory=str(spill))
    spilled: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.02):
            files = [f for f in spill.glob("duckdb_temp*") if f.is_file()]
            spilled.append(sum(f.stat().st_size for f in files))

    watcher = threading.Thread(target=watch)
    watcher.start()
    args = dict(calibration_end="2023-06-30", observation_end="2023-12-31")
    try:
        small = summarize(path, engine=tight, **args).to_pandas()
    finally:
        done.set()
        watcher.join()
    assert max(spilled) > 100 * 2**20  # the work did not fit in memory, and went to disk
    roomy = summarize(path, engine=Engine(threads=2), **args).to_pandas()
    assert len(small) == len(roomy) > 750_000
    pd.testing.assert_frame_equal(
        small.sort_values("customer_id").reset_index(drop=True),
        roomy.sort_values("customer_id").reset_index(drop=True),
    )


def test_simulated_business_summary_holds_together(engine):
    from lifevalue.data.simulate import simulate_business

    log = simulate_business(n_customers=3_000, seed=5).transactions
    log.loc[log.index[:300:7], "order_id"] = None  # some rows without an order id
    summary = summarize(
        log, calibration_end="2024-06-30", observation_end="2024-12-31", engine=engine
    )
    frame = summary.to_pandas()
    assert (frame["frequency"] >= 0).all() and (frame["recency"] <= frame["T"]).all()
    assert (frame["n_orders"] >= frame["frequency"] + 1).all()
    assert (frame["monetary_value"] >= 0).all() and frame["n_returns"].sum() > 0
    accepted = summary.validation.accepted
    assert summary.accounting["rows_accepted"] == accepted
    excluded = summary.accounting["rows_of_excluded_customers"]
    assert summary.accounting["rows_in_summary"] + excluded == accepted


def test_margins_per_category(write_text, engine) -> None:
    log = write_text(
        """
        customer_id,timestamp,amount,category
        a,2024-01-05,100,books
        a,2024-02-05,50,music
        b,2024-01-07,10,toys
        """
    )
    rates = {"books": 0.4, "music": 0.2}
    summary = summarize(
        log, calibration_end="2024-03-01", category_margins=rates, default_margin_rate=0.1,
        engine=engine,
    ).to_pandas().set_index("customer_id")  # fmt: skip
    assert summary.loc["a", "historic_margin"] == pytest.approx(100 * 0.4 + 50 * 0.2)
    assert summary.loc["b", "historic_margin"] == pytest.approx(10 * 0.1)
    with pytest.raises(InputError, match="No margin rate for the categories 'toys'"):
        summarize(log, calibration_end="2024-03-01", category_margins=rates, engine=engine)
    with pytest.raises(InputError, match="margin rate of 'books' must be a number between 0"):
        summarize(log, calibration_end="2024-03-01", category_margins={"books": 4}, engine=engine)
