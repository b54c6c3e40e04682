"""The skip-or-fail rule (`tests/support/requires.py`), proven on a tiny test file run by a real pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

TINY = '''
import pytest

from tests.support.requires import requires


def test_needs_a_missing_tool() -> None:
    requires("mailstrata-no-such-tool", why="for the proof", install="nothing installs it")


def test_plain_skip() -> None:
    pytest.skip("skipped by hand")


@pytest.mark.skip_allowed("a reason it may skip in CI")
def test_allowed_skip() -> None:
    requires("mailstrata-no-such-tool")


def test_runs() -> None:
    requires("sh")
'''


def run_tiny(tmp_path: Path, ci: str | None) -> str:
    (tmp_path / "test_tiny.py").write_text(TINY)
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(REPO)}
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-p", "tests.support.requires",
         "-W", "ignore::pytest.PytestUnknownMarkWarning", str(tmp_path / "test_tiny.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return proc.stdout


@pytest.mark.parametrize("ci", [None, "false"])
def test_without_ci_a_missing_requirement_skips_with_what_installs_it(tmp_path: Path, ci: str | None) -> None:
    out = run_tiny(tmp_path, ci)
    assert "2 passed" not in out and "1 passed, 3 skipped" in out, out
    assert (
        "not installed: mailstrata-no-such-tool; needed for the proof (nothing installs it)" in out
    ), out


def test_under_ci_every_skip_fails_except_an_allowed_one(tmp_path: Path) -> None:
    out = run_tiny(tmp_path, "true")
    assert "2 failed, 1 passed, 1 skipped" in out, out
    assert (
        "FAILED test_tiny.py::test_needs_a_missing_tool - skipped under CI=true, which counts as a failure: "
        "not installed: mailstrata-no-such-tool; needed for the proof (nothing installs it)"
    ) in out, out
    assert "FAILED test_tiny.py::test_plain_skip - skipped under CI=true" in out, out
    assert "not installed: mailstrata-no-such-tool (make deps-apt installs" in out, out  # the allowed one
