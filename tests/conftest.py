"""Suite-wide rules.

A test whose requirements are missing (a Debian daemon, root, terraform, the local twin) skips with a
reason — `tests/support/requires.py`'s `requires(...)` writes it — but under CI (`CI=true`), where
`make test` installs everything, every skip is a failure: a green CI must mean every test ran. A skip
that is expected even in CI needs `@pytest.mark.skip_allowed("reason")`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Compiled templates go inside the clone, which `make clean-caches` (and so every CI run) empties: the suite
# starts cold and never reads a cache another checkout wrote (docs/testing.md).
os.environ.setdefault("MAILSTRATA_TEMPLATE_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "templates"))

import mailstrata  # noqa: F401,E402  (sets jsii's quiet-banner variables before any test imports cdktf)
from tests.support.requires import pytest_make_collect_report, pytest_runtest_makereport

__all__ = ["pytest_make_collect_report", "pytest_runtest_makereport"]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the local twin's tests last: they are the slowest and the only ones that start a whole platform
    (about 270 processes), so every other suite runs first on a quiet machine."""
    items.sort(key=lambda item: item.get_closest_marker("twin") is not None)
