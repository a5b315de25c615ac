"""The run's figures, drawn with matplotlib (Agg, no pyplot state).

Each public function takes a stored run (or the run history's trends or backtests table)
and returns a :class:`matplotlib.figure.Figure` that belongs to no pyplot window, so
nothing leaks between calls and nothing needs closing. A function whose input is absent
raises :class:`~lifevalue.errors.InputError`; :func:`available` tells which figures a run
can draw and :func:`save_figures` writes those as PNG and SVG.

The two model figures evaluate the run's fitted transaction model on a grid of
(frequency, recency, T); every other figure draws a table of the run as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

from lifevalue.errors import InputError
from lifevalue.models._repeat import PurchaseForecasts
from lifevalue.report._common import (
    currency,
    latest_per_as_of,
    need_frame,
    need_table,
    tier_rows,
)
from lifevalue.store.run import StoredRun
from lifevalue.units import TimeUnit

__all__ = [
    "FIGURES",
    "available",
    "backtest_errors",
    "calibration_vs_holdout",
    "clv_distribution",
    "cohort_value_curves",
    "concentration_curve",
    "cumulative_tracking",
    "draw",
    "forecast_plot",
    "frequency_recency_matrix",
    "incremental_tracking",
    "ltv_cac_by_channel",
    "p_alive_matrix",
    "save_figures",
    "trends_over_runs",
    "value_by_tier",
]

logger = logging.getLogger(__name__)

#: Colours of the figures: what happened, what the model says, and the holdout shading.
ACTUAL, PREDICTED, BAND = "#1f4e79", "#d9822b", "#d9d9d9"
RECOMMENDATION_COLOURS = {"scale": "#2e7d32", "hold": "#9e9e9e", "cut": "#c62828"}
#: Most cells along each axis of the model matrices.
GRID_CELLS = 60


def _figure(width: float = 8.0, height: float = 4.5, ncols: int = 1) -> tuple[Figure, list[Axes]]:
    """A figure outside pyplot with ``ncols`` side-by-side axes in a light house style."""
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    axes = list(np.atleast_1d(fig.subplots(1, ncols)))
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(True, color="#e6e6e6", linewidth=0.8)
        ax.set_axisbelow(True)
    return fig, axes


def _date_axis(ax: Axes) -> None:
    """A few readable date ticks on the x axis, whatever the span."""
    locator = AutoDateLocator(minticks=3, maxticks=7)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _money_axis(ax: Axes, run: StoredRun, axis: str = "y") -> None:
    """Thousands separators on a money axis, with the currency in its label."""
    formatter = FuncFormatter(lambda v, _: f"{v:,.0f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)
    code = currency(run)
    if code:
        label = ax.get_ylabel() if axis == "y" else ax.get_xlabel()
        (ax.set_ylabel if axis == "y" else ax.set_xlabel)(f"{label} ({code})")


# --------------------------------------------------------------------------- model grids


@dataclass(frozen=True)
class _Grid:
    model: PurchaseForecasts
    frequency: np.ndarray
    recency: np.ndarray
    T: float
    horizon: float
    unit: TimeUnit

    def evaluate(self, what: Callable[[pd.DataFrame], pd.Series]) -> np.ndarray:
        """``what`` on every valid (frequency, recency) cell at T; NaN elsewhere."""
        f, r = np.meshgrid(self.frequency, self.recency)
        valid = (f > 0) | (r == 0)
        if self.model.discrete_time:
            valid &= (f <= r) & ((r > 0) | (f == 0))
        frame = pd.DataFrame(
            {
                "customer_id": np.arange(valid.sum()),
                "frequency": f[valid],
                "recency": r[valid],
                "T": self.T,
            }
        )
        values = np.full(f.shape, np.nan)
        values[valid] = what(frame).to_numpy()
        return values


def _grid(run: StoredRun) -> _Grid:
    """The frequency and recency grid of the run's customers, in the model's time unit."""
    model = run.model("transaction")
    if not isinstance(model, PurchaseForecasts):
        raise InputError(
            f"The frequency-recency figures need a repeat-purchase transaction model; run "
            f"{run.run_id} has {type(model).__name__ if model else 'none'}."
        )
    scores = need_table(run, "scores", "The frequency-recency figures")
    unit = model.time_unit_
    T = float(scores["tenure_days"].max()) / unit.days
    # A few customers buy far more often than the rest; the grid stops at the 99.5th
    # percentile so that the cells where customers are stay readable.
    top = int(max(1, np.ceil(scores["frequency"].quantile(0.995))))
    horizon = TimeUnit.MONTHS.convert(float(run.settings.get("horizon_months", 12)), unit)
    if model.discrete_time:
        T = float(round(T))
        top = min(top, int(T))
        horizon = float(max(1, round(horizon)))
        recency = np.arange(0, int(T) + 1, dtype=float)
    else:
        recency = np.linspace(0.0, T, GRID_CELLS)
    step = max(1, int(np.ceil((top + 1) / GRID_CELLS)))
    frequency = np.arange(0, top + 1, step, dtype=float)
    return _Grid(model, frequency, recency, T, horizon, unit)


def _matrix(grid: _Grid, values: np.ndarray, title: str, label: str, cmap: str) -> Figure:
    fig, (ax,) = _figure(7.5, 5.5)
    ax.grid(False)
    f, r = grid.frequency, grid.recency
    image = ax.pcolormesh(
        _edges(f), _edges(r), np.ma.masked_invalid(values), cmap=cmap, shading="flat"
    )
    fig.colorbar(image, ax=ax, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Repeat purchases so far (frequency)")
    ax.set_ylabel(f"Time from first to last purchase ({grid.unit.value})")
    ax.set_title(title, loc="left")
    return fig


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around evenly spaced centres."""
    if len(centres) == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    half = (centres[1] - centres[0]) / 2
    return np.concatenate([centres - half, [centres[-1] + half]])


