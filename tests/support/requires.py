"""One skip-or-fail rule for the whole suite.

A test that needs something the machine may lack (a daemon, root, terraform) calls `requires(...)`: it
skips with a message that says what is missing, why the test needs it and what installs it. Under
`CI=true`, where `make test` installs everything, every skip is a failure (`pytest_runtest_makereport`
below, wired in by `tests/conftest.py`): a green CI means every test ran. The one way out is an explicit
`@pytest.mark.skip_allowed("reason")` on a test whose skip is expected even in CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
DEBIAN = "make deps-apt installs Debian's packages: scripts/install-debian-packages.sh"
TERRAFORM = "terraform on PATH is a prerequisite: docs/testing.md"
ALLOW_MARKER = "skip_allowed"


def missing_tools(*tools: str) -> list[str]:
    """The tools that are neither on PATH nor a file below the clone (`node_modules/.bin/cdktf`)."""
    return [t for t in tools if shutil.which(t) is None and not ("/" in t and (REPO / t).exists())]


def unavailable(what: str, *, why: str = "", install: str = "") -> NoReturn:
    """Skip (a failure under CI=true, by the suite's rule): `what` is missing."""
    message = what + (f"; needed {why}" if why else "") + (f" ({install})" if install else "")
    pytest.skip(message)


def requires(*tools: str, why: str = "", install: str = DEBIAN, root: bool = False) -> None:
    """Skip unless every tool is installed (and, with `root=True`, unless running as root)."""
    missing = missing_tools(*tools)
    if missing:
        unavailable(f"not installed: {', '.join(missing)}", why=why, install=install)
    if root and os.geteuid() != 0:
        unavailable("not root", why=why or "for mount and network namespaces", install="run the tests as root")


def requires_netns(why: str = "to run the daemons on a private loopback") -> None:
    """Skip unless network namespaces work here (root and iproute2)."""
    from tests.support import netns

    reason = netns.available()
    if reason is not None:
        unavailable(reason, why=why, install="run the tests as root; make deps-apt installs iproute2")


def requires_terraform(why: str = "to evaluate what mailstrata writes") -> None:
    requires("terraform", why=why, install=TERRAFORM)


def _skip_reason(longrepr: object) -> str:
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _strict() -> bool:
    return os.environ.get("CI") == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI=true a skipped test fails, unless marked `skip_allowed` with a reason."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if not _strict() or not report.skipped or hasattr(report, "wasxfail"):
        return
    allowed = item.get_closest_marker(ALLOW_MARKER)
    if allowed is not None and (allowed.args or allowed.kwargs.get("reason")):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, which counts as a failure: {_skip_reason(report.longrepr)}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A module skipped at import (`allow_module_level=True`) fails the same way under CI=true."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if _strict() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {_skip_reason(report.longrepr)}"
