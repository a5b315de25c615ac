"""One contract, every model: init stores, fit returns self, unfitted raises, JSON round-trips,
outputs are labelled by customer_id, parameters and errors are finite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lifevalue.data import datasets
from lifevalue.errors import InputError, NotFittedError
from lifevalue.models import BaseModel, load_model, model_class


def _cdnow() -> pd.DataFrame:
    frame = datasets.load_cdnow_reference_summary().rename(columns={"ID": "customer_id"})
    frame["customer_id"] = "c" + frame["customer_id"].astype(str)
    frame.attrs["lifevalue"] = {"time_unit": "weeks"}
    return frame


def _donations() -> pd.DataFrame:
    frame = datasets.load_donations().rename(columns={"periods": "T"})
    frame.insert(0, "customer_id", [f"pattern{i}" for i in range(len(frame))])
    frame.attrs["lifevalue"] = {"time_unit": "years"}
    return frame


def _tenures() -> pd.DataFrame:
    sbg = model_class("sbg")
    frame = sbg.survival_frame([1000, 631, 468, 382, 326, 289, 262, 241])
    frame.insert(0, "customer_id", [f"group{i}" for i in range(len(frame))])
    frame.attrs["lifevalue"] = {"time_unit": "years"}
    return frame


# model name -> (data, a per-customer prediction)
CASES: dict[
    str, tuple[Callable[[], pd.DataFrame], Callable[[BaseModel, pd.DataFrame], pd.Series]]
] = {
    "bgnbd": (_cdnow, lambda m, d: m.expected_purchases(d, future_t=10)),
    "mbgnbd": (_cdnow, lambda m, d: m.expected_purchases(d, future_t=10)),
    "pnbd": (_cdnow, lambda m, d: m.expected_purchases(d, future_t=10)),
    "bgbb": (_donations, lambda m, d: m.expected_purchases(d, future_t=2)),
    "gg": (_cdnow, lambda m, d: m.conditional_expected_spend(d)),
    "sbg": (
        _tenures,
        lambda m, d: m.discounted_expected_residual_lifetime(d, annual_discount_rate=0.1),
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[str, pd.DataFrame, BaseModel]:
    name = request.param
    data = CASES[name][0]()
    return name, data, model_class(name)().fit(data)


def test_every_registered_model_has_a_contract_case() -> None:
    from lifevalue.models.base import _REGISTRY

    assert set(_REGISTRY) == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_init_only_stores_and_bad_settings_fail_at_fit(name: str) -> None:
    cls = model_class(name)
    model = cls(penalizer=-1.0, tol=1e-7)
    assert model.get_params()["penalizer"] == -1.0 and model.get_params()["tol"] == 1e-7
    assert repr(model).startswith(f"{cls.__name__}(")
    with pytest.raises(NotFittedError, match="not fitted"):
        model.summary()
    with pytest.raises(NotFittedError):
        model.to_dict()
    with pytest.raises(InputError, match=rf"'penalizer' parameter of {cls.__name__} must be >= 0"):
        model.fit(CASES[name][0]())


def test_fit_returns_self_with_finite_estimates(case) -> None:
    name, data, model = case
    fresh = model_class(name)()
    assert fresh.fit(data) is fresh
    table = model.summary()
    assert list(table.columns) == ["estimate", "std_error", "lower", "upper"]
    assert list(table.index) == list(model.param_names)
    assert np.all(np.isfinite(table.to_numpy()))
    assert np.all(table["std_error"] > 0)
    assert np.all((table["lower"] < table["estimate"]) & (table["estimate"] < table["upper"]))
    assert model.converged_


def test_predictions_are_labelled_by_customer_id(case) -> None:
    name, data, model = case
    predicted = CASES[name][1](model, data)
    assert predicted.index.name == "customer_id"
    assert list(predicted.index) == list(data["customer_id"])
    assert np.all(np.isfinite(predicted.to_numpy(dtype=float)))


def test_json_round_trip(case, tmp_path: Path) -> None:
    name, data, model = case
    restored = load_model(model.save(tmp_path / f"{name}.json"))
    assert type(restored) is type(model)
    assert restored.params_ == model.params_
    assert restored.time_unit_ == model.time_unit_
    np.testing.assert_array_equal(restored.covariance_, model.covariance_)
    predict = CASES[name][1]
    pd.testing.assert_series_equal(predict(restored, data), predict(model, data))
    assert "pickle" not in (tmp_path / f"{name}.json").read_text()