def frequency_recency_matrix(run: StoredRun) -> Figure:
    """Expected purchases over the run's horizon by frequency and recency.

    Evaluates the run's transaction model at the longest customer tenure (T) on a grid
    of repeat purchases and time from first to last purchase; cells no customer can be
    in (recency above 0 without a repeat purchase) stay blank.
    """
    grid = _grid(run)
    values = grid.evaluate(
        lambda frame: grid.model.expected_purchases(frame, future_t=grid.horizon)
    )
    months = run.settings.get("horizon_months", 12)
    return _matrix(
        grid,
        values,
        f"Expected purchases in the next {months:g} months\n"
        f"(customers first seen {grid.T:.0f} {grid.unit.value} ago)",
        "expected purchases",
        "viridis",
    )


def p_alive_matrix(run: StoredRun) -> Figure:
    """Probability that a customer is still buying, by frequency and recency (at T)."""
    grid = _grid(run)
    values = grid.evaluate(grid.model.probability_alive)
    fig = _matrix(
        grid,
        values,
        f"Probability of still being a customer\n"
        f"(customers first seen {grid.T:.0f} {grid.unit.value} ago)",
        "P(alive)",
        "RdYlGn",
    )
    return fig


# ------------------------------------------------------------------------ model checks


def calibration_vs_holdout(run: StoredRun) -> Figure:
    """Mean holdout purchases, actual and predicted, by purchases in the calibration period."""
    table = need_table(run, "holdout_by_frequency", "The calibration-vs-holdout figure")
    fig, (ax,) = _figure()
    x = np.arange(len(table))
    ax.plot(x, table["actual"], "o-", color=ACTUAL, label="actual")
    ax.plot(x, table["predicted"], "s--", color=PREDICTED, label="predicted by the model")
    labels = table["frequency_label"] if "frequency_label" in table else table["frequency"]
    ax.set_xticks(x, [str(v) for v in labels])
    ax.set_xlabel("Repeat purchases in the calibration period")
    ax.set_ylabel("Mean purchases in the holdout period")
    ax.set_title("Calibration vs holdout: purchases per customer", loc="left")
    ax.legend(frameon=False)
    return fig


