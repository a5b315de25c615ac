"""Per-customer summaries (frequency, recency, T, monetary value), computed by the engine.

The summary follows the customer-base-analysis literature (Fader, Hardie & Lee 2005):

- transactions are grouped into purchase *occasions*: all of a customer's records in one
  occasion period (a day by default) form one occasion, whose value is their sum;
- ``frequency`` is the number of repeat occasions in the calibration period (occasions
  after the first);
- ``recency`` is the time from the first to the last occasion, ``T`` the time from the
  first occasion to the end of the calibration period, both measured between the starts
  of the occasion periods, in the summary's time unit;
- ``monetary_value`` is the mean value of the repeat occasions (0 without any).

Returns netted against a purchase lower the value of its occasion; an occasion whose
purchases were returned in full by the end of a period is no purchase in that period.
A return counts in the period in which it happened, so nothing from the holdout period
leaks into the calibration figures.

The work is two aggregations in the engine (transactions to occasions, occasions to
customers); Python receives per-customer rows only.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lifevalue.data.contract import ColumnMapping, CsvOptions
from lifevalue.data.dates import Moment, parse_moment
from lifevalue.data.engine import (
    Engine,
    Workspace,
    default_engine,
    min_by,
    sql_string,
)
from lifevalue.data.sources import SourceLike, TransactionSource
from lifevalue.data.validate import (
    DuplicatesPolicy,
    ReturnsPolicy,
    ValidatedTransactions,
    ValidationReport,
    validate_transactions,
)
from lifevalue.errors import InputError, LifevalueError
from lifevalue.units import METADATA_KEY, TimeUnit

logger = logging.getLogger(__name__)

#: The columns every summary starts with, in this order.
SUMMARY_COLUMNS: tuple[str, ...] = ("customer_id", "frequency", "recency", "T", "monetary_value")
#: Columns a summary has when it has a holdout period.
HOLDOUT_COLUMNS: tuple[str, ...] = (
    "frequency_holdout",
    "monetary_value_holdout",
    "revenue_holdout",
    "duration_holdout",
)
_SIDECAR_SUFFIX = ".meta.json"


class OccasionPeriod(StrEnum):
    """The period within which a customer's records form one purchase occasion."""

    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def ibis_unit(self) -> str:
        """The unit code of Ibis's ``truncate``."""
        return {"hour": "h", "day": "D", "week": "W", "month": "M"}[self.value]

    def floor(self, moment: _dt.datetime) -> _dt.datetime:
        """The start of the period holding ``moment`` (weeks start on Monday)."""
        stamp = pd.Timestamp(moment)
        if self is OccasionPeriod.HOUR:
            return stamp.floor("h").to_pydatetime()
        day = stamp.normalize()
        if self is OccasionPeriod.WEEK:
            day -= pd.Timedelta(days=day.weekday())
        elif self is OccasionPeriod.MONTH:
            day = day.replace(day=1)
        return day.to_pydatetime()

    @classmethod
    def parse(cls, value: OccasionPeriod | str) -> OccasionPeriod:
        """Read a period from its name."""
        try:
            return cls(str(getattr(value, "value", value)).strip().lower())
        except ValueError:
            raise InputError(
                f"Unknown occasion period {value!r}: expected one of hour, day, week, month."
            ) from None


