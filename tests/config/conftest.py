"""Fixtures for the config tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.config._support import default_data


@pytest.fixture
def config() -> dict[str, Any]:
    """The default config's data, a fresh copy per test: break it."""
    return default_data()


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write YAML text to tmp_path/<name> and return its path."""

    def write(text: str, name: str = "platform.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
