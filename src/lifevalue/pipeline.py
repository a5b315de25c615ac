"""The one road: configuration in, every table of the analysis out.

``run_analysis(config)`` validates the transaction log, summarises customers as of the
scoring date, picks the transaction model on the last stretch of history (or takes the
one configured), fits it and the spend model, scores every customer (net-profit CLV with
intervals), and decides: value tiers, RFM segments, lifecycle states, offers, and the
acquisition economics when a marketing-spend table is given. The CLI, the reports and
the service call it; none of them re-implements a step.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from lifevalue.config import Config
from lifevalue.data import Engine, summarize, validate_transactions
from lifevalue.data.fingerprint import data_fingerprint
from lifevalue.data.timing import purchase_timing
from lifevalue.data.tracking import cohort_value, daily_occasions
from lifevalue.data.validate import ValidatedTransactions, ValidationReport
from lifevalue.errors import InputError
from lifevalue.models import BaseModel, GammaGammaModel, model_class
from lifevalue.models._repeat import RepeatPurchaseModel
from lifevalue.models.compare import (
    DEFAULT_MODELS,
    compare_models,
    holdout_by_frequency,
    tracking,
)
from lifevalue.value import (
    OfferPolicy,
    Profit,
    acquisition_economics,
    breakdown,
    lifecycle_states,
    rfm_segments,
    score_customers,
    value_concentration,
    value_tiers,
)
from lifevalue.value.drivers import group_differences, permutation_importance_table
from lifevalue.value.forecast import revenue_forecast
from lifevalue.value.leads import DEFAULT_ATTRIBUTES, NewCustomerScores, score_new_customers
from lifevalue.value.timing import (
    best_contact_times,
    churn_triggers,
    contact_plan,
    peak_periods,
)

logger = logging.getLogger(__name__)

Step = Callable[[str], None]
#: Attributes broken down in the segments table when the scores have them.
BREAKDOWN_ATTRIBUTES: tuple[str, ...] = (
    "value_tier",
    "segment",
    "lifecycle_state",
    "acquisition_channel",
    "region",
    "age_band",
)
#: Customer-table columns with at most this many values are broken down too (any region,
#: segment or plan a business keeps); more values than this are not groups.
MAX_BREAKDOWN_GROUPS = 50


@dataclass
class AnalysisResult:
    """Everything one run produced.

    Attributes
    ----------
    as_of
        The scoring date (the end of the calibration period).
    validation
        What validation found: rows read, accepted and quarantined per reason.
    scores
        One row per customer: the score fields, ``value_tier``, ``segment``,
        ``lifecycle_state``, ``offers`` and the customer's history and attributes.
    tables
        Every output table by name: ``scores``, ``segments`` (breakdowns), ``concentration``,
        ``offers``, ``model_comparison``, ``acquisition`` (with a spend table), ...
    transaction_model, spend_model
        The fitted models.
    settings
        The settings that shaped the numbers (model, unit, margins, discount rate, horizon...).
    config
        The whole configuration, as plain data.
    fingerprint
        A digest of the accepted transactions (:func:`lifevalue.data.fingerprint.data_fingerprint`).
    """

    as_of: str
    validation: ValidationReport
    scores: pd.DataFrame
    tables: dict[str, pd.DataFrame]
    transaction_model: BaseModel
    spend_model: BaseModel | None
    settings: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def headline(self) -> dict[str, Any]:
        """The figures a manager reads first.

        ``ltv_cac`` is blended over the paid channels: the lifetime value of the customers
        they bought over the whole spend (NaN without a spend table).
        """
        scores = self.scores
        total_future = float(scores["predicted_clv"].sum())
        top = scores["predicted_clv"].nlargest(max(1, round(0.2 * len(scores)))).sum()
        return {
            "as_of": self.as_of,
            "customers": len(scores),
            "active_customers": int((scores["p_alive"] >= 0.5).sum()),
            "customer_equity": float(scores["total_clv"].sum()),
            "predicted_value": total_future,
            "predicted_value_low": float(scores["predicted_clv_low"].sum()),
            "predicted_value_high": float(scores["predicted_clv_high"].sum()),
            "mean_predicted_clv": float(scores["predicted_clv"].mean()),
            "top_20_percent_share": float(top / total_future) if total_future else float("nan"),
            "ltv_cac": self._blended_ltv_cac(),
            "transaction_model": self.transaction_model.model_name,
        }

    def _blended_ltv_cac(self) -> float:
        """Lifetime value of the customers that paid channels bought over all they cost.

        NaN without a marketing-spend table or without spend.
        """
        table = self.tables.get("acquisition")
        if table is None:
            return float("nan")
        paid = table["marketing_spend"] > 0
        spent = float(table.loc[paid, "marketing_spend"].sum())
        bought = (table["mean_lifetime_clv"] * table["new_customers"])[paid].sum()
        return float(bought / spent) if spent > 0 else float("nan")

    def write(self, out: str | Path) -> dict[str, Path]:
        """Write every table as Parquet and CSV, all in ``lifevalue.duckdb``, and the models.

        Returns the paths written, by name.
        """
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        database = out / "lifevalue.duckdb"
        database.unlink(missing_ok=True)
        con = duckdb.connect(str(database))
        try:
            for name, table in self.tables.items():
                flat = flat_table(table)
                flat.to_parquet(out / f"{name}.parquet", index=False)
                flat.to_csv(out / f"{name}.csv", index=False)
                con.register("frame", flat)
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
                con.unregister("frame")
                written[name] = out / f"{name}.parquet"
        finally:
            con.close()
        written["database"] = database
        written["transaction_model"] = self.transaction_model.save(out / "transaction_model.json")
        if self.spend_model is not None:
            written["spend_model"] = self.spend_model.save(out / "spend_model.json")
        (out / "run.json").write_text(
            json.dumps(
                {
                    "headline": self.headline(),
                    "validation": self.validation.as_dict(),
                    "settings": self.settings,
                    "fingerprint": self.fingerprint,
                    "config": self.config,
                },
                indent=2,
                default=str,
            )
        )
        written["run"] = out / "run.json"
        return written


def validate_configured(
    config: Config, *, observation_end: str, engine: Engine | None = None
) -> ValidatedTransactions:
    """Validate the configuration's transaction log up to ``observation_end``.

    With the ``[data]`` section's columns, date format, returns and duplicates policies,
    currency and CSV options, on ``engine`` (default: one built from ``[engine]``).
    """
    data = config.data
    return validate_transactions(
        data.source,
        columns=data.columns,
        date_format=data.date_format,
        observation_end=observation_end,
        returns=data.returns,
        duplicates=data.duplicates,
        currency=data.currency,
        csv_options=data.csv,
        engine=engine or configured_engine(config),
    )


def scoring_date(config: Config) -> str:
    """The configuration's scoring date, after checking it has a source to score.

    ``[summary] calibration_end``, else ``[data] observation_end``.

    Raises
    ------
    InputError
        When the configuration has no ``[data] source`` or no scoring date.
    """
    if not config.data.source:
        raise InputError("The configuration has no [data] source: the transaction log to read.")
    as_of = config.summary.calibration_end or config.data.observation_end
    if not as_of:
        raise InputError(
            "No scoring date: set calibration_end in [summary] (or observation_end in [data])."
        )
    return as_of


def configured_engine(config: Config) -> Engine:
    """The SQL engine the ``[engine]`` section describes."""
    return Engine(
        database=config.engine.database,
        memory_limit=config.engine.memory_limit,
        threads=config.engine.threads,
    )


def run_analysis(
    config: Config, *, engine: Engine | None = None, step: Step | None = None
) -> AnalysisResult:
    """Run the whole analysis the configuration describes.

    Parameters
    ----------
    config
        The configuration (``Config.from_toml("lifevalue.toml")``). The scoring date is
        ``[summary] calibration_end``, else ``[data] observation_end``; transactions after
        it are quarantined and counted.
    engine
        The SQL engine; by default one built from ``[engine]``.
    step
        Called with the name of each step as it starts (for progress displays).

    Raises
    ------
    InputError
        When the configuration lacks a source or a scoring date, or names a missing file.
    """
    say = step or (lambda label: logger.info("%s", label))
    value = config.value
    as_of = scoring_date(config)
    # Read before the long steps, so a bad table fails at once.
    prospects = _read_prospects(value.prospects) if value.prospects else None
    say("Validating transactions")
    validated = validate_configured(config, observation_end=as_of, engine=engine)
    unit = config.summary.unit
    say("Summarising customers")
    summary = summarize(
        validated,
        calibration_end=as_of,
        unit=unit,
        occasion_period=config.summary.occasion_period,
        acquisition=True,
        category_margins=value.category_margins,
        default_margin_rate=value.margin_rate if value.category_margins else None,
    ).to_pandas()
    tables: dict[str, pd.DataFrame] = {}
    say("Testing the transaction models on the last weeks of history")
    name, checks = _holdout_checks(validated, as_of, config)
    tables.update(checks)
    say(f"Fitting the {name} and spend models")
    transactions = model_class(name)().fit(summary)
    spend = GammaGammaModel().fit(summary) if (summary["frequency"] > 0).sum() >= 10 else None
    say("Scoring customers")
    scores = score_customers(
        summary,
        transactions,
        spend,
        profit=Profit(margin_rate=value.margin_rate, cost_to_serve=value.cost_to_serve),
        horizon=value.horizon_months,
        horizon_unit="months",
        annual_discount_rate=value.annual_discount_rate,
        level=value.level,
        currency=validated.report.currency,
    )
    scores, attributes = _with_attributes(scores, value.customers)
    say("Segmenting and deciding")
    scores = scores.assign(
        value_tier=value_tiers(scores, cuts=value.tiers, labels=tier_labels(value.tiers)),
        segment=rfm_segments(scores),
        lifecycle_state=lifecycle_states(scores),
    )
    policy = (
        OfferPolicy.from_toml(value.policy, fields=scores.columns)
        if value.policy
        else OfferPolicy.default(fields=scores.columns)
    )
    offers = policy.evaluate(scores)
    # The granted offers of each customer, in rank order; "" for none.
    granted = offers.dropna(subset=["offer"]).groupby("customer_id", sort=False)["offer"]
    scores = scores.assign(offers=granted.agg("; ".join).reindex(scores.index).fillna(""))
    say("Timing contacts")
    timing = purchase_timing(validated, until=as_of)
    best = best_contact_times(timing.customers, timing.population)
    scores = scores.join(best[["best_contact_weekday", "best_contact_hour"]], how="left")
    tables["peak_periods"] = peak_periods(timing.population)
    tables["churn_triggers"] = churn_triggers(scores)
    tables["contact_plan"] = contact_plan(scores, scores["value_tier"])
    say("Forecasting the existing customers' revenue")
    tables["forecast"] = revenue_forecast(
        summary,
        transactions,
        spend,
        periods=12,
        period="months",
        margin=pd.Series(scores["margin_share"].to_numpy(), index=summary["customer_id"]),
        level=value.level,
    ).reset_index()
    tables["scores"] = scores
    tables["segments"] = pd.concat(
        [
            breakdown(scores, attribute).reset_index().rename(columns={attribute: "group"})
            .assign(attribute=attribute)
            for attribute in dict.fromkeys((*BREAKDOWN_ATTRIBUTES, *attributes))
            if attribute in scores.columns
        ],
        ignore_index=True,
    )  # fmt: skip
    tables["concentration"] = value_concentration(scores)
    tables["cohort_value"] = cohort_value(validated, until=as_of, margin_rate=value.margin_rate)
    drivers = [c for c in ("acquisition_channel", "region", "age_band") if c in scores.columns]
    if drivers:
        tables["drivers"] = group_differences(scores, drivers)
    tables["offers"] = offers
    say("Scoring new customers with the lead model")
    new = _new_customers(validated, scores, as_of, value.margin_rate, prospects)
    if new is not None and new.prospects is not None:
        tables["prospects"] = new.prospects
    if new is not None:
        # Customers whose every purchase was returned have no score and no place on a
        # lead list.
        tables["leads"] = new.leads.join(scores[["predicted_clv", "p_alive"]], how="inner")
        if new.validation is not None:
            tables["lead_validation"] = new.validation.rename("value").reset_index()
        checked = new.out_of_time
        if checked is not None and new.features is not None:
            # What drives a new customer's value: the lead model's permutation importance
            # on the out-of-time test cohorts, which it was not trained on.
            tested = checked.predictions
            tables["lead_drivers"] = permutation_importance_table(
                checked.model, new.features.loc[tested.index], tested["actual"]
            )
    if value.spend:
        say("Valuing acquisition channels")
        spend_table = _read_table(value.spend, "marketing spend")
        keys = [k for k in ("acquisition_channel", "acquisition_campaign") if k in scores.columns]
        if keys:
            lead_values = None if new is None else new.values
            # Per channel, per channel and campaign, and per channel and month acquired
            # (the spend of a month bought that month's customers).
            groupings = {"acquisition": keys[:1]}
            if len(keys) > 1:
                groupings["acquisition_campaigns"] = keys
            groupings["acquisition_months"] = [keys[0], "acquisition_month"]
            for table_name, by in groupings.items():
                tables[table_name] = acquisition_economics(
                    scores, spend_table, by=by, new_customer_values=lead_values
                )
    return AnalysisResult(
        as_of=str(pd.Timestamp(as_of).date()),
        validation=validated.report,
        scores=scores,
        tables=tables,
        transaction_model=transactions,
        spend_model=spend,
        settings={
            "transaction_model": name,
            "unit": unit,
            "margin_rate": value.margin_rate,
            "cost_to_serve": value.cost_to_serve,
            "annual_discount_rate": value.annual_discount_rate,
            "horizon_months": value.horizon_months,
            "tiers": list(value.tiers),
            "policy": value.policy or "default",
        },
        config=dataclasses.asdict(config),
        fingerprint=data_fingerprint(validated),
    )


def _holdout_checks(
    validated: Any, as_of: str, config: Config
) -> tuple[str, dict[str, pd.DataFrame]]:
    """The transaction model to use, and how it did on the last ``holdout_weeks``.

    The models are fitted on the history before the last ``holdout_weeks`` and measured on
    those weeks: with ``transaction_model = "auto"`` the best by holdout MAE is chosen.
    The chosen model's holdout by calibration frequency and its week-by-week tracking of
    the base's repeat purchases go into the result, so readers can see how far to trust it.
    """
    name = config.models.transaction_model
    cut = pd.Timestamp(as_of) - pd.Timedelta(weeks=config.models.holdout_weeks)
    tables: dict[str, pd.DataFrame] = {}
    try:
        holdout = summarize(
            validated, calibration_end=str(cut.date()), unit=config.summary.unit
        ).to_pandas()
        if name == "auto":
            result = compare_models(holdout, models=DEFAULT_MODELS)
            name, model = result.best, result.models[result.best]
            tables["model_comparison"] = result.table.reset_index()
        else:
            model = model_class(name)().fit(holdout)
    except InputError as exc:
        # Too little history before the cut: no holdout check, the BG/NBD when choosing.
        logger.warning("Holdout check skipped (%s).", exc)
        return ("bgnbd" if name == "auto" else name), tables
    if isinstance(model, RepeatPurchaseModel):
        tables["holdout_by_frequency"] = holdout_by_frequency(model, holdout)
        daily = daily_occasions(validated, born_by=cut)
        tables["holdout_tracking"] = tracking(model, daily, calibration_end=cut)
    return name, tables


def _new_customers(
    validated: Any,
    scores: pd.DataFrame,
    as_of: str,
    margin_rate: float,
    prospects: pd.DataFrame | None,
) -> NewCustomerScores | None:
    """The lead model's value of the customers acquired in the last 90 days and prospects."""
    attributes = [c for c in DEFAULT_ATTRIBUTES if c in scores.columns]
    return score_new_customers(
        validated,
        scores[attributes] if attributes else None,
        # The scoring day counts in full, as in the summaries: the moment after it.
        as_of=pd.Timestamp(as_of) + pd.Timedelta(days=1),
        value="margin" if "margin" in validated.roles else "revenue",
        margin_rate=margin_rate,
        prospects=prospects,
    )


