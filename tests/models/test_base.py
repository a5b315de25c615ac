"""The shared base: fits that never return NaN, penalties, unit invariance, compression."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lifevalue.data import datasets
from lifevalue.errors import ConvergenceError, DataValidationError
from lifevalue.models import BetaGeoModel, ParetoNBDModel
from lifevalue.models._arrays import by_value, by_values, compress
from lifevalue.models.base import Arrays, Params


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    frame = datasets.load_cdnow_reference_summary()
    frame.attrs["lifevalue"] = {"time_unit": "weeks"}
    return frame


@pytest.mark.parametrize("newton", [True, False], ids=["newton", "quasi-newton"])
def test_a_failed_fit_raises_convergence_error_never_nan(cdnow: pd.DataFrame, newton: bool) -> None:
    from lifevalue.models.base import _REGISTRY, BaseModel

    class Broken(BetaGeoModel):
        """A model whose likelihood cannot be evaluated anywhere."""

        model_name = "broken_for_test"

        @staticmethod
        def _log_likelihood(params: Params, data: Arrays) -> np.ndarray:
            return np.full(len(data["frequency"]), np.nan)

        def _log_likelihood_and_gradient(self, params: Params, data: Arrays):
            return self._log_likelihood(params, data), np.zeros((4, len(data["frequency"])))

        if newton:

            def _log_likelihood_derivatives(self, params, data, counts, *, hessian):
                return math.nan, np.zeros(4), np.zeros((4, 4)) if hessian else None

        else:
            _log_likelihood_derivatives = BaseModel._log_likelihood_derivatives

    try:
        assert Broken()._has_analytic_hessian() is newton
        with pytest.raises(ConvergenceError, match="could not evaluate its likelihood") as info:
            Broken().fit(cdnow)
        assert "penalizer" in str(info.value)
    finally:
        _REGISTRY.pop("broken_for_test", None)


@pytest.mark.parametrize(("unit", "factor"), [("days", 7.0), ("years", 7 / 365.2425)])
@pytest.mark.parametrize("cls", [BetaGeoModel, ParetoNBDModel])
def test_the_same_data_in_another_unit_gives_the_same_fit(
    cdnow: pd.DataFrame, cls: type, unit: str, factor: float
) -> None:
    weekly = cls().fit(cdnow)
    rescaled = cdnow.assign(recency=cdnow["recency"] * factor, T=cdnow["T"] * factor)
    rescaled.attrs["lifevalue"] = {"time_unit": unit}
    other = cls().fit(rescaled)
    # Rates scale with the unit, shapes do not; the likelihood moves by the Jacobian.
    for name, value in weekly.params_.items():
        expected = value * factor if name in ("alpha", "beta") else value
        assert other.params_[name] == pytest.approx(expected, rel=2e-4), name
    jacobian = (cdnow["frequency"] * np.log(factor)).sum()
    assert other.log_likelihood_ == pytest.approx(weekly.log_likelihood_ - jacobian, abs=0.02)


def test_a_penalty_shrinks_the_parameters(cdnow: pd.DataFrame) -> None:
    plain = BetaGeoModel().fit(cdnow)
    shrunk = BetaGeoModel(penalizer=0.01).fit(cdnow)
    size = lambda m: sum(v**2 for v in m.params_.values())  # noqa: E731
    assert size(shrunk) < size(plain)
    assert shrunk.log_likelihood_ < plain.log_likelihood_


def test_compress_keeps_every_customer_and_codes_columns() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, 10_000).astype(float)
    t = rng.integers(0, 30, 10_000).astype(float)
    data, counts = compress({"frequency": x, "T": t}, np.ones(10_000))
    assert counts.sum() == 10_000
    assert len(counts) == len(set(zip(x, t, strict=True)))
    np.testing.assert_array_equal(data["frequency__u"][data["frequency__i"]], data["frequency"])
    square = by_value(data, "frequency", lambda u: u**2)
    np.testing.assert_array_equal(square, data["frequency"] ** 2)
    both = by_values(data, ("frequency", "T"), lambda u, w: u * 100 + w)
    np.testing.assert_array_equal(both, data["frequency"] * 100 + data["T"])
    # A column of distinct values is not worth coding: rows stay as they are.
    spend = rng.gamma(2.0, 10.0, 10_000)
    data, counts = compress({"frequency": x, "monetary_value": spend}, np.ones(10_000))
    assert len(counts) == 10_000 and "monetary_value__u" not in data and "frequency__u" in data


def test_compress_sums_weights_and_drops_empty_patterns() -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(0, 4, 5_000).astype(float)
    t = rng.integers(0, 20, 5_000).astype(float) / 7
    weights = rng.integers(0, 3, 5_000).astype(float)
    weights[x == 3] = 0.0  # every pattern with x = 3 is empty
    data, counts = compress({"frequency": x, "recency": t}, weights)
    expected = (
        pd.DataFrame({"x": x, "t": t, "w": weights})
        .groupby(["x", "t"])["w"]
        .sum()
        .loc[lambda w: w > 0]
    )
    got = pd.Series(counts, index=pd.MultiIndex.from_arrays([data["frequency"], data["recency"]]))
    pd.testing.assert_series_equal(got.sort_index(), expected, check_names=False)
    # Codes index the sorted distinct values.
    assert np.all(np.diff(data["recency__u"]) > 0)
    np.testing.assert_array_equal(data["recency__u"][data["recency__i"]], data["recency"])
    kept, kept_counts = compress({"frequency": x, "recency": t}, weights, drop_empty=False)
    assert len(kept_counts) == len(set(zip(x, t, strict=True))) > len(counts)
    assert np.all(kept_counts[kept["frequency"] == 3] == 0)


def test_a_broken_rule_is_reported_even_on_a_customer_of_weight_zero(
    cdnow: pd.DataFrame,
) -> None:
    frame = cdnow.assign(weights=1.0)
    frame.loc[7, ["recency", "weights"]] = [99.0, 0.0]
    with pytest.raises(DataValidationError) as info:
        BetaGeoModel().fit(frame)
    assert info.value.rule == "recency_le_T"
    assert info.value.rows == [7]