def _tracking(run: StoredRun, cumulative: bool) -> Figure:
    table = need_table(run, "holdout_tracking", "The tracking figures")
    if not cumulative and "days" in table.columns:
        # A shorter last period would look like a collapse in purchases: leave it out.
        table = table[table["days"] >= table["days"].max()]
    fig, (ax,) = _figure(9.0, 4.5)
    dates = pd.to_datetime(table["period_start"])
    prefix = "cumulative_" if cumulative else ""
    ax.plot(dates, table[f"{prefix}actual"], color=ACTUAL, label="actual")
    ax.plot(dates, table[f"{prefix}predicted"], "--", color=PREDICTED, label="predicted")
    holdout = table["holdout"].astype(bool).to_numpy()
    if holdout.any():
        start = dates[holdout].min()
        ax.axvspan(start, dates.max(), color=BAND, alpha=0.5, label="holdout period")
        ax.axvline(start, color="#555555", linewidth=1)
    _date_axis(ax)
    ax.set_ylabel("Repeat purchases" + (" (cumulative)" if cumulative else " per week"))
    kind = "Cumulative" if cumulative else "Weekly"
    ax.set_title(f"{kind} repeat purchases: actual vs model", loc="left")
    ax.legend(frameon=False, loc="upper left")
    return fig


def cumulative_tracking(run: StoredRun) -> Figure:
    """Cumulative repeat purchases of the whole base, actual and predicted, with the holdout."""
    return _tracking(run, cumulative=True)


def incremental_tracking(run: StoredRun) -> Figure:
    """Weekly repeat purchases of the whole base, actual and predicted, with the holdout."""
    return _tracking(run, cumulative=False)


def backtest_errors(backtests: pd.DataFrame | None) -> Figure:
    """Backtest errors by cutoff, one line per model: mean absolute and tracking error."""
    table = need_frame(backtests, "backtest table", ("cutoff", "model", "mae", "tracking_error"))
    table = table.assign(cutoff=pd.to_datetime(table["cutoff"])).sort_values("cutoff")
    fig, axes = _figure(10.0, 4.2, ncols=2)
    for model, rows in table.groupby("model", sort=True):
        axes[0].plot(rows["cutoff"], rows["mae"], "o-", label=str(model))
        axes[1].plot(rows["cutoff"], rows["tracking_error"], "o-", label=str(model))
    axes[0].set_title("Error per customer (purchases)", loc="left")
    axes[1].set_title("Total predicted vs actual", loc="left")
    axes[1].axhline(0, color="#555555", linewidth=1)
    axes[1].yaxis.set_major_formatter(PercentFormatter(1.0))
    for ax in axes:
        ax.set_xlabel("Backtest cutoff")
        _date_axis(ax)
    axes[0].legend(frameon=False)
    return fig


# ------------------------------------------------------------------------------ value


def clv_distribution(run: StoredRun) -> Figure:
    """How many customers are worth how much over the horizon (predicted CLV histogram)."""
    scores = need_table(run, "scores", "The CLV distribution")
    values = scores["predicted_clv"].dropna().to_numpy(dtype=float)
    # The long tail would squeeze every other bar into one: the last bar gathers the top 1%.
    top = float(np.quantile(values, 0.99)) if len(values) else 1.0
    bins = np.linspace(min(0.0, values.min(initial=0.0)), top, 40)
    fig, (ax,) = _figure()
    ax.hist(np.clip(values, None, top), bins=bins, color=ACTUAL)
    mean = run.headline.get("mean_predicted_clv")
    if mean is not None:
        ax.axvline(mean, color=PREDICTED, linewidth=2, label=f"average {mean:,.0f}")
        ax.legend(frameon=False)
    months = run.settings.get("horizon_months", 12)
    ax.set_xlabel(f"Predicted profit per customer, next {months:g} months (last bar: and more)")
    ax.set_ylabel("Customers")
    ax.set_title("What customers are worth", loc="left")
    _money_axis(ax, run, "x")
    return fig


