"""The HTML report: self-contained, the run's own figures in plain words, rendered by Chromium."""

from __future__ import annotations

import base64
import re
import subprocess
from html import unescape
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from tests.report._runs import with_tables

from lifevalue.report import plots
from lifevalue.report._common import money
from lifevalue.report.html import render_report, write_report
from lifevalue.store.run import StoredRun

DATA_URI = re.compile(r"data:image/png;base64,([A-Za-z0-9+/=]+)")


@pytest.fixture(scope="module")
def report(
    stored_run: StoredRun,
    trends: pd.DataFrame,
    backtests: pd.DataFrame,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    assert write_report(stored_run, path, trends=trends, backtests=backtests) == path
    return path


@pytest.fixture(scope="module")
def html(report: Path) -> str:
    return report.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def bare_html(bare_run: StoredRun) -> str:
    return render_report(bare_run)


def _text(html: str) -> str:
    """The page's text without its images, tags and doubled spaces."""
    text = re.sub(r"<[^>]+>", " ", DATA_URI.sub("", html))
    return re.sub(r"\s+", " ", unescape(text))


def test_the_page_loads_nothing_from_outside(html: str) -> None:
    without_images = DATA_URI.sub("", html)
    assert "http://" not in without_images and "https://" not in without_images
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert "url(" not in without_images
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)


def test_every_available_figure_is_inline(
    html: str, stored_run: StoredRun, trends: pd.DataFrame, backtests: pd.DataFrame
) -> None:
    images = DATA_URI.findall(html)
    assert len(images) == len(plots.available(stored_run, trends=trends, backtests=backtests))
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_headline_figures_are_there_with_currency_and_ranges(
    html: str, stored_run: StoredRun
) -> None:
    head = stored_run.headline
    text = _text(html)
    for key in ("predicted_value", "customer_equity", "mean_predicted_clv"):
        assert money(head[key], "USD") in text, key
    low = money(head["predicted_value_low"], "USD")
    high = money(head["predicted_value_high"], "USD")
    assert f"likely between {low} and {high}" in text
    assert f"{head['active_customers']:,} customers who are probably still buying" in text
    assert f"{head['top_20_percent_share']:.0%} of that future profit" in text


def test_who_is_at_risk_lists_the_most_valuable_flagged_customers(
    html: str, stored_run: StoredRun
) -> None:
    triggers = stored_run.tables["churn_triggers"]
    text = _text(html)
    assert f"{len(triggers):,} customers show a warning sign" in text
    top = triggers.sort_values("predicted_clv", ascending=False).head(10)
    rows = re.findall(r"<tr><td>([^<]+)</td><td>[^<]*</td><td class=\"n\">\$", html)
    assert rows[: len(top)] == top["customer_id"].astype(str).tolist()


def test_channels_and_trust_come_from_the_run(html: str, stored_run: StoredRun) -> None:
    text = _text(html)
    for row in stored_run.tables["acquisition"].itertuples():
        assert row.rule in text
    comparison = stored_run.tables["model_comparison"]
    chosen = comparison[comparison["model"] == stored_run.settings["transaction_model"]].iloc[0]
    assert f"It predicted {chosen['predicted_total']:,.0f} repeat purchases" in text
    assert f"{chosen['actual_total']:,.0f} happened" in text
    assert "The same test at earlier dates" in text


def test_the_trend_section_shows_each_scoring_date(html: str) -> None:
    text = _text(html)
    assert "How this has moved" in text
    for day in ("31 October 2024", "30 November 2024", "31 December 2024"):
        assert day in text


def test_a_first_run_without_spend_says_what_is_missing(bare_html: str) -> None:
    text = _text(bare_html)
    assert "No marketing-spend table was given" in text
    assert "How this has moved" not in text
    assert "The same test at earlier dates" not in text


def test_text_from_the_data_is_escaped(stored_run: StoredRun) -> None:
    triggers = stored_run.tables["churn_triggers"].copy()
    top = triggers["predicted_clv"].idxmax()
    triggers.loc[top, "customer_id"] = "<b>x</b>"
    html = render_report(with_tables(stored_run, churn_triggers=triggers))
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html


def test_chromium_renders_a_page_of_the_report(report: Path, tmp_path: Path, tool) -> None:
    chromium = tool("chromium", "chromium-browser", "google-chrome")
    shot = tmp_path / "page.png"
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    image = mpimg.imread(shot)
    assert image.shape[:2] == (2000, 1280)
    pixels = image[..., :3].reshape(-1, 3)
    assert pixels.std() > 0.1  # text and figures, not a blank page
    colours = np.unique((pixels * 255).astype(np.uint8), axis=0)
    assert len(colours) > 50
    # The report's dark blue (headings, cards, table heads) is on the page.
    blue = np.all(np.abs(pixels - np.array([0x1F, 0x4E, 0x79]) / 255) < 0.02, axis=1)
    assert blue.mean() > 0.001
