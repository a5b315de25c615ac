"""Model comparison on the CDNOW calibration/holdout split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lifevalue.errors import DataValidationError, InputError
from lifevalue.models.compare import compare_models, normalised_gini


@pytest.fixture(scope="module")
def holdout(cdnow_holdout) -> pd.DataFrame:
    return cdnow_holdout.to_pandas()


def test_bgnbd_holdout_metrics(holdout: pd.DataFrame) -> None:
    result = compare_models(holdout, models=["bgnbd"])
    row = result.table.loc["bgnbd"]
    assert row["log_likelihood"] == pytest.approx(-9582.43, abs=0.01)
    assert row["aic"] == pytest.approx(2 * 4 + 2 * 9582.43, abs=0.05)
    assert row["actual_total"] == 1882
    predicted = result.models["bgnbd"].expected_purchases(holdout, future_t=39)
    errors = predicted.to_numpy() - holdout["frequency_holdout"].to_numpy()
    assert row["mae"] == pytest.approx(np.abs(errors).mean())
    assert row["tracking_error"] == pytest.approx(predicted.sum() / 1882 - 1)
    assert 0.4 < row["gini"] < 1
    table = result.calibration["bgnbd"]
    assert table["customers"].sum() == len(holdout)
    assert result.best == "bgnbd"


def test_normalised_gini_extremes() -> None:
    actual = np.array([0.0, 1.0, 5.0, 10.0])
    assert normalised_gini(actual, actual) == pytest.approx(1.0)
    assert normalised_gini(actual, -actual) < 0
    assert normalised_gini(actual, np.zeros(4)) < 1


def test_needs_a_holdout_and_known_names(holdout: pd.DataFrame) -> None:
    with pytest.raises(DataValidationError, match="holdout"):
        compare_models(holdout.drop(columns=["frequency_holdout"]))
    with pytest.raises(InputError, match="criterion"):
        compare_models(holdout, criterion="luck")
    with pytest.raises(InputError, match="Unknown model"):
        compare_models(holdout, models=["crystal_ball"])
