"""The ``lifevalue`` command line: thin shells around the library."""

from __future__ import annotations

from lifevalue.cli.app import app, main

__all__ = ["app", "main"]
