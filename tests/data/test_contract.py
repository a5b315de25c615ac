"""Column mapping and the configuration file."""

from __future__ import annotations

import pytest

from lifevalue.config import Config
from lifevalue.data import ColumnMapping
from lifevalue.errors import InputError

COLUMNS = ["Customer", "When", "Revenue", "order_id", "COST", "margin"]


def test_roles_resolve_by_name_case_and_position():
    mapping = ColumnMapping(customer_id="customer", timestamp="2", amount="Revenue")
    assert mapping.resolve(COLUMNS) == {
        "customer_id": "Customer",
        "timestamp": "When",
        "amount": "Revenue",
        "order_id": "order_id",
        "margin": "margin",  # margin wins over an auto-detected cost
    }
    off = ColumnMapping(customer_id="Customer", timestamp="When", amount="Revenue", order_id="")
    assert "order_id" not in off.resolve(COLUMNS)


def test_missing_and_shared_columns_are_named():
    with pytest.raises(InputError) as info:
        ColumnMapping(customer_id="client").resolve(COLUMNS, where="CSV file 'x.csv'")
    message = str(info.value)
    assert "customer_id -> 'client'" in message and "timestamp -> 'timestamp'" in message
    assert "'Customer', 'When'" in message and "x.csv" in message
    with pytest.raises(InputError, match="'Revenue' is mapped to amount, cost"):
        ColumnMapping(
            customer_id="Customer", timestamp="When", amount="Revenue", cost="Revenue"
        ).resolve(COLUMNS)
    with pytest.raises(InputError, match="either a cost or a margin"):
        ColumnMapping(
            customer_id="Customer", timestamp="When", amount="Revenue", cost="COST", margin="margin"
        ).resolve(COLUMNS)
    with pytest.raises(InputError, match="Unknown column role"):
        ColumnMapping.from_dict({"client": "x"})


def test_configuration_file(tmp_path):
    path = tmp_path / "lifevalue.toml"
    path.write_text(
        """
[data]
source = "log.csv"
date_format = "%d/%m/%Y"
observation_end = 2024-12-31
returns = "keep"

[data.columns]
customer_id = "Customer"

[data.csv]
delimiter = ";"
header = true

[summary]
calibration_end = 2024-06-30
unit = "months"
"""
    )
    config = Config.from_toml(path)
    assert config.data.source == str(tmp_path / "log.csv")
    assert config.data.columns.customer_id == "Customer"
    assert config.data.csv.delimiter == ";"
    assert config.data.observation_end == "2024-12-31"
    assert config.summary.calibration_end == "2024-06-30"
    assert config.summary.unit == "months"


def test_configuration_mistakes_are_named(tmp_path):
    path = tmp_path / "lifevalue.toml"
    path.write_text("[data]\nsorce = 'x.csv'\n")
    with pytest.raises(InputError, match=r"Unknown setting\(s\) 'sorce' in \[data\]"):
        Config.from_toml(path)
    path.write_text("[dta]\n")
    with pytest.raises(InputError, match="'dta' in the top level"):
        Config.from_toml(path)
    path.write_text("[data.csv]\nseparator = ';'\n")
    with pytest.raises(InputError, match="Unknown CSV option"):
        Config.from_toml(path)
    path.write_text("[data\n")
    with pytest.raises(InputError, match="is not valid TOML"):
        Config.from_toml(path)
    with pytest.raises(InputError, match="does not exist"):
        Config.from_toml(tmp_path / "none.toml")
