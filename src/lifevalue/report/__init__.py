"""Render a run: figures, the Excel dashboard and the HTML report.

The report layer draws and lays out what a run computed; it computes nothing new.
:mod:`lifevalue.report.plots` draws the figures, :func:`write_dashboard` writes the Excel
workbook and :func:`write_report` the self-contained HTML page.
"""

from __future__ import annotations

from lifevalue.report.excel import write_dashboard
from lifevalue.report.html import write_report
from lifevalue.report.plots import save_figures

__all__ = ["save_figures", "write_dashboard", "write_report"]
