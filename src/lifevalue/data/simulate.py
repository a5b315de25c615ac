"""Seeded simulation of a retail business: customers, orders, returns and marketing spend.

The purchasing process is a textbook buy-till-you-die model, simulated exactly:

* BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while
  alive, customer *i* buys at Poisson rate ``lam_i ~ Gamma(r, alpha)``; after each repeat
  purchase it drops out with probability ``p_i ~ Beta(a, b)``.
* Pareto/NBD (Schmittlein, Morrison & Colombo 1987): purchases at Poisson rate
  ``lam_i ~ Gamma(r, alpha)`` during an exponential lifetime of rate ``mu_i ~ Gamma(s, beta)``.
* Gamma-Gamma spend (Fader, Hardie & Lee 2005, "RFM and CLV"): every transaction of
  customer *i* is worth ``z ~ Gamma(p, nu_i)`` with ``nu_i ~ Gamma(q, gamma)``.

Gamma distributions are given by shape and *rate*; rates and times are per ``unit``.

Around that process sits a business: customers arrive through marketing channels and
campaigns (each channel with its own acquisition cost and value multipliers), purchases
follow the seasons (busier in late November and December), the weekdays (busier at
weekends) and the hours (busier in the evening), orders carry a product category with
its own gross margin, some orders come back as returns, and paid channels leave a daily
marketing-spend table. Everything hidden is reported: each customer's latent values in
:attr:`SimulatedBusiness.customers`, every parameter in :attr:`SimulatedBusiness.truth`.

Seasons do not break the model. Purchases happen in *business time*, which runs faster
than the calendar in the busy season and slower in the quiet one (its speed is
``1 + seasonality * cos(2 pi (day - peak) / year)``, one on average); calendar time is
the inverse of that monotone warp. With ``seasonality=0`` the two coincide. Weekday and
hour patterns then move every purchase within its own calendar week; with
``timing=False`` the continuous times of the process are kept.

Three entry points:

* :func:`simulate_business` builds the tables in memory.
* :func:`simulate_to_parquet` writes them to a folder chunk by chunk (in parallel
  processes), so logs of hundreds of millions of rows never have to fit in memory.
* :func:`simulate_summary` draws per-customer summaries (frequency, recency, T, monetary
  value) directly, without transactions, for parameter-recovery tests of models.

The same arguments and seed always give the same output.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import ArrayLike, NDArray

from lifevalue.errors import InputError, LifevalueError
from lifevalue.units import DAYS_PER_YEAR, METADATA_KEY, TimeUnit

__all__ = [
    "AGE_BANDS",
    "CATEGORIES",
    "DEFAULT_CHANNELS",
    "DEFAULT_PARAMS",
    "DEFAULT_SPEND_PARAMS",
    "HOUR_PROFILE",
    "MODELS",
    "REGIONS",
    "REPEAT_CHANNELS",
    "WEEKDAY_PROFILE",
    "Channel",
    "SimulatedBusiness",
    "SimulatedFiles",
    "simulate_business",
    "simulate_summary",
    "simulate_to_parquet",
]

logger = logging.getLogger(__name__)

#: Names of the purchasing models.
MODELS: tuple[str, ...] = ("bgnbd", "pareto_nbd")

#: Default parameters of each purchasing model, per week (converted to other units).
DEFAULT_PARAMS: Mapping[str, Mapping[str, float]] = {
    "bgnbd": {"r": 0.6, "alpha": 6.0, "a": 0.8, "b": 3.0},
    "pareto_nbd": {"r": 0.6, "alpha": 6.0, "s": 0.8, "beta": 12.0},
}

#: Default Gamma-Gamma spend parameters: mean transaction value p * gamma / (q - 1) = 80.
DEFAULT_SPEND_PARAMS: Mapping[str, float] = {"p": 6.0, "q": 4.0, "gamma": 40.0}

#: Regions: share of customers and multiplier on their transaction values.
REGIONS: Mapping[str, tuple[float, float]] = {
    "northeast": (0.22, 1.10),
    "southeast": (0.24, 0.95),
    "midwest": (0.20, 0.92),
    "southwest": (0.14, 0.97),
    "west": (0.20, 1.08),
}

#: Age bands: share of customers and multiplier on their transaction values.
AGE_BANDS: Mapping[str, tuple[float, float]] = {
    "18-24": (0.12, 0.85),
    "25-34": (0.25, 0.95),
    "35-44": (0.22, 1.05),
    "45-54": (0.18, 1.10),
    "55-64": (0.13, 1.05),
    "65+": (0.10, 0.95),
}

#: Product categories: share of orders and gross-margin rate (margin / amount).
CATEGORIES: Mapping[str, tuple[float, float]] = {
    "apparel": (0.30, 0.55),
    "electronics": (0.15, 0.18),
    "home": (0.20, 0.40),
    "beauty": (0.15, 0.62),
    "grocery": (0.20, 0.25),
}

#: Channels of repeat orders and their shares (the first order carries the acquisition one).
REPEAT_CHANNELS: Mapping[str, float] = {"direct": 0.45, "email": 0.35, "organic": 0.20}

#: Share of orders per weekday, Monday first.
WEEKDAY_PROFILE: tuple[float, ...] = (0.13, 0.12, 0.12, 0.13, 0.14, 0.19, 0.17)

#: Share of orders per hour of the day, midnight first.
HOUR_PROFILE: tuple[float, ...] = (
    0.012, 0.007, 0.004, 0.003, 0.003, 0.005, 0.012, 0.024, 0.034, 0.042, 0.048, 0.052,
    0.058, 0.055, 0.050, 0.049, 0.052, 0.060, 0.073, 0.086, 0.090, 0.082, 0.063, 0.036,
)  # fmt: skip

#: Probability that an order is in the customer's preferred category.
CATEGORY_HABIT = 0.5
#: Share of returns that send the whole order back (orders of one item always do).
FULL_RETURN_SHARE = 0.6
#: Returns arrive this many days after their order, uniformly.
RETURN_DAYS = (1, 30)
#: The quantity of an order is 1 + floor(U * amount / ITEM_PRICE), U uniform on (0, 1).
ITEM_PRICE = 35.0
#: Relative (normal) noise of the cost of an order around amount * (1 - margin).
COST_SIGMA = 0.05
#: Log-normal noise (mean one) of daily marketing spend around new customers * cpa.
SPEND_SIGMA = 0.2
#: Day of the year at the height of the season, as days since 1970-01-01 (5 December).
SEASON_PEAK_DAY = 338.0

_DAY_US = 86_400_000_000
_HOUR_US = 3_600_000_000
_NAT = np.iinfo(np.int64).min
_P_FLOOR = 1e-12
_PILOT_CUSTOMERS = 20_000
_CHUNK_ROWS = 4_000_000
_LABELS = frozenset(
    {
        "channel",
        "campaign",
        "category",
        "currency",
        "acquisition_channel",
        "acquisition_campaign",
        "region",
        "age_band",
        "preferred_category",
    }
)
_DICTIONARY = frozenset(
    {"amount", "cost", "quantity", "preferred_weekday", "preferred_hour", "alive_at_end"}
)
_DELTA = frozenset({"order_id", "customer_id", "timestamp", "acquired_at"})
_CUSTOMER_KEYS = (
    "channel",
    "campaign",
    "region",
    "age_band",
    "preferred_weekday",
    "preferred_hour",
    "preferred_category",
    "lam",
    "nu",
    "alive",
)


# --------------------------------------------------------------------------- validation


def _fail(name: str, func: str, expectation: str, value: Any) -> Any:
    raise InputError(
        f"The {name!r} parameter of {func} must be {expectation}. Got {value!r} instead."
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _number(
    value: Any, name: str, func: str, expectation: str, ok: Callable[[float], bool]
) -> float:
    if not _is_number(value) or not math.isfinite(float(value)) or not ok(float(value)):
        _fail(name, func, expectation, value)
    return float(value)


def _positive(value: Any, name: str, func: str) -> float:
    return _number(value, name, func, "> 0", lambda v: v > 0)


def _integer(value: Any, name: str, func: str, expectation: str, ok: Callable[[int], bool]) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool):
        _fail(name, func, f"an integer {expectation}", value)
    if not ok(int(value)):
        _fail(name, func, expectation, value)
    return int(value)


def _model(model: Any, func: str) -> str:
    if not isinstance(model, str) or model not in MODELS:
        _fail("model", func, f"one of {', '.join(map(repr, MODELS))}", model)
    return str(model)


def _unit(unit: Any, func: str) -> TimeUnit:
    try:
        return TimeUnit.parse(unit)
    except (ValueError, TypeError):
        return _fail("unit", func, "one of 'days', 'weeks', 'months', 'years'", unit)


def _params(
    given: Mapping[str, float] | None, model: str, unit: TimeUnit, func: str
) -> dict[str, float]:
    factor = 7.0 / unit.days  # the defaults are per week; alpha and beta are in time units
    defaults = {
        k: v * factor if k in ("alpha", "beta") else v for k, v in DEFAULT_PARAMS[model].items()
    }
    return _merge(given, defaults, "params", func)


def _spend_params(given: Mapping[str, float] | None, func: str) -> dict[str, float]:
    return _merge(given, dict(DEFAULT_SPEND_PARAMS), "spend_params", func)


def _merge(
    given: Mapping[str, float] | None, defaults: dict[str, float], name: str, func: str
) -> dict[str, float]:
    if given is None:
        return dict(defaults)
    if not isinstance(given, Mapping) or set(given) - set(defaults):
        _fail(name, func, f"a mapping with keys among {', '.join(defaults)}", given)
    out = dict(defaults)
    for key, value in given.items():
        out[key] = _positive(value, f"{name}[{key!r}]", func)
    return out


def _seed(seed: Any, func: str) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    return _integer(seed, "seed", func, ">= 0", lambda v: v >= 0)


def _timestamp(value: Any, name: str, func: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        stamp = None
    if stamp is None or pd.isna(stamp) or stamp.tzinfo is not None:
        _fail(name, func, "a date or a datetime without time zone", value)
    return stamp  # type: ignore[return-value]


def _microseconds(stamp: pd.Timestamp) -> int:
    return int(np.datetime64(stamp.to_datetime64(), "us").astype(np.int64))


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class Channel:
    """A marketing channel through which customers are acquired.

    Parameters
    ----------
    name
        Channel name, as it appears in the ``channel`` column.
    share
        Relative share of acquisitions (the shares of a channel set are normalised).
    cpa
        Marketing cost per acquired customer, in the simulation's currency; 0 for an
        organic (unpaid) channel. Paid channels appear in the marketing-spend table.
    campaigns
        Campaign names of the channel; each of its customers comes from one, chosen
        uniformly. Empty when the channel has no campaigns.
    purchase_rate
        Multiplier on the purchase rate of the channel's customers (``alpha / purchase_rate``).
    dropout
        Multiplier on how fast the channel's customers leave: BG/NBD ``b / dropout``,
        Pareto/NBD ``mu * dropout``. Above 1 they leave sooner.
    spend
        Multiplier on the transaction values of the channel's customers.
    """

    name: str
    share: float
    cpa: float = 0.0
    campaigns: tuple[str, ...] = ()
    purchase_rate: float = 1.0
    dropout: float = 1.0
    spend: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            _fail("name", "Channel", "a non-empty string", self.name)
        given = self.campaigns
        campaigns = (given,) if isinstance(given, str) else tuple(given)
        if not all(isinstance(c, str) and c for c in campaigns) or len(set(campaigns)) < len(
            campaigns
        ):
            _fail("campaigns", "Channel", "distinct non-empty strings", given)
        object.__setattr__(self, "campaigns", campaigns)
        _positive(self.share, "share", "Channel")
        _number(self.cpa, "cpa", "Channel", ">= 0", lambda v: v >= 0)
        for name in ("purchase_rate", "dropout", "spend"):
            _positive(getattr(self, name), name, "Channel")

    def to_dict(self) -> dict[str, Any]:
        """The channel as a JSON-ready dictionary."""
        out = asdict(self)
        out["campaigns"] = list(self.campaigns)
        return out


#: A default channel set whose customers differ clearly in value (best: referral, email;
#: worst: social, affiliate).
DEFAULT_CHANNELS: tuple[Channel, ...] = (
    Channel("organic", 0.30, 0.0, ()),
    Channel("paid_search", 0.24, 32.0, ("brand", "generic", "shopping"), 0.9, 1.1, 1.0),
    Channel("social", 0.18, 24.0, ("prospecting", "retargeting"), 0.7, 1.5, 0.85),
    Channel("email", 0.08, 6.0, ("newsletter", "welcome_series"), 1.25, 0.85, 0.95),
    Channel("affiliate", 0.12, 28.0, ("cashback", "coupon"), 0.8, 1.3, 0.9),
    Channel("referral", 0.08, 15.0, ("refer_a_friend",), 1.3, 0.7, 1.15),
)


@dataclass(frozen=True)
class SimulatedBusiness:
    """A simulated business, with the truth behind it.

    Attributes
    ----------
    transactions
        One row per order and per return, sorted by ``timestamp``: ``order_id`` (numbered
        in order of time; a return repeats its order's), ``customer_id``, ``timestamp``,
        ``amount`` (negative for a return), ``quantity``, ``cost``, ``channel``,
        ``campaign`` (missing on repeat orders), ``category``, ``currency``.
    customers
        One row per customer, numbered in order of acquisition: ``customer_id``,
        ``acquired_at`` (the first order), ``acquisition_channel``,
        ``acquisition_campaign``, ``region``, ``age_band``, ``preferred_weekday`` (0 is
        Monday), ``preferred_hour``, ``preferred_category``, and the latent truth: ``lam``
        (purchase rate per unit), ``p`` (BG/NBD dropout probability) or ``mu`` (Pareto/NBD
        dropout rate per unit), ``nu`` (Gamma rate of the customer's transaction values,
        every multiplier included), ``mean_spend`` (``p / nu`` with the spend ``p``: the
        true mean transaction value), ``alive_at_end`` and ``dropout_at`` (when the
        customer left; NaT while alive at ``end``).
    spend
        Marketing spend of the paid channels: one row per ``date``, ``channel`` and
        ``campaign`` (missing for a paid channel without campaigns), with ``spend`` in
        the simulation's currency; 0 on days without new customers.
    truth
        Every parameter of the simulation, JSON-ready: ``model``, ``unit``, ``params``,
        ``spend_params``, ``channels``, ``categories`` (share and margin),
        ``attribute_effects`` (spend multipliers per region and age band), the weekday and
        hour profiles, ``start``, ``end``, ``seed`` and more.
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame
    spend: pd.DataFrame
    truth: dict[str, Any]


@dataclass(frozen=True)
class SimulatedFiles:
    """What :func:`simulate_to_parquet` wrote.

    Attributes
    ----------
    path
        The output folder.
    transaction_files
        The ``transactions/part-NNNNN.parquet`` files, one per chunk of customers.
    customers_path, spend_path, truth_path
        The customer table, the marketing-spend table and the truth (JSON).
    n_transactions
        Rows of the transaction files (orders and returns).
    n_orders
        Orders among them.
    n_customers
        Customers simulated.
    """

    path: Path
    transaction_files: tuple[Path, ...]
    customers_path: Path
    spend_path: Path
    truth_path: Path
    n_transactions: int
    n_orders: int
    n_customers: int

    @property
    def transactions_path(self) -> Path:
        """The folder of transaction files, readable as one Parquet data set."""
        return self.path / "transactions"


# --------------------------------------------------------------------------- public API


def simulate_business(
    *,
    n_customers: int = 5000,
    start: Any = "2023-01-01",
    end: Any = "2025-01-01",
    model: str = "bgnbd",
    params: Mapping[str, float] | None = None,
    spend_params: Mapping[str, float] | None = None,
    unit: TimeUnit | str = "weeks",
    channels: Sequence[Channel] | None = None,
    return_rate: float = 0.05,
    seasonality: float = 0.25,
    timing: bool = True,
    habit_strength: float = 0.6,
    currency: str = "USD",
    seed: int | None = 0,
) -> SimulatedBusiness:
    """Simulate a retail business in memory.

    Parameters
    ----------
    n_customers
        Number of customers acquired between ``start`` and ``end``.
    start, end
        The period ``[start, end)``; anything a pandas Timestamp accepts. Customers
        arrive over the whole period at a seasonal rate; nothing at or after ``end`` is
        emitted.
    model
        Purchasing model: ``"bgnbd"`` or ``"pareto_nbd"``.
    params
        Model parameters per ``unit``: ``r, alpha, a, b`` (BG/NBD) or ``r, alpha, s, beta``
        (Pareto/NBD). Missing keys take the defaults of :data:`DEFAULT_PARAMS`, which are
        stated per week and converted to ``unit``.
    spend_params
        Gamma-Gamma spend parameters ``p, q, gamma``; missing keys take the defaults of
        :data:`DEFAULT_SPEND_PARAMS` (mean transaction value 80 before the multipliers of
        channel, region and age band).
    unit
        Time unit of the rates in ``params``: a :class:`~lifevalue.units.TimeUnit` or its
        name. Default weeks.
    channels
        Acquisition channels; default :data:`DEFAULT_CHANNELS`.
    return_rate
        Probability that an order is returned, fully or in part, 1 to 30 days later.
    seasonality
        Amplitude of the yearly season, in ``[0, 1)``: purchases and acquisitions run at
        ``1 + seasonality`` times the average rate at the peak (early December) and
        ``1 - seasonality`` at the trough (early June). 0 switches seasons off.
    timing
        Move every purchase within its calendar week to a weekday and an hour drawn from
        the customer's habits and the population profiles (:data:`WEEKDAY_PROFILE`,
        :data:`HOUR_PROFILE`). ``False`` keeps the continuous times of the process.
    habit_strength
        Probability that a purchase falls on the customer's preferred weekday (and,
        separately, at its preferred hour) rather than on one drawn from the profile.
    currency
        Currency code of the ``currency`` column.
    seed
        Seed of the random numbers; ``None`` draws fresh entropy (reported in the truth).

    Returns
    -------
    SimulatedBusiness
        Transactions, customers, marketing spend and the truth.

    Raises
    ------
    InputError
        An argument is out of range (a ``ValueError``).
    """
    func = "simulate_business"
    plan = _Plan(func, **_options(locals()))
    n = _integer(n_customers, "n_customers", func, "> 0", lambda v: v > 0)
    customers = _draw_customers(plan, n, plan.rng("customers", 0))
    chunk = _simulate_orders(plan, customers, plan.rng("orders", 0), 0, 0)
    truth = plan.truth()
    truth["n_customers"] = n
    return SimulatedBusiness(
        transactions=_frame(plan.transaction_columns(chunk.transactions)),
        customers=_frame(plan.customer_columns(customers, chunk, 0)),
        spend=_frame(_spend_columns(plan, chunk.acquisitions)),
        truth=truth,
    )


def simulate_to_parquet(
    path: str | Path,
    *,
    n_transactions: int,
    chunk_customers: int = 500_000,
    workers: int | None = 1,
    overwrite: bool = False,
    start: Any = "2023-01-01",
    end: Any = "2025-01-01",
    model: str = "bgnbd",
    params: Mapping[str, float] | None = None,
    spend_params: Mapping[str, float] | None = None,
    unit: TimeUnit | str = "weeks",
    channels: Sequence[Channel] | None = None,
    return_rate: float = 0.05,
    seasonality: float = 0.25,
    timing: bool = True,
    habit_strength: float = 0.6,
    currency: str = "USD",
    seed: int | None = 0,
) -> SimulatedFiles:
    """Simulate a business of about ``n_transactions`` rows straight to Parquet files.

    The folder receives ``transactions/part-00000.parquet, ...`` (one file per chunk of
    customers, each sorted by timestamp, in row groups of about a million rows),
    ``customers.parquet``, ``spend.parquet`` and ``truth.json``. Chunks of customers are
    simulated until the rows reach ``n_transactions``, so the count may exceed it
    slightly; how many customers that takes follows from a small pilot simulation.
    Memory stays bounded by the chunk size whatever the total. Customer and order ids
    run on across chunks (so they are unique); within a chunk, customers are numbered in
    order of acquisition and orders in order of time. The spend table covers every
    customer. The files do not depend on ``workers``.

    Parameters
    ----------
    path
        Output folder; created when missing.
    n_transactions
        Target number of transaction rows (orders and returns).
    chunk_customers
        Customers per chunk (fewer when a chunk would hold more than about four million
        rows). Memory grows with it.
    workers
        Processes simulating chunks in parallel; ``None`` means one per CPU. With 1 (the
        default) everything runs in this process. Like any code starting processes, a
        script calling this with more than one worker needs an
        ``if __name__ == "__main__":`` guard.
    overwrite
        Replace the files of an earlier simulation in ``path``; without it, finding them
        is an error.
    start, end, model, params, spend_params, unit, channels, return_rate, seasonality, \
timing, habit_strength, currency, seed
        As in :func:`simulate_business`.

    Returns
    -------
    SimulatedFiles
        The paths written and the row and customer counts.

    Raises
    ------
    InputError
        An argument is out of range, or ``path`` holds an earlier simulation and
        ``overwrite`` is false.
    LifevalueError
        A worker process died.
    """
    func = "simulate_to_parquet"
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise InputError(
            "simulate_to_parquet was called while a worker process was starting: the script "
            'calling it needs an `if __name__ == "__main__":` guard, or workers=1.'
        )
    plan = _Plan(func, **_options(locals()))
    target = _integer(n_transactions, "n_transactions", func, "> 0", lambda v: v > 0)
    chunk_size = _integer(chunk_customers, "chunk_customers", func, "> 0", lambda v: v > 0)
    if workers is None:
        workers = os.cpu_count() or 1
    workers = _integer(workers, "workers", func, ">= 1", lambda v: v >= 1)
    folder = _prepare_folder(Path(path), overwrite=bool(overwrite))

    pilot_customers = _draw_customers(plan, _PILOT_CUSTOMERS, plan.rng("pilot", 0))
    pilot = _simulate_orders(plan, pilot_customers, plan.rng("pilot", 1), 0, 0)
    rows_per_order = pilot.n_rows / pilot.n_orders
    rows_per_customer = pilot.n_rows / _PILOT_CUSTOMERS
    del pilot, pilot_customers
    chunk_size = min(chunk_size, max(1000, int(_CHUNK_ROWS / rows_per_customer)))
    expected_chunks = math.ceil(target / (rows_per_customer * chunk_size))
    workers = min(workers, expected_chunks)

    writer = _ChunkWriter(plan, folder)
    goal = target * 1.001  # the number of returns is random: aim a little above the target
    planned_rows = 0.0
    next_index = next_customer = next_order = 0
    inflight: deque[tuple[Future[_Chunk], dict[str, Any]]] = deque()
    pool = (
        ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        if workers > 1
        else None
    )
    try:
        while True:
            while planned_rows < goal and len(inflight) <= workers:
                wanted = (goal - planned_rows) / rows_per_customer
                size = min(chunk_size, math.ceil(wanted * 1.01))
                customers = _draw_customers(plan, size, plan.rng("customers", next_index))
                orders = size + int(customers["repeats"].sum())
                task = (plan, customers, next_index, next_customer, next_order, folder)
                if pool is None:
                    done: Future[_Chunk] = Future()
                    done.set_result(_run_chunk(*task))
                    inflight.append((done, customers))
                else:
                    inflight.append((pool.submit(_run_chunk, *task), customers))
                del task, customers
                planned_rows += orders * rows_per_order
                next_index += 1
                next_customer += size
                next_order += orders
            if not inflight:
                if writer.n_rows >= target:
                    break
                planned_rows = writer.n_rows  # fell short of the plan: top up from the truth
                continue
            future, customers = inflight.popleft()
            writer.add(plan, customers, future.result())
            del future, customers
    except BrokenProcessPool as exc:
        raise LifevalueError(
            "A worker process of simulate_to_parquet died (out of memory?); try fewer "
            "workers or smaller chunk_customers."
        ) from exc
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        writer.close()

    pq.write_table(_table(_spend_columns(plan, writer.acquisitions)), folder / "spend.parquet")
    truth = plan.truth()
    truth.update(
        n_customers=writer.n_customers, n_transactions=writer.n_rows, n_orders=writer.n_orders
    )
    (folder / "truth.json").write_text(json.dumps(truth, indent=2), encoding="utf-8")
    logger.info(
        "Simulated %d rows (%d orders) of %d customers into %s.",
        writer.n_rows,
        writer.n_orders,
        writer.n_customers,
        folder,
    )
    return SimulatedFiles(
        path=folder,
        transaction_files=tuple(writer.files),
        customers_path=folder / "customers.parquet",
        spend_path=folder / "spend.parquet",
        truth_path=folder / "truth.json",
        n_transactions=writer.n_rows,
        n_orders=writer.n_orders,
        n_customers=writer.n_customers,
    )


def simulate_summary(
    *,
    n_customers: int,
    model: str = "bgnbd",
    params: Mapping[str, float] | None = None,
    T: float | tuple[float, float] | ArrayLike = (0.0, 104.0),
    seed: int | None = 0,
    spend_params: Mapping[str, float] | None = None,
    unit: TimeUnit | str = "weeks",
) -> pd.DataFrame:
    """Draw per-customer summaries of a purchasing model directly, without transactions.

    Each customer is observed from its first purchase for ``T`` units. The summary
    follows the model exactly: with ``N`` Poisson purchase events in the window of length
    ``w`` (``T``, or the lifetime when shorter), the last of the ``x`` kept purchases is
    at ``w * Beta(x, N - x + 1)`` (an order statistic of uniforms), and the mean of ``x``
    Gamma(p, nu) values is ``Gamma(p x, nu) / x``.

    Parameters
    ----------
    n_customers
        Number of customers.
    model
        ``"bgnbd"`` or ``"pareto_nbd"``.
    params
        Model parameters per ``unit``; missing keys take the defaults of
        :data:`DEFAULT_PARAMS` (stated per week, converted to ``unit``).
    T
        Observation length of each customer, in ``unit``: one number for all, a
        ``(low, high)`` tuple to draw each uniformly from, or an array with one value per
        customer. Default ``(0, 104)``.
    seed
        Seed of the random numbers; ``None`` draws fresh entropy.
    spend_params
        Gamma-Gamma parameters ``p, q, gamma`` (missing keys take the defaults of
        :data:`DEFAULT_SPEND_PARAMS`). When given, adds ``monetary_value`` (mean value of
        the repeat transactions, 0 without any) and the latent ``nu``.
    unit
        Time unit of ``params`` and ``T``; recorded in ``DataFrame.attrs["unit"]``.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``frequency`` (repeat purchases), ``recency`` (first to last
        purchase), ``T``, optionally ``monetary_value``, and the truth: ``lam``, ``p``
        (BG/NBD) or ``mu`` (Pareto/NBD), optionally ``nu``, and ``alive`` at the end of
        the window. ``attrs`` holds ``unit``, ``model``, ``params`` and ``spend_params``.

    Raises
    ------
    InputError
        An argument is out of range (a ``ValueError``).
    """
    func = "simulate_summary"
    n = _integer(n_customers, "n_customers", func, "> 0", lambda v: v > 0)
    model = _model(model, func)
    unit_ = _unit(unit, func)
    full = _params(params, model, unit_, func)
    spend = None if spend_params is None else _spend_params(spend_params, func)
    root = _seed(seed, func)
    draw_t = _summary_T(T, n, func)

    latent = "p" if model == "bgnbd" else "mu"
    names = ["frequency", "recency", "T", "monetary_value", "lam", latent, "nu", "alive"]
    if spend is None:
        names = [c for c in names if c not in ("monetary_value", "nu")]
    dtypes = {"frequency": np.int64, "alive": np.bool_}
    out = {c: np.empty(n, dtype=dtypes.get(c, np.float64)) for c in names}
    step = 1_000_000
    for k, lo in enumerate(range(0, n, step)):
        hi = min(n, lo + step)
        m = hi - lo
        rng = np.random.default_rng(np.random.SeedSequence(root, spawn_key=(0, k)))
        t_obs = draw_t(rng, lo, hi)
        lam = rng.standard_gamma(full["r"], m) / full["alpha"]
        if model == "bgnbd":
            value = rng.beta(full["a"], full["b"], m)
            events = rng.poisson(lam * t_obs)
            death = rng.geometric(np.clip(value, _P_FLOOR, 1.0))
            x = np.minimum(events, death)
            alive = events < death
            horizon = t_obs
        else:
            value = rng.standard_gamma(full["s"], m) / full["beta"]
            tau = rng.standard_exponential(m) / value
            horizon = np.minimum(tau, t_obs)
            events = x = rng.poisson(lam * horizon)
            alive = tau > t_obs
        recency = np.zeros(m)
        some = np.flatnonzero(x)
        recency[some] = horizon[some] * rng.beta(x[some], events[some] - x[some] + 1)
        block = {
            "frequency": x,
            "recency": recency,
            "T": t_obs,
            "lam": lam,
            latent: value,
            "alive": alive,
        }
        if spend is not None:
            nu = rng.standard_gamma(spend["q"], m) / spend["gamma"]
            mean = np.zeros(m)
            mean[some] = rng.standard_gamma(spend["p"] * x[some]) / (nu[some] * x[some])
            block.update(monetary_value=mean, nu=nu)
        for name, values in block.items():
            out[name][lo:hi] = values

    frame = pd.DataFrame({"customer_id": np.arange(1, n + 1, dtype=np.int64), **out})
    frame.attrs.update(unit=str(unit_), model=model, params=full, spend_params=spend)
    # The models read the unit where every lifevalue summary carries it.
    frame.attrs[METADATA_KEY] = {"time_unit": str(unit_)}
    return frame


# --------------------------------------------------------------------------- helpers


def _options(scope: dict[str, Any]) -> dict[str, Any]:
    """The business options among a public function's arguments."""
    names = (
        "start",
        "end",
        "model",
        "params",
        "spend_params",
        "unit",
        "channels",
        "return_rate",
        "seasonality",
        "timing",
        "habit_strength",
        "currency",
        "seed",
    )
    return {name: scope[name] for name in names}


def _summary_T(T: Any, n: int, func: str) -> Callable[..., NDArray[np.float64]]:
    if isinstance(T, tuple):
        if len(T) != 2 or not all(_is_number(v) for v in T) or not 0 <= T[0] < T[1] < math.inf:
            _fail("T", func, "a (low, high) range with 0 <= low < high", T)
        low, high = float(T[0]), float(T[1])
        return lambda rng, lo, hi: low + (high - low) * rng.random(hi - lo)
    if _is_number(T):
        value = _positive(T, "T", func)
        return lambda rng, lo, hi: np.full(hi - lo, value)
    try:
        values = np.asarray(T, dtype=np.float64)
    except (TypeError, ValueError):
        values = np.empty(0)
    if values.shape != (n,) or not np.all(np.isfinite(values)) or np.any(values < 0):
        _fail("T", func, f"a number > 0, a (low, high) range or {n} values >= 0", T)
    return lambda rng, lo, hi: values[lo:hi]


def _prepare_folder(folder: Path, *, overwrite: bool) -> Path:
    parts = folder / "transactions"
    old = sorted(parts.glob("part-*.parquet")) if parts.is_dir() else []
    old += [folder / f for f in ("customers.parquet", "spend.parquet", "truth.json")]
    old = [f for f in old if f.exists()]
    if old and not overwrite:
        raise InputError(
            f"The folder {str(folder)!r} already holds a simulation ({old[0].name} and "
            f"{len(old) - 1} more files); pass overwrite=True to replace it."
        )
    for f in old:
        f.unlink()
    parts.mkdir(parents=True, exist_ok=True)
    return folder


class _Discrete:
    """Inverse-CDF draws from a finite distribution, sped up by a guide table.

    A uniform ``u`` starts at the category of the left edge of its guide bin and moves up
    while it is at or past that category's upper edge. Few bins hold an edge, so one
    vectorised correction step (a few for tiny probabilities) makes the draw exact.
    """

    def __init__(self, weights: Sequence[float], bins: int = 4096) -> None:
        p = np.asarray(weights, dtype=np.float64)
        cum = np.cumsum(p / p.sum())
        cum[-1] = np.inf
        self.cum = cum
        self.bins = bins
        at = np.searchsorted(cum, np.arange(bins + 1) / bins, side="right")
        self.guide = at[:-1].astype(np.int16)
        self.steps = int(np.max(at[1:] - at[:-1]))

    def draw(self, u: NDArray[np.float64]) -> NDArray[np.int16]:
        """The categories (0-based codes) of uniforms ``u`` on ``[0, 1)``."""
        cat = np.take(self.guide, (u * self.bins).astype(np.intp))
        for _ in range(self.steps):
            cat += u >= np.take(self.cum, cat)
        return cat


def _mixture(
    u: NDArray[np.float64], habit: float, preferred: NDArray[np.int16], dist: _Discrete
) -> NDArray[np.int16]:
    """With probability ``habit`` the preferred value, else a draw from ``dist``.

    One uniform serves both choices: below ``habit`` it picks the habit, above it is
    rescaled into a fresh uniform for ``dist``.
    """
    if habit >= 1.0:
        return preferred.copy()
    if habit <= 0.0:
        return dist.draw(u)
    rest = (u - habit) * (1.0 / (1.0 - habit))
    np.clip(rest, 0.0, np.nextafter(1.0, 0.0), out=rest)
    return np.where(u < habit, preferred, dist.draw(rest))


class _Clock:
    """The seasonal warp between calendar days and business days, both counted from start.

    Business time runs at speed ``1 + A cos(2 pi (day - peak) / year)`` against the
    calendar. The way back to the calendar interpolates linearly in a table that is
    uniform in business time (a point per business hour), so it needs no search.
    """

    def __init__(self, start_us: int, end_us: int, amplitude: float) -> None:
        self.span = (end_us - start_us) / _DAY_US
        self.amplitude = amplitude
        self.origin = start_us / _DAY_US  # days since 1970-01-01
        self.b_end = float(self.business(np.array([self.span]))[0])
        if amplitude > 0:
            # Business time is strictly increasing in calendar time (speed >= 1 - A > 0), so
            # a fine calendar grid inverts it by interpolation.
            size = int(min(max(math.ceil(self.b_end * 24.0), 16), 2_000_000))
            fine = np.linspace(0.0, self.span, 4 * size + 1)
            self.size = size
            self.scale = size / self.b_end
            self.table = np.interp(np.arange(size + 1) / self.scale, self.business(fine), fine)
            self.slope = np.append(np.diff(self.table), 0.0)

    def _phase(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        return (2.0 * np.pi / DAYS_PER_YEAR) * (t + self.origin - SEASON_PEAK_DAY)

    def business(self, t: NDArray[np.float64]) -> NDArray[np.float64]:
        """Business days since start at calendar days ``t`` since start."""
        if self.amplitude == 0:
            return t
        omega = 2.0 * np.pi / DAYS_PER_YEAR
        zero = np.sin(self._phase(np.zeros(1)))
        return t + self.amplitude / omega * (np.sin(self._phase(t)) - zero)

    def calendar(self, b: NDArray[np.float64]) -> NDArray[np.float64]:
        """Calendar days since start at business days ``b`` since start."""
        if self.amplitude == 0:
            return b.copy()
        x = b * self.scale
        i = x.astype(np.intp)
        np.clip(i, 0, self.size, out=i)
        x -= i
        x *= np.take(self.slope, i)
        x += np.take(self.table, i)
        return x


class _Plan:
    """Validated settings of a business simulation and the lookup tables derived from them."""

    def __init__(
        self,
        func: str,
        *,
        start: Any,
        end: Any,
        model: str,
        params: Mapping[str, float] | None,
        spend_params: Mapping[str, float] | None,
        unit: TimeUnit | str,
        channels: Sequence[Channel] | None,
        return_rate: float,
        seasonality: float,
        timing: bool,
        habit_strength: float,
        currency: str,
        seed: int | None,
    ) -> None:
        self.model = _model(model, func)
        self.unit = _unit(unit, func)
        self.params = _params(params, self.model, self.unit, func)
        self.spend_params = _spend_params(spend_params, func)
        self.start = _timestamp(start, "start", func)
        self.end = _timestamp(end, "end", func)
        if self.end <= self.start:
            _fail("end", func, f"after start ({self.start})", end)
        chans = DEFAULT_CHANNELS if channels is None else channels
        if (
            isinstance(chans, Channel | str)
            or not isinstance(chans, Sequence)
            or not chans
            or not all(isinstance(c, Channel) for c in chans)
            or len({c.name for c in chans}) < len(chans)
        ):
            _fail("channels", func, "a non-empty sequence of Channel with distinct names", chans)
        self.channels: tuple[Channel, ...] = tuple(chans)
        self.return_rate = _number(
            return_rate, "return_rate", func, "in [0, 1)", lambda v: 0 <= v < 1
        )
        self.seasonality = _number(
            seasonality, "seasonality", func, "in [0, 1)", lambda v: 0 <= v < 1
        )
        if not isinstance(timing, bool | np.bool_):
            _fail("timing", func, "True or False", timing)
        self.timing = bool(timing)
        self.habit = _number(
            habit_strength, "habit_strength", func, "in [0, 1]", lambda v: 0 <= v <= 1
        )
        if not isinstance(currency, str) or not currency.strip():
            _fail("currency", func, "a non-empty currency code", currency)
        self.currency = currency.strip()
        self.seed = _seed(seed, func)
        self.start_us = _microseconds(self.start)
        self.end_us = _microseconds(self.end)
        self._derive()

    def _derive(self) -> None:
        chans = self.channels
        self.clock = _Clock(self.start_us, self.end_us, self.seasonality)
        self.unit_days = self.unit.days
        self.channel_dist = _Discrete([c.share for c in chans])
        self.purchase_rate = np.array([c.purchase_rate for c in chans])
        self.dropout = np.array([c.dropout for c in chans])
        self.spend_mult = np.array([c.spend for c in chans])
        names = [c.name for c in chans]
        self.channel_names = names + [n for n in REPEAT_CHANNELS if n not in names]
        codes = [self.channel_names.index(n) for n in REPEAT_CHANNELS]
        self.repeat_codes = np.array(codes, dtype=np.int16)
        self.repeat_dist = _Discrete(list(REPEAT_CHANNELS.values()))
        self.campaign_names = list(dict.fromkeys(n for c in chans for n in c.campaigns))
        counts = np.array([len(c.campaigns) for c in chans])
        self.campaign_count = counts
        self.campaign_start = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        flat = [self.campaign_names.index(n) for c in chans for n in c.campaigns]
        self.campaign_flat = np.array([*flat, -1], dtype=np.int16)
        # Spend slots: one per campaign of a paid channel, one for a paid channel without.
        slot_channel: list[int] = []
        slot_campaign: list[int] = []
        self.slot_start = np.full(len(chans), -1, dtype=np.int64)
        for i, c in enumerate(chans):
            if c.cpa > 0:
                self.slot_start[i] = len(slot_channel)
                codes = [self.campaign_names.index(n) for n in c.campaigns] or [-1]
                slot_channel += [i] * len(codes)
                slot_campaign += codes
        self.slot_channel = np.array(slot_channel, dtype=np.int64)
        self.slot_campaign = np.array(slot_campaign, dtype=np.int64)
        self.slot_cpa = np.array([chans[i].cpa for i in slot_channel], dtype=np.float64)
        self.n_slots = len(slot_channel)
        self.first_day = self.start_us // _DAY_US
        self.n_days = int((self.end_us - 1) // _DAY_US - self.first_day + 1)
        self.region_dist = _Discrete([v[0] for v in REGIONS.values()])
        self.region_mult = np.array([v[1] for v in REGIONS.values()])
        self.age_dist = _Discrete([v[0] for v in AGE_BANDS.values()])
        self.age_mult = np.array([v[1] for v in AGE_BANDS.values()])
        self.category_dist = _Discrete([v[0] for v in CATEGORIES.values()])
        self.margin = np.array([v[1] for v in CATEGORIES.values()])
        self.weekday_dist = _Discrete(WEEKDAY_PROFILE)
        self.hour_dist = _Discrete(HOUR_PROFILE)

    def rng(self, purpose: str, index: int = 0) -> np.random.Generator:
        """The random generator of one part of the simulation (a chunk's customers, ...)."""
        key = {"customers": 0, "orders": 1, "spend": 2, "pilot": 3}[purpose]
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(key, index)))

    def truth(self) -> dict[str, Any]:
        """Every parameter of the simulation, JSON-ready."""
        sp = self.spend_params
        shares = np.array([c.share for c in self.channels])
        channels = [
            {**c.to_dict(), "share": float(s)}
            for c, s in zip(self.channels, shares / shares.sum(), strict=True)
        ]
        return {
            "model": self.model,
            "unit": str(self.unit),
            "params": dict(self.params),
            "spend_params": dict(sp),
            "mean_spend": sp["p"] * sp["gamma"] / (sp["q"] - 1) if sp["q"] > 1 else None,
            "channels": channels,
            "repeat_channels": dict(REPEAT_CHANNELS),
            "categories": {k: {"share": s, "margin": m} for k, (s, m) in CATEGORIES.items()},
            "category_habit": CATEGORY_HABIT,
            "attribute_effects": {
                "region": {k: m for k, (_, m) in REGIONS.items()},
                "age_band": {k: m for k, (_, m) in AGE_BANDS.items()},
            },
            "attribute_shares": {
                "region": {k: s for k, (s, _) in REGIONS.items()},
                "age_band": {k: s for k, (s, _) in AGE_BANDS.items()},
            },
            "weekday_profile": list(WEEKDAY_PROFILE),
            "hour_profile": list(HOUR_PROFILE),
            "habit_strength": self.habit,
            "timing": self.timing,
            "seasonality": {"amplitude": self.seasonality, "peak": "12-05"},
            "return_rate": self.return_rate,
            "full_return_share": FULL_RETURN_SHARE,
            "return_days": list(RETURN_DAYS),
            "spend_noise_sigma": SPEND_SIGMA,
            "currency": self.currency,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "seed": self.seed,
        }

    # Column layouts: arrays, ("ts", int64 microseconds) or (codes, category names).
    def transaction_columns(self, tx: dict[str, NDArray[Any]]) -> dict[str, Any]:
        """The transaction table's columns, in order."""
        return {
            "order_id": tx["order_id"],
            "customer_id": tx["customer_id"],
            "timestamp": ("ts", tx["timestamp"]),
            "amount": tx["amount"],
            "quantity": tx["quantity"],
            "cost": tx["cost"],
            "channel": (tx["channel"], self.channel_names),
            "campaign": (tx["campaign"], self.campaign_names),
            "category": (tx["category"], list(CATEGORIES)),
            "currency": (np.zeros(tx["order_id"].size, np.int8), [self.currency]),
        }

    def customer_columns(
        self, drawn: dict[str, NDArray[Any]], chunk: _Chunk, customer_offset: int
    ) -> dict[str, Any]:
        """The customer table's columns, in order, one row per customer by acquisition."""
        latent = "p" if self.model == "bgnbd" else "mu"
        cu = {k: drawn[k] for k in (*_CUSTOMER_KEYS, latent)}
        cu.update(acquired_at=chunk.acquired, dropout_at=chunk.dropout_at)
        # Customers were drawn nearly in order of acquisition; put them exactly in it.
        if np.any(chunk.rank[1:] < chunk.rank[:-1]):
            cu = {k: np.take(v, chunk.rank) for k, v in cu.items()}
        n = chunk.rank.size
        return {
            "customer_id": customer_offset + 1 + np.arange(n, dtype=np.int64),
            "acquired_at": ("ts", cu["acquired_at"]),
            "acquisition_channel": (cu["channel"], [c.name for c in self.channels]),
            "acquisition_campaign": (cu["campaign"], self.campaign_names),
            "region": (cu["region"], list(REGIONS)),
            "age_band": (cu["age_band"], list(AGE_BANDS)),
            "preferred_weekday": cu["preferred_weekday"].astype(np.int8),
            "preferred_hour": cu["preferred_hour"].astype(np.int8),
            "preferred_category": (cu["preferred_category"], list(CATEGORIES)),
            "lam": cu["lam"],
            latent: cu[latent],
            "nu": cu["nu"],
            "mean_spend": self.spend_params["p"] / cu["nu"],
            "alive_at_end": cu["alive"],
            "dropout_at": ("ts", cu["dropout_at"]),
        }


def _frame(columns: dict[str, Any]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name, col in columns.items():
        if isinstance(col, tuple) and isinstance(col[0], str):
            data[name] = col[1].view("datetime64[us]")
        elif isinstance(col, tuple):
            ordered = name == "age_band"
            data[name] = pd.Categorical.from_codes(col[0], categories=col[1], ordered=ordered)
        else:
            data[name] = col
    return pd.DataFrame(data)


def _table(columns: dict[str, Any]) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for name, col in columns.items():
        if isinstance(col, tuple) and isinstance(col[0], str):
            arrays[name] = pa.array(col[1], type=pa.timestamp("us"), mask=col[1] == _NAT)
        elif isinstance(col, tuple):
            codes = np.asarray(col[0])
            if codes.dtype not in (np.int8, np.int16, np.int32):
                codes = codes.astype(np.int32)
            indices = pa.array(codes, mask=codes < 0)
            arrays[name] = pa.DictionaryArray.from_arrays(indices, pa.array(col[1], pa.string()))
        else:
            arrays[name] = pa.array(col)
    return pa.table(arrays)


def _part(folder: Path, index: int) -> Path:
    return folder / "transactions" / f"part-{index:05d}.parquet"


def _parquet_options(names: Sequence[str]) -> dict[str, Any]:
    """Encodings: dictionaries for labels and few-valued numbers, deltas for growing ids."""
    return {
        "use_dictionary": [c for c in names if c in _LABELS or c in _DICTIONARY],
        "column_encoding": {c: "DELTA_BINARY_PACKED" for c in names if c in _DELTA},
        "write_statistics": [c for c in names if c not in _LABELS],
    }


def _write(table: pa.Table, where: Path | pq.ParquetWriter) -> None:
    if isinstance(where, pq.ParquetWriter):
        where.write_table(table, row_group_size=1_000_000)
    else:
        pq.write_table(
            table, where, row_group_size=1_000_000, **_parquet_options(table.column_names)
        )


@dataclass
class _Chunk:
    """The orders of a chunk of customers, and what they tell about the customers."""

    transactions: dict[str, NDArray[Any]]  # emptied once written
    acquired: NDArray[np.int64]  # first order, microseconds
    dropout_at: NDArray[np.int64]  # microseconds, _NAT while alive
    rank: NDArray[np.int64]  # the customers in order of acquisition
    acquisitions: NDArray[np.int64]  # new customers per day and spend slot
    n_rows: int
    n_orders: int


def _run_chunk(
    plan: _Plan,
    customers: dict[str, Any],
    index: int,
    customer_offset: int,
    order_offset: int,
    folder: Path,
) -> _Chunk:
    """Simulate the orders of a chunk of customers and write them (in a worker or here)."""
    rng = plan.rng("orders", index)
    chunk = _simulate_orders(plan, customers, rng, customer_offset, order_offset)
    _write(_table(plan.transaction_columns(chunk.transactions)), _part(folder, index))
    chunk.transactions = {}
    return chunk


class _ChunkWriter:
    """Collects finished chunks in order: the customer table, counts and acquisitions."""

    def __init__(self, plan: _Plan, folder: Path) -> None:
        self.folder = folder
        self.files: list[Path] = []
        self.acquisitions = np.zeros((plan.n_days, plan.n_slots), dtype=np.int64)
        self.n_rows = self.n_orders = self.n_customers = 0
        self.writer: pq.ParquetWriter | None = None

    def add(self, plan: _Plan, customers: dict[str, Any], chunk: _Chunk) -> None:
        table = _table(plan.customer_columns(customers, chunk, self.n_customers))
        if self.writer is None:
            path = self.folder / "customers.parquet"
            options = _parquet_options(table.column_names)
            self.writer = pq.ParquetWriter(path, table.schema, **options)
        _write(table, self.writer)
        self.files.append(_part(self.folder, len(self.files)))
        self.acquisitions += chunk.acquisitions
        self.n_rows += chunk.n_rows
        self.n_orders += chunk.n_orders
        self.n_customers += table.num_rows
        logger.debug("Wrote chunk %d; %d rows so far.", len(self.files) - 1, self.n_rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _argsort_times(ts: NDArray[np.int64], origin: int) -> NDArray[np.int64]:
    """Stable argsort of int64 times >= origin, by sorting packed (time, index) keys."""
    n = ts.size
    if n == 0:
        return np.empty(0, np.int64)
    rel = ts - origin
    index_bits = max(1, (n - 1).bit_length())
    time_bits = max(1, int(rel.max()).bit_length())
    shift = max(0, time_bits + index_bits - 63)
    if shift:
        rel >>= shift
    rel <<= index_bits
    rel |= np.arange(n, dtype=np.int64)
    rel.sort()
    rel &= (1 << index_bits) - 1
    if shift:  # times closer than 2**shift microseconds may be out of order: fix them
        in_order = np.take(ts, rel)
        if np.any(in_order[1:] < in_order[:-1]):
            rel = rel[np.argsort(in_order, kind="stable")]
    return rel


def _first_order_statistics(
    rng: np.random.Generator,
    events: NDArray[np.int64],
    keep: NDArray[np.int64],
    window: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The first ``keep[i]`` of ``events[i]`` sorted uniforms on ``(0, window[i])``, per customer.

    Uses ``log(1 - U_(k) / w) = sum_{j<k} log(V_j) / (N - j)`` with ``V_j`` uniform (a
    cumulative sum restarted at every customer), so only the kept values are drawn.
    """
    total = int(keep.sum())
    if total == 0:
        return np.empty(0)
    some = keep > 0
    starts = (np.cumsum(keep) - keep)[some]
    # N - j for the j-th (from 0) kept value of each customer.
    left = np.repeat(events[some] + starts, keep[some]) - np.arange(total)
    terms = rng.standard_exponential(total)  # -log(V)
    terms /= left
    terms *= -1.0
    # Restart the running sum at each customer: its first term cancels the previous
    # customer's total, so the sum never grows large and keeps its precision.
    if starts.size > 1:
        sums = np.add.reduceat(terms, starts)
        terms[starts[1:]] -= sums[:-1]
    running = np.cumsum(terms)
    np.expm1(running, out=running)
    running *= -1.0
    running *= np.repeat(window[some], keep[some])
    return running


def _draw_customers(plan: _Plan, n: int, rng: np.random.Generator) -> dict[str, Any]:
    """Customers, their latent values and repeat-purchase counts: the first draws of a chunk."""
    clock = plan.clock
    prm = plan.params
    sp = plan.spend_params
    # Drawn in order of (business) acquisition time.
    b_acq = np.sort(rng.random(n)) * clock.b_end
    channel = plan.channel_dist.draw(rng.random(n))
    count = plan.campaign_count[channel]
    local = np.minimum((rng.random(n) * count).astype(np.int64), np.maximum(count - 1, 0))
    campaign = plan.campaign_flat[plan.campaign_start[channel] + local]
    campaign[count == 0] = -1
    slot = np.where(plan.slot_start[channel] >= 0, plan.slot_start[channel] + local, -1)
    region = plan.region_dist.draw(rng.random(n))
    age = plan.age_dist.draw(rng.random(n))
    window = (clock.b_end - b_acq) / plan.unit_days
    lam = rng.standard_gamma(prm["r"], n) * plan.purchase_rate[channel] / prm["alpha"]
    c: dict[str, Any] = {}
    if plan.model == "bgnbd":
        p = rng.beta(prm["a"], prm["b"] / plan.dropout[channel])
        events = rng.poisson(lam * window)
        death = rng.geometric(np.clip(p, _P_FLOOR, 1.0))
        c.update(p=p, repeats=np.minimum(events, death), alive=events < death, horizon=window)
    else:
        mu = rng.standard_gamma(prm["s"], n) * plan.dropout[channel] / prm["beta"]
        tau = rng.standard_exponential(n) / mu
        horizon = np.minimum(tau, window)
        events = rng.poisson(lam * horizon)
        c.update(mu=mu, tau=tau, repeats=events, alive=tau > window, horizon=horizon)
    multiplier = plan.spend_mult[channel] * plan.region_mult[region] * plan.age_mult[age]
    c.update(
        b_acq=b_acq,
        channel=channel,
        campaign=campaign,
        slot=slot,
        region=region,
        age_band=age,
        lam=lam,
        events=events,
        nu=rng.standard_gamma(sp["q"], n) / sp["gamma"] / multiplier,
        preferred_weekday=plan.weekday_dist.draw(rng.random(n)),
        preferred_hour=plan.hour_dist.draw(rng.random(n)),
        preferred_category=plan.category_dist.draw(rng.random(n)),
    )
    return c


def _simulate_orders(
    plan: _Plan,
    c: dict[str, Any],
    rng: np.random.Generator,
    customer_offset: int,
    order_offset: int,
) -> _Chunk:
    """All orders and returns of the customers ``c`` drawn by :func:`_draw_customers`."""
    n = c["b_acq"].size
    repeat_t = _first_order_statistics(rng, c["events"], c["repeats"], c["horizon"])

    # Purchase times, customer by customer: the acquisition purchase, then the repeats.
    per_customer = c["repeats"] + 1
    total = int(per_customer.sum())
    first = np.cumsum(per_customer) - per_customer
    b_all = np.repeat(c["b_acq"], per_customer)
    is_repeat = np.ones(total, bool)
    is_repeat[first] = False
    repeat_t *= plan.unit_days
    b_all[is_repeat] += repeat_t
    del repeat_t, is_repeat
    ts = plan.clock.calendar(b_all)
    ts *= _DAY_US
    ts = np.floor(ts).astype(np.int64)
    ts += plan.start_us
    np.clip(ts, plan.start_us, plan.end_us - 1, out=ts)
    del b_all
    if plan.timing:
        ts = _move_in_week(plan, rng, ts, per_customer, c)

    # The earliest purchase of each customer is its acquisition order.
    acquired = np.minimum.reduceat(ts, first)
    last = np.maximum.reduceat(ts, first)
    is_first = ts == np.repeat(acquired, per_customer)
    if int(np.count_nonzero(is_first)) > n:  # two purchases in the same microsecond
        at = np.flatnonzero(is_first)
        owner_at = np.searchsorted(first, at, side="right")
        is_first[at[1:][owner_at[1:] == owner_at[:-1]]] = False

    # Orders in order of time; what is drawn per order is drawn in that order.
    perm = _argsort_times(ts, plan.start_us)
    ts = np.take(ts, perm)
    owner = np.take(np.repeat(np.arange(n), per_customer), perm)
    firsts = np.flatnonzero(np.take(is_first, perm))
    del perm, is_first
    first_owner = np.take(owner, firsts)
    order_channel = np.take(plan.repeat_codes, plan.repeat_dist.draw(rng.random(total)))
    order_channel[firsts] = np.take(c["channel"], first_owner)
    order_campaign = np.full(total, -1, dtype=np.int16)
    order_campaign[firsts] = np.take(c["campaign"], first_owner)
    habit = np.take(c["preferred_category"], owner)
    category = _mixture(rng.random(total), CATEGORY_HABIT, habit, plan.category_dist)
    del habit
    amount = rng.standard_gamma(plan.spend_params["p"], total)
    amount /= np.take(c["nu"], owner)
    np.round(amount, 2, out=amount)
    np.maximum(amount, 0.01, out=amount)
    quantity = (rng.random(total) * amount * (1.0 / ITEM_PRICE)).astype(np.int64)
    quantity += 1
    cost = rng.standard_normal(total)
    cost *= COST_SIGMA
    cost += 1.0
    cost *= 1.0 - np.take(plan.margin, category)
    cost *= amount
    np.round(cost, 2, out=cost)

    # Customers numbered in order of acquisition.
    rank = _argsort_times(acquired, plan.start_us)
    customer_id = np.empty(n, np.int64)
    customer_id[rank] = customer_offset + 1 + np.arange(n, dtype=np.int64)
    orders = {
        "order_id": order_offset + 1 + np.arange(total, dtype=np.int64),
        "customer_id": np.take(customer_id, owner),
        "timestamp": ts,
        "amount": amount,
        "quantity": quantity,
        "cost": cost,
        "channel": order_channel,
        "campaign": order_campaign,
        "category": category,
    }
    del owner, ts, amount, quantity, cost, order_channel, order_campaign, category
    transactions = _with_returns(plan, rng, orders)
    del orders

    # When customers left.
    dropout_at = np.full(n, _NAT, dtype=np.int64)
    dead = np.flatnonzero(~c["alive"])
    if plan.model == "bgnbd":
        dropout_at[dead] = last[dead]  # right after the last purchase, the one it left after
    else:
        b_death = c["b_acq"][dead] + c["tau"][dead] * plan.unit_days
        t_death = np.floor(plan.clock.calendar(b_death) * _DAY_US).astype(np.int64)
        dropout_at[dead] = np.maximum(t_death + plan.start_us, last[dead])

    # New customers per day and spend slot, for the marketing-spend table.
    paid = c["slot"] >= 0
    day = acquired[paid] // _DAY_US - plan.first_day
    acquisitions = np.bincount(
        day * plan.n_slots + c["slot"][paid], minlength=plan.n_days * plan.n_slots
    ).reshape(plan.n_days, plan.n_slots)

    n_rows = transactions["order_id"].size
    return _Chunk(transactions, acquired, dropout_at, rank, acquisitions, n_rows, total)


def _move_in_week(
    plan: _Plan,
    rng: np.random.Generator,
    raw: NDArray[np.int64],
    per_customer: NDArray[np.int64],
    c: dict[str, Any],
) -> NDArray[np.int64]:
    """Move each purchase to a weekday and hour within its calendar week (Monday to Sunday)."""
    total = raw.size
    day = raw // _DAY_US
    day -= (day + 3) % 7  # the week's Monday; 1970-01-01 was a Thursday
    habit = np.repeat(c["preferred_weekday"], per_customer)
    day += _mixture(rng.random(total), plan.habit, habit, plan.weekday_dist)
    habit = np.repeat(c["preferred_hour"], per_customer)
    hour = _mixture(rng.random(total), plan.habit, habit, plan.hour_dist).astype(np.int64)
    del habit
    moved = rng.integers(0, _HOUR_US, total)
    hour *= _HOUR_US
    moved += hour
    day *= _DAY_US
    moved += day
    del day, hour
    # In a week cut by start or end: same weekday and hour of the neighbouring week.
    week = 7 * _DAY_US
    moved[moved < plan.start_us] += week
    moved[moved >= plan.end_us] -= week
    outside = (moved < plan.start_us) | (moved >= plan.end_us)
    moved[outside] = raw[outside]
    return moved


def _with_returns(
    plan: _Plan, rng: np.random.Generator, orders: dict[str, NDArray[Any]]
) -> dict[str, NDArray[Any]]:
    """Add a return row for each returned order, merged into time order."""
    total = orders["order_id"].size
    which = np.flatnonzero(rng.random(total) < plan.return_rate)
    qty = orders["quantity"][which]
    full = (rng.random(which.size) < FULL_RETURN_SHARE) | (qty == 1)
    back = np.where(full, qty, rng.integers(1, np.maximum(qty, 2)))
    amount = orders["amount"][which]
    cost = orders["cost"][which]
    share = back / qty
    ret = {k: v[which] for k, v in orders.items()}
    ret["amount"] = -np.where(full, amount, np.clip(np.round(amount * share, 2), 0.01, amount))
    ret["cost"] = -np.where(full, cost, np.round(cost * share, 2))
    ret["quantity"] = -back
    low, high = RETURN_DAYS
    ret["timestamp"] += rng.integers(low * _DAY_US, high * _DAY_US + 1, which.size)
    keep = np.flatnonzero(ret["timestamp"] < plan.end_us)  # later returns have not happened
    keep = keep[_argsort_times(ret["timestamp"][keep], plan.start_us)]
    ret = {k: v[keep] for k, v in ret.items()}
    # A return goes after every order of the same or an earlier time.
    at = np.searchsorted(orders["timestamp"], ret["timestamp"], side="right")
    at += np.arange(at.size)
    is_order = np.ones(total + at.size, bool)
    is_order[at] = False
    out: dict[str, NDArray[Any]] = {}
    for k, v in orders.items():
        out[k] = np.empty(total + at.size, dtype=v.dtype)
        out[k][at] = ret[k]
        out[k][is_order] = v
    return out


def _spend_columns(plan: _Plan, acquisitions: NDArray[np.int64]) -> dict[str, Any]:
    """Daily marketing spend per paid channel and campaign: new customers x cpa x noise."""
    rng = plan.rng("spend")
    n_days, n_slots = acquisitions.shape
    noise = rng.lognormal(-0.5 * SPEND_SIGMA**2, SPEND_SIGMA, size=(n_days, n_slots))
    spend = np.round(acquisitions * plan.slot_cpa[None, :] * noise, 2).ravel()
    days = np.repeat(plan.first_day + np.arange(n_days, dtype=np.int64), n_slots)
    return {
        "date": ("ts", days * _DAY_US),
        "channel": (np.tile(plan.slot_channel, n_days), [c.name for c in plan.channels]),
        "campaign": (np.tile(plan.slot_campaign, n_days), plan.campaign_names),
        "spend": spend,
    }
