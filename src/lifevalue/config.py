"""The configuration file, ``lifevalue.toml``.

::

    [data]
    source = "transactions.csv"      # a file, folder or glob, relative to this file
    date_format = "%d/%m/%Y"         # optional; detected when omitted
    observation_end = "2024-12-31"   # optional; default: now
    returns = "net"                  # net | keep | quarantine
    duplicates = "quarantine"        # quarantine | keep
    currency = "EUR"                 # optional; default: the most common one

    [data.columns]                   # your column names, by role
    customer_id = "Customer"
    timestamp = "InvoiceDate"
    amount = "Revenue"

    [data.csv]                       # optional
    delimiter = ";"
    header = true

    [summary]
    calibration_end = "2024-06-30"
    unit = "weeks"                   # days | weeks | months | years
    occasion_period = "day"          # hour | day | week | month

    [models]                         # optional
    transaction_model = "auto"       # auto | bgnbd | mbgnbd | pnbd
    holdout_weeks = 26               # auto: the best model on this last stretch of history

    [value]                          # optional
    margin_rate = 0.3                # gross margin where the log has no cost or margin
    cost_to_serve = 2.0              # per order
    annual_discount_rate = 0.1
    horizon_months = 12
    tiers = [0.05, 0.15, 0.30]       # top 5%, next 15%, next 30%, rest
    category_margins = { books = 0.35, music = 0.25 }   # optional; others: margin_rate
    level = 0.9                      # coverage of the CLV intervals
    policy = "offers.toml"           # optional; default: the policy shipped with lifevalue
    spend = "marketing_spend.csv"    # optional: date, channel, campaign, spend
    customers = "customers.csv"      # optional: customer_id and attributes
    prospects = "prospects.csv"      # optional: prospect_id and attributes, to rank

    [engine]                         # optional
    memory_limit = "4GB"
    threads = 2

    [store]                          # optional: the run history
    url = "lifevalue-runs.duckdb"    # a DuckDB file, or postgresql://user@host/db

    [monitor]                        # optional: alerts when a run is stored
    threshold = 0.10                 # relative change of a figure that raises an alert
    min_customers = 30               # groups smaller than this raise none

Unknown sections and keys are errors, so a typo never goes unnoticed. Command-line
options override the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lifevalue.data.contract import ColumnMapping, CsvOptions, read_toml
from lifevalue.errors import InputError


@dataclass(frozen=True)
class DataConfig:
    """The ``[data]`` section: where the transactions are and how to read them."""

    source: str | None = None
    columns: ColumnMapping = field(default_factory=ColumnMapping)
    csv: CsvOptions = field(default_factory=CsvOptions)
    date_format: str | None = None
    observation_end: str | None = None
    returns: str = "net"
    duplicates: str = "quarantine"
    currency: str | None = None


@dataclass(frozen=True)
class SummaryConfig:
    """The ``[summary]`` section."""

    calibration_end: str | None = None
    unit: str = "weeks"
    occasion_period: str = "day"


@dataclass(frozen=True)
class ModelsConfig:
    """The ``[models]`` section: which transaction model scores the customers."""

    transaction_model: str = "auto"
    holdout_weeks: float = 26.0


@dataclass(frozen=True)
class ValueConfig:
    """The ``[value]`` section: how predictions become net-profit values and decisions."""

    margin_rate: float = 1.0
    cost_to_serve: float = 0.0
    annual_discount_rate: float = 0.1
    horizon_months: float = 12.0
    tiers: tuple[float, ...] = (0.05, 0.15, 0.30)
    category_margins: dict[str, float] | None = None
    level: float = 0.9
    policy: str | None = None
    spend: str | None = None
    customers: str | None = None
    prospects: str | None = None


@dataclass(frozen=True)
class EngineConfig:
    """The ``[engine]`` section: the DuckDB engine's resources."""

    database: str = ":memory:"
    memory_limit: str | None = None
    threads: int | None = None


@dataclass(frozen=True)
class StoreConfig:
    """The ``[store]`` section: where runs are kept.

    ``url`` is a DuckDB file (a path, or ``duckdb:///path``) or a PostgreSQL URL
    (``postgresql://user@host:5432/db``); by default the environment variable
    ``LIFEVALUE_STORE``, else ``lifevalue-runs.duckdb`` in the current folder.
    """

    url: str | None = None


