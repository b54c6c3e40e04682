"""Run the mailstrata checkov checks on fixtures, in-process (checkov's TerraformJsonRunner) or by CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from checkov.common.output.report import Report
from checkov.runner_filter import RunnerFilter
from checkov.terraform_json.parser import loads
from checkov.terraform_json.runner import TerraformJsonRunner

from mailstrata.policies import CHECKS_DIR

FIXTURES = Path(__file__).parent / "fixtures"
CHECKOV = shutil.which("checkov", path=str(Path(sys.executable).parent)) or "checkov"


@dataclass(frozen=True)
class Scan:
    """What one check reported on one file: addresses (`type.name`, `provider.name`) per outcome."""

    passed: tuple[str, ...]
    failed: tuple[str, ...]
    details: dict[str, list[str]] = field(default_factory=dict)

    @property
    def counts(self) -> tuple[int, int]:
        return len(self.passed), len(self.failed)


@dataclass(frozen=True)
class CliRun:
    """A finished `checkov ... --output json` run."""

    report: dict[str, Any]
    returncode: int
    stderr: str

    @property
    def counts(self) -> tuple[int, int]:
        summary = self.report["summary"]
        return summary["passed"], summary["failed"]


def fixture_path(check_id: str, kind: str) -> Path:
    """`tests/policies/fixtures/<check_id>/<kind>.tf.json`."""
    return FIXTURES / check_id / f"{kind}.tf.json"


def addresses_by_line(path: Path) -> dict[int, str]:
    """Map the first line of each resource in a Terraform JSON file to its `type.name` address.

    checkov's terraform_json records name a resource `resource.<name>` without its type; the line range
    they carry tells which resource it is.
    """
    template, _ = loads(path)
    by_line: dict[int, str] = {}
    for entry in template.get("resource", []):
        for resource_type, by_name in entry.items():
            for name, conf in by_name.items():
                by_line[conf["__startline__"]] = f"{resource_type}.{name}"
    return by_line


def scan_in_process(path: Path, check_id: str) -> Scan:
    """Run one check on one `.tf.json` file with checkov's runner, as `checkov -f` would."""
    report = TerraformJsonRunner().run(
        root_folder=None,
        files=[str(path)],
        external_checks_dir=[str(CHECKS_DIR)],
        runner_filter=RunnerFilter(framework=["terraform_json"], checks=[check_id]),
    )
    assert isinstance(report, Report)
    assert not report.parsing_errors, report.parsing_errors
    by_line = addresses_by_line(path)

    def address(resource: str, line_range: list[int]) -> str:
        return by_line[line_range[0]] if resource.startswith("resource.") else resource

    return Scan(
        passed=tuple(address(r.resource, r.file_line_range) for r in report.passed_checks),
        failed=tuple(address(r.resource, r.file_line_range) for r in report.failed_checks),
        details={address(r.resource, r.file_line_range): list(r.details or []) for r in report.failed_checks},
    )


def run_cli(args: list[str], cwd: Path) -> CliRun:
    """Run the checkov CLI of this venv with `--output json`."""
    done = subprocess.run(
        [CHECKOV, *args, "--output", "json"],
        cwd=cwd,
        env={**os.environ, "CHECKPOINT_DISABLE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(done.stdout)
    assert isinstance(report, dict), f"expected one framework's report, got {type(report).__name__}"
    return CliRun(report=report, returncode=done.returncode, stderr=done.stderr)


@pytest.fixture(autouse=True)
def _no_checkpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")
    yield


@pytest.fixture
def scan() -> Callable[[Path, str], Scan]:
    """Run one check in-process on one file: `scan(path, "CKV_MAILSTRATA_1")`."""
    return scan_in_process


@pytest.fixture
def cli() -> Callable[[list[str], Path], CliRun]:
    """Run the checkov CLI: `cli(["-f", path, ...], cwd)`."""
    return run_cli


@pytest.fixture
def fixture_file() -> Callable[[str, str], Path]:
    """`fixture_file("CKV_MAILSTRATA_1", "pass")` is that check's pass fixture."""
    return fixture_path