@dataclass
class CustomerSummary:
    """One row per customer, held in the engine, with the metadata that gives it meaning.

    Attributes
    ----------
    table
        The summary as an Ibis table: :data:`SUMMARY_COLUMNS`, then history columns
        (``first_purchase_date``, ``last_purchase_date``, ``n_orders``, ``historic_revenue``,
        ``historic_margin`` where margins are known, ``total_quantity`` where quantities are,
        ``n_returns`` and ``return_value`` where the log has returns, and on request
        ``acquisition_channel`` and ``acquisition_campaign``, those of the first order), then
        :data:`HOLDOUT_COLUMNS` when the observation period runs past the calibration end.
    time_unit
        Unit of ``recency``, ``T`` and ``duration_holdout``.
    calibration_end
        The calibration end as given (a date covers its whole day).
    observation_end
        End of the holdout period, when there is one.
    occasion_period
        Records of a customer within one such period form one occasion.
    accounting
        Where every accepted row went (see :func:`summarize`).
    validation
        The validation report of the transactions, when the summary was built from them.
    """

    table: ibis.Table
    time_unit: TimeUnit
    calibration_end: str
    observation_end: str | None = None
    occasion_period: OccasionPeriod = OccasionPeriod.DAY
    accounting: Mapping[str, int] = field(default_factory=dict)
    validation: ValidationReport | None = None
    # The engine objects the table reads, kept alive as long as the summary is.
    _keep: Any = field(default=None, repr=False, compare=False)

    @property
    def has_holdout(self) -> bool:
        """Whether the summary has holdout columns."""
        return "frequency_holdout" in self.table.columns

    @property
    def columns(self) -> list[str]:
        """Column names, in order."""
        return list(self.table.columns)

    def __len__(self) -> int:
        return int(self.table.count().execute())

    def metadata(self) -> dict[str, Any]:
        """What travels with the table when it is written."""
        return {
            "time_unit": self.time_unit.value,
            "calibration_end": self.calibration_end,
            "observation_end": self.observation_end,
            "occasion_period": self.occasion_period.value,
            "accounting": dict(self.accounting),
            "validation": self.validation.as_dict() if self.validation else None,
        }

    def to_pyarrow(self) -> pa.Table:
        """The summary as an Arrow table, metadata in the schema under ``"lifevalue"``."""
        table = self.table.to_pyarrow()
        return table.replace_schema_metadata({METADATA_KEY: json.dumps(self.metadata())})

    def to_pandas(self) -> pd.DataFrame:
        """The summary as a pandas DataFrame; ``frame.attrs["lifevalue"]`` holds the metadata."""
        frame = self.table.to_pyarrow().to_pandas()
        frame.attrs[METADATA_KEY] = self.metadata()
        return frame

    def patterns(self, columns: tuple[str, ...] = ("frequency", "recency", "T")) -> pd.DataFrame:
        """Distinct combinations of ``columns`` with ``weights``, the number of customers each.

        Models fit on these: a million customers cost what their distinct patterns cost.
        """
        grouped = self.table.group_by(list(columns)).aggregate(weights=ibis._.count())
        return grouped.order_by(list(columns)).to_pyarrow().to_pandas()

    def write(self, path: str | Path) -> Path:
        """Write the summary as Parquet (``.parquet``) or CSV (anything else).

        Parquet keeps the metadata inside the file; a CSV gets it in a sidecar file
        ``<path>.meta.json`` beside it. The engine writes the file itself, in parallel, so
        the rows never pass through Python.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps(self.metadata())
        parquet = path.suffix.lower() in (".parquet", ".pq")
        backend = self.table._find_backend()
        options = (
            f"FORMAT parquet, KV_METADATA {{{METADATA_KEY}: {sql_string(meta)}}}"
            if parquet
            else "FORMAT csv, HEADER true"
        )
        backend.con.execute(
            f"COPY ({backend.compile(self.table)}) TO {sql_string(str(path))} ({options})"
        )
        if not parquet:
            Path(str(path) + _SIDECAR_SUFFIX).write_text(json.dumps(self.metadata(), indent=2))
        return path

    @classmethod
    def read(
        cls,
        path: str | Path,
        *,
        time_unit: TimeUnit | str | None = None,
        engine: Engine | None = None,
    ) -> CustomerSummary:
        """Read a summary written by :meth:`write` (or any table with the summary columns).

        Parameters
        ----------
        path
            A Parquet or CSV file.
        time_unit
            The unit of ``recency`` and ``T``; needed only when the file carries no metadata.
        engine
            Where to hold the table.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"Summary file {str(path)!r} does not exist.")
        engine = engine or default_engine()
        meta = _stored_metadata(path)
        if _is_parquet(path):
            table = engine.backend.read_parquet(path)
        else:
            table = engine.backend.read_csv(path)
        frame_meta = {"time_unit": time_unit} if time_unit is not None else {}
        return cls._from_table(table, {**meta, **frame_meta}, where=repr(str(path)))

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        time_unit: TimeUnit | str | None = None,
        engine: Engine | None = None,
    ) -> CustomerSummary:
        """Wrap a summary held in a pandas DataFrame (for example one read from elsewhere).

        The time unit comes from ``time_unit`` or from ``frame.attrs["lifevalue"]``.
        """
        ws = (engine or default_engine()).workspace()
        table = ws.register(pa.Table.from_pandas(frame, preserve_index=False), "lv_summary")
        meta = dict(frame.attrs.get(METADATA_KEY) or {})
        if time_unit is not None:
            meta["time_unit"] = time_unit
        summary = cls._from_table(table, meta, where="the data frame")
        summary._keep = ws
        return summary

    @classmethod
    def _from_table(
        cls, table: ibis.Table, meta: Mapping[str, Any], *, where: str
    ) -> CustomerSummary:
        missing = [c for c in SUMMARY_COLUMNS[1:4] if c not in table.columns]
        if missing:
            raise InputError(
                f"{where} is not a customer summary: it lacks {', '.join(missing)} (expected "
                f"columns {', '.join(SUMMARY_COLUMNS)}). It has: {', '.join(table.columns)}."
            )
        if not meta.get("time_unit"):
            raise InputError(
                f"{where} does not say in which time unit recency and T are measured: pass "
                "the unit (--unit weeks, or time_unit='weeks')."
            )
        return cls(
            table=table,
            time_unit=TimeUnit.parse(meta["time_unit"]),
            calibration_end=str(meta.get("calibration_end") or ""),
            observation_end=meta.get("observation_end"),
            occasion_period=OccasionPeriod.parse(meta.get("occasion_period") or "day"),
            accounting=dict(meta.get("accounting") or {}),
        )


