"""Suite-wide rules.

Tests marked `daemons` (real Postfix, Dovecot, ... from Debian) or `twin` (the local twin) skip with a
reason where their requirements are missing — but under CI (`CI=true`), where `make test` installs
everything, such a skip is a failure: a green CI must mean the real daemons ran.
"""

from __future__ import annotations

import os

import pytest

import mailstrata  # noqa: F401  (sets jsii's quiet-banner variables before any test imports cdktf)

STRICT_MARKERS = ("daemons", "twin")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") != "true" or not report.skipped:
        return
    if any(item.get_closest_marker(m) for m in STRICT_MARKERS):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the local twin's tests last: they are the slowest and the only ones that start a whole platform
    (about 270 processes), so every other suite runs first on a quiet machine."""
    items.sort(key=lambda item: item.get_closest_marker("twin") is not None)