def concentration_curve(run: StoredRun) -> Figure:
    """Share of future value held by the most valuable share of customers."""
    scores = need_table(run, "scores", "The concentration curve")
    values = np.sort(scores["predicted_clv"].fillna(0).to_numpy(dtype=float))[::-1]
    total = values.sum()
    fig, (ax,) = _figure(6.5, 5.0)
    if total > 0:
        share = np.concatenate([[0.0], np.cumsum(values) / total])
        ax.plot(np.linspace(0, 1, len(share)), share, color=ACTUAL, linewidth=2)
    ax.plot([0, 1], [0, 1], ":", color="#777777", label="if every customer were worth the same")
    points = run.tables.get("concentration")
    if points is not None and not points.empty:
        ax.scatter(points["top_share_of_customers"], points["share_of_value"], color=PREDICTED)
        for row in points.itertuples():
            ax.annotate(
                f"top {row.top_share_of_customers:.0%}: {row.share_of_value:.0%}",
                (row.top_share_of_customers, row.share_of_value),
                textcoords="offset points",
                xytext=(8, -12),
                fontsize=8,
            )
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Most valuable customers (share of all customers)")
    ax.set_ylabel("Share of future value they hold")
    ax.set_title("Where the value sits", loc="left")
    ax.legend(frameon=False, loc="lower right")
    return fig


def value_by_tier(run: StoredRun) -> Figure:
    """Share of customers and share of future value of each value tier."""
    tiers = tier_rows(run)
    if tiers is None:
        raise InputError(
            f"The value-tier figure needs value_tier rows in run {run.run_id}'s segments."
        )
    fig, (ax,) = _figure(7.0, 4.2)
    x = np.arange(len(tiers))
    ax.bar(x - 0.2, tiers["share_of_customers"], 0.4, color=BAND, label="share of customers")
    ax.bar(x + 0.2, tiers["share_of_predicted_clv"], 0.4, color=ACTUAL, label="share of value")
    ax.set_xticks(x, [str(g) for g in tiers["group"]])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Value tier")
    ax.set_title("Customers and future value by tier", loc="left")
    ax.legend(frameon=False)
    return fig


def cohort_value_curves(run: StoredRun) -> Figure:
    """Cumulative revenue per customer of each acquisition cohort, by months since acquisition."""
    table = need_table(run, "cohort_value", "The cohort value curves")
    cohorts = sorted(table["cohort"].astype(str).unique())
    fig, (ax,) = _figure(8.5, 5.0)
    cmap = colormaps["viridis"]
    norm = Normalize(0, max(1, len(cohorts) - 1))
    for i, cohort in enumerate(cohorts):
        rows = table[table["cohort"].astype(str) == cohort].sort_values("months_since_acquisition")
        ax.plot(
            rows["months_since_acquisition"],
            rows["revenue_per_customer"],
            color=cmap(norm(i)),
            label=cohort,
            linewidth=1.4,
        )
    if len(cohorts) <= 8:
        ax.legend(frameon=False, title="cohort", fontsize=8)
    else:
        bar = fig.colorbar(
            ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="cohort (oldest to newest)"
        )
        ticks = np.linspace(0, len(cohorts) - 1, min(6, len(cohorts))).round().astype(int)
        bar.set_ticks(ticks, labels=[cohorts[t] for t in ticks])
    ax.set_xlabel("Months since acquisition")
    ax.set_ylabel("Cumulative revenue per customer")
    ax.set_title("What each month's new customers have spent since", loc="left")
    _money_axis(ax, run)
    return fig