def read_summary_frame(
    path: str | Path, *, time_unit: TimeUnit | str | None = None
) -> pd.DataFrame:
    """Read a per-customer table (CSV or Parquet) into pandas with its lifevalue metadata.

    Unlike :meth:`CustomerSummary.read` it does not demand the summary columns, so it also
    reads the inputs of discrete-time and contractual models (periods, tenure). The
    metadata (the time unit above all) lands in ``frame.attrs["lifevalue"]``; a given
    ``time_unit`` overrides the file's.

    Raises
    ------
    InputError
        If the file does not exist or cannot be read as a table.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Summary file {str(path)!r} does not exist.")
    try:
        frame = pd.read_parquet(path) if _is_parquet(path) else pd.read_csv(path)
    except (ValueError, OSError, pa.ArrowException) as exc:
        raise InputError(f"Cannot read {str(path)!r} as a table: {exc}") from exc
    meta = _stored_metadata(path)
    if time_unit is not None:
        meta["time_unit"] = TimeUnit.parse(time_unit).value
    frame.attrs[METADATA_KEY] = meta
    return frame


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _stored_metadata(path: Path) -> dict[str, Any]:
    """The metadata a summary file carries: Parquet key-value metadata or a CSV's sidecar."""
    if _is_parquet(path):
        raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY.encode())
        return json.loads(raw) if raw else {}
    sidecar = Path(str(path) + _SIDECAR_SUFFIX)
    return json.loads(sidecar.read_text()) if sidecar.is_file() else {}