@dataclass(frozen=True)
class MonitorConfig:
    """The ``[monitor]`` section: when a stored run raises alerts.

    A monitored figure (customer equity, mean CLV, mean P(alive), customer count) of the
    whole base or of a group raises an alert when it moves by more than ``threshold``
    (relative to the previous run); groups with fewer than ``min_customers`` customers in
    both runs raise none.
    """

    threshold: float = 0.10
    min_customers: int = 30

    def __post_init__(self) -> None:
        if not (isinstance(self.threshold, int | float) and self.threshold > 0):
            raise InputError(
                f"The 'threshold' setting of [monitor] must be a number > 0. "
                f"Got {self.threshold!r} instead."
            )
        if not (isinstance(self.min_customers, int) and self.min_customers >= 0):
            raise InputError(
                f"The 'min_customers' setting of [monitor] must be an integer >= 0. "
                f"Got {self.min_customers!r} instead."
            )


@dataclass(frozen=True)
class Config:
    """A whole configuration file."""

    data: DataConfig = field(default_factory=DataConfig)
    summary: SummaryConfig = field(default_factory=SummaryConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    value: ValueConfig = field(default_factory=ValueConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        """Read a configuration file; relative paths in it are relative to the file."""
        path = Path(path)
        raw = read_toml(path)
        return cls.from_dict(raw, base_dir=path.parent, where=str(path))

    @classmethod
    def from_dict(
        cls, raw: Mapping[str, Any], *, base_dir: Path | None = None, where: str = "configuration"
    ) -> Config:
        """Build a configuration from plain data (a parsed TOML document)."""
        _check_keys(
            raw, {"data", "summary", "models", "value", "engine", "store", "monitor"}, where, ""
        )
        data = dict(raw.get("data") or {})
        _check_keys(data, {f.name for f in fields(DataConfig)}, where, "data")
        columns = ColumnMapping.from_dict(data.pop("columns", None))
        csv = CsvOptions.from_dict(data.pop("csv", None))
        source = data.pop("source", None)
        if source is not None and base_dir is not None and not Path(source).is_absolute():
            source = str(base_dir / source)
        summary = dict(raw.get("summary") or {})
        _check_keys(summary, {f.name for f in fields(SummaryConfig)}, where, "summary")
        engine = dict(raw.get("engine") or {})
        _check_keys(engine, {f.name for f in fields(EngineConfig)}, where, "engine")
        models = dict(raw.get("models") or {})
        _check_keys(models, {f.name for f in fields(ModelsConfig)}, where, "models")
        value = dict(raw.get("value") or {})
        _check_keys(value, {f.name for f in fields(ValueConfig)}, where, "value")
        for key in ("policy", "spend", "customers", "prospects"):
            given = value.get(key)
            if given is not None and base_dir is not None and not Path(given).is_absolute():
                value[key] = str(base_dir / given)
        if "tiers" in value:
            value["tiers"] = tuple(value["tiers"])
        store = dict(raw.get("store") or {})
        _check_keys(store, {f.name for f in fields(StoreConfig)}, where, "store")
        url = store.get("url")
        # A plain path is relative to the file, like the other paths; URLs are left as given.
        if url and "://" not in str(url) and base_dir is not None and not Path(url).is_absolute():
            store["url"] = str(base_dir / url)
        monitor = dict(raw.get("monitor") or {})
        _check_keys(monitor, {f.name for f in fields(MonitorConfig)}, where, "monitor")
        return cls(
            data=DataConfig(source=source, columns=columns, csv=csv, **_strings(data)),
            summary=SummaryConfig(**_strings(summary)),
            models=ModelsConfig(**models),
            value=ValueConfig(**value),
            engine=EngineConfig(**engine),
            store=StoreConfig(**store),
            monitor=MonitorConfig(**monitor),
        )


def _strings(section: Mapping[str, Any]) -> dict[str, Any]:
    # TOML dates arrive as date objects; the library reads dates from text.
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in section.items()}


def _check_keys(section: Mapping[str, Any], known: set[str], where: str, name: str) -> None:
    unknown = sorted(set(section) - known)
    if unknown:
        label = f"[{name}]" if name else "the top level"
        raise InputError(
            f"Unknown setting(s) {', '.join(map(repr, unknown))} in {label} of {where}: "
            f"expected some of {', '.join(sorted(known))}."
        )