def ltv_cac_by_channel(run: StoredRun) -> Figure:
    """LTV:CAC of each acquisition channel, coloured by the run's recommendation."""
    table = need_table(run, "acquisition", "The LTV:CAC figure")
    table = table.sort_values("ltv_cac", na_position="first").reset_index(drop=True)
    fig, (ax,) = _figure(8.0, max(3.0, 0.55 * len(table) + 1.5))
    y = np.arange(len(table))
    values = table["ltv_cac"].astype(float)
    colours = [
        RECOMMENDATION_COLOURS.get(str(r), ACTUAL)
        for r in table.get("recommendation", [""] * len(table))
    ]
    ax.barh(y, values.fillna(0).replace([np.inf, -np.inf], 0), color=colours)
    for i, (value, rec) in enumerate(zip(values, table.get("recommendation", ""), strict=False)):
        text = "no spend" if pd.isna(value) else f"{value:.1f}  ({rec})"
        ax.annotate(
            text,
            (0 if pd.isna(value) else value, i),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
        )
    ax.axvline(1, color="#c62828", linestyle=":", linewidth=1)
    ax.set_yticks(y, [str(c) for c in table["acquisition_channel"]])
    ax.set_xlabel("Lifetime value per customer / cost to acquire one (LTV:CAC; < 1 loses money)")
    ax.set_title("What the channels earn", loc="left")
    ax.grid(axis="y", visible=False)
    return fig


def forecast_plot(run: StoredRun) -> Figure:
    """Expected monthly revenue and orders of the existing customers, with their ranges."""
    table = need_table(run, "forecast", "The forecast figure")
    dates = pd.to_datetime(table["period_start"])
    fig, axes = _figure(10.0, 4.2, ncols=2)
    for ax, what, title in (
        (axes[0], "expected_revenue", "Revenue per month"),
        (axes[1], "expected_orders", "Orders per month"),
    ):
        ax.fill_between(
            dates, table[f"{what}_low"], table[f"{what}_high"], color=BAND, label="likely range"
        )
        ax.plot(dates, table[what], "o-", color=ACTUAL, label="expected")
        ax.set_title(title, loc="left")
        ax.set_ylim(bottom=0)
        _date_axis(ax)
    axes[0].set_ylabel("Revenue")
    axes[1].set_ylabel("Orders")
    _money_axis(axes[0], run)
    axes[0].legend(frameon=False, loc="lower left")
    return fig


def trends_over_runs(trends: pd.DataFrame | None) -> Figure:
    """Customer equity and active customers of the whole base over the stored runs."""
    table = need_frame(
        trends,
        "trends table",
        ("as_of", "dimension", "group", "customer_equity", "active_customers"),
    )
    rows = latest_per_as_of(table)
    fig, axes = _figure(10.0, 4.0, ncols=2)
    axes[0].plot(rows["as_of"], rows["customer_equity"], "o-", color=ACTUAL)
    axes[0].set_title("Customer equity", loc="left")
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    axes[1].plot(rows["as_of"], rows["active_customers"], "o-", color=PREDICTED)
    axes[1].set_title("Customers probably still buying", loc="left")
    for ax in axes:
        ax.set_xlabel("Scoring date of the run")
        _date_axis(ax)
    return fig


# ------------------------------------------------------------------------ the registry


@dataclass(frozen=True)
class FigureSpec:
    """How to draw one figure and what it needs.

    Attributes
    ----------
    draw
        Called with the run, the trends and the backtests (the ones it does not use are
        ignored).
    tables
        The run tables the figure needs.
    source
        ``"run"``, ``"model"`` (also the fitted transaction model), ``"trends"`` or
        ``"backtests"``.
    """

    draw: Callable[[StoredRun, pd.DataFrame | None, pd.DataFrame | None], Figure]
    tables: tuple[str, ...] = ()
    source: str = "run"


