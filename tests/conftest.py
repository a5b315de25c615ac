"""Shared fixtures: a private engine and small helpers to write inputs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from lifevalue.data import Engine


@pytest.fixture(scope="session")
def engine() -> Engine:
    """One DuckDB engine for the whole session (every staged table has its own name)."""
    return Engine(threads=2)


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented text to a file in the test's folder and return its path."""

    def write(text: str, name: str = "transactions.csv") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write
