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
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from lifevalue.data.contract import ColumnMapping, CsvOptions
from lifevalue.data.dates import Moment, parse_moment
from lifevalue.data.engine import Engine, default_engine, min_by
from lifevalue.data.sources import SourceLike, TransactionSource
from lifevalue.data.validate import (
    DuplicatesPolicy,
    ReturnsPolicy,
    ValidatedTransactions,
    ValidationReport,
    validate_transactions,
)
from lifevalue.errors import InputError, LifevalueError
from lifevalue.units import TimeUnit

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
METADATA_KEY = "lifevalue"
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
        ``n_returns`` and ``return_value`` where the log has returns, ``acquisition_channel``
        and ``acquisition_campaign`` (the first order's) where given), then
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
        ``<path>.meta.json`` beside it. Rows stream from the engine in batches.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps(self.metadata())
        parquet = path.suffix.lower() in (".parquet", ".pq")
        schema = self.table.schema().to_pyarrow().with_metadata({METADATA_KEY: meta})
        writer: Any = pq.ParquetWriter(path, schema) if parquet else pacsv.CSVWriter(path, schema)
        try:
            for batch in self.table.to_pyarrow_batches():
                writer.write_table(pa.Table.from_batches([batch]).cast(schema))
        finally:
            writer.close()
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
        meta: dict[str, Any] = {}
        if path.suffix.lower() in (".parquet", ".pq"):
            raw = (pq.read_schema(path).metadata or {}).get(METADATA_KEY.encode())
            meta = json.loads(raw) if raw else {}
            table = engine.backend.read_parquet(path)
        else:
            sidecar = Path(str(path) + _SIDECAR_SUFFIX)
            meta = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
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
        engine = engine or default_engine()
        name = engine.temp_name("lv_summary")
        engine.raw.register(name, pa.Table.from_pandas(frame, preserve_index=False))
        meta = dict(frame.attrs.get(METADATA_KEY) or {})
        if time_unit is not None:
            meta["time_unit"] = time_unit
        return cls._from_table(engine.backend.table(name), meta, where="the data frame")

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


def summarize(
    transactions: ValidatedTransactions | TransactionSource | SourceLike,
    *,
    calibration_end: object,
    observation_end: object = None,
    unit: TimeUnit | str = TimeUnit.WEEKS,
    occasion_period: OccasionPeriod | str = OccasionPeriod.DAY,
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
        validated, cal, obs, TimeUnit.parse(unit), OccasionPeriod.parse(occasion_period)
    ).run()


class _Summarizer:
    def __init__(
        self,
        validated: ValidatedTransactions,
        cal: Moment,
        obs: Moment | None,
        unit: TimeUnit,
        period: OccasionPeriod,
    ) -> None:
        self.validated = validated
        self.roles = set(validated.accepted.columns)
        self.cal = cal
        self.obs = obs
        self.unit = unit
        self.period = period
        self.cal_p = period.floor(cal.end)
        self._unit = period.ibis_unit

    def run(self) -> CustomerSummary:
        customers = self._customers().cache()
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
        )

    def _customers(self) -> ibis.Table:
        """One row per customer (calibration and holdout figures), before filtering."""
        a = self.validated.accepted
        has_returns = self.validated.report.returns > 0
        purchases = a.filter(~a.is_return) if has_returns else a
        returns = a.filter(a.is_return) if has_returns else None
        occ = self._purchase_occasions(purchases)
        netted = returns is not None and self.validated.returns_policy is ReturnsPolicy.NET
        if netted:
            occ = self._net(occ, returns)
        customers = self._per_customer(occ, netted=netted)
        if returns is not None and not netted:
            customers = self._with_kept_returns(customers, returns)
        return self._orders(customers)

    def _purchase_occasions(self, p: ibis.Table) -> ibis.Table:
        aggs: dict[str, ibis.Value] = {"n": p.count(), "gross": p.amount.sum()}
        if "margin" in self.roles:
            aggs["margin"] = p.margin.sum()
        if "quantity" in self.roles:
            aggs["qty"] = p.quantity.sum()
        for role in ("channel", "campaign"):
            if role in self.roles:
                # A sentinel keeps an empty first-order label empty (min_by skips nulls).
                aggs[role] = min_by(p[role].fill_null(_NONE), p.timestamp)
        return p.group_by(customer_id=p.customer_id, _p=p.timestamp.truncate(self._unit)).aggregate(
            **aggs
        )

    def _return_aggs(self, r: ibis.Table) -> dict[str, ibis.Value]:
        """Return figures; a return counts in the period in which it happened."""
        in_cal = r.timestamp.truncate(self._unit) <= ibis.literal(self.cal_p)
        aggs: dict[str, ibis.Value] = {
            "n_ret_cal": _when(in_cal, 1).count(),
            "n_ret_all": r.count(),
            "ret_cal": _when(in_cal, r.amount).sum(),
            "ret_all": r.amount.sum(),
            "ret_last_p": r.timestamp.truncate(self._unit).max(),
        }
        if "margin" in self.roles:
            aggs["ret_margin_cal"] = _when(in_cal, r.margin).sum()
        if "quantity" in self.roles:
            aggs["ret_qty_cal"] = _when(in_cal, r.quantity).sum()
        return aggs

    def _net(self, occ: ibis.Table, r: ibis.Table) -> ibis.Table:
        """Attach netted returns to the occasions of the purchases they undo."""
        per_occ = r.group_by(
            _lv_cust=r.customer_id, _lv_p=r.occasion_at.truncate(self._unit)
        ).aggregate(**self._return_aggs(r))
        joined = occ.left_join(
            per_occ, [occ.customer_id == per_occ._lv_cust, occ._p == per_occ._lv_p]
        )
        return joined.drop("_lv_cust", "_lv_p")

    def _per_customer(self, occ: ibis.Table, *, netted: bool) -> ibis.Table:
        cal_p = ibis.literal(self.cal_p)
        zero = ibis.literal(0.0)
        in_cal = occ._p <= cal_p
        gross = occ.gross
        if netted:
            value_cal = gross + occ.ret_cal.fill_null(zero)
            value_all = gross + occ.ret_all.fill_null(zero)
            # An occasion whose purchases were all returned by the end of a period is no
            # purchase in that period.
            cal_occ = in_cal & ~((occ.n_ret_cal.fill_null(0) > 0) & (value_cal <= 0))
            hold_occ = ~in_cal & ~((occ.n_ret_all.fill_null(0) > 0) & (value_all <= 0))
        else:
            value_cal = value_all = gross
            cal_occ, hold_occ = in_cal, ~in_cal
        cust: dict[str, ibis.Value] = {
            "n_cal": _when(cal_occ, 1).count(),
            "first_p": _when(cal_occ, occ._p).min(),
            "last_p": _when(cal_occ, occ._p).max(),
            "value_sum": _when(cal_occ, value_cal).sum(),
            "first_value": min_by(_when(cal_occ, value_cal), _when(cal_occ, occ._p)),
            "n_hold": _when(hold_occ, 1).count(),
            "value_hold": _when(hold_occ, value_all).sum(),
            "n_orders": _when(in_cal, occ.n).sum(),
            "historic_revenue": _when(in_cal, gross).sum(),
            "revenue_holdout": _when(~in_cal, gross).sum(),
            "last_any": occ._p.max(),
            "n_rows": occ.n.sum(),
        }
        if "margin" in occ.columns:
            cust["historic_margin"] = _when(in_cal, occ.margin).sum()
        if "qty" in occ.columns:
            cust["total_quantity"] = _when(in_cal, occ.qty).sum()
        for role in ("channel", "campaign"):
            if role in occ.columns:
                # The first order's label, even when that order was later returned.
                first = min_by(_when(in_cal, occ[role]), _when(in_cal, occ._p))
                cust[f"acquisition_{role}"] = first.nullif(_NONE).strip().nullif("")
        if netted:
            cust.update(
                n_returns=occ.n_ret_cal.sum(),
                return_value=-occ.ret_cal.sum(),
                ret_cal=occ.ret_cal.sum(),
                ret_hold=(occ.ret_all.fill_null(zero) - occ.ret_cal.fill_null(zero)).sum(),
                ret_rows=occ.n_ret_all.sum(),
                ret_last_p=occ.ret_last_p.max(),
            )
            if "ret_margin_cal" in occ.columns:
                cust["ret_margin_cal"] = occ.ret_margin_cal.sum()
            if "ret_qty_cal" in occ.columns:
                cust["ret_qty_cal"] = occ.ret_qty_cal.sum()
        customers = occ.group_by("customer_id").aggregate(**cust)
        return self._fold_returns(customers) if netted else customers

    def _with_kept_returns(self, customers: ibis.Table, r: ibis.Table) -> ibis.Table:
        """Kept returns stand apart from occasions; they only change the money figures."""
        aggs = self._return_aggs(r)
        aggs["ret_hold"] = (
            r.amount
            - _when(
                r.timestamp.truncate(self._unit) <= ibis.literal(self.cal_p), r.amount
            ).fill_null(0.0)
        ).sum()
        aggs["n_returns"] = aggs.pop("n_ret_cal")
        aggs["return_value"] = -aggs["ret_cal"]
        aggs["ret_rows"] = aggs.pop("n_ret_all")
        del aggs["ret_all"]
        per_customer = r.group_by(_lv_cust=r.customer_id).aggregate(**aggs)
        # Outer join: a customer may have returns and no accepted purchase at all.
        joined = customers.outer_join(per_customer, customers.customer_id == per_customer._lv_cust)
        joined = joined.mutate(
            customer_id=joined.customer_id.fill_null(joined._lv_cust),
            n_cal=joined.n_cal.fill_null(0),
            n_hold=joined.n_hold.fill_null(0),
            n_orders=joined.n_orders.fill_null(0),
            n_rows=joined.n_rows.fill_null(0),
        ).drop("_lv_cust")
        return self._fold_returns(joined)

    def _fold_returns(self, c: ibis.Table) -> ibis.Table:
        """Add return figures into the money columns and row counts."""
        zero = ibis.literal(0.0)
        out: dict[str, ibis.Value] = {
            "historic_revenue": c.historic_revenue.fill_null(zero) + c.ret_cal.fill_null(zero),
            "revenue_holdout": c.revenue_holdout.fill_null(zero) + c.ret_hold.fill_null(zero),
            "n_rows": c.n_rows + c.ret_rows.fill_null(0),
            "last_any": ibis.greatest(c.last_any, c.ret_last_p),
            "n_returns": c.n_returns.fill_null(0),
            "return_value": c.return_value.fill_null(zero),
        }
        if "ret_margin_cal" in c.columns:
            out["historic_margin"] = c.historic_margin.fill_null(zero) + c.ret_margin_cal.fill_null(
                zero
            )
        if "ret_qty_cal" in c.columns:
            out["total_quantity"] = c.total_quantity.fill_null(zero) + c.ret_qty_cal.fill_null(zero)
        c = c.mutate(**out)
        return c.drop(*[n for n in c.columns if n.startswith("ret_")])

    def _orders(self, customers: ibis.Table) -> ibis.Table:
        """Orders are purchase rows less the second and later lines of multi-line orders."""
        extra = self.validated.extra_order_lines
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
