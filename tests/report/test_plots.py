"""The figures: drawn from the run's own tables, outside pyplot, saved as PNG and SVG."""

from __future__ import annotations

import dataclasses

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from tests.report._runs import holdout_tracking, with_tables

from lifevalue.errors import InputError
from lifevalue.report import plots
from lifevalue.store.run import StoredRun


def _lines(fig: Figure) -> dict[str, np.ndarray]:
    """The y data of the labelled lines of a figure's axes, by label."""
    return {
        line.get_label(): np.asarray(line.get_ydata(), dtype=float)
        for ax in fig.axes
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    }


def test_calibration_figure_draws_the_holdout_table(stored_run: StoredRun) -> None:
    table = stored_run.tables["holdout_by_frequency"]
    fig = plots.calibration_vs_holdout(stored_run)
    lines = _lines(fig)
    np.testing.assert_allclose(lines["actual"], table["actual"])
    np.testing.assert_allclose(lines["predicted by the model"], table["predicted"])
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == [str(v) for v in table["frequency_label"]]


def test_tracking_figures_shade_the_holdout_and_drop_a_short_last_week(
    stored_run: StoredRun,
) -> None:
    run = with_tables(stored_run, holdout_tracking=holdout_tracking())
    table = run.tables["holdout_tracking"]
    cumulative = _lines(plots.cumulative_tracking(run))
    np.testing.assert_allclose(cumulative["actual"], table["cumulative_actual"])
    np.testing.assert_allclose(cumulative["predicted"], table["cumulative_predicted"])
    fig = plots.incremental_tracking(run)
    weekly = _lines(fig)
    # The last period is 3 days long: drawing it would show a false drop.
    np.testing.assert_allclose(weekly["actual"], table["actual"].iloc[:-1])
    shaded = [p for p in fig.axes[0].patches if p.get_label() == "holdout period"]
    assert len(shaded) == 1


def test_forecast_figure_draws_expected_revenue_and_orders(stored_run: StoredRun) -> None:
    forecast = stored_run.tables["forecast"]
    fig = plots.forecast_plot(stored_run)
    revenue, orders = (ax.get_lines()[0].get_ydata() for ax in fig.axes[:2])
    np.testing.assert_allclose(revenue, forecast["expected_revenue"])
    np.testing.assert_allclose(orders, forecast["expected_orders"])
    assert "(USD)" in fig.axes[0].get_ylabel()


def test_ltv_cac_bars_are_the_channels_ratios(stored_run: StoredRun) -> None:
    acquisition = stored_run.tables["acquisition"]
    fig = plots.ltv_cac_by_channel(stored_run)
    ax = fig.axes[0]
    widths = {
        label.get_text(): bar.get_width()
        for label, bar in zip(ax.get_yticklabels(), ax.patches, strict=True)
    }
    for row in acquisition.itertuples():
        expected = 0.0 if pd.isna(row.ltv_cac) else row.ltv_cac
        assert widths[row.acquisition_channel] == pytest.approx(expected)
    texts = [t.get_text() for t in ax.texts]
    if acquisition["ltv_cac"].isna().any():
        assert "no spend" in texts


def test_concentration_curve_ends_at_one_and_marks_the_table(stored_run: StoredRun) -> None:
    fig = plots.concentration_curve(stored_run)
    ax = fig.axes[0]
    curve = ax.get_lines()[0].get_ydata()
    assert curve[0] == 0 and curve[-1] == pytest.approx(1.0)
    assert np.all(np.diff(curve) >= -1e-12)
    points = ax.collections[0].get_offsets()
    table = stored_run.tables["concentration"]
    np.testing.assert_allclose(points[:, 1], table["share_of_value"])


def test_value_by_tier_puts_the_most_valuable_tier_first(stored_run: StoredRun) -> None:
    fig = plots.value_by_tier(stored_run)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    segments = stored_run.tables["segments"]
    tiers = segments[segments["attribute"] == "value_tier"]
    assert labels[0] == tiers.loc[tiers["mean_predicted_clv"].idxmax(), "group"]
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert sum(heights[len(labels) :]) == pytest.approx(1.0)


def test_cohort_curves_draw_one_line_per_cohort(stored_run: StoredRun) -> None:
    fig = plots.cohort_value_curves(stored_run)
    cohorts = stored_run.tables["cohort_value"]["cohort"].nunique()
    assert len(fig.axes[0].get_lines()) == cohorts


def _matrix(fig: Figure) -> np.ma.MaskedArray:
    """The cell values of a matrix figure, rows of recency by columns of frequency."""
    mesh = fig.axes[0].collections[0]
    rows, cols = (n - 1 for n in mesh.get_coordinates().shape[:2])
    return np.ma.masked_invalid(mesh.get_array()).reshape(rows, cols)


def test_p_alive_matrix_is_a_probability_and_blank_where_no_customer_can_be(
    stored_run: StoredRun,
) -> None:
    values = _matrix(plots.p_alive_matrix(stored_run))
    assert values.min() >= 0 and values.max() <= 1
    # Frequency 0 means no repeat purchase, so only recency 0 is possible.
    assert values.mask[1:, 0].all() and not values.mask[0, 0]
    assert not values.mask[:, 1:].any()