#: Columns a prospects table may use for its ids, in order of preference.
PROSPECT_IDS: tuple[str, ...] = ("prospect_id", "lead_id", "customer_id")


def _read_prospects(path: str) -> pd.DataFrame:
    """The prospects table, indexed by its id column."""
    table = _read_table(path, "prospects")
    found = next((c for c in PROSPECT_IDS if c in table.columns), None)
    if found is None:
        raise InputError(
            f"The prospects table {path!r} needs an id column, one of "
            f"{', '.join(PROSPECT_IDS)}; found {', '.join(map(str, table.columns))}."
        )
    duplicated = table[found].duplicated()
    if duplicated.any():
        raise InputError(
            f"The prospects table {path!r} has {int(duplicated.sum())} repeated {found}s "
            f"(first: {table.loc[duplicated, found].iloc[0]!r}); each prospect needs one row."
        )
    return table.set_index(found)


def tier_labels(cuts: tuple[float, ...]) -> tuple[str, ...]:
    """Names of the value tiers for ``cuts``, best first.

    Always ``top`` first and ``low`` last, so the default offer policy and contact plan,
    which speak of ``top``, ``high``, ``medium`` and ``low``, fit any number of tiers:
    one cut gives top / low, two top / high / low, three (the default) top / high /
    medium / low; more add ``medium-low`` tiers (numbered from the sixth tier on).
    """
    n = len(cuts) + 1
    if n <= 4:
        return (*("top", "high", "medium")[: n - 1], "low")
    extra = n - 4
    lower = ["medium-low"] if extra == 1 else [f"medium-low {i + 1}" for i in range(extra)]
    return ("top", "high", "medium", *lower, "low")


