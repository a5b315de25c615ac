"""The Excel dashboard: one workbook a marketer can filter, sort and chart.

:func:`write_dashboard` writes a run (and, when given, the run history's trends and
backtests) to an ``.xlsx`` file with XlsxWriter. Its sheets, always all of them and in
this order, are :data:`SHEETS`; a sheet whose data the run lacks holds one line saying
why. Charts are native Excel charts that read the sheet's cells, header rows are frozen,
amounts carry the run's currency, shares are percentages and dates are Excel dates.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter
from xlsxwriter.exceptions import FileCreateError
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from lifevalue.errors import InputError
from lifevalue.report._common import (
    CURRENCY_SYMBOLS,
    currency,
    latest_per_as_of,
    table,
    tier_rows,
)
from lifevalue.store.run import StoredRun

__all__ = ["KPI_LABELS", "SHEETS", "write_dashboard"]

logger = logging.getLogger(__name__)

#: The dashboard's sheets, in order.
SHEETS: tuple[str, ...] = (
    "Overview",
    "Segments",
    "Acquisition",
    "Customers",
    "Timing",
    "Offers",
    "Forecast",
    "Trends",
    "Model",
)
#: Overview rows: the headline key and its label in column A.
KPI_LABELS: dict[str, str] = {
    "customers": "Customers",
    "active_customers": "Active customers (P(alive) >= 0.5)",
    "customer_equity": "Customer equity",
    "predicted_value": "Predicted value",
    "predicted_value_low": "Predicted value, low",
    "predicted_value_high": "Predicted value, high",
    "mean_predicted_clv": "Average predicted CLV",
    "top_20_percent_share": "Share of value in the top 20%",
    "ltv_cac": "LTV:CAC, all paid channels",
}

# Column names by the kind of number they hold (anything else: plain number).
_MONEY = {
    "historic_clv", "predicted_clv", "predicted_clv_low", "predicted_clv_high", "total_clv",
    "expected_spend", "historic_revenue", "monetary_value", "historic_margin", "return_value",
    "total_predicted_clv", "mean_predicted_clv", "marketing_spend", "cac", "mean_clv_12m",
    "mean_lifetime_clv", "max_allowable_cpa", "expected_revenue", "expected_revenue_low",
    "expected_revenue_high", "expected_margin", "expected_margin_low", "expected_margin_high",
    "customer_equity", "predicted_value", "mean_clv", "value_held", "mean_value", "difference",
    "difference_low", "difference_high", "revenue_per_customer", "margin_per_customer",
    "predicted_value_low", "predicted_value_high",
}  # fmt: skip
_PERCENT = {
    "p_alive", "churn_probability", "margin_share", "share", "share_if_even",
    "share_of_customers", "share_of_predicted_clv", "mean_p_alive", "top_share_of_customers",
    "share_of_value", "tracking_error", "abs_tracking_error",
}  # fmt: skip
_RATIO = {"ltv_cac", "payback_months", "overdue_ratio", "messages_per_week", "p_value", "gini",
          "p_alive_auc", "calibration_error", "mae", "rmse"}  # fmt: skip
_MAX_WIDTH = 48
#: Data rows a table may have: Excel's 1,048,576 rows less a title and a header row.
MAX_ROWS = 1_048_576 - 2


@dataclass
class _Formats:
    """The workbook's cell formats."""

    title: Format
    note: Format
    header: Format
    block: Format
    money: Format
    percent: Format
    ratio: Format
    integer: Format
    number: Format
    date: Format
    text: Format

    @classmethod
    def of(cls, book: Workbook, code: str | None) -> _Formats:
        symbol = CURRENCY_SYMBOLS.get(code.upper(), f"{code} ") if code else ""
        money = f'"{symbol}"#,##0.00;-"{symbol}"#,##0.00' if symbol else "#,##0.00"
        return cls(
            title=book.add_format({"bold": True, "font_size": 16}),
            note=book.add_format({"italic": True, "font_color": "#555555"}),
            header=book.add_format(
                {
                    "bold": True,
                    "bg_color": "#1f4e79",
                    "font_color": "#ffffff",
                    "text_wrap": True,
                    "valign": "top",
                    "border": 1,
                }
            ),
            block=book.add_format({"bold": True, "font_size": 12, "font_color": "#1f4e79"}),
            money=book.add_format({"num_format": money}),
            percent=book.add_format({"num_format": "0.0%"}),
            ratio=book.add_format({"num_format": "0.00"}),
            integer=book.add_format({"num_format": "#,##0"}),
            number=book.add_format({"num_format": "#,##0.00"}),
            date=book.add_format({"num_format": "yyyy-mm-dd"}),
            text=book.add_format({}),
        )

    def column(self, name: str, values: pd.Series) -> Format | None:
        """The format of a column, from its name and its values."""
        if _is_dates(values):
            return self.date
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            return None
        if name in _MONEY:
            return self.money
        if name in _PERCENT:
            return self.percent
        if name in _RATIO:
            return self.ratio
        if pd.api.types.is_integer_dtype(values):
            return self.integer
        return self.number