def test_expected_purchases_grow_with_frequency_for_recent_buyers(stored_run: StoredRun) -> None:
    values = _matrix(plots.frequency_recency_matrix(stored_run))
    top = values[-1, 1:].compressed()  # recency = T: bought right at the end
    assert len(top) > 2 and np.all(np.diff(top) > 0)
    assert values.mask[1:, 0].all()  # frequency 0 with recency > 0


def test_trends_figure_keeps_the_latest_run_of_each_date(trends: pd.DataFrame) -> None:
    rerun = (
        trends[trends["dimension"] == "all"]
        .iloc[[-1]]
        .assign(run_id="rerun", created_at="2025-02-01T00:00:00+00:00", customer_equity=1.0)
    )
    fig = plots.trends_over_runs(pd.concat([trends, rerun], ignore_index=True))
    equity = fig.axes[0].get_lines()[0].get_ydata()
    whole = trends[trends["dimension"] == "all"]["customer_equity"].to_numpy()
    np.testing.assert_allclose(equity, [*whole[:-1], 1.0])


def test_backtest_figure_draws_one_line_per_model(backtests: pd.DataFrame) -> None:
    fig = plots.backtest_errors(backtests)
    for ax, column in zip(fig.axes, ("mae", "tracking_error"), strict=True):
        lines = {line.get_label(): line.get_ydata() for line in ax.get_lines()}
        assert {"bgnbd", "pnbd"} <= set(lines)
        expected = backtests.loc[backtests["model"] == "pnbd", column]
        np.testing.assert_allclose(lines["pnbd"], expected)


def test_a_missing_table_is_a_clear_error(bare_run: StoredRun) -> None:
    with pytest.raises(InputError, match="'acquisition' table"):
        plots.ltv_cac_by_channel(bare_run)
    with pytest.raises(InputError, match="No trends table"):
        plots.trends_over_runs(None)
    with pytest.raises(InputError, match="lacks the column"):
        plots.backtest_errors(pd.DataFrame({"cutoff": ["2024-01-01"]}))
    with pytest.raises(InputError, match="Unknown figure 'pie'"):
        plots.draw("pie", bare_run)


def test_available_names_only_what_the_inputs_allow(
    stored_run: StoredRun, bare_run: StoredRun, trends: pd.DataFrame, backtests: pd.DataFrame
) -> None:
    assert set(plots.available(stored_run, trends=trends, backtests=backtests)) == set(
        plots.FIGURES
    )
    bare = plots.available(bare_run, trends=trends[trends["as_of"] == "2024-12-31"])
    assert "trends" not in bare  # one scoring date is no trend
    for absent in ("ltv_cac", "calibration_holdout", "tracking_cumulative", "cohort_value"):
        assert absent not in bare
    assert {"frequency_recency", "p_alive_matrix", "clv_distribution", "forecast"} <= set(bare)


def test_save_figures_writes_png_and_svg_without_pyplot(bare_run: StoredRun, tmp_path) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    written = plots.save_figures(bare_run, tmp_path / "figs")
    assert plt.get_fignums() == before
    assert set(written) == set(plots.available(bare_run))
    for paths in written.values():
        png, svg = paths
        image = mpimg.imread(png)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500
        assert image[..., :3].std() > 0.05  # not a blank canvas
        assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
    once, twice = (
        plots.save_figures(bare_run, tmp_path / name, formats=("svg",))["concentration"][0]
        for name in ("once", "twice")
    )
    assert once.read_bytes() == twice.read_bytes()  # same run, same file


def test_save_figures_refuses_other_formats(bare_run: StoredRun, tmp_path) -> None:
    with pytest.raises(InputError, match=r"'png' and/or 'svg'; got \['jpg'\]"):
        plots.save_figures(bare_run, tmp_path, formats=("jpg",))


def test_discrete_time_models_get_a_whole_number_grid(stored_run: StoredRun) -> None:
    from lifevalue.data.datasets import load_donations
    from lifevalue.models.bgbb import BetaGeoBetaBinomModel
    from lifevalue.units import TimeUnit

    donations = load_donations().rename(columns={"periods": "T"})
    model = BetaGeoBetaBinomModel().fit(donations, weights="weights", time_unit="years")
    scores = pd.DataFrame(
        {
            "customer_id": ["a", "b"],
            "frequency": [0.0, 6.0],
            "tenure_days": [6 * TimeUnit.YEARS.days, 2 * TimeUnit.YEARS.days],
        }
    )
    run = dataclasses.replace(
        with_tables(stored_run, scores=scores),
        models={"transaction": model.to_dict()},
        settings={**stored_run.settings, "horizon_months": 24},
    )
    values = _matrix(plots.frequency_recency_matrix(run))
    assert values.shape == (7, 7)  # recency and frequency 0..6 opportunities
    frequency, recency = np.meshgrid(np.arange(7), np.arange(7))
    impossible = (frequency > recency) | ((recency > 0) & (frequency == 0))
    np.testing.assert_array_equal(values.mask, impossible)
    assert np.all(values.compressed() >= 0)