def summarize(
    transactions: ValidatedTransactions | TransactionSource | SourceLike,
    *,
    calibration_end: object,
    observation_end: object = None,
    unit: TimeUnit | str = TimeUnit.WEEKS,
    occasion_period: OccasionPeriod | str = OccasionPeriod.DAY,
    acquisition: bool = False,
    category_margins: Mapping[str, float] | None = None,
    default_margin_rate: float | None = None,
    columns: ColumnMapping | Mapping[str, str] | None = None,
    date_format: str | None = None,
    returns: ReturnsPolicy | str = ReturnsPolicy.NET,
    duplicates: DuplicatesPolicy | str = DuplicatesPolicy.QUARANTINE,
    currency: str | None = None,
    strict: bool = False,
    csv_options: CsvOptions | None = None,
    engine: Engine | None = None,
) -> CustomerSummary:
    """Summarise transactions per customer, with a holdout period when there is one.

    Parameters
    ----------
    transactions
        Validated transactions, or any source (it is validated first with the options
        below; rows that break the rules are quarantined and counted, see
        :func:`~lifevalue.data.validate_transactions`).
    calibration_end
        Last moment of the calibration period; a date covers its whole day.
    observation_end
        End of the observation period. Rows after it are quarantined; the holdout period
        runs from the calibration end to it. Default: the last accepted transaction.
    unit
        Unit of ``recency``, ``T`` and ``duration_holdout``: days, weeks (default),
        months (a twelfth of 365.2425 days) or years (365.2425 days).
    occasion_period
        Records of one customer within one such period (hour, day (default), week, month)
        form one purchase occasion.
    category_margins, default_margin_rate
        Gross-margin rates per product category (``{"books": 0.35}``) for logs with a
        category but no cost or margin column: ``historic_margin`` is then each row's
        amount times its category's rate, and ``default_margin_rate`` covers categories
        not listed (without it an unlisted category is an error, so no revenue silently
        counts as margin-free).
    acquisition
        Add each customer's acquisition channel and campaign (those of their first order)
        when the log has them. Off by default: picking each occasion's first label makes
        the summary about a third slower on large logs.
    columns, date_format, returns, duplicates, currency, strict, csv_options, engine
        Passed to validation when ``transactions`` is not validated yet.

    Returns
    -------
    CustomerSummary
        One row per customer with a purchase occasion in the calibration period. Its
        ``accounting`` says where every accepted row went: ``rows_accepted`` =
        ``rows_in_summary`` + ``rows_of_excluded_customers``; customers first seen in the
        holdout period and customers whose calibration purchases were all returned are
        excluded and counted.

    Raises
    ------
    InputError
        The dates are inconsistent, or no customer bought in the calibration period.
    """
    cal = parse_moment(calibration_end, name="calibration end")
    obs = parse_moment(observation_end, name="observation end") if observation_end else None
    if obs is not None and obs.end < cal.end:
        raise InputError(
            f"The observation end {obs} is before the calibration end {cal}: the observation "
            "period must contain the calibration period."
        )
    if isinstance(transactions, ValidatedTransactions):
        validated = transactions
        if obs is not None and (
            validated.observation_end is None or validated.observation_end.end > obs.end
        ):
            raise InputError(
                f"These transactions were validated up to {validated.report.observation_end}, "
                f"later than the observation end {obs} asked for now; validate them with "
                "observation_end set to it so that later rows are quarantined and counted."
            )
        obs = obs or validated.observation_end
    else:
        validated = validate_transactions(
            transactions,
            columns=columns,
            date_format=date_format,
            observation_end=obs,
            returns=returns,
            duplicates=duplicates,
            currency=currency,
            strict=strict,
            csv_options=csv_options,
            engine=engine,
        )
    return _Summarizer(
        validated,
        cal,
        obs,
        TimeUnit.parse(unit),
        OccasionPeriod.parse(occasion_period),
        acquisition=acquisition,
        category_margins=_check_rates(category_margins, default_margin_rate),
        default_margin_rate=default_margin_rate,
    ).run()