def _is_dates(values: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if values.dtype != object:
        return False
    first = values.dropna()
    return not first.empty and isinstance(first.iloc[0], dt.date)


def _cells(values: pd.Series) -> list[Any]:
    """A column as plain Python values XlsxWriter writes directly; missing values as None."""
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.to_datetime(values)
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_localize(None)
        # Excel keeps milliseconds at best; Python datetimes stop at microseconds.
        stamps = stamps.astype("datetime64[us]")
        return [None if v is pd.NaT else v.to_pydatetime() for v in stamps]
    if pd.api.types.is_bool_dtype(values) and not values.hasnans:
        return values.astype(bool).tolist()
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        # Excel has no NaN or infinity: those cells stay blank.
        return [v if np.isfinite(v) else None for v in numbers.tolist()]
    out = []
    for v in values.tolist():
        if v is None or (isinstance(v, float) and v != v) or v is pd.NA or v is pd.NaT:
            out.append(None)
        elif isinstance(v, pd.Timestamp):
            out.append(v.to_pydatetime())
        elif isinstance(v, str | dt.date | bool | int | float):
            out.append(v)
        else:
            out.append(str(v))
    return out


def _as_dates(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """``frame`` with its date columns among ``names`` (ISO text, any time zone) as dates."""
    changed = {}
    for name in names:
        if name in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame[name]):
            stamps = pd.to_datetime(frame[name], utc=True, errors="coerce", format="ISO8601")
            if stamps.notna().sum() == frame[name].notna().sum():
                changed[name] = stamps.dt.tz_localize(None)
    return frame.assign(**changed) if changed else frame


@dataclass(frozen=True)
class _Block:
    """Where a written table sits: header row, first and last data rows, first column."""

    header: int
    first: int
    last: int
    col: int
    columns: tuple[str, ...]

    def column(self, name: str) -> int:
        return self.col + self.columns.index(name)


class _Sheet:
    """A worksheet with the helpers every sheet uses."""

    def __init__(self, book: Workbook, name: str, formats: _Formats) -> None:
        self.book = book
        self.ws: Worksheet = book.add_worksheet(name)
        self.name = name
        self.f = formats
        self.widths: dict[int, int] = {}

    def table(self, frame: pd.DataFrame, row: int, col: int, title: str | None = None) -> _Block:
        """Write ``frame`` with a header row at ``row`` (its title above it, if given)."""
        ws, f = self.ws, self.f
        if len(frame) > MAX_ROWS:
            logger.warning(
                "Sheet %s: %s rows of %s written, Excel's limit.", self.name, MAX_ROWS, len(frame)
            )
            frame = frame.head(MAX_ROWS)
        if title:
            ws.write_string(row - 1, col, title, f.block)
        columns = tuple(str(c) for c in frame.columns)
        ws.write_row(row, col, list(columns), f.header)
        for j, name in enumerate(columns):
            values = frame.iloc[:, j]
            fmt = f.column(name, values)
            cells = _cells(values)
            if fmt is None:
                ws.write_column(row + 1, col + j, cells)
            else:
                ws.write_column(row + 1, col + j, cells, fmt)
            self._width(col + j, name, values, fmt)
        return _Block(row, row + 1, row + max(1, len(frame)), col, columns)

    def _width(self, col: int, name: str, values: pd.Series, fmt: Format | None) -> None:
        if fmt is None and len(values):
            sample = values.head(200).astype(str)
            longest = int(sample.str.len().max())
        elif fmt is self.f.date:
            longest = 10
        else:
            longest = 12
        width = min(_MAX_WIDTH, max(len(name) // 2 + 2, longest + 2, 8))
        if width > self.widths.get(col, 0):
            self.widths[col] = width
            self.ws.set_column(col, col, width)

    def set_width(self, col: int, width: int) -> None:
        """Fix a column's width (later tables only widen it)."""
        self.widths[col] = width
        self.ws.set_column(col, col, width)

    def note(self, text: str, row: int = 0) -> None:
        self.ws.write_string(row, 0, text, self.f.note)

    def ref(self, block: _Block, name: str) -> list[Any]:
        """A chart reference to the data cells of a column."""
        c = block.column(name)
        return [self.name, block.first, c, block.last, c]

    def chart(self, kind: str, title: str) -> Any:
        """A native chart of type ``kind`` (column, bar, line) in the house style."""
        chart = self.book.add_chart({"type": kind})
        chart.set_title({"name": title, "name_font": {"size": 12}})
        chart.set_legend({"position": "bottom"})
        return chart


def write_dashboard(
    run: StoredRun,
    path: str | Path,
    *,
    trends: pd.DataFrame | None = None,
    backtests: pd.DataFrame | None = None,
) -> Path:
    """Write the run's Excel dashboard.

    Parameters
    ----------
    run
        The stored run (:class:`~lifevalue.store.run.StoredRun`).
    path
        The ``.xlsx`` file to write (its folder is created if needed; an existing file is
        replaced).
    trends
        The run history's trends table (:meth:`RunStore.trends`), for the Trends sheet.
    backtests
        The latest backtests (:meth:`RunStore.backtests`), for the Model sheet.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {
        # Customer ids and offer texts are data: never formulas, links or numbers.
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
        "remove_timezone": True,
        "default_date_format": "yyyy-mm-dd",
    }
    book = xlsxwriter.Workbook(str(path), options)
    formats = _Formats.of(book, currency(run))
    sheets = {name: _Sheet(book, name, formats) for name in SHEETS}
    try:
        _overview(sheets["Overview"], run)
        _segments(sheets["Segments"], run)
        _acquisition(sheets["Acquisition"], run)
        _customers(sheets["Customers"], run)
        _timing(sheets["Timing"], run)
        _offers(sheets["Offers"], run)
        _forecast(sheets["Forecast"], run)
        _trends(sheets["Trends"], trends)
        _model(sheets["Model"], run, backtests)
    finally:
        try:
            book.close()
        except FileCreateError as exc:
            raise InputError(f"Cannot write the dashboard to {path}: {exc}") from exc
    logger.info("Dashboard of run %s written to %s", run.run_id, path)
    return path


# ------------------------------------------------------------------------------ sheets


def _overview(sheet: _Sheet, run: StoredRun) -> None:
    ws, f = sheet.ws, sheet.f
    head = run.headline
    months = run.settings.get("horizon_months", 12)
    ws.write_string(0, 0, "Customer lifetime value", f.title)
    ws.write_string(
        1,
        0,
        f"Run {run.run_id}, customers scored as of {run.as_of} with the "
        f"{head.get('transaction_model', run.settings.get('transaction_model', ''))} model; "
        f"values are net profit over the next {months:g} months"
        + (f", in {currency(run)}" if currency(run) else "")
        + ".",
        f.note,
    )
    explain = {
        "customers": "Customers with an accepted purchase by the scoring date",
        "active_customers": "Customers probably still buying",
        "customer_equity": f"Profit so far plus the predicted profit of the next {months:g} months",
        "predicted_value": f"Predicted profit of the next {months:g} months, all customers",
        "predicted_value_low": "Customers' low bounds summed",
        "predicted_value_high": "Customers' high bounds summed",
        "mean_predicted_clv": f"Predicted profit per customer, next {months:g} months",
        "top_20_percent_share": "Share of the predicted value held by the top 20% of customers",
        "ltv_cac": "Lifetime value of the customers paid channels bought, over all marketing spend",
    }
    kind = {
        "customers": f.integer,
        "active_customers": f.integer,
        "top_20_percent_share": f.percent,
        "ltv_cac": f.ratio,
    }
    ws.write_row(3, 0, ["Key figure", "Value", "What it means"], f.header)
    row = 4
    for key, label in KPI_LABELS.items():
        value = head.get(key)
        ws.write_string(row, 0, label)
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            ws.write_blank(row, 1, None, kind.get(key, f.money))
        else:
            ws.write_number(row, 1, float(value), kind.get(key, f.money))
        ws.write_string(row, 2, explain[key])
        row += 1
    acquisition = table(run, "acquisition")
    if acquisition is not None:
        for r in acquisition.itertuples(index=False):
            value = r.ltv_cac
            ws.write_string(row, 0, f"LTV:CAC, {r.acquisition_channel}")
            if pd.notna(value) and np.isfinite(value):
                ws.write_number(row, 1, float(value), f.ratio)
            else:
                ws.write_blank(row, 1, None, f.ratio)
            ws.write_string(row, 2, str(r.rule))
            row += 1
    else:
        ws.write_string(row, 0, "LTV:CAC")
        ws.write_string(row, 2, "No marketing-spend table was given")
        row += 1
    for col, width in enumerate((36, 16, 70)):
        sheet.set_width(col, width)
    tiers = tier_rows(run)
    if tiers is None:
        return
    start = row + 2
    columns = ["customers", "share_of_customers", "total_predicted_clv", "share_of_predicted_clv"]
    frame = tiers[["group", *columns]].rename(columns={"group": "value_tier"})
    block = sheet.table(frame, start, 0, "Value tiers")
    chart = sheet.chart("column", f"Predicted value by tier, next {months:g} months")
    chart.add_series(
        {
            "name": "predicted value",
            "categories": sheet.ref(block, "value_tier"),
            "values": sheet.ref(block, "total_predicted_clv"),
            "fill": {"color": "#1f4e79"},
            "data_labels": {"value": True, "num_format": "#,##0"},
        }
    )
    chart.set_legend({"none": True})
    ws.insert_chart(block.last + 2, 0, chart, {"x_scale": 1.3})


def _segments(sheet: _Sheet, run: StoredRun) -> None:
    segments = table(run, "segments")
    if segments is None:
        sheet.note("The run has no segments table.")
        return
    first = ["attribute", "group"]
    frame = segments[first + [c for c in segments.columns if c not in first]]
    block = sheet.table(frame, 1, 0, "Customers and future value by group")
    sheet.ws.freeze_panes(2, 0)
    sheet.ws.autofilter(block.header, block.col, block.last, block.col + len(block.columns) - 1)
    rows = np.flatnonzero(frame["attribute"].to_numpy() == "segment")
    if len(rows):
        # The segment rows are one contiguous run of the table.
        part = _Block(block.header, block.first + rows[0], block.first + rows[-1], 0, block.columns)
        chart = sheet.chart("bar", "Share of future value by segment")
        chart.add_series(
            {
                "name": "share of predicted value",
                "categories": sheet.ref(part, "group"),
                "values": sheet.ref(part, "share_of_predicted_clv"),
                "fill": {"color": "#1f4e79"},
            }
        )
        chart.add_series(
            {
                "name": "share of customers",
                "categories": sheet.ref(part, "group"),
                "values": sheet.ref(part, "share_of_customers"),
                "fill": {"color": "#bfbfbf"},
            }
        )
        chart.set_x_axis({"num_format": "0%"})
        chart.set_y_axis({"reverse": True})
        sheet.ws.insert_chart(1, len(block.columns) + 1, chart, {"x_scale": 1.2, "y_scale": 1.4})
    drivers = table(run, "drivers")
    if drivers is not None:
        sheet.table(drivers, block.last + 4, 0, "Drivers of value: how each group differs")


def _acquisition(sheet: _Sheet, run: StoredRun) -> None:
    channels = table(run, "acquisition")
    if channels is None:
        sheet.note(
            "No marketing-spend table was given, so the run has no acquisition economics "
            "(set spend in the [value] section of lifevalue.toml)."
        )
        return
    block = sheet.table(channels, 1, 0, "Acquisition economics by channel")
    sheet.ws.freeze_panes(2, 1)
    charts_row = block.last + 3
    chart = sheet.chart("bar", "LTV:CAC by channel")
    chart.add_series(
        {
            "name": "LTV:CAC",
            "categories": sheet.ref(block, "acquisition_channel"),
            "values": sheet.ref(block, "ltv_cac"),
            "fill": {"color": "#2e7d32"},
            "data_labels": {"value": True, "num_format": "0.0"},
        }
    )
    chart.set_legend({"none": True})
    sheet.ws.insert_chart(charts_row, 0, chart, {"x_scale": 1.2})
    chart = sheet.chart("column", "Cost to acquire vs lifetime value per customer")
    for name, label, colour in (
        ("cac", "CAC", "#c62828"),
        ("mean_lifetime_clv", "lifetime value", "#1f4e79"),
    ):
        chart.add_series(
            {
                "name": label,
                "categories": sheet.ref(block, "acquisition_channel"),
                "values": sheet.ref(block, name),
                "fill": {"color": colour},
            }
        )
    sheet.ws.insert_chart(charts_row + 17, 0, chart, {"x_scale": 1.2})
    campaigns = table(run, "acquisition_campaigns")
    if campaigns is not None:
        sheet.table(campaigns, charts_row + 35, 0, "Acquisition economics by campaign")


def _customers(sheet: _Sheet, run: StoredRun) -> None:
    scores = run.scores
    title = f"Every customer's scores ({len(scores):,} customers)"
    if len(scores) > MAX_ROWS:
        title = (
            f"The {MAX_ROWS:,} most valuable of {len(scores):,} customers (an Excel sheet "
            "holds no more)"
        )
        scores = scores.sort_values("predicted_clv", ascending=False, kind="stable")
    sheet.ws.write_string(0, 0, title, sheet.f.block)
    block = sheet.table(scores, 1, 0)
    ws = sheet.ws
    ws.freeze_panes(2, 1)
    ws.autofilter(block.header, 0, block.last, len(block.columns) - 1)
    if scores.empty:
        return
    if "predicted_clv" in block.columns:
        c = block.column("predicted_clv")
        ws.conditional_format(
            block.first, c, block.last, c, {"type": "data_bar", "bar_color": "#5b9bd5"}
        )
    if "p_alive" in block.columns:
        c = block.column("p_alive")
        ws.conditional_format(
            block.first,
            c,
            block.last,
            c,
            {
                "type": "3_color_scale",
                "min_type": "num",
                "min_value": 0,
                "mid_type": "num",
                "mid_value": 0.5,
                "max_type": "num",
                "max_value": 1,
                "min_color": "#f8696b",
                "mid_color": "#ffeb84",
                "max_color": "#63be7b",
            },
        )


def _timing(sheet: _Sheet, run: StoredRun) -> None:
    col, wrote = 0, False
    for name, title in (
        ("peak_periods", "When customers buy most"),
        ("churn_triggers", "Customers at risk, and why"),
        ("contact_plan", "How often to contact each customer"),
    ):
        frame = table(run, name)
        if frame is None:
            continue
        sheet.table(frame, 1, col, title)
        col += frame.shape[1] + 1
        wrote = True
    if wrote:
        sheet.ws.freeze_panes(2, 0)
    else:
        sheet.note("The run has no timing tables (peak periods, churn triggers, contact plan).")


def _offers(sheet: _Sheet, run: StoredRun) -> None:
    offers = table(run, "offers")
    granted = None if offers is None else offers.dropna(subset=["offer"])
    if granted is None or granted.empty:
        policy = run.settings.get("policy", "default")
        sheet.note(f"No customer qualified for an offer under the '{policy}' offer policy.")
        return
    counts = (
        granted.groupby("offer", sort=False)
        .agg(action=("action", "first"), customers=("customer_id", "size"))
        .reset_index()
        .sort_values("customers", ascending=False)
    )
    summary = sheet.table(counts, 1, 0, "Offers granted")
    chart = sheet.chart("bar", "Customers per offer")
    chart.add_series(
        {
            "name": "customers",
            "categories": sheet.ref(summary, "offer"),
            "values": sheet.ref(summary, "customers"),
            "fill": {"color": "#1f4e79"},
        }
    )
    chart.set_legend({"none": True})
    chart.set_y_axis({"reverse": True})
    sheet.ws.insert_chart(summary.last + 2, 0, chart)
    detail = sheet.table(granted, 1, counts.shape[1] + 1, "Each customer's offers")
    sheet.ws.freeze_panes(2, 0)
    sheet.ws.autofilter(
        detail.header, detail.col, detail.last, detail.col + len(detail.columns) - 1
    )


def _forecast(sheet: _Sheet, run: StoredRun) -> None:
    forecast = table(run, "forecast")
    if forecast is None:
        sheet.note("The run has no forecast table.")
        return
    block = sheet.table(forecast, 1, 0, "What the existing customers should bring, month by month")
    sheet.ws.freeze_panes(2, 0)
    for i, (what, title) in enumerate(
        (("expected_revenue", "Revenue per month"), ("expected_orders", "Orders per month"))
    ):
        chart = sheet.chart("line", title)
        for suffix, label, style in (
            ("_low", "low", {"color": "#9e9e9e", "dash_type": "dash"}),
            ("", "expected", {"color": "#1f4e79", "width": 2.25}),
            ("_high", "high", {"color": "#9e9e9e", "dash_type": "dash"}),
        ):
            chart.add_series(
                {
                    "name": label,
                    "categories": sheet.ref(block, "period_start"),
                    "values": sheet.ref(block, what + suffix),
                    "line": style,
                }
            )
        chart.set_x_axis({"date_axis": True, "num_format": "mmm yyyy"})
        sheet.ws.insert_chart(block.last + 3 + 17 * i, 0, chart, {"x_scale": 1.4})


def _trends(sheet: _Sheet, trends: pd.DataFrame | None) -> None:
    if trends is None or trends.empty:
        sheet.note(
            "No run history was given: the trends start once runs are kept in a run store "
            "(lifevalue report RUN --store URL)."
        )
        return
    whole = _as_dates(latest_per_as_of(trends), ("created_at",)).drop(
        columns=["dimension", "group"]
    )
    block = sheet.table(whole, 1, 0, "The whole customer base, run by run")
    sheet.ws.freeze_panes(2, 0)
    chart = sheet.chart("line", "Customer equity over runs")
    chart.add_series(
        {
            "name": "customer equity",
            "categories": sheet.ref(block, "as_of"),
            "values": sheet.ref(block, "customer_equity"),
            "line": {"color": "#1f4e79", "width": 2.25},
            "marker": {"type": "circle"},
        }
    )
    chart.set_x_axis({"date_axis": True, "num_format": "yyyy-mm-dd"})
    chart.set_legend({"none": True})
    sheet.ws.insert_chart(block.last + 2, 0, chart, {"x_scale": 1.3})
    order = [c for c in ("dimension", "group", "as_of") if c in trends.columns]
    detail = _as_dates(trends.sort_values(order, kind="stable"), ("as_of", "created_at"))
    block = sheet.table(detail, 1, whole.shape[1] + 1, "Every group, run by run")
    sheet.ws.autofilter(block.header, block.col, block.last, block.col + len(block.columns) - 1)


def _model(sheet: _Sheet, run: StoredRun, backtests: pd.DataFrame | None) -> None:
    fits, params = [], []
    for role in run.models:
        model = run.model(role)
        if model is None:
            continue
        fits.append(
            {
                "role": role,
                "model": model.model_name,
                "log_likelihood": model.log_likelihood_,
                "aic": model.aic_,
                "bic": model.bic_,
                "n_customers": int(model.n_customers_),
                "time_unit": model.time_unit_.value,
            }
        )
        params.append(model.summary().reset_index().assign(role=role, model=model.model_name))
    col, below = 0, 2
    if fits:
        frame = pd.DataFrame(fits)
        sheet.table(frame, 1, col, "Fitted models")
        col += frame.shape[1] + 1
        estimates = pd.concat(params, ignore_index=True)
        first = ["role", "model"]
        estimates = estimates[first + [c for c in estimates.columns if c not in first]]
        block = sheet.table(estimates, 1, col, "Parameters (95% intervals)")
        col += estimates.shape[1] + 1
        below = block.last + 3
    comparison = table(run, "model_comparison")
    if comparison is not None:
        sheet.table(comparison, 1, col, "Models compared on the held-back weeks")
        col += comparison.shape[1] + 1
    sheet.ws.freeze_panes(2, 0)
    if backtests is None or backtests.empty:
        sheet.ws.write_string(below, 0, "No backtest was given.", sheet.f.note)
        return
    ordered = _as_dates(backtests, ("cutoff", "holdout_end", "as_of", "created_at"))
    ordered = ordered.sort_values(["model", "cutoff"], kind="stable")
    block = sheet.table(ordered, 1, col, "Backtests: each model refitted at past cutoffs")
    chart = sheet.chart("line", "Backtest error per customer (MAE) by cutoff")
    models = ordered["model"].astype(str).to_numpy()
    for model in pd.unique(models):
        rows = np.flatnonzero(models == model)
        # Rows are sorted by model: each model's backtests are one contiguous run.
        part = _Block(
            block.header, block.first + rows[0], block.first + rows[-1], col, block.columns
        )
        chart.add_series(
            {
                "name": model,
                "categories": sheet.ref(part, "cutoff"),
                "values": sheet.ref(part, "mae"),
                "marker": {"type": "circle"},
            }
        )
    chart.set_x_axis({"date_axis": True, "num_format": "yyyy-mm-dd"})
    sheet.ws.insert_chart(below, 0, chart, {"x_scale": 1.3})