def _with_attributes(scores: pd.DataFrame, path: str | None) -> tuple[pd.DataFrame, list[str]]:
    """The scores with the acquisition month and the customers table's columns joined.

    Also returns the joined attribute columns that name groups (at most
    :data:`MAX_BREAKDOWN_GROUPS` distinct values), to be broken down like the built-in ones.
    """
    if "first_purchase_date" in scores.columns:
        months = pd.to_datetime(scores["first_purchase_date"]).dt.to_period("M").astype(str)
        scores = scores.assign(acquisition_month=months)
    if not path:
        return scores, []
    customers = _read_table(path, "customers")
    if "customer_id" not in customers.columns:
        raise InputError(f"The customers table {path!r} has no customer_id column.")
    customers = customers.astype({"customer_id": scores.index.dtype}, errors="ignore")
    extra = [c for c in customers.columns if c != "customer_id" and c not in scores.columns]
    attrs = scores.attrs
    joined = scores.join(customers.set_index("customer_id")[extra], how="left")
    joined.attrs = attrs
    groups = [c for c in extra if joined[c].nunique() <= MAX_BREAKDOWN_GROUPS]
    return joined, groups


def _read_table(path: str, what: str) -> pd.DataFrame:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"The {what} file {path!r} does not exist.")
    if file.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(file)
    return pd.read_csv(file)


def flat_table(table: pd.DataFrame) -> pd.DataFrame:
    """A table with its index as columns and types every output format takes."""
    flat = (
        table.reset_index() if table.index.name or isinstance(table.index, pd.MultiIndex) else table
    )
    flat = flat.copy()
    for column in flat.columns:
        if isinstance(flat[column].dtype, pd.CategoricalDtype | pd.PeriodDtype):
            flat[column] = flat[column].astype(str)
    return flat
