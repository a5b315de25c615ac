"""The HTML report: one self-contained page for a manager.

:func:`write_report` lays a run out as plain-language sections (what the customers are
worth, what the next months should bring, where the value sits, who is at risk, what the
channels earn, when to reach customers, how far to trust the figures, how they have moved)
with the figures inline as PNG data URIs. The page loads nothing from anywhere: no link,
script, font or image outside the file. Its layout is the Jinja2 template
``report.html.j2`` beside this module; this module only picks and formats the run's
figures.
"""

from __future__ import annotations

import base64
import io
import logging
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lifevalue.report import plots
from lifevalue.report._common import (
    chosen_comparison,
    currency,
    latest_per_as_of,
    money,
    table,
    tier_rows,
)
from lifevalue.store.run import StoredRun

__all__ = ["MODEL_NAMES", "render_report", "write_report"]

logger = logging.getLogger(__name__)

#: How the report names the transaction models.
MODEL_NAMES: dict[str, str] = {
    "bgnbd": "BG/NBD",
    "mbgnbd": "MBG/NBD",
    "pnbd": "Pareto/NBD",
    "bgbb": "BG/BB",
    "sbg": "shifted beta-geometric",
}
#: At-risk customers listed by name.
TOP_AT_RISK = 10


def write_report(
    run: StoredRun,
    path: str | Path,
    *,
    trends: pd.DataFrame | None = None,
    backtests: pd.DataFrame | None = None,
) -> Path:
    """Write the run's HTML report, one self-contained file.

    Parameters
    ----------
    run
        The stored run (:class:`~lifevalue.store.run.StoredRun`).
    path
        The ``.html`` file to write (its folder is created if needed).
    trends
        The run history's trends table (:meth:`RunStore.trends`); the "how this has moved"
        section appears when it spans two scoring dates or more.
    backtests
        The latest backtests (:meth:`RunStore.backtests`), for "how far to trust this".

    Returns
    -------
    pathlib.Path
        The file written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(run, trends=trends, backtests=backtests), encoding="utf-8")
    logger.info("Report of run %s written to %s", run.run_id, path)
    return path


def render_report(
    run: StoredRun,
    *,
    trends: pd.DataFrame | None = None,
    backtests: pd.DataFrame | None = None,
) -> str:
    """The report's HTML text (see :func:`write_report`)."""
    names = plots.available(run, trends=trends, backtests=backtests)
    images = {
        name: _data_uri(plots.draw(name, run, trends=trends, backtests=backtests)) for name in names
    }
    # Absent figures read as "" so that the template can test for them.
    images = defaultdict(str, images)
    context = _Context(run).build(trends, backtests)
    environment = jinja2.Environment(
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    template = resources.files("lifevalue.report").joinpath("report.html.j2").read_text("utf-8")
    return environment.from_string(template).render(**context, images=images)


def _data_uri(fig: Figure) -> str:
    """A figure as a PNG data URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pct(value: Any, digits: int = 0) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):.{digits}%}"


def _count(value: Any) -> str:
    return "-" if value is None or pd.isna(value) else f"{float(value):,.0f}"


def _number(value: Any, digits: int = 1) -> str:
    if value is None or pd.isna(value) or not np.isfinite(float(value)):
        return "-"
    return f"{float(value):,.{digits}f}"


def _date(value: Any) -> str:
    if value is None or pd.isna(value):
        return "-"
    stamp = pd.Timestamp(value)
    return f"{stamp.day} {stamp:%B %Y}"


class _Context:
    """The run's figures, formatted for the template."""

    def __init__(self, run: StoredRun) -> None:
        self.run = run
        self.code = currency(run)
        self.months = float(run.settings.get("horizon_months", 12))

    def money(self, value: Any, digits: int = 0) -> str:
        return money(value, self.code, digits)

    def build(self, trends: pd.DataFrame | None, backtests: pd.DataFrame | None) -> dict[str, Any]:
        run, head = self.run, self.run.headline
        model = str(head.get("transaction_model") or run.settings.get("transaction_model", ""))
        return {
            "title": "What your customers are worth",
            "run_id": run.run_id,
            "created_at": run.created_at,
            "as_of": _date(run.as_of),
            "months": f"{self.months:g}",
            "model": MODEL_NAMES.get(model, model),
            "headline": self.headline(),
            "forecast": self.forecast(),
            "value": self.value(),
            "risk": self.risk(),
            "channels": self.channels(),
            "timing": self.timing(),
            "trust": self.trust(backtests),
            "trend": self.trend(trends),
            "method": self.method(),
        }

    # ------------------------------------------------------------------------ sections

    def headline(self) -> dict[str, str]:
        head = self.run.headline
        customers = head.get("customers") or 0
        active = head.get("active_customers") or 0
        return {
            "customer_equity": self.money(head.get("customer_equity")),
            "predicted_value": self.money(head.get("predicted_value")),
            "predicted_value_low": self.money(head.get("predicted_value_low")),
            "predicted_value_high": self.money(head.get("predicted_value_high")),
            "customers": _count(customers),
            "active_customers": _count(active),
            "active_share": _pct(active / customers if customers else None),
            "mean_predicted_clv": self.money(head.get("mean_predicted_clv")),
            "top_20_percent_share": _pct(head.get("top_20_percent_share")),
        }

    def forecast(self) -> dict[str, Any] | None:
        forecast = table(self.run, "forecast")
        if forecast is None:
            return None
        rows = [
            {
                "month": f"{pd.Timestamp(r.period_start):%B %Y}",
                "orders": _count(r.expected_orders),
                "orders_range": (
                    f"{_count(r.expected_orders_low)} to {_count(r.expected_orders_high)}"
                ),
                "revenue": self.money(r.expected_revenue),
                "revenue_range": (
                    f"{self.money(r.expected_revenue_low)} to {self.money(r.expected_revenue_high)}"
                ),
                "margin": self.money(r.expected_margin),
            }
            for r in forecast.itertuples(index=False)
        ]
        return {
            "months": len(forecast),
            "orders": _count(forecast["expected_orders"].sum()),
            "revenue": self.money(forecast["expected_revenue"].sum()),
            "margin": self.money(forecast["expected_margin"].sum()),
            "rows": rows,
        }

    def value(self) -> dict[str, Any]:
        tiers = tier_rows(self.run)
        tier_list = (
            []
            if tiers is None
            else [
                {
                    "tier": str(r.group),
                    "customers": _count(r.customers),
                    "share_of_customers": _pct(r.share_of_customers),
                    "value": self.money(r.total_predicted_clv),
                    "mean": self.money(r.mean_predicted_clv),
                    "share_of_value": _pct(r.share_of_predicted_clv),
                    "p_alive": _pct(r.mean_p_alive),
                }
                for r in tiers.itertuples(index=False)
            ]
        )
        segments = table(self.run, "segments")
        segment_list = []
        if segments is not None:
            rows = segments[segments["attribute"] == "segment"].sort_values(
                "share_of_predicted_clv", ascending=False
            )
            segment_list = [
                {
                    "segment": str(r.group),
                    "customers": _count(r.customers),
                    "share_of_value": _pct(r.share_of_predicted_clv),
                    "mean": self.money(r.mean_predicted_clv),
                    "p_alive": _pct(r.mean_p_alive),
                }
                for r in rows.itertuples(index=False)
            ]
        concentration = table(self.run, "concentration")
        points = (
            []
            if concentration is None
            else [
                f"the top {_pct(r.top_share_of_customers)} of customers "
                f"({_count(r.customers)}) hold {_pct(r.share_of_value)}"
                for r in concentration.itertuples(index=False)
            ]
        )
        return {
            "tiers": tier_list,
            "segments": segment_list,
            "concentration": points,
            "drivers": self.drivers(),
        }

    def drivers(self) -> list[str]:
        drivers = table(self.run, "drivers")
        if drivers is None or "significant" not in drivers.columns:
            return []
        clear = drivers[drivers["significant"].fillna(False).astype(bool)]
        clear = clear.reindex(clear["difference"].abs().sort_values(ascending=False).index)
        sentences = []
        for r in clear.itertuples(index=False):
            more = "more" if r.difference > 0 else "less"
            what = str(r.attribute).replace("_", " ")
            sentences.append(
                f"Customers with {what} '{r.group}' ({_count(r.customers)}) are worth "
                f"{self.money(abs(r.difference))} {more} than the average customer over the next "
                f"{self.months:g} months (somewhere between {self.money(r.difference_low)} and "
                f"{self.money(r.difference_high)})."
            )
        return sentences

    def risk(self) -> dict[str, Any]:
        triggers = table(self.run, "churn_triggers")
        scores = self.run.scores.set_index("customer_id")
        states = []
        segments = table(self.run, "segments")
        if segments is not None:
            for r in segments[segments["attribute"] == "lifecycle_state"].itertuples(index=False):
                states.append(
                    {
                        "state": str(r.group),
                        "customers": _count(r.customers),
                        "share": _pct(r.share_of_customers),
                        "share_of_value": _pct(r.share_of_predicted_clv),
                    }
                )
        offers = table(self.run, "offers")
        offer_list = []
        if offers is not None:
            granted = offers.dropna(subset=["offer"])
            for name, rows in granted.groupby("offer", sort=False):
                offer_list.append(
                    {
                        "offer": str(name),
                        "customers": _count(len(rows)),
                        "action": str(rows["action"].iloc[0]),
                    }
                )
        if triggers is None:
            return {
                "count": "0",
                "low_p_alive": "0",
                "overdue": "0",
                "top": [],
                "states": states,
                "offers": offer_list,
            }
        # The customers whose loss costs most: the largest predicted value among them.
        top = triggers.sort_values("predicted_clv", ascending=False).head(TOP_AT_RISK)
        tiers = scores["value_tier"] if "value_tier" in scores.columns else None
        return {
            "count": _count(len(triggers)),
            "low_p_alive": _count(triggers["low_p_alive"].sum()),
            "overdue": _count(triggers["overdue"].sum()),
            "top": [
                {
                    "customer_id": str(r.customer_id),
                    "tier": "" if tiers is None else str(tiers.get(r.customer_id, "")),
                    "value": self.money(r.predicted_clv),
                    "p_alive": _pct(r.p_alive),
                    "days_since": _count(r.days_since_last_order),
                    "usual_gap": _count(r.average_days_between_orders),
                    "reason": str(r.reason),
                }
                for r in top.itertuples(index=False)
            ],
            "states": states,
            "offers": offer_list,
        }

    def channels(self) -> dict[str, Any] | None:
        acquisition = table(self.run, "acquisition")
        if acquisition is None:
            return None

        def row(r: Any) -> dict[str, str]:
            return {
                "channel": str(r.acquisition_channel),
                "campaign": str(getattr(r, "acquisition_campaign", "")),
                "new_customers": _count(r.new_customers),
                "spend": self.money(r.marketing_spend),
                "cac": self.money(r.cac, 2),
                "clv_12m": self.money(r.mean_clv_12m, 2),
                "lifetime": self.money(r.mean_lifetime_clv, 2),
                "ltv_cac": _number(r.ltv_cac),
                "payback": _number(r.payback_months),
                "max_cpa": self.money(r.max_allowable_cpa, 2),
                "advice": str(r.recommendation),
                "rule": str(r.rule),
            }

        ordered = acquisition.sort_values("ltv_cac", ascending=False, na_position="last")
        campaigns = table(self.run, "acquisition_campaigns")
        return {
            "rows": [row(r) for r in ordered.itertuples(index=False)],
            "campaigns": []
            if campaigns is None
            else [
                row(r)
                for r in campaigns.sort_values(
                    ["acquisition_channel", "ltv_cac"], ascending=[True, False]
                ).itertuples(index=False)
            ],
        }

    def timing(self) -> dict[str, Any]:
        peaks = table(self.run, "peak_periods")
        sentences = []
        if peaks is not None:
            words = {"month": "in", "weekday": "on", "hour": "around"}
            for r in peaks.itertuples(index=False):
                sentences.append(
                    f"{words.get(str(r.period), 'in')} {r.label} "
                    f"({_pct(r.share)} of purchases; {_pct(r.share_if_even)} if spread evenly)"
                )
        plan = table(self.run, "contact_plan")
        rhythm = []
        if plan is not None:
            per_tier = plan.drop_duplicates("value_tier")
            order = tier_rows(self.run)
            if order is not None:
                rank = {g: i for i, g in enumerate(order["group"])}
                per_tier = per_tier.sort_values("value_tier", key=lambda s: s.map(rank))
            for r in per_tier.itertuples(index=False):
                every = (
                    "no messages"
                    if pd.isna(r.days_between_messages)
                    else f"one message every {round(float(r.days_between_messages), 1):g} days"
                )
                rhythm.append({"tier": str(r.value_tier), "rhythm": every})
        return {"peaks": sentences, "rhythm": rhythm}

    def trust(self, backtests: pd.DataFrame | None) -> dict[str, Any]:
        chosen = chosen_comparison(self.run)
        weeks = (self.run.config.get("models") or {}).get("holdout_weeks")
        check = None
        if chosen is not None:
            error = chosen.get("tracking_error")
            if pd.isna(error):
                off = "-"
            elif abs(error) < 0.005:
                off = "almost exactly right"
            else:
                off = f"{abs(error):.0%} too {'many' if error > 0 else 'few'}"
            check = {
                "weeks": f"{weeks:g}" if weeks else "last",
                "predicted": _count(chosen.get("predicted_total")),
                "actual": _count(chosen.get("actual_total")),
                "error": off,
                "mae": _number(chosen.get("mae"), 1),
                "auc": _pct(chosen.get("p_alive_auc")),
            }
        comparison = table(self.run, "model_comparison")
        models = (
            []
            if comparison is None
            else [
                {
                    "model": MODEL_NAMES.get(str(r.model), str(r.model)),
                    "chosen": r.model == self.run.settings.get("transaction_model"),
                    "error": _pct(r.tracking_error),
                    "mae": _number(r.mae, 2),
                    "auc": _pct(r.p_alive_auc),
                }
                for r in comparison.sort_values("mae").itertuples(index=False)
            ]
        )
        history = []
        if backtests is not None and not backtests.empty:
            chosen_name = self.run.settings.get("transaction_model")
            rows = backtests[backtests["model"] == chosen_name]
            rows = rows if not rows.empty else backtests
            for r in (
                rows.assign(cutoff=pd.to_datetime(rows["cutoff"]))
                .sort_values("cutoff")
                .itertuples(index=False)
            ):
                history.append(
                    {
                        "cutoff": _date(r.cutoff),
                        "model": MODEL_NAMES.get(str(r.model), str(r.model)),
                        "predicted": _count(r.predicted_total),
                        "actual": _count(r.actual_total),
                        "error": _pct(r.tracking_error),
                        "mae": _number(r.mae, 2),
                    }
                )
        head = self.run.headline
        return {
            "check": check,
            "models": models,
            "backtests": history,
            "low": self.money(head.get("predicted_value_low")),
            "high": self.money(head.get("predicted_value_high")),
        }

    def trend(self, trends: pd.DataFrame | None) -> list[dict[str, str]]:
        if trends is None or trends.empty:
            return []
        rows = latest_per_as_of(trends)
        if len(rows) < 2:
            return []
        return [
            {
                "as_of": _date(r.as_of),
                "customers": _count(r.customers),
                "active": _count(r.active_customers),
                "equity": self.money(r.customer_equity),
                "predicted": self.money(r.predicted_value),
            }
            for r in rows.itertuples(index=False)
        ]

    def method(self) -> dict[str, str]:
        settings, validation = self.run.settings, self.run.validation or {}
        rate = settings.get("margin_rate")
        margin = "each product category's margin" if rate is None else f"{_pct(rate)} of sales"
        return {
            "margin": margin,
            "cost_to_serve": self.money(settings.get("cost_to_serve"), 2),
            "discount_rate": _pct(settings.get("annual_discount_rate")),
            "rows_read": _count(validation.get("rows_read")),
            "accepted": _count(validation.get("accepted")),
            "quarantined": _count(validation.get("quarantined_total")),
            "currency": self.code or "the data's own currency",
        }