#: Every figure, by the file name it is saved under.
FIGURES: dict[str, FigureSpec] = {
    "frequency_recency": FigureSpec(
        lambda r, t, b: frequency_recency_matrix(r), ("scores",), "model"
    ),
    "p_alive_matrix": FigureSpec(lambda r, t, b: p_alive_matrix(r), ("scores",), "model"),
    "calibration_holdout": FigureSpec(
        lambda r, t, b: calibration_vs_holdout(r), ("holdout_by_frequency",)
    ),
    "tracking_cumulative": FigureSpec(
        lambda r, t, b: cumulative_tracking(r), ("holdout_tracking",)
    ),
    "tracking_incremental": FigureSpec(
        lambda r, t, b: incremental_tracking(r), ("holdout_tracking",)
    ),
    "clv_distribution": FigureSpec(lambda r, t, b: clv_distribution(r), ("scores",)),
    "concentration": FigureSpec(lambda r, t, b: concentration_curve(r), ("scores",)),
    "value_by_tier": FigureSpec(lambda r, t, b: value_by_tier(r), ("segments",)),
    "cohort_value": FigureSpec(lambda r, t, b: cohort_value_curves(r), ("cohort_value",)),
    "ltv_cac": FigureSpec(lambda r, t, b: ltv_cac_by_channel(r), ("acquisition",)),
    "forecast": FigureSpec(lambda r, t, b: forecast_plot(r), ("forecast",)),
    "trends": FigureSpec(lambda r, t, b: trends_over_runs(t), (), "trends"),
    "backtest": FigureSpec(lambda r, t, b: backtest_errors(b), (), "backtests"),
}


def available(
    run: StoredRun,
    *,
    trends: pd.DataFrame | None = None,
    backtests: pd.DataFrame | None = None,
) -> list[str]:
    """Names of the figures the run (with its trends and backtests, if given) can draw.

    The trends figure needs at least two scoring dates: one point is no trend.
    """
    names = []
    model = run.model("transaction") if run.models else None
    for name, spec in FIGURES.items():
        if any(run.tables.get(t) is None or run.tables[t].empty for t in spec.tables):
            continue
        if spec.source == "model" and not isinstance(model, PurchaseForecasts):
            continue
        if spec.source == "trends" and (
            trends is None or trends.empty or latest_per_as_of(trends).shape[0] < 2
        ):
            continue
        if spec.source == "backtests" and (backtests is None or backtests.empty):
            continue
        if name == "value_by_tier" and tier_rows(run) is None:
            continue
        names.append(name)
    return names


def draw(
    name: str,
    run: StoredRun,
    *,
    trends: pd.DataFrame | None = None,
    backtests: pd.DataFrame | None = None,
) -> Figure:
    """The figure ``name`` (a key of :data:`FIGURES`).

    Raises
    ------
    InputError
        For an unknown name, or when its input is absent.
    """
    spec = FIGURES.get(name)
    if spec is None:
        raise InputError(f"Unknown figure '{name}'; the figures are: {', '.join(FIGURES)}.")
    return spec.draw(run, trends, backtests)


def save_figures(
    run: StoredRun,
    folder: str | Path,
    formats: Sequence[str] = ("png", "svg"),
    trends: pd.DataFrame | None = None,
    *,
    backtests: pd.DataFrame | None = None,
) -> dict[str, list[Path]]:
    """Draw every figure the run can draw and save it in each format.

    Parameters
    ----------
    run
        The stored run.
    folder
        Where the files go (created if needed), named ``<figure>.<format>``.
    formats
        File formats: ``"png"`` (150 dpi) and/or ``"svg"``.
    trends, backtests
        The run history's trends and backtests tables, for the figures over runs.

    Returns
    -------
    dict
        The paths written, by figure name. Figures whose input is absent are skipped (and
        logged).

    Raises
    ------
    InputError
        For a format other than png or svg.
    """
    bad = [f for f in formats if f not in ("png", "svg")]
    if bad or not formats:
        raise InputError(f"Figure formats must be 'png' and/or 'svg'; got {list(formats)}.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = available(run, trends=trends, backtests=backtests)
    skipped = [n for n in FIGURES if n not in names]
    if skipped:
        logger.info("Figures without their input, skipped: %s", ", ".join(skipped))
    written: dict[str, list[Path]] = {}
    for name in names:
        fig = draw(name, run, trends=trends, backtests=backtests)
        paths = []
        for fmt in formats:
            path = folder / f"{name}.{fmt}"
            # No creation date and fixed element ids: the same run gives the same bytes.
            metadata = {"Date": None} if fmt == "svg" else {"Software": None}
            with rc_context({"svg.hashsalt": "lifevalue"}):
                fig.savefig(path, format=fmt, dpi=150, metadata=metadata)
            paths.append(path)
        written[name] = paths
    return written