class _Summarizer:
    def __init__(
        self,
        validated: ValidatedTransactions,
        cal: Moment,
        obs: Moment | None,
        unit: TimeUnit,
        period: OccasionPeriod,
        *,
        acquisition: bool,
        category_margins: Mapping[str, float] | None = None,
        default_margin_rate: float | None = None,
    ) -> None:
        self.validated = validated
        self.roles = set(validated.accepted.columns)
        self.category_margins = dict(category_margins or {})
        self.default_margin_rate = default_margin_rate
        if not acquisition:
            self.roles -= {"channel", "campaign"}
        self.cal = cal
        self.obs = obs
        self.unit = unit
        self.period = period
        self.cal_p = period.floor(cal.end)
        self._unit = period.ibis_unit

    def run(self) -> CustomerSummary:
        parent = self.validated._workspace
        ws = parent.child() if parent else Workspace(self.validated.accepted._find_backend())
        customers = self._customers(ws)
        totals = self._totals(customers)
        if totals["customers"] == 0:
            raise InputError(
                f"No customer of {self.validated.report.source} bought on or before the "
                f"calibration end {self.cal} ({totals['rows_accepted']:,} accepted rows): "
                "choose a later calibration end."
            )
        obs_p = self._holdout_end(totals)
        table = self._project(customers, obs_p)
        accounting = {k: totals[k] for k in _ACCOUNTING}
        obs_label = None
        if obs_p is not None:
            obs_label = str(self.obs) if self.obs is not None else obs_p.isoformat(" ")
        return CustomerSummary(
            table=table,
            time_unit=self.unit,
            calibration_end=str(self.cal),
            observation_end=obs_label,
            occasion_period=self.period,
            accounting=accounting,
            validation=self.validated.report,
            _keep=(ws, self.validated),
        )

    def _customers(self, ws: Workspace) -> ibis.Table:
        """One row per customer (calibration and holdout figures), before filtering.

        Two aggregations, each stored on its own and then joined per customer: the
        occasions (the largest hash table of the job, so it carries one sum per occasion
        and nothing else) and, straight from the rows, the money and count figures that
        need no occasions. One query doing all of it needs far more memory at once.
        """
        a = self.validated.accepted
        occasions = ws.stored(self._occasion_figures(a), "lv_occasion_figures")
        rows = ws.stored(self._row_figures(a), "lv_row_figures")
        joined = rows.left_join(occasions, rows.customer_id == occasions._lv_cust)
        customers = joined.drop("_lv_cust").mutate(
            n_cal=joined.n_cal.fill_null(0), n_hold=joined.n_hold.fill_null(0)
        )
        return ws.stored(self._orders(customers, self.validated.extra_order_lines), "lv_customers")

    def _occasion_figures(self, a: ibis.Table) -> ibis.Table:
        """Per customer: occasions in the calibration and holdout periods and their values."""
        cal_p = ibis.literal(self.cal_p)
        has_returns = self.validated.report.returns > 0
        netted = has_returns and self.validated.returns_policy is ReturnsPolicy.NET
        if has_returns and not netted:
            a = a.filter(~a.is_return)  # kept returns never form or change an occasion
        occ_key = a.occasion_at.truncate(self._unit)
        if netted:
            # Returns sit in the occasion of the purchase they undo and count in the period
            # in which they happened: the calibration value takes the returns made by its
            # end, the holdout value all of them. A negative row marks a return.
            in_cal = a.timestamp.truncate(self._unit) <= cal_p
            occ = a.group_by(_lv_cust=a.customer_id, _p=occ_key).aggregate(
                value_cal=_when(in_cal, a.amount).sum(),
                value_all=a.amount.sum(),
                low_cal=_when(in_cal, a.amount).min(),
                low_all=a.amount.min(),
            )
            value_cal, value_all = occ.value_cal.fill_null(0.0), occ.value_all
            in_cal_occ = occ._p <= cal_p
            # An occasion whose purchases were all returned by the end of a period is no
            # purchase in that period.
            cal_occ = in_cal_occ & ~((occ.low_cal < 0) & (value_cal <= 0))
            hold_occ = ~in_cal_occ & ~((occ.low_all < 0) & (value_all <= 0))
        else:
            occ = a.group_by(_lv_cust=a.customer_id, _p=occ_key).aggregate(value=a.amount.sum())
            value_cal = value_all = occ.value
            cal_occ = occ._p <= cal_p
            hold_occ = ~cal_occ
        return occ.group_by("_lv_cust").aggregate(
            n_cal=_when(cal_occ, 1).count(),
            first_p=_when(cal_occ, occ._p).min(),
            last_p=_when(cal_occ, occ._p).max(),
            value_sum=_when(cal_occ, value_cal).sum(),
            first_value=min_by(_when(cal_occ, value_cal), _when(cal_occ, occ._p)),
            n_hold=_when(hold_occ, 1).count(),
            value_hold=_when(hold_occ, value_all).sum(),
        )

    def _check_categories(self, a: ibis.Table) -> None:
        """Without a default rate, every category sold must have a margin rate."""
        if self.default_margin_rate is not None:
            return
        sold = a.select("category").distinct().to_pyarrow().column(0).to_pylist()
        unlisted = sorted(str(c) for c in sold if c not in self.category_margins)
        if unlisted:
            raise InputError(
                f"No margin rate for the categories {', '.join(map(repr, unlisted[:10]))}"
                f"{' and more' if len(unlisted) > 10 else ''}: add them to the category "
                "margins or give a default margin rate."
            )

    def _row_figures(self, a: ibis.Table) -> ibis.Table:
        """Per customer, from the rows: revenue, margin, units, orders, returns, extent."""
        rp = a.timestamp.truncate(self._unit)
        in_cal = rp <= ibis.literal(self.cal_p)
        buy = ~a.is_return
        aggs: dict[str, ibis.Value] = {
            "n_rows": a.count(),
            "last_any": rp.max(),
            "n_orders": _when(buy & in_cal, 1).count(),
            "historic_revenue": _when(in_cal, a.amount).sum(),
            "revenue_holdout": _when(~in_cal, a.amount).sum(),
        }
        if "margin" in self.roles:
            aggs["historic_margin"] = _when(in_cal, a.margin).sum()
        elif self.category_margins and "category" in self.roles:
            self._check_categories(a)
            rate = a.category.substitute(self.category_margins, else_=self.default_margin_rate)
            aggs["historic_margin"] = _when(in_cal, a.amount * rate).sum()
        if "quantity" in self.roles:
            aggs["total_quantity"] = _when(in_cal, a.quantity).sum()
        if self.validated.report.returns > 0:
            returned = a.is_return & in_cal
            aggs["n_returns"] = _when(returned, 1).count()
            aggs["return_value"] = -_when(returned, a.amount).sum()
        for role in ("channel", "campaign"):
            if role in self.roles:
                # The first order's label, even when that order was later returned. A
                # stand-in keeps an empty label empty (min_by skips nulls).
                first = min_by(
                    _when(buy & in_cal, a[role].fill_null(_NONE)), _when(buy & in_cal, a.timestamp)
                )
                aggs[f"acquisition_{role}"] = first.nullif(_NONE).strip().nullif("")
        return a.group_by("customer_id").aggregate(**aggs)

    def _orders(self, customers: ibis.Table, extra: ibis.Table | None) -> ibis.Table:
        """Orders are purchase rows less the second and later lines of multi-line orders."""
        if extra is None:
            return customers
        lines = extra.filter(extra.timestamp.truncate(self._unit) <= ibis.literal(self.cal_p))
        per_customer = lines.group_by(_lv_cust=lines.customer_id).aggregate(
            _lv_extra=ibis._.count()
        )
        joined = customers.left_join(per_customer, customers.customer_id == per_customer._lv_cust)
        return joined.mutate(n_orders=joined.n_orders - joined._lv_extra.fill_null(0)).drop(
            "_lv_cust", "_lv_extra"
        )

    def _totals(self, customers: ibis.Table) -> dict[str, Any]:
        c = customers
        kept = c.n_cal > 0
        row = (
            c.aggregate(
                customers=kept.sum(),
                customers_first_seen_in_holdout=(~kept & (c.n_hold > 0)).sum(),
                customers_without_purchase=(~kept & (c.n_hold == 0)).sum(),
                rows_accepted=c.n_rows.sum(),
                rows_in_summary=ibis.cases((kept, c.n_rows), else_=0).sum(),
                last_at=c.last_any.max(),
            )
            .execute()
            .iloc[0]
        )
        totals = {k: (int(v) if k != "last_at" and pd.notna(v) else v) for k, v in row.items()}
        for key in (
            "customers",
            "customers_first_seen_in_holdout",
            "customers_without_purchase",
            "rows_accepted",
            "rows_in_summary",
        ):
            totals[key] = int(totals[key] or 0)
        totals["rows_of_excluded_customers"] = totals["rows_accepted"] - totals["rows_in_summary"]
        expected = self.validated.report.accepted
        if totals["rows_accepted"] != expected:
            raise LifevalueError(
                f"Internal accounting error: validation accepted {expected:,} rows but the "
                f"summary saw {totals['rows_accepted']:,}. Please report this."
            )
        return totals

    def _holdout_end(self, totals: Mapping[str, Any]) -> _dt.datetime | None:
        if self.obs is not None:
            end = self.period.floor(self.obs.end)
        elif pd.notna(totals["last_at"]):
            end = self.period.floor(pd.Timestamp(totals["last_at"]).to_pydatetime())
        else:
            return None
        return end if end > self.cal_p else None

    def _project(self, c: ibis.Table, obs_p: _dt.datetime | None) -> ibis.Table:
        seconds = self.unit.seconds
        cal_p = ibis.literal(self.cal_p)
        c = c.filter(c.n_cal > 0)
        out: dict[str, ibis.Value] = {
            "customer_id": c.customer_id,
            "frequency": (c.n_cal - 1).cast("int64"),
            "recency": c.last_p.delta(c.first_p, unit="second") / seconds,
            "T": cal_p.delta(c.first_p, unit="second") / seconds,
            "monetary_value": ibis.cases(
                (c.n_cal > 1, (c.value_sum - c.first_value) / (c.n_cal - 1)), else_=0.0
            ),
            "first_purchase_date": c.first_p.date(),
            "last_purchase_date": c.last_p.date(),
            "n_orders": c.n_orders.cast("int64"),
            "historic_revenue": c.historic_revenue.fill_null(0.0),
        }
        if "historic_margin" in c.columns:
            out["historic_margin"] = c.historic_margin.fill_null(0.0)
        if "total_quantity" in c.columns:
            out["total_quantity"] = c.total_quantity.fill_null(0.0)
        if "n_returns" in c.columns:
            out["n_returns"] = c.n_returns.cast("int64")
            out["return_value"] = c.return_value
        for role in ("channel", "campaign"):
            if f"acquisition_{role}" in c.columns:
                out[f"acquisition_{role}"] = c[f"acquisition_{role}"]
        if obs_p is not None:
            out["frequency_holdout"] = c.n_hold.cast("int64")
            out["monetary_value_holdout"] = ibis.cases(
                (c.n_hold > 0, c.value_hold / c.n_hold), else_=0.0
            )
            out["revenue_holdout"] = c.revenue_holdout.fill_null(0.0)
            out["duration_holdout"] = ibis.literal(
                (pd.Timestamp(obs_p) - pd.Timestamp(self.cal_p)).total_seconds() / seconds
            )
        return c.select(**out)


_NONE = "\u2400"  # a stand-in for an empty label (min_by skips nulls)


def _check_rates(
    rates: Mapping[str, float] | None, default: float | None
) -> dict[str, float] | None:
    if rates is None:
        return None
    for name, rate in [*rates.items(), *([("default", default)] if default is not None else [])]:
        if not (isinstance(rate, int | float) and 0 <= rate <= 1):
            raise InputError(
                f"The margin rate of {name!r} must be a number between 0 and 1. Got {rate!r}."
            )
    return {str(k): float(v) for k, v in rates.items()}


def _when(condition: ibis.Value, value: Any) -> ibis.Value:
    return ibis.cases((condition, value), else_=None)


_ACCOUNTING = (
    "customers",
    "customers_first_seen_in_holdout",
    "customers_without_purchase",
    "rows_accepted",
    "rows_in_summary",
    "rows_of_excluded_customers",
)
