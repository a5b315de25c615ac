"""Small summaries written by hand, for the model tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def summary_frame(rows: list[tuple[float, float, float]]) -> pd.DataFrame:
    """(frequency, recency, T) rows in weeks, labelled c0, c1, ..."""
    frame = pd.DataFrame(rows, columns=["frequency", "recency", "T"])
    frame.insert(0, "customer_id", [f"c{i}" for i in range(len(rows))])
    frame.attrs["lifevalue"] = {"time_unit": "weeks"}
    return frame


def summary_arrays(rows: list[tuple[float, float, float]]) -> dict[str, np.ndarray]:
    """The same rows as the arrays a model's formulas take."""
    x, t_x, T = (np.array(c, dtype=float) for c in zip(*rows, strict=True))
    return {"frequency": x, "recency": t_x, "T": T}
